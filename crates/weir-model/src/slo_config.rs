//! `[slo]` in weir.toml: the project's default service-level objectives, which a contract's
//! SLA properties override per asset (`successRate`, `availability`, `errorRate`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Percent of an asset's runs that succeed.
    #[serde(default = "default_run_success")]
    pub run_success: f64,
    /// Percent of the time an asset's data is within its latency (or frequency) SLA.
    #[serde(default = "default_freshness")]
    pub freshness: f64,
    /// Percent of the rows read that may be quarantined.
    #[serde(default = "default_error_rate")]
    pub error_rate: f64,
    /// The rolling window compliance and error budgets are measured over, in days; the
    /// burn-rate windows (1 h, 6 h, 3 d for a 30-day window) scale with it.
    #[serde(default = "default_window_days")]
    pub window_days: f64,
}

impl Default for SloConfig {
    fn default() -> Self {
        SloConfig {
            run_success: default_run_success(),
            freshness: default_freshness(),
            error_rate: default_error_rate(),
            window_days: default_window_days(),
        }
    }
}

fn default_run_success() -> f64 {
    99.9
}

fn default_freshness() -> f64 {
    99.0
}

fn default_error_rate() -> f64 {
    1.0
}

fn default_window_days() -> f64 {
    30.0
}
