//! Table upkeep across a project: `weir vacuum`.
//!
//! Runs under the project lock and after recovery, so that no run is staging files while the
//! unreferenced ones are listed, and a journalled publication has already been completed or
//! settled (its files are named by then). Assets whose publication is held back are left
//! alone: their staged files may still be needed.

use std::collections::BTreeMap;

use weir_model::Project;
use weir_store::LakeTable;

use crate::error::Result;
use crate::runner::{failpoint, table_paths};

#[derive(Debug, Clone, Default)]
pub struct VacuumOptions {
    /// Delete what is found; otherwise only report it.
    pub apply: bool,
    /// Also run Delta VACUUM with this retention, in hours.
    pub retain_hours: Option<u64>,
}

/// What vacuum found (and, with `apply`, deleted) in one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableVacuum {
    pub asset: String,
    /// `table` or `quarantine`.
    pub kind: &'static str,
    /// Data files no version names, relative to the table.
    pub unreferenced_files: Vec<String>,
    pub unreferenced_bytes: u64,
    /// Files Delta VACUUM removed (or would) with `--retain`.
    pub expired_files: Vec<String>,
    pub applied: bool,
}

/// Vacuums the tables of `assets`; `held` are skipped, with the reason.
pub async fn vacuum(
    project: &Project,
    assets: &[String],
    held: &BTreeMap<String, String>,
    options: &VacuumOptions,
) -> Result<Vec<TableVacuum>> {
    let mut reports = Vec::new();
    for asset in assets {
        if held.contains_key(asset) {
            continue;
        }
        let (table_path, quarantine_path) = table_paths(project, asset);
        for (kind, path) in [("table", table_path), ("quarantine", quarantine_path)] {
            let Some(table) = LakeTable::open(&path).await? else {
                continue;
            };
            let unreferenced = weir_store::unreferenced_files(&table).await?;
            if options.apply && !unreferenced.is_empty() {
                weir_store::delete_unreferenced(&unreferenced)?;
                // A crash test stops here: one table vacuumed, the others not yet.
                failpoint("vacuum_deleted", asset);
            }
            let expired = match options.retain_hours {
                Some(hours) => weir_store::vacuum_removed(table, hours, !options.apply).await?,
                None => Vec::new(),
            };
            reports.push(TableVacuum {
                asset: asset.clone(),
                kind,
                unreferenced_bytes: unreferenced.iter().map(|f| f.bytes).sum(),
                unreferenced_files: unreferenced
                    .iter()
                    .map(|f| {
                        f.path
                            .strip_prefix(&path)
                            .unwrap_or(&f.path)
                            .display()
                            .to_string()
                    })
                    .collect(),
                expired_files: expired,
                applied: options.apply,
            });
        }
    }
    Ok(reports)
}
