//! Compaction: many small data files rewritten into fewer large ones (Delta OPTIMIZE), without
//! changing a row.
//!
//! The commit marks its `add`/`remove` pairs `dataChange: false`, which is what lets
//! incremental models (`changes_since`) ignore it, and carries `weir.operation = compact` in
//! its commitInfo, which is what lets [`LakeTable::last_commit_value`] look past it to the
//! last commit that published data. A compaction killed before its commit leaves only files
//! no version names (`weir vacuum` removes them); after it, every version still reads the
//! same rows.

use std::num::NonZeroU64;

use crate::error::{Result, StoreError};
use crate::table::LakeTable;

/// The commitInfo key and value of a compaction commit.
pub const OPERATION_KEY: &str = "weir.operation";
pub const COMPACT: &str = "compact";

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Compaction {
    pub files_removed: u64,
    pub files_added: u64,
    /// The table version it committed, if it committed one.
    pub version: Option<u64>,
}

/// Rewrites the table's files smaller than `target_bytes` into files of about that size, in
/// one commit (none when there is nothing to merge).
pub async fn compact(table: LakeTable, target_bytes: u64) -> Result<Compaction> {
    let path = table.path.clone();
    let target = NonZeroU64::new(target_bytes.max(1)).unwrap_or(NonZeroU64::MIN);
    let properties = LakeTable::commit_properties()
        .with_metadata([(OPERATION_KEY.to_string(), serde_json::Value::from(COMPACT))]);
    let (compacted, metrics) = table
        .table
        .optimize()
        .with_target_size(target)
        .with_commit_properties(properties)
        .await
        .map_err(StoreError::delta(&path))?;
    crate::checkpoint::schedule_if_due(&path, &compacted);
    Ok(Compaction {
        files_removed: metrics.num_files_removed,
        files_added: metrics.num_files_added,
        version: (metrics.num_files_added > 0)
            .then(|| compacted.version())
            .flatten(),
    })
}
