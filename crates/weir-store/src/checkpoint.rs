//! Checkpoints written beside the commits instead of inside them.
//!
//! delta-rs writes a commit's checkpoint (and the log clean-up that goes with it) before the
//! commit returns: every tenth run of an asset paid 15–20 ms for it, on the path of the run and
//! of whatever waits for it. A checkpoint changes nothing a reader sees (it is a summary of the
//! log up to a version, there only to make opening faster), so weir commits without it and
//! writes it in a task of its own once the commit is in: the run goes on, the checkpoint is
//! written meanwhile.
//!
//! A checkpoint is due when the table's newest one is `delta.checkpointInterval` versions or
//! more behind the commit (delta-rs's own rule in a steady state: version 9, 19, 29, ...). A
//! process that exits or dies before the task is done leaves that checkpoint unwritten, and the
//! next commit to the table finds it due and writes it. The CLI waits for the tasks before it
//! exits ([`finish_checkpoints`]) so that a one-shot `weir run` leaves its checkpoints behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};

use deltalake::DeltaTable;
use tokio::task::JoinHandle;

/// The checkpoint tasks not yet awaited, one per table at most.
static PENDING: LazyLock<Mutex<HashMap<PathBuf, JoinHandle<()>>>> = LazyLock::new(Mutex::default);

fn pending() -> MutexGuard<'static, HashMap<PathBuf, JoinHandle<()>>> {
    // The map stays whole if a holder panicked: keep using it.
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The version of the table's newest checkpoint, from `_delta_log/_last_checkpoint`; `None`
/// when it has none (or the file cannot be read: the checkpoint is then written again).
fn last_checkpoint(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(crate::head::log_dir(path).join("_last_checkpoint")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .get("version")?
        .as_u64()
}

/// Whether `table`, at `path`, should get a checkpoint of its current version.
fn due(path: &Path, table: &DeltaTable) -> Option<u64> {
    let version = table.version()?;
    let interval = table
        .snapshot()
        .ok()?
        .table_config()
        .checkpoint_interval
        .map_or(100, std::num::NonZero::get);
    // A table younger than one interval cannot be owed a checkpoint: no file to read.
    if version + 1 < interval {
        return None;
    }
    let next_due = last_checkpoint(path).map_or(interval - 1, |last| last + interval);
    (version >= next_due).then_some(version)
}

/// Starts writing the checkpoint of `table`'s current version, and the log clean-up that goes
/// with it, if one is due and none is being written for this table. Outside a Tokio runtime,
/// or when one is already under way, it is left to a later commit.
pub(crate) fn schedule_if_due(path: &Path, table: &DeltaTable) {
    let Some(version) = due(path, table) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let mut pending = pending();
    pending.retain(|_, task| !task.is_finished());
    if pending.contains_key(path) {
        return;
    }
    let table = table.clone();
    let shown = path.display().to_string();
    let task = runtime.spawn(async move {
        if let Err(e) = deltalake::checkpoints::create_checkpoint(&table, None).await {
            // Nothing is lost: the next commit finds the checkpoint still due.
            tracing::warn!(table = %shown, version, error = %e, "checkpoint not written");
            return;
        }
        let cleanup = table
            .snapshot()
            .is_ok_and(|s| s.table_config().enable_expired_log_cleanup.unwrap_or(true));
        if cleanup
            && let Err(e) = deltalake::checkpoints::cleanup_metadata(&table, None).await
        {
            tracing::warn!(table = %shown, version, error = %e, "expired log entries not cleaned up");
        }
    });
    pending.insert(path.to_path_buf(), task);
}

/// Waits for the checkpoints under way for tables inside `dir`.
pub(crate) async fn finish_checkpoints_under(dir: &Path) {
    // Compared as given and as resolved: the table and the folder may be named differently
    // (a relative path, a link).
    let resolved = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let folder = resolved(dir);
    let tasks: Vec<JoinHandle<()>> = {
        let mut pending = pending();
        let inside: Vec<PathBuf> = pending
            .keys()
            .filter(|path| path.starts_with(dir) || resolved(path).starts_with(&folder))
            .cloned()
            .collect();
        inside.iter().filter_map(|p| pending.remove(p)).collect()
    };
    join(tasks).await;
}

/// Waits for every checkpoint under way in this process. A process that exits without it
/// loses nothing but those checkpoints, which the next commits write.
pub async fn finish_checkpoints() {
    let tasks: Vec<JoinHandle<()>> = pending().drain().map(|(_, task)| task).collect();
    join(tasks).await;
}

async fn join(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        // A task of a runtime since shut down was cancelled: nothing to wait for.
        let _ = task.await;
    }
}
