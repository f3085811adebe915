//! Sources: external data → Arrow record batches, with the position of every row.
//!
//! A source discovers *units* (a file today; a partition offset range for streams later), and
//! reads each into [`SourceBatch`]es that carry the columns as found, the origin of every row,
//! and the records that could not even be split into columns. It never validates against the
//! contract (that is `weir-quality`), never writes to the lake (that is `weir-store`) and never
//! decides whether a unit was already ingested (the orchestrator asks the ledger): keeping
//! those apart is what lets a Kafka source plug into the same exactly-once commit later.

mod batch;
mod error;
mod files;
mod sample;
pub mod sources;

pub use batch::{RejectedRecord, SourceBatch};
pub use error::{IngestError, Result};
pub use files::{
    Discovered, FileStat, FileUnit, UnreadableFile, discover_files, discover_files_cached,
    discover_files_lenient, hash_file, stat_files,
};
pub use sample::{Sample, format_of, sample_file};
pub use sources::{UnitReader, open_unit};
