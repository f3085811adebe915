use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use weir_quality::CheckResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Published.
    Success,
    /// Nothing new to ingest; nothing was written.
    UpToDate,
    /// A blocking contract check failed; nothing was published.
    Failed,
    /// The run could not complete (unreadable file, I/O); nothing was published.
    Error,
    /// Not run, because an asset upstream failed in the same invocation.
    Skipped,
    /// Published what it could, but not everything it was given (files refused or unreadable,
    /// named in the error): exit 1, and downstream assets still run on what was published.
    Partial,
    /// An incremental model whose definition changed: not run, so old and new logic are never
    /// mixed in one table, until `--full-refresh`.
    NeedsRefresh,
}

impl RunStatus {
    /// The user did not get what they asked for: the command exits non-zero, and assets
    /// downstream are skipped.
    pub fn is_failure(&self) -> bool {
        self.blocks_downstream() || *self == RunStatus::Partial
    }

    /// Nothing was published that downstream assets could rely on: they are skipped.
    pub fn blocks_downstream(&self) -> bool {
        matches!(
            self,
            RunStatus::Failed | RunStatus::Error | RunStatus::Skipped | RunStatus::NeedsRefresh
        )
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::UpToDate => "up_to_date",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::Skipped => "skipped",
            RunStatus::NeedsRefresh => "needs_full_refresh",
            RunStatus::Partial => "partial",
        }
    }
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
    pub checks: Vec<CheckResult>,
    pub quarantine_by_rule: BTreeMap<String, u64>,
    pub table_version: Option<u64>,
    pub quarantine_version: Option<u64>,
    pub table_path: PathBuf,
    pub quarantine_path: PathBuf,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub duration: Duration,
}

impl AssetRunReport {
    pub fn checks_passed(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }

    pub fn checks_failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.passed).count()
    }
}
