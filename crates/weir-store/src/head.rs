//! A table's head, read from its Delta log without loading the table: the newest version,
//! the table's id and the newest commit's `commitInfo`.
//!
//! Opening a table replays its log into a snapshot of every live file; deciding that a model
//! is up to date needs none of that, only which version each table is at and what the
//! model's own last commit recorded. On a project of a thousand models, most of them up to
//! date, that difference is most of a no-op run.

use std::path::{Path, PathBuf};

use deltalake::kernel::Action;

use crate::error::Result;
use crate::table::LakeTable;

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
    ///
    /// The lake is a local directory, so the log is listed and its two commits read with
    /// plain file calls on the calling thread: a no-op run asks this of every table, and the
    /// object store's listing and reads each went through the blocking pool and back.
    pub async fn head(path: &Path) -> Result<Option<TableHead>> {
        let Some(version) = newest_in_log(path) else {
            return Ok(None);
        };
        let actions = [commit_actions(path, 0), commit_actions(path, version)];
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
        if let Some(version) = newest_in_log(path) {
            return Ok(Some(version));
        }
        Ok(LakeTable::open(path).await?.and_then(|t| t.version()))
    }
}

/// The Delta log folder of the table at `table`.
pub(crate) fn log_dir(table: &Path) -> PathBuf {
    table.join("_delta_log")
}

/// The commit file of `version` in the log of the table at `table`: the version in twenty
/// digits.
pub(crate) fn commit_file(table: &Path, version: u64) -> PathBuf {
    log_dir(table).join(format!("{version:020}.json"))
}

/// The actions of the commit file of `version` in the log of the table at `table`, read with
/// a plain file call (the lake is local: no hop through the object store's blocking pool);
/// `None` when it cannot be read or parsed.
pub(crate) fn commit_actions(table: &Path, version: u64) -> Option<Vec<Action>> {
    let bytes = std::fs::read(commit_file(table, version)).ok()?;
    deltalake::logstore::get_actions(version, &bytes::Bytes::from(bytes)).ok()
}

/// The newest version in the log of the table at `table`, from a listing of its commit files;
/// `None` when there is no first commit (no table, or its log cleaned up past it), the
/// listing fails, or a checkpoint is newer than every commit the listing shows (not a log
/// weir writes): the callers then open the table.
///
/// Only names of exactly twenty digits and `.json` are commits: a V2 checkpoint
/// (`N.checkpoint.UUID.json`), a checksum (`N.crc`) or an object store's temporary file is not.
fn newest_in_log(table: &Path) -> Option<u64> {
    if !commit_file(table, 0).is_file() {
        return None;
    }
    let mut newest_commit = 0;
    let mut newest_checkpoint = 0;
    for entry in std::fs::read_dir(log_dir(table)).ok()? {
        let name = entry.ok()?.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some((digits, rest)) = name.split_at_checked(20) else {
            continue;
        };
        let Ok(version) = digits.parse::<u64>() else {
            continue;
        };
        if rest == ".json" {
            newest_commit = newest_commit.max(version);
        } else if rest.starts_with(".checkpoint.") {
            newest_checkpoint = newest_checkpoint.max(version);
        }
    }
    (newest_checkpoint <= newest_commit).then_some(newest_commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table folder whose log holds files of these names.
    fn log_with(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(log_dir(dir.path())).expect("log");
        for name in names {
            std::fs::write(log_dir(dir.path()).join(name), b"{}").expect("write");
        }
        dir
    }

    /// Only commit files count: a V2 checkpoint's JSON, a checksum or a temporary file with
    /// a version in its name does not make a newer version.
    #[test]
    fn the_newest_version_is_the_newest_commit_file() {
        let log = log_with(&[
            "00000000000000000000.json",
            "00000000000000000001.json",
            "00000000000000000001.checkpoint.parquet",
            "00000000000000000001.crc",
            "00000000000000000007.json.tmp",
            "_last_checkpoint",
        ]);
        assert_eq!(newest_in_log(log.path()), Some(1));
    }

    /// Without a first commit, or with a checkpoint past every commit listed, the log cannot
    /// tell cheaply: the caller opens the table.
    #[test]
    fn a_log_it_cannot_read_cheaply_gives_none() {
        let cleaned = log_with(&["00000000000000000003.json"]);
        assert_eq!(newest_in_log(cleaned.path()), None);
        let ahead = log_with(&[
            "00000000000000000000.json",
            "00000000000000000004.checkpoint.0123abcd-0000-0000-0000-000000000000.json",
        ]);
        assert_eq!(newest_in_log(ahead.path()), None);
        let missing = tempfile::tempdir().expect("tempdir");
        assert_eq!(newest_in_log(missing.path()), None);
    }
}
