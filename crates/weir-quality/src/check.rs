use weir_model::Severity;

/// Which rows a check measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckScope {
    /// The rows this run received (row-level rules: their failures never reach the table).
    Run,
    /// The table as it will be once this run publishes.
    Table,
}

/// The outcome of one contract rule, as recorded on the run and shown to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub id: String,
    pub metric: String,
    pub column: Option<String>,
    pub scope: CheckScope,
    pub value: f64,
    /// The threshold as written in the contract, e.g. `mustBeLessThan 5`.
    pub threshold: String,
    pub unit: &'static str,
    pub passed: bool,
    pub severity: Severity,
}

impl CheckResult {
    /// A failed check at error severity: the run must not publish.
    pub fn blocks(&self) -> bool {
        !self.passed && self.severity == Severity::Error
    }
}
