//! Table upkeep across a project: `weir vacuum`.
//!
//! The caller holds the assets' leases and has recovered, so that no run is staging files while the
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
            });
        }
    }
    Ok(reports)
}

/// Files under this size count as small for automatic compaction.
pub const SMALL_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// What `weir optimize` and automatic compaction aim for.
pub const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;

/// After a successful run: compacts the asset's table when it holds more small files than the
/// project allows (`compact_after_files`), unless it keeps its files by origin.
/// Returns the files removed and added, when it compacted.
pub(crate) async fn compact_if_due(
    project: &Project,
    asset: &weir_model::Asset,
) -> Result<Option<(u64, u64)>> {
    let limit = project.config.project.compact_after_files;
    if limit == 0 || keeps_files_by_origin(asset).is_some() {
        return Ok(None);
    }
    let (path, _) = table_paths(project, &asset.name);
    let Some(table) = LakeTable::open(&path).await? else {
        return Ok(None);
    };
    let small = table
        .live_files()
        .await?
        .iter()
        .filter(|f| f.bytes < SMALL_FILE_BYTES)
        .count();
    if small <= limit {
        return Ok(None);
    }
    let done = weir_store::compact(table, TARGET_FILE_BYTES).await?;
    tracing::info!(asset = %asset.name, removed = done.files_removed, added = done.files_added, "compacted");
    Ok(Some((done.files_removed, done.files_added)))
}

/// Why an asset's files must stay as they are written, if they must: a source with
/// `on_change = "replace"` keeps one data file per input file, a partitioned model files per
/// partition; that is how the rows to replace are found.
fn keeps_files_by_origin(asset: &weir_model::Asset) -> Option<&'static str> {
    if asset
        .source
        .as_ref()
        .is_some_and(|s| s.on_change == weir_model::OnChange::Replace)
    {
        return Some("on_change = \"replace\" keeps one data file per input file");
    }
    if asset.model.as_ref().is_some_and(|m| m.partition.is_some()) {
        return Some("a partitioned model keeps its files by partition");
    }
    None
}

/// What compaction did to one table, or why it left the table alone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCompaction {
    pub asset: String,
    /// `table` or `quarantine`.
    pub kind: &'static str,
    pub files_removed: u64,
    pub files_added: u64,
    pub version: Option<u64>,
    pub skipped: Option<String>,
}

/// Compacts the tables of `assets` into files of about `target_bytes` (Delta OPTIMIZE, one
/// commit per table, no row changed). A source with `on_change = "replace"` keeps one data
/// file per input file (that is how a rewritten file's rows are found), so its tables are
/// left alone, and so are held assets.
pub async fn optimize(
    project: &Project,
    assets: &[String],
    held: &BTreeMap<String, String>,
    target_bytes: u64,
) -> Result<Vec<TableCompaction>> {
    let mut reports = Vec::new();
    for name in assets {
        let by_origin = project.asset(name).and_then(keeps_files_by_origin);
        let (table_path, quarantine_path) = table_paths(project, name);
        for (kind, path) in [("table", table_path), ("quarantine", quarantine_path)] {
            let skip = |why: String| TableCompaction {
                asset: name.clone(),
                kind,
                files_removed: 0,
                files_added: 0,
                version: None,
                skipped: Some(why),
            };
            if let Some(why) = held.get(name) {
                reports.push(skip(format!("its publication is held back: {why}")));
                continue;
            }
            if let Some(why) = by_origin {
                reports.push(skip(why.into()));
                continue;
            }
            let Some(table) = LakeTable::open(&path).await? else {
                continue;
            };
            failpoint("compacting", name);
            let done = weir_store::compact(table, target_bytes).await?;
            reports.push(TableCompaction {
                asset: name.clone(),
                kind,
                files_removed: done.files_removed,
                files_added: done.files_added,
                version: done.version,
                skipped: None,
            });
        }
    }
    Ok(reports)
}
