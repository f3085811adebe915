//! What happened to a table between two versions, read from its Delta log: the files that
//! were appended, or the reason the table cannot be read as "old rows plus new rows".
//!
//! Incremental models are driven by this, not by a watermark: the rows an append brought are
//! exactly the rows of the files its commits added, whatever their timestamps say.

use std::path::PathBuf;

use deltalake::kernel::Action;

use crate::error::{Result, StoreError};
use crate::table::{LakeTable, percent_decode};

/// The difference between an older version of a table and its current one.
#[derive(Debug, Clone, PartialEq)]
pub enum TableChanges {
    /// Only appends: these data files (absolute paths) hold every row added since.
    Appended { files: Vec<PathBuf> },
    /// Some commit removed or rewrote rows (a full refresh, a MERGE, a schema change) or the
    /// log between the two versions can no longer be read: old rows plus new rows is not the
    /// table any more. The string says which commit and why, for the user.
    Rewritten(String),
}

impl LakeTable {
    /// The actions of commit `version`, read from the Delta log; `None` when its log entry is
    /// gone (cleaned up after a checkpoint).
    pub(crate) async fn commit_actions(&self, version: u64) -> Result<Option<Vec<Action>>> {
        let Some(bytes) = self
            .table
            .log_store()
            .read_commit_entry(version)
            .await
            .map_err(StoreError::delta(&self.path))?
        else {
            return Ok(None);
        };
        deltalake::logstore::get_actions(version, &bytes)
            .map(Some)
            .map_err(StoreError::delta(&self.path))
    }

    /// Reads the commits after `since` up to the loaded version. Compaction (an `add` and
    /// `remove` pair marked `dataChange: false`) changes no row and is ignored.
    pub async fn changes_since(&self, since: u64) -> Result<TableChanges> {
        let Some(current) = self.version() else {
            return Ok(TableChanges::Rewritten(format!(
                "table {} has no version",
                self.path.display()
            )));
        };
        if since > current {
            return Ok(TableChanges::Rewritten(format!(
                "table {} is at version {current}, older than version {since} read before: it was rebuilt",
                self.path.display()
            )));
        }
        let mut files = Vec::new();
        for version in since + 1..=current {
            let Some(actions) = self.commit_actions(version).await? else {
                return Ok(TableChanges::Rewritten(format!(
                    "the log entry of version {version} of {} is gone (log cleanup)",
                    self.path.display()
                )));
            };
            for action in actions {
                match action {
                    Action::Add(add) if add.data_change => {
                        if add.deletion_vector.is_some() {
                            return Ok(TableChanges::Rewritten(format!(
                                "version {version} of {} adds a file with a deletion vector",
                                self.path.display()
                            )));
                        }
                        files.push(self.path.join(percent_decode(&add.path)));
                    }
                    Action::Remove(remove) if remove.data_change => {
                        return Ok(TableChanges::Rewritten(format!(
                            "version {version} of {} removed or rewrote rows",
                            self.path.display()
                        )));
                    }
                    Action::Metadata(_) => {
                        return Ok(TableChanges::Rewritten(format!(
                            "version {version} of {} changed the table's metadata",
                            self.path.display()
                        )));
                    }
                    _ => {}
                }
            }
        }
        Ok(TableChanges::Appended { files })
    }
}

/// One commit of a table as weir wrote it: its version, the `txn` it carries (application id
/// and version) and its `commitInfo` entries.
#[derive(Debug, Clone)]
pub struct CommitRecord {
    pub version: u64,
    pub txn: Option<(String, i64)>,
    pub info: serde_json::Map<String, serde_json::Value>,
}

impl LakeTable {
    /// Every commit of the table, oldest first, read from the Delta log. This is what the lake
    /// itself says was published; weir's state store is an index that can be rebuilt from it.
    /// Fails when a log entry is gone (cleaned up after a checkpoint): the history is then
    /// incomplete and must not be trusted.
    pub async fn commits(&self) -> Result<Vec<CommitRecord>> {
        let Some(current) = self.version() else {
            return Ok(Vec::new());
        };
        let mut commits = Vec::new();
        for version in 0..=current {
            let actions = self.commit_actions(version).await?.ok_or_else(|| {
                    StoreError::Other(format!(
                        "the log entry of version {version} of {} is gone (log cleanup): its history cannot be read",
                        self.path.display()
                    ))
                })?;
            let mut record = CommitRecord {
                version,
                txn: None,
                info: serde_json::Map::new(),
            };
            for action in actions {
                match action {
                    Action::Txn(txn) => record.txn = Some((txn.app_id, txn.version)),
                    Action::CommitInfo(info) => record.info = info.info.into_iter().collect(),
                    _ => {}
                }
            }
            commits.push(record);
        }
        Ok(commits)
    }
}
