//! Watching the runs: incidents opened from bad runs (one per root cause, the assets
//! downstream of it joining as affected), their notifications to the owning team's channels
//! (generic webhook, Slack-compatible webhook, command hook), delivered from the state store's
//! outbox with retries, and what is measured about them (time to detect, notify and resolve).
//! A successful run whose row count, quarantine rate or duration is far from the asset's own
//! history opens an anomaly incident the same way (`anomaly`: median/MAD with seasons).
//!
//! This crate decides and notifies; the state store (`weir-orchestrate`) keeps the incidents
//! and the outbox, and never sends anything itself.

pub mod anomaly;
#[cfg(test)]
mod anomaly_accuracy;
#[cfg(test)]
mod budget_accuracy;
mod channel;
mod error;
pub mod late_upstream;
mod notify;
mod observe;
pub mod openlineage;
mod postmortem;
pub mod predict;
mod run_anomalies;
mod slo;
mod slo_incidents;
mod stats;
#[cfg(test)]
mod test_project;
mod watch;

pub use channel::{Channel, Target, channel_label, deliverable_channels, resolve};
pub use error::ObserveError;
pub use late_upstream::{late_upstreams, observe_late_upstreams};
pub use notify::{DeliveryRound, alert_document, deliver_due, slack_payload};
pub use observe::{Observed, observe_runs, open_manual};
pub use openlineage::{all_column_lineage, emit_runs};
pub use postmortem::postmortem;
pub use run_anomalies::{RunAnomaly, RunFindings, anomalies_of, judge_run};
pub use slo::{BurnAlert, SloStatus};
pub use slo_incidents::{RunWindow, observe_slos, slo_statuses};
pub use stats::{IncidentStats, incident_stats, seconds_between};
