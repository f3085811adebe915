//! Change safety: what a change to the project does before it ships. `snapshot` takes the
//! definition of every asset (its contract, its model SQL or source settings, and their
//! fingerprints) for `weir apply` to record; `plan` compares the working project with the
//! recorded one, classifies each change (breaking, non-breaking, metadata) from the contracts
//! and the models' logical plans, and follows column lineage downstream to the assets and
//! owners a breaking change reaches. `diff_tables` compares two tables row by row on a key;
//! `diff_with_postgres` does it across systems, moving only the segments that differ.

mod data_diff;
mod error;
mod key_set;
mod plan;
mod row_hash;
mod segment_diff;
mod shadow;
mod snapshot;

pub use data_diff::{
    ColumnDiff, DiffOptions, DiffReport, TABLE_A, TABLE_B, ValueSample, diff_tables,
};
pub use error::ChangeError;
pub use plan::{AssetChange, ChangePlan, Impact, plan};
pub use segment_diff::{PostgresTable, RemoteSide, Transfer, diff_with_postgres};
pub use shadow::compare_shadows;
pub use snapshot::snapshot;
