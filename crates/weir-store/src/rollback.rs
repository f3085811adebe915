//! Reading a run's commit back from the Delta log by its `txn` version, and rolling it back.
//!
//! Recovery relies on this when a run's journal is gone or unreadable: the `txn` action of
//! `weir:<asset>` in each table says exactly which run each table holds, and the commit that
//! carries it says which files it added and removed.

use std::collections::{BTreeMap, BTreeSet};

use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use futures::TryStreamExt;

use crate::error::{Result, StoreError};
use crate::table::LakeTable;

/// The commit of a table that carries one `txn` version of one application.
#[derive(Debug, Clone)]
pub struct TxnCommit {
    /// The table version of the commit.
    pub version: u64,
    /// The files it added (with `dataChange`).
    pub adds: Vec<Add>,
    /// The paths of the files it removed (with `dataChange`): a replace.
    pub removed: Vec<String>,
    /// What weir put in its `commitInfo` (`weir.runId`, `weir.files`, ...).
    pub info: BTreeMap<String, serde_json::Value>,
}

impl TxnCommit {
    /// The rows of the files it added, from their statistics.
    pub fn rows_added(&self) -> u64 {
        self.adds.iter().map(rows_of).sum()
    }
}

/// What [`LakeTable::rollback_txn`] did.
#[derive(Debug, Clone, Default)]
pub struct Rollback {
    /// The version of the rolled-back commit, if the log holds it.
    pub commit: Option<u64>,
    /// The new version made by the rollback; `None` when there was nothing left to undo.
    pub rollback_version: Option<u64>,
    pub files_removed: usize,
    pub rows_removed: u64,
    pub files_restored: usize,
    /// The rolled-back commit's `commitInfo` entries.
    pub info: BTreeMap<String, serde_json::Value>,
}

/// The rows of the file an `add` action names, from its statistics (0 without any).
pub fn rows_of(add: &Add) -> u64 {
    add.stats
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v.get("numRecords").and_then(|n| n.as_u64()))
        .unwrap_or(0)
}

impl LakeTable {
    /// Finds the commit carrying `txn` version `txn` of `app_id`, reading the log backwards
    /// from the loaded version. `None` if no commit carries it.
    pub async fn find_txn_commit(&self, app_id: &str, txn: i64) -> Result<Option<TxnCommit>> {
        let Some(current) = self.version() else {
            return Ok(None);
        };
        for version in (0..=current).rev() {
            let Some(actions) = self.commit_actions(version).await? else {
                // Older entries were cleaned up: the commit cannot be found any more.
                return Ok(None);
            };
            let found = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Txn(t) if t.app_id == app_id => Some(t.version),
                    _ => None,
                })
                .max();
            match found {
                Some(v) if v == txn => {
                    let mut commit = TxnCommit {
                        version,
                        adds: Vec::new(),
                        removed: Vec::new(),
                        info: BTreeMap::new(),
                    };
                    for action in actions {
                        match action {
                            Action::Add(add) if add.data_change => commit.adds.push(add),
                            Action::Remove(r) if r.data_change => commit.removed.push(r.path),
                            Action::CommitInfo(info) => commit.info.extend(info.info),
                            _ => {}
                        }
                    }
                    return Ok(Some(commit));
                }
                // txn versions only grow: an older one means ours was never committed.
                Some(v) if v < txn => return Ok(None),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Undoes the commit carrying `txn` version `txn` of `app_id`, in one new commit: removes
    /// exactly the files it added that the table still holds, and adds back the files it
    /// removed (a replace) that the table no longer holds, as they were before it.
    /// `metadata` goes into the rollback's `commitInfo`. Idempotent: a second call finds
    /// nothing left to undo and commits nothing. The table's `txn` version stays where it is,
    /// so the next run takes the next version.
    pub async fn rollback_txn(
        &mut self,
        app_id: &str,
        txn: i64,
        metadata: BTreeMap<String, serde_json::Value>,
    ) -> Result<Rollback> {
        let Some(commit) = self.find_txn_commit(app_id, txn).await? else {
            return Ok(Rollback::default());
        };
        let path = self.path.clone();
        let added: BTreeSet<&str> = commit.adds.iter().map(|a| a.path.as_str()).collect();
        let removed: BTreeSet<&str> = commit.removed.iter().map(String::as_str).collect();
        let snapshot = self.table.snapshot().map_err(StoreError::delta(&path))?;
        let mut actions = Vec::new();
        let mut outcome = Rollback {
            commit: Some(commit.version),
            info: commit.info.clone(),
            ..Rollback::default()
        };
        let file_views = snapshot
            .snapshot()
            .file_views(self.table.log_store().as_ref(), None)
            .try_collect::<Vec<_>>()
            .await
            .map_err(StoreError::delta(&path))?;
        let present: BTreeSet<String> = file_views.iter().map(|f| f.path().to_string()).collect();
        for view in &file_views {
            if added.contains(view.path().as_ref()) {
                outcome.files_removed += 1;
                outcome.rows_removed += view.num_records().unwrap_or(0) as u64;
                actions.push(Action::Remove(view.remove_action(true)));
            }
        }
        let missing: BTreeSet<&str> = removed
            .iter()
            .copied()
            .filter(|p| !present.contains(*p))
            .collect();
        if !missing.is_empty() && commit.version > 0 {
            let before = LakeTable::open_at(&path, commit.version - 1)
                .await?
                .ok_or_else(|| StoreError::Other(format!("table {} vanished", path.display())))?;
            let old = before
                .table
                .snapshot()
                .map_err(StoreError::delta(&path))?
                .snapshot()
                .file_views(before.table.log_store().as_ref(), None)
                // The file's add action as that version listed it, stats included.
                .map_ok(|f| {
                    #[allow(deprecated)]
                    f.add_action()
                })
                .try_collect::<Vec<_>>()
                .await
                .map_err(StoreError::delta(&path))?;
            for mut add in old {
                if missing.contains(add.path.as_str()) {
                    add.data_change = true;
                    outcome.files_restored += 1;
                    actions.push(Action::Add(add));
                }
            }
            if outcome.files_restored < missing.len() {
                return Err(StoreError::Other(format!(
                    "table {}: version {} replaced files that version {} no longer lists; cannot roll it back",
                    path.display(),
                    commit.version,
                    commit.version - 1
                )));
            }
        }
        if actions.is_empty() {
            return Ok(outcome);
        }
        let properties = LakeTable::commit_properties().with_metadata(metadata);
        let finalized = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(snapshot),
                self.table.log_store(),
                DeltaOperation::Restore {
                    version: Some(commit.version.saturating_sub(1)),
                    datetime: None,
                },
            )
            .await
            .map_err(|e| StoreError::Delta {
                path: path.clone(),
                source: e,
            })?;
        outcome.rollback_version = Some(finalized.version());
        self.committed(finalized.snapshot);
        Ok(outcome)
    }
}
