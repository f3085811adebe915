/// The phases of an asset's run, as progress shows them: reading (or computing) the rows,
/// then the audit of the table as it will be, then the commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Reading,
    Computing,
    Auditing,
    Publishing,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Computing => "computing",
            Phase::Auditing => "auditing",
            Phase::Publishing => "publishing",
        }
    }
}

/// Where the runner reports progress; the CLI draws bars (or plain lines when stderr is not a
/// terminal), tests and `--json` draw nothing.
pub trait Progress: Send + Sync {
    /// `total_bytes` is the size of the files to read, 0 when unknown (a model).
    fn asset_started(&self, asset: &str, total_bytes: u64);
    /// `bytes` more read, holding `rows` more rows.
    fn read(&self, asset: &str, bytes: u64, rows: u64);
    fn phase(&self, _asset: &str, _phase: Phase) {}
    fn asset_finished(&self, asset: &str);
    fn message(&self, asset: &str, message: &str);
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn asset_started(&self, _: &str, _: u64) {}
    fn read(&self, _: &str, _: u64, _: u64) {}
    fn asset_finished(&self, _: &str) {}
    fn message(&self, _: &str, _: &str) {}
}
