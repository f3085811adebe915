//! A table's head, read from its Delta log without loading the table: the newest version,
//! the table's id and the newest commit's `commitInfo`.
//!
//! Opening a table replays its log into a snapshot of every live file; deciding that a model
//! is up to date needs none of that, only which version each table is at and what the
//! model's own last commit recorded. On a project of a thousand models, most of them up to
//! date, that difference is most of a no-op run.

use std::path::Path;

use deltalake::kernel::Action;

use crate::error::Result;
use crate::table::{LakeTable, table_url};

/// What the newest commit of a table says, and which table it is.
#[derive(Debug, Clone, PartialEq)]
pub struct TableHead {
    pub version: u64,
    /// The Delta table id (`metaData.id` of its first commit): a table deleted and rebuilt
    /// is another table, though its versions start again.
    pub id: String,
    /// The newest commit's `commitInfo`, weir's keys among the rest.
    pub commit_info: serde_json::Map<String, serde_json::Value>,
}

impl LakeTable {
    /// The head of the table at `path`. `None` when there is no table there, and also when
    /// its log cannot tell cheaply (its first commit cleaned up after a checkpoint, a commit
    /// that does not parse): the caller then opens the table, which settles it either way.
    pub async fn head(path: &Path) -> Result<Option<TableHead>> {
        let Some((store, version)) = newest_in_log(path).await? else {
            return Ok(None);
        };
        let mut actions = Vec::new();
        for v in [0, version] {
            let entry = store.read_commit_entry(v).await.ok().flatten();
            actions.push(entry.and_then(|b| deltalake::logstore::get_actions(v, &b).ok()));
        }
        let id = actions[0].iter().flatten().find_map(|a| match a {
            Action::Metadata(m) => Some(m.id().to_string()),
            _ => None,
        });
        let commit_info = actions[1].iter().flatten().find_map(|a| match a {
            Action::CommitInfo(info) => Some(
                info.info
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<serde_json::Map<_, _>>(),
            ),
            _ => None,
        });
        match (id, commit_info) {
            (Some(id), Some(commit_info)) => Ok(Some(TableHead {
                version,
                id,
                commit_info,
            })),
            _ => Ok(None),
        }
    }

    /// The newest version of the table at `path`, from a listing of its log (no snapshot is
    /// loaded, no commit read); `None` without a table.
    pub async fn latest_version(path: &Path) -> Result<Option<u64>> {
        if let Some((_, version)) = newest_in_log(path).await? {
            return Ok(Some(version));
        }
        Ok(LakeTable::open(path).await?.and_then(|t| t.version()))
    }
}

/// The log store of the table at `path` and its newest version, from a listing of the log;
/// `None` when there is no first commit (no table, or its log cleaned up past it) or the
/// listing fails: the callers then open the table.
async fn newest_in_log(path: &Path) -> Result<Option<(deltalake::logstore::LogStoreRef, u64)>> {
    if !path
        .join("_delta_log")
        .join(format!("{:020}.json", 0))
        .exists()
    {
        return Ok(None);
    }
    let Ok(table) = deltalake::DeltaTableBuilder::from_url(table_url(path)?)
        .and_then(deltalake::DeltaTableBuilder::build)
    else {
        return Ok(None);
    };
    let store = table.log_store();
    Ok(store.get_latest_version(0).await.ok().map(|v| (store, v)))
}
