use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use weir_quality::CheckResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Published.
    Success,
    /// Published every input file that could be read; the others (`rejected_files`: unreadable,
    /// or changed in place) were left out whole: exit 1, and downstream assets still run.
    Partial,
    /// Nothing new to ingest; nothing was written.
    UpToDate,
    /// A blocking contract check failed; nothing was published.
    Failed,
    /// The run could not complete (unreadable file, I/O); nothing was published.
    Error,
    /// Not run, because an asset upstream failed in the same invocation.
    Skipped,
    /// An incremental model whose definition changed: not run, so old and new logic are never
    /// mixed in one table, until `--full-refresh`.
    NeedsRefresh,
}

impl RunStatus {
    /// The user did not get what they asked for: the command exits non-zero.
    pub fn is_failure(&self) -> bool {
        self.skips_downstream() || *self == RunStatus::Partial
    }

    /// Assets downstream are skipped. Not after `partial`: what it published is valid.
    pub fn skips_downstream(&self) -> bool {
        matches!(
            self,
            RunStatus::Failed | RunStatus::Error | RunStatus::Skipped | RunStatus::NeedsRefresh
        )
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Partial => "partial",
            RunStatus::UpToDate => "up_to_date",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::Skipped => "skipped",
            RunStatus::NeedsRefresh => "needs_full_refresh",
        }
    }
}

/// An input file that could not be read: none of its rows were published.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RejectedFile {
    /// Relative to the project root, as in the ledger.
    pub path: String,
    pub reason: String,
}

/// A file rewritten in place whose new content replaced the rows it contributed before
/// (`on_change = "replace"`): the rows removed, counted from the data files' statistics.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplacedFile {
    pub path: String,
    pub rows_removed: u64,
    pub quarantined_removed: u64,
}

/// A partition this run replaced: its earlier rows, counted from the files' statistics.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplacedPartition {
    pub partition: String,
    pub rows_removed: u64,
    pub quarantined_removed: u64,
}

/// What one asset's run did, for the summary table, `--json` and the state store.
#[derive(Debug, Clone)]
pub struct AssetRunReport {
    pub run_id: String,
    pub asset: String,
    pub status: RunStatus,
    pub rows_in: u64,
    pub rows_stored: u64,
    pub rows_quarantined: u64,
    pub bytes_in: u64,
    pub files: Vec<String>,
    /// Input files left out of this run whole, with why; not in the ledger, so retried.
    pub rejected_files: Vec<RejectedFile>,
    /// Files rewritten in place whose earlier rows this run replaces.
    pub replaced_files: Vec<ReplacedFile>,
    /// The partition a partition run replaced (`weir run --partition`, `weir backfill`).
    pub partition: Option<ReplacedPartition>,
    /// The table's data files the run compacted after publishing (removed, added), when it
    /// held more small files than `compact_after_files`.
    pub compacted: Option<(u64, u64)>,
    pub checks: Vec<CheckResult>,
    pub quarantine_by_rule: BTreeMap<String, u64>,
    /// Nulls per column in the rows stored, from the staged files' statistics.
    pub null_counts: BTreeMap<String, u64>,
    pub table_version: Option<u64>,
    pub quarantine_version: Option<u64>,
    pub table_path: PathBuf,
    pub quarantine_path: PathBuf,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub duration: Duration,
    /// What each stage of the run measured, from which `components` is made.
    pub stages: StageTelemetry,
    /// What each component of the run reported (source or model, check, sink), the same
    /// figures for every kind: logged, recorded with the run and exported in `/metrics`.
    pub components: Vec<weir_model::ComponentReport>,
}

/// Measured while an asset runs: time per stage, and the bytes crossing to and from storage.
#[derive(Debug, Clone, Default)]
pub struct StageTelemetry {
    /// The source's reading thread: opening, reading and decoding its files.
    pub reading: Duration,
    /// A model's query: planning and computing its batches.
    pub computing: Duration,
    /// Rows and bytes a model's query scanned in its upstream tables.
    pub rows_scanned: u64,
    pub bytes_scanned: u64,
    /// The contract: row rules, the key check, the dataset audit.
    pub validating: Duration,
    /// Staging rows in files, then journalling and committing them.
    pub writing: Duration,
    /// Bytes of the data files staged for the table, and for its quarantine.
    pub bytes_written: u64,
    pub quarantine_bytes_written: u64,
    /// The component that last started work: an error that ends the run is counted against it.
    pub at: Option<weir_model::ComponentKind>,
}

impl StageTelemetry {
    /// `kind` starts (or resumes) work: an error from here on is counted against it.
    pub(crate) fn enter(&mut self, kind: weir_model::ComponentKind) {
        self.at = Some(kind);
    }
}

impl AssetRunReport {
    pub fn checks_passed(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }

    pub fn checks_failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.passed).count()
    }
}
