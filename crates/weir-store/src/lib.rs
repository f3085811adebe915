//! The lake: Delta Lake tables, written with write–audit–publish.
//!
//! Writers *stage* Parquet files inside the table directory (invisible to every reader until a
//! commit names them), the audit reads the table as it will be, and [`Publication::apply`]
//! commits each table in one atomic Delta commit carrying a `txn` (application transaction)
//! action. A publication is journalled before its first commit, so a run killed between the
//! commits of an asset and its quarantine is completed by the next run, and the `txn` version
//! makes every commit idempotent. This crate is the only one that writes to the lake.

mod bounds;
mod changes;
mod checkpoint;
mod compact;
mod data_file;
mod error;
mod head;
mod kept;
mod key_set;
mod merge;
mod promote;
mod publish;
mod quarantine;
mod rollback;
mod table;
mod vacuum;

pub use bounds::{ColumnBounds, column_bounds};
pub use changes::{CommitRecord, TableChanges};
pub use checkpoint::finish_checkpoints;
pub use compact::{COMPACT, Compaction, OPERATION_KEY, compact};
pub use deltalake::kernel::Add;
pub use error::{Result, StoreError};
pub use head::TableHead;
pub use key_set::KeySet;
pub use promote::{PROMOTED_PREFIX, delete_lake, place_live_files};
pub use publish::{
    PartOutcome, Publication, PublicationPart, move_journal_aside, read_journal, remove_journal,
    write_journal,
};
pub use quarantine::{
    QUARANTINE_DIR, RUN_STATUS_FAILED, RUN_STATUS_PUBLISHED, data_files, failed_app_id,
    open_quarantine, open_quarantine_if_any, quarantine_schema, read_data_file, restage_with_value,
    stage_with_values,
};
pub use rollback::{Rollback, TxnCommit, rows_of};
pub use table::{
    LakeTable, LiveFile, ORIGIN_TAG, StagedWriter, TableInfo, discard_staged, null_counts,
    origin_of, register_delta, register_delta_without, register_files, register_post_publish_view,
    staged_paths, tag_origin,
};
pub use vacuum::{Unreferenced, delete_unreferenced, unreferenced_files, vacuum_removed};
