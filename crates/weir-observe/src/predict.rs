//! Failure prediction: a run duration trending towards the asset's time limit
//! (`timeout_secs`), seen before a run is stopped by it.
//!
//! The trend is a Theil–Sen line (the median of the slopes between every two of the recent
//! runs, by run number) through the durations; the runs' scatter around it is their median
//! absolute deviation. A breach is predicted when the line comes within that scatter of the
//! limit within the next [`HORIZON`] runs, and the trend is real: the line has risen by more than the scatter over
//! the recent runs, and the latest run is already past [`EARLIEST`] of the limit. The expected
//! instant is the last run's start plus the usual gap between runs for each run to go.

use chrono::{DateTime, Utc};

use crate::anomaly::median_in_place as median;

/// How many runs ahead a breach is predicted.
pub const HORIZON: usize = 5;
/// The recent runs the trend is fitted on.
const RECENT: usize = 20;
/// Runs needed before anything is predicted.
const MIN_RUNS: usize = 6;
/// A breach is not predicted while the latest run is under this share of the limit.
const EARLIEST: f64 = 0.6;

/// One finished run: when it started and how long it took, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    pub started: DateTime<Utc>,
    pub seconds: f64,
}

/// A predicted breach of a time limit.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedBreach {
    /// How many runs from now the trend reaches the limit (1 = the next run).
    pub runs_ahead: usize,
    /// When that run is expected to start.
    pub expected_at: DateTime<Utc>,
    /// The limit, and the duration the trend predicts for that run.
    pub limit_seconds: f64,
    pub predicted_seconds: f64,
    /// How much longer each run takes, in seconds.
    pub slope_seconds_per_run: f64,
}

impl PredictedBreach {
    pub fn describe(&self, asset: &str) -> String {
        format!(
            "{asset}: run duration rising {:.1} s per run; the run expected around {} ({} run(s) from now) should take {:.0} s, past its {:.0} s limit (timeout_secs)",
            self.slope_seconds_per_run,
            self.expected_at.format("%Y-%m-%d %H:%M UTC"),
            self.runs_ahead,
            self.predicted_seconds,
            self.limit_seconds,
        )
    }
}

/// The breach the durations of `runs` (oldest first) predict against `limit` seconds, if any.
pub fn predict_timeout(runs: &[Timed], limit: f64) -> Option<PredictedBreach> {
    if runs.len() < MIN_RUNS || limit <= 0.0 {
        return None;
    }
    let recent = &runs[runs.len() - RECENT.min(runs.len())..];
    let points: Vec<(f64, f64)> = recent
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, r.seconds))
        .collect();
    let slope = theil_sen(&points)?;
    if slope <= 0.0 {
        return None;
    }
    let last = (points.len() - 1) as f64;
    let mut intercepts: Vec<f64> = points.iter().map(|(x, y)| y - slope * x).collect();
    let intercept = median(&mut intercepts);
    let mut residuals: Vec<f64> = points
        .iter()
        .map(|(x, y)| (y - (intercept + slope * x)).abs())
        .collect();
    let scatter = 1.4826 * median(&mut residuals);
    // A real trend: the line rose by more than twice the scatter across the recent runs.
    if slope * last <= 2.0 * scatter {
        return None;
    }
    let latest = recent.last()?.seconds;
    if latest < EARLIEST * limit || latest >= limit {
        return None;
    }
    let mut gaps: Vec<f64> = recent
        .windows(2)
        .map(|w| (w[1].started - w[0].started).num_milliseconds() as f64 / 1000.0)
        .collect();
    let gap = median(&mut gaps);
    (1..=HORIZON).find_map(|ahead| {
        let predicted = intercept + slope * (last + ahead as f64);
        // Within one scatter of the limit is where a run's noise alone takes it over.
        (predicted + scatter >= limit).then(|| PredictedBreach {
            runs_ahead: ahead,
            expected_at: recent[recent.len() - 1].started
                + chrono::Duration::milliseconds((gap * ahead as f64 * 1000.0) as i64),
            limit_seconds: limit,
            predicted_seconds: predicted,
            slope_seconds_per_run: slope,
        })
    })
}

fn theil_sen(points: &[(f64, f64)]) -> Option<f64> {
    let mut slopes = Vec::new();
    for (i, (xi, yi)) in points.iter().enumerate() {
        for (xj, yj) in &points[i + 1..] {
            if xj != xi {
                slopes.push((yj - yi) / (xj - xi));
            }
        }
    }
    (!slopes.is_empty()).then(|| median(&mut slopes))
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn normal(rng: &mut StdRng) -> f64 {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn daily(seconds: &[f64]) -> Vec<Timed> {
        let start = DateTime::parse_from_rfc3339("2026-11-01T02:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        seconds
            .iter()
            .enumerate()
            .map(|(i, s)| Timed {
                started: start + chrono::Duration::days(i as i64),
                seconds: *s,
            })
            .collect()
    }

    #[test]
    fn a_steady_climb_is_predicted_before_the_limit() {
        let durations: Vec<f64> = (0..15).map(|i| 300.0 + 25.0 * i as f64).collect();
        // 650 s now, 25 s more per run: 700 s is reached in two runs.
        let breach = predict_timeout(&daily(&durations), 700.0).expect("predicted");
        assert_eq!(breach.runs_ahead, 2);
        assert_eq!(breach.expected_at.to_rfc3339(), "2026-11-17T02:00:00+00:00");
        assert!(breach.describe("orders").contains("past its 700 s limit"));
        // Far from the limit: nothing yet.
        assert!(predict_timeout(&daily(&durations), 5000.0).is_none());
    }

    #[test]
    fn noise_without_a_trend_predicts_nothing() {
        let durations = [
            500.0, 620.0, 480.0, 610.0, 530.0, 640.0, 470.0, 600.0, 650.0, 490.0, 660.0,
        ];
        assert!(predict_timeout(&daily(&durations), 700.0).is_none());
    }

    /// The accuracy of prediction on simulated histories (`cargo test -p weir-observe
    /// prediction -- --nocapture`): durations drifting towards the limit at random speeds from
    /// random levels, with 8 % noise, against steady ones at 30 % to 75 % of the limit.
    /// Targets: at least 80 % of breaches predicted one run ahead or more, at most one false
    /// prediction per asset per 30 simulated days.
    #[test]
    fn prediction_accuracy_on_simulated_drifts() {
        let mut rng = StdRng::seed_from_u64(11);
        let limit = 1000.0;
        let (mut breaches, mut predicted, mut leads) = (0usize, 0usize, Vec::new());
        let (mut false_predictions, mut steady_days) = (0usize, 0usize);
        for _ in 0..200 {
            // A drifting asset: from 30–60 % of the limit, 0.5–4 % of it more per run.
            let level = rng.random_range(0.3..0.6) * limit;
            let drift = rng.random_range(0.005..0.04) * limit;
            let history: Vec<f64> = (0..120)
                .map(|i| (level + drift * i as f64) * (1.0 + 0.08 * normal(&mut rng)))
                .collect();
            let Some(breach_at) = history.iter().position(|d| *d >= limit) else {
                continue;
            };
            breaches += 1;
            let runs = daily(&history);
            let first = (1..breach_at).find(|t| predict_timeout(&runs[..*t], limit).is_some());
            if let Some(t) = first {
                predicted += 1;
                leads.push((breach_at - (t - 1)) as f64);
            }
        }
        for _ in 0..200 {
            let level = rng.random_range(0.3..0.75) * limit;
            let history: Vec<f64> = (0..90)
                .map(|_| level * (1.0 + 0.08 * normal(&mut rng)))
                .collect();
            let runs = daily(&history);
            false_predictions += (1..=history.len())
                .filter(|t| predict_timeout(&runs[..*t], limit).is_some())
                .count();
            steady_days += history.len();
        }
        let recall = predicted as f64 / breaches.max(1) as f64;
        let false_per_30 = false_predictions as f64 / (steady_days as f64 / 30.0);
        let median_lead = {
            let mut l = leads.clone();
            median(&mut l)
        };
        println!(
            "{breaches} breaches, {:.1} % predicted at least one run ahead, median lead {median_lead} runs; {false_predictions} false predictions over {steady_days} steady runs ({false_per_30:.2} per asset per 30 days)",
            100.0 * recall
        );
        assert!(breaches >= 150, "{breaches}");
        assert!(recall >= 0.8, "recall {recall}");
        assert!(false_per_30 <= 1.0, "{false_per_30}");
    }
}
