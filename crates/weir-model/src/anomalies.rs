//! `[anomalies]` in weir.toml: how sensitive the detection of unusual runs is (row counts,
//! quarantine rates, durations compared with the asset's own history).

use std::collections::BTreeMap;

use serde::Deserialize;

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
