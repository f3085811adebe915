use std::collections::BTreeMap;
use std::time::Duration;

/// The telemetry every component (source, check, sink, model) reports, the same way.
///
/// Modelled on Vector's component specification: counts in and out, what was set aside, bytes,
/// errors by stage (`receiving`, `processing`, `sending`) and time spent. Components add to it
/// as they go; the run record and the summary table are read from it, so the numbers a user sees
/// are the numbers the code counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentMetrics {
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_quarantined: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors_by_stage: BTreeMap<String, u64>,
    pub duration: Duration,
}

impl ComponentMetrics {
    pub fn record_error(&mut self, stage: &str) {
        *self.errors_by_stage.entry(stage.to_string()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &ComponentMetrics) {
        self.rows_in += other.rows_in;
        self.rows_out += other.rows_out;
        self.rows_quarantined += other.rows_quarantined;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        for (stage, n) in &other.errors_by_stage {
            *self.errors_by_stage.entry(stage.clone()).or_default() += n;
        }
        self.duration += other.duration;
    }

    /// The invariant weir guarantees: nothing that came in is unaccounted for.
    pub fn is_balanced(&self) -> bool {
        self.rows_in == self.rows_out + self.rows_quarantined
    }
}
