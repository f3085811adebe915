//! `[anomalies]` in weir.toml: how sensitive the detection of unusual runs is (row counts,
//! quarantine rates, durations compared with the asset's own history).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::project::{Asset, ProjectConfig};

/// The robust z-score a run's metric must pass to be an anomaly (for runs daily or sparser;
/// more frequent runs need more), unless weir.toml says else.
pub const DEFAULT_ANOMALY_SENSITIVITY: f64 = 2.8;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// The robust z-score (distance from the usual value, in robust standard deviations) a
    /// metric must pass; higher means fewer, surer anomalies. 0 turns detection off.
    #[serde(default = "default_sensitivity")]
    pub sensitivity: f64,
    /// The least change, as a share of the usual value, that may be an anomaly.
    #[serde(default = "default_min_change")]
    pub min_change: f64,
    /// Per-asset sensitivity (0: off for that asset).
    #[serde(default)]
    pub assets: BTreeMap<String, f64>,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            sensitivity: default_sensitivity(),
            min_change: default_min_change(),
            assets: BTreeMap::new(),
        }
    }
}

impl AnomalyConfig {
    /// The sensitivity for `asset`, `None` when detection is off for it.
    pub fn sensitivity_of(&self, asset: &str) -> Option<f64> {
        let s = self.assets.get(asset).copied().unwrap_or(self.sensitivity);
        (s.is_finite() && s > 0.0).then_some(s)
    }
}

fn default_sensitivity() -> f64 {
    DEFAULT_ANOMALY_SENSITIVITY
}

fn default_min_change() -> f64 {
    0.1
}

/// Checks the observability settings of weir.toml: team channels that look delivered but
/// cannot be, `[anomalies]` and `[slo]` numbers in range, and per-asset settings that name an
/// asset of the project (a misspelt name would silently keep the default).
pub(crate) fn check_settings(
    config: &ProjectConfig,
    assets: &[Asset],
    broken: &std::collections::BTreeSet<String>,
    config_path: &std::path::Path,
    diagnostics: &mut Diagnostics,
) {
    for (team, settings) in &config.teams {
        for (i, channel) in settings.channels.iter().enumerate() {
            if let Some(problem) = crate::channel::channel_problem(channel) {
                diagnostics.push(
                    Diagnostic::error(config_path, format!("[teams.{team}] channels: {problem}"))
                        .field(format!("teams.{team}.channels[{i}]")),
                );
            }
        }
    }
    for (name, sensitivity) in &config.anomalies.assets {
        if !assets.iter().any(|a| &a.name == name) && !broken.contains(name) {
            diagnostics.push(
                Diagnostic::warning(
                    config_path,
                    format!(
                        "[anomalies.assets] names `{name}`, which is not an asset of the project"
                    ),
                )
                .field(format!("anomalies.assets.{name}")),
            );
        }
        if !sensitivity.is_finite() || *sensitivity < 0.0 {
            diagnostics.push(
                Diagnostic::error(
                    config_path,
                    format!("[anomalies.assets] {name} = {sensitivity}: a sensitivity is a number of at least 0 (0 turns detection off)"),
                )
                .field(format!("anomalies.assets.{name}")),
            );
        }
    }
    for (field, value, max) in [
        (
            "anomalies.sensitivity",
            config.anomalies.sensitivity,
            f64::MAX,
        ),
        (
            "anomalies.min_change",
            config.anomalies.min_change,
            f64::MAX,
        ),
        ("slo.run_success", config.slo.run_success, 100.0),
        ("slo.freshness", config.slo.freshness, 100.0),
        ("slo.error_rate", config.slo.error_rate, 100.0),
        ("slo.window_days", config.slo.window_days, 3650.0),
    ] {
        let zero_ok = field != "slo.window_days";
        if !value.is_finite() || value < 0.0 || (value == 0.0 && !zero_ok) || value > max {
            let expected = match (zero_ok, max < f64::MAX) {
                (true, false) => "a number of at least 0".to_string(),
                (true, true) => format!("a number from 0 to {max}"),
                (false, _) => format!("a number above 0 and at most {max}"),
            };
            diagnostics.push(
                Diagnostic::error(
                    config_path,
                    format!("{field} = {value}: expected {expected}"),
                )
                .field(field),
            );
        }
    }
}
