use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// The stages an error is counted in, as in Vector's component specification: taking data
/// in, working on it, handing it on.
pub const ERROR_STAGES: [&str; 3] = ["receiving", "processing", "sending"];

/// What a component of a run is. Every asset run is a chain of them: a source or a model
/// produces rows, the contract check splits them into good and quarantined, the sink writes
/// both to the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    Source,
    Model,
    Check,
    Sink,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 4] = [
        ComponentKind::Source,
        ComponentKind::Model,
        ComponentKind::Check,
        ComponentKind::Sink,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Model => "model",
            ComponentKind::Check => "check",
            ComponentKind::Sink => "sink",
        }
    }

    /// Whether every row in must come out, be quarantined or be discarded. Not a model's: a
    /// query filters, joins and aggregates, so its rows out are not its rows in.
    pub fn conserves_rows(&self) -> bool {
        *self != ComponentKind::Model
    }

    /// The stage an error that stops this component is counted in.
    pub fn error_stage(&self) -> &'static str {
        match self {
            ComponentKind::Source => "receiving",
            ComponentKind::Model | ComponentKind::Check => "processing",
            ComponentKind::Sink => "sending",
        }
    }
}

/// The telemetry every component (source, model, check, sink) reports, the same way.
///
/// Modelled on Vector's component specification: counts in and out, what was set aside, bytes,
/// errors by stage (`receiving`, `processing`, `sending`) and time spent. Bytes are counted
/// where rows cross to or from storage (the files a source reads, the upstream data a model's
/// query scans, the files a sink writes); between components rows are counted, not bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentMetrics {
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_quarantined: u64,
    /// Rows neither passed on nor quarantined: a run that fails publishes nothing, so its sink
    /// discards what it was given. They are still in their input (files, upstream tables),
    /// and the next run reads them again.
    pub rows_discarded: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Always holds every stage of [`ERROR_STAGES`], zero or not.
    pub errors_by_stage: BTreeMap<String, u64>,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(duration.as_secs_f64() * 1000.0)
}

impl Default for ComponentMetrics {
    fn default() -> Self {
        ComponentMetrics {
            rows_in: 0,
            rows_out: 0,
            rows_quarantined: 0,
            rows_discarded: 0,
            bytes_in: 0,
            bytes_out: 0,
            errors_by_stage: ERROR_STAGES.iter().map(|s| (s.to_string(), 0)).collect(),
            duration: Duration::ZERO,
        }
    }
}

impl ComponentMetrics {
    pub fn record_error(&mut self, stage: &str) {
        self.record_errors(stage, 1);
    }

    pub fn record_errors(&mut self, stage: &str, n: u64) {
        *self.errors_by_stage.entry(stage.to_string()).or_default() += n;
    }

    pub fn errors(&self) -> u64 {
        self.errors_by_stage.values().sum()
    }

    pub fn merge(&mut self, other: &ComponentMetrics) {
        self.rows_in += other.rows_in;
        self.rows_out += other.rows_out;
        self.rows_quarantined += other.rows_quarantined;
        self.rows_discarded += other.rows_discarded;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        for (stage, n) in &other.errors_by_stage {
            *self.errors_by_stage.entry(stage.clone()).or_default() += n;
        }
        self.duration += other.duration;
    }

    /// The invariant weir guarantees: nothing that came in is unaccounted for.
    pub fn is_balanced(&self) -> bool {
        self.rows_in == self.rows_out + self.rows_quarantined + self.rows_discarded
    }
}

/// One component of one run and what it reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentReport {
    pub kind: ComponentKind,
    /// Which one: the source's format (`csv`), the model's materialization (`table`), the
    /// contract checked (its id), the sink (`delta`).
    pub name: String,
    #[serde(flatten)]
    pub metrics: ComponentMetrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_report_holds_every_error_stage_and_serializes_flat() {
        let mut m = ComponentMetrics {
            rows_in: 10,
            rows_out: 7,
            rows_quarantined: 2,
            ..Default::default()
        };
        assert!(!m.is_balanced(), "one row is unaccounted for");
        m.rows_discarded = 1;
        assert!(m.is_balanced());
        m.record_error("sending");
        let report = ComponentReport {
            kind: ComponentKind::Sink,
            name: "delta".into(),
            metrics: m,
        };
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["kind"], "sink");
        assert_eq!(json["rows_discarded"], 1);
        assert_eq!(json["errors_by_stage"]["receiving"], 0);
        assert_eq!(json["errors_by_stage"]["sending"], 1);
        assert!(json["duration_ms"].is_number());
    }
}
