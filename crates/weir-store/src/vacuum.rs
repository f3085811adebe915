//! Table upkeep: the data files a table's directory holds that no version of the table names.
//!
//! Staged files are written into the table directory before the commit that names them; a run
//! killed before journalling its publication, or one that failed and could not discard its
//! files, leaves them behind. They are invisible to every reader (no version names them) and
//! only take space. A file is *named* when any readable commit of the log adds or removes it,
//! or the latest snapshot (which a checkpoint may carry alone) holds it; anything else under
//! the table directory that looks like a data file is unreferenced. Deleting those changes no
//! version of the table, so it is safe at any instant and idempotent: a vacuum killed halfway
//! is finished by the next one.
//!
//! Files that a version *does* name but the latest no longer needs (removed by a rewrite) are
//! Delta VACUUM's business: [`vacuum_removed`], bounded below by the table's retention.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::table::{LakeTable, percent_decode};

/// A data file no version of its table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreferenced {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The data files under `table.path` that no version names, sorted.
pub async fn unreferenced_files(table: &LakeTable) -> Result<Vec<Unreferenced>> {
    let mut named: BTreeSet<String> = named_in_log(&table.path)?;
    named.extend(table.live_files().await?.into_iter().map(|f| f.path));
    let mut found = Vec::new();
    walk(&table.path, &table.path, &mut found)?;
    let mut unreferenced: Vec<Unreferenced> = found
        .into_iter()
        .filter(|(relative, _, _)| !named.contains(relative))
        .map(|(_, path, bytes)| Unreferenced { path, bytes })
        .collect();
    unreferenced.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(unreferenced)
}

/// Deletes `files`; one already gone counts as deleted (a vacuum run again after a kill).
/// Returns the bytes freed.
pub fn delete_unreferenced(files: &[Unreferenced]) -> Result<u64> {
    let mut freed = 0;
    for file in files {
        match std::fs::remove_file(&file.path) {
            Ok(()) => freed += file.bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    path: file.path.clone(),
                    source,
                });
            }
        }
    }
    Ok(freed)
}

/// Every path an `add`, `remove` or `cdc` action of the log's JSON commits names, decoded.
fn named_in_log(table_path: &Path) -> Result<BTreeSet<String>> {
    let log = table_path.join("_delta_log");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let mut named = BTreeSet::new();
    for entry in std::fs::read_dir(&log).map_err(io(&log))? {
        let path = entry.map_err(io(&log))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let action: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                StoreError::Other(format!("{}: not a Delta commit: {e}", path.display()))
            })?;
            for kind in ["add", "remove", "cdc"] {
                if let Some(file) = action
                    .get(kind)
                    .and_then(|a| a.get("path"))
                    .and_then(|p| p.as_str())
                {
                    named.insert(percent_decode(file));
                }
            }
        }
    }
    Ok(named)
}

/// Data files under `dir` as (path relative to `root` with `/`, absolute path, bytes), outside
/// `_delta_log` and hidden directories.
fn walk(root: &Path, dir: &Path, found: &mut Vec<(String, PathBuf, u64)>) -> Result<()> {
    let io = |source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            if name != "_delta_log" && !name.starts_with('.') && !name.starts_with('_') {
                walk(root, &path, found)?;
            }
        } else if kind.is_file() && name.ends_with(".parquet") {
            let relative = weir_model::slash_path(path.strip_prefix(root).unwrap_or(&path));
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            found.push((relative, path, bytes));
        }
    }
    Ok(())
}

/// Delta VACUUM: deletes the files that versions older than `retain_hours` needed and the
/// latest does not, so time travel to before that horizon stops working. Refuses a horizon
/// shorter than the table's `delta.deletedFileRetentionDuration` (7 days unless set). With
/// `dry_run`, deletes nothing. Returns the files it deleted, or would.
pub async fn vacuum_removed(
    table: LakeTable,
    retain_hours: u64,
    dry_run: bool,
) -> Result<Vec<String>> {
    let path = table.path.clone();
    let hours = i64::try_from(retain_hours)
        .map_err(|_| StoreError::Other(format!("--retain {retain_hours} hours is too long")))?;
    let (_, metrics) = table
        .table
        .vacuum()
        .with_retention_period(chrono::Duration::hours(hours))
        .with_enforce_retention_duration(true)
        .with_dry_run(dry_run)
        .await
        .map_err(|e| match e.to_string() {
            m if m.contains("Invalid retention period") => StoreError::Other(format!(
                "{}: --retain {retain_hours} hours is below the table's retention ({}); weir never vacuums below it",
                path.display(),
                m.rsplit_once(": ").map_or(m.as_str(), |(_, r)| r)
            )),
            _ => StoreError::Delta {
                path: path.clone(),
                source: e,
            },
        })?;
    Ok(metrics.files_deleted)
}
