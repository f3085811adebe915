//! Tables opened before in this process, kept so that opening one again reads only the commits
//! made since.
//!
//! A run opens its table and its quarantine table several times (to compare its inputs, to
//! stage, to validate and to apply its publication, to look for compaction), and a fresh open
//! reads the last checkpoint and replays every commit after it. Opening a kept table asks
//! delta-rs for the commits after the kept version instead: a listing of the log and those
//! commits, which another process may have made.
//!
//! A kept table is used only while the commit file of its version holds the same bytes as when
//! it was kept. A table deleted and created again at the same path (as after a contract change)
//! starts a new log, whose commit of that version, if it has one, holds other data files (their
//! names are random) and another timestamp: that table is opened afresh. Delta commit files are
//! written once and never changed, so a match is the same table.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};

use deltalake::DeltaTable;

/// How many tables are kept; the least recently opened goes first. Each holds its snapshot's
/// list of live files, so the bound is on memory as much as on anything.
const CAPACITY: usize = 128;

struct Kept {
    table: DeltaTable,
    version: u64,
    /// A hash of the bytes of the commit file of `version`.
    commit: u64,
    last_used: u64,
}

#[derive(Default)]
struct Tables {
    kept: HashMap<PathBuf, Kept>,
    clock: u64,
}

static TABLES: LazyLock<Mutex<Tables>> = LazyLock::new(Mutex::default);

fn tables() -> MutexGuard<'static, Tables> {
    // A panic while the lock was held leaves a map that is still whole: keep using it.
    TABLES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A hash of the commit file of `version` in the log of the table at `path`; `None` when it
/// cannot be read (gone with the table, or cleaned up).
fn commit_hash(path: &Path, version: u64) -> Option<u64> {
    let bytes = std::fs::read(crate::head::commit_file(path, version)).ok()?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

/// The table kept for `path` (canonical), as it was kept, if its commit file is unchanged; the
/// caller brings it up to date.
pub(crate) fn reusable(path: &Path) -> Option<DeltaTable> {
    let (table, version, commit) = {
        let mut tables = tables();
        tables.clock += 1;
        let clock = tables.clock;
        let kept = tables.kept.get_mut(path)?;
        kept.last_used = clock;
        (kept.table.clone(), kept.version, kept.commit)
    };
    if commit_hash(path, version) == Some(commit) {
        Some(table)
    } else {
        forget(path);
        None
    }
}

/// Keeps `table`, just opened or brought up to date, for the next open of `path` (canonical).
pub(crate) fn keep(path: &Path, table: &DeltaTable) {
    let Some(version) = table.version() else {
        return;
    };
    let Some(commit) = commit_hash(path, version) else {
        return;
    };
    let mut tables = tables();
    tables.clock += 1;
    let last_used = tables.clock;
    if tables.kept.len() >= CAPACITY
        && !tables.kept.contains_key(path)
        && let Some(oldest) = tables
            .kept
            .iter()
            .min_by_key(|(_, k)| k.last_used)
            .map(|(p, _)| p.clone())
    {
        tables.kept.remove(&oldest);
    }
    tables.kept.insert(
        path.to_path_buf(),
        Kept {
            table: table.clone(),
            version,
            commit,
            last_used,
        },
    );
}

/// Drops what is kept for `path` (canonical).
pub(crate) fn forget(path: &Path) {
    tables().kept.remove(path);
}

#[cfg(test)]
pub(crate) fn is_kept(path: &Path) -> bool {
    tables().kept.contains_key(path)
}
