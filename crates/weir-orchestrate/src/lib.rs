//! Running assets: the pipeline from a source through the contract into the lake, the state
//! store that remembers runs and ingested files, and crash recovery.
//!
//! This crate wires the layers together but owns none of their logic: reading is
//! `weir-ingest`, deciding is `weir-quality`, committing is `weir-store`. What it owns is
//! *order* (stage → audit → journal → publish → record) and the state store.

mod arrivals;
mod changed_files;
mod dag;
mod deployments;
mod error;
mod incidents;
mod leases;
mod ledger_sync;
mod partition_rows;
mod progress;
mod promote;
mod quarantine_rows;
mod queue;
mod recover;
mod replay;
mod report;
mod run_model;
mod run_quarantine;
pub use run_model::INPUTS_KEY;
mod run_source;
mod runner;
mod schedule;
mod shadows;
mod staging;
mod state;
mod stats;
mod telemetry;
#[doc(hidden)]
pub mod testing;
mod unchanged;
mod upkeep;

pub use arrivals::ArrivalWatch;
pub use dag::{AssetGraph, build_graph, select};
pub use deployments::DeployedAsset;
pub use error::{OrchestrateError, Result};
pub use incidents::{AffectedAsset, Alert, AlertCounts, Incident, IncidentEvent, NewIncident};
pub use leases::{
    AssetLease, AssetLeases, LEASE_TTL, LeaseAttempt, holder, holder_is_gone, host_name,
};
pub use ledger_sync::{LakeLedger, LedgerCheck, check_ledger, ledger_from_lake};
pub use progress::{NoProgress, Phase, Progress};
pub use promote::{
    PROMOTE_APP_ID, PromotedTable, PromotionReport, promote, promotion_journal_path,
    recover_promotion,
};
pub use queue::{AttemptOutcome, NewRun, QueueEvent, QueuedRun, jittered_backoff};
pub use recover::{Recovery, abandon, recover_pending};
pub use replay::{ReplayOptions, ReplayReport, replay};
pub use report::{
    AssetRunReport, RejectedFile, ReplacedFile, ReplacedPartition, RunStatus, StageTelemetry,
};
pub use runner::{DEFAULT_THREADS, RunOptions, check_partition_selection, run_assets, table_paths};
pub use schedule::{Due, ON_TIME, due};
pub use shadows::ShadowComparison;
pub use state::{Backend, LakeLedgerEntry, LedgerEntry, RunRecord, StateStore, redact};
pub use stats::{EndedRun, RunTotals};
pub use telemetry::ComponentTotals;
pub use upkeep::{TableCompaction, TableVacuum, VacuumOptions, optimize, vacuum};
