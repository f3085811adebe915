//! The anomalies of a successful run: its row count, quarantine rate and duration, each
//! judged against the asset's earlier successful runs (see [`crate::anomaly`]).
//!
//! Runs that rebuild a table (a full refresh, a partition) are not judged: their row count is
//! the table's, not an increment's. Those in the history weigh little: the median and the MAD
//! shrug off a few outliers. Replays are left out of the history.

use weir_model::Project;
use weir_orchestrate::{RunRecord, StateStore};

use crate::anomaly::{Detector, Direction, Point, Verdict, judge_last};
use crate::error::ObserveError;
use crate::stats::instant;

/// The successful runs of an asset its newest run is judged against (at most).
const HISTORY: u32 = 500;

/// One metric of a run that is out of its usual range.
#[derive(Debug, Clone, PartialEq)]
pub struct RunAnomaly {
    /// `rows_in`, `quarantine_rate` or `duration_seconds`.
    pub metric: &'static str,
    pub verdict: Verdict,
}

impl RunAnomaly {
    /// `rows_in 6100 is 39 % below the usual 10020 (normal: 9400 to 10640)`.
    pub fn describe(&self) -> String {
        let v = &self.verdict;
        let change = if v.expected != 0.0 {
            format!(
                "{:.0} % {}",
                100.0 * ((v.value - v.expected) / v.expected).abs(),
                if v.value > v.expected {
                    "above"
                } else {
                    "below"
                }
            )
        } else {
            "above".to_string()
        };
        let show = |x: f64| match self.metric {
            "quarantine_rate" => format!("{:.2} %", 100.0 * x),
            "duration_seconds" => format!("{x:.1} s"),
            _ => format!("{x:.0}"),
        };
        let season = v
            .season
            .map(|s| format!(" for this {}", s.replace('_', " ")))
            .unwrap_or_default();
        format!(
            "{} {} is {change} the usual {}{season} (normal: {} to {})",
            self.metric,
            show(v.value),
            show(v.expected),
            show(v.low.max(0.0)),
            show(v.high)
        )
    }
}

struct Metric {
    name: &'static str,
    direction: Direction,
    min_absolute: f64,
    /// The least relative change, when the project's `min_change` is smaller.
    min_relative: f64,
    /// Whether the metric varies by a share of its level (judged on its logarithm).
    log_scale: bool,
    value: fn(&RunRecord) -> Option<f64>,
}

const METRICS: [Metric; 3] = [
    Metric {
        name: "rows_in",
        direction: Direction::Both,
        min_absolute: 0.0,
        min_relative: 0.0,
        log_scale: true,
        value: |r| Some(r.rows_in as f64),
    },
    Metric {
        name: "quarantine_rate",
        direction: Direction::Spike,
        // One row in a hundred more quarantined than usual, at least.
        min_absolute: 0.01,
        min_relative: 0.0,
        log_scale: false,
        value: |r| (r.rows_in > 0).then(|| r.rows_quarantined as f64 / r.rows_in as f64),
    },
    Metric {
        name: "duration_seconds",
        direction: Direction::Spike,
        // Short runs jitter by seconds, and a run taking half as long again is not news.
        min_absolute: 5.0,
        min_relative: 0.5,
        log_scale: true,
        value: |r| {
            let start = instant(&r.started_at)?;
            let end = instant(r.ended_at.as_deref()?)?;
            Some((end - start).num_milliseconds() as f64 / 1000.0)
        },
    },
];

/// The anomalies of `asset`'s newest successful run (none while the history is short, or when
/// detection is off for the asset).
pub async fn run_anomalies(
    project: &Project,
    state: &StateStore,
    asset: &str,
) -> Result<Vec<RunAnomaly>, ObserveError> {
    let config = &project.config.anomalies;
    let Some(sensitivity) = config.sensitivity_of(asset) else {
        return Ok(Vec::new());
    };
    let mut runs = state
        .runs_with_status(Some(asset), Some("success"), HISTORY)
        .await?;
    // A replay publishes quarantined rows again: its row count says nothing of the input.
    runs.retain(|r| r.trigger != "replay");
    runs.reverse();
    Ok(anomalies_of(&runs, sensitivity, config.min_change))
}

/// The anomalies of the last of `runs` (oldest first).
pub fn anomalies_of(runs: &[RunRecord], sensitivity: f64, min_change: f64) -> Vec<RunAnomaly> {
    METRICS
        .iter()
        .filter_map(|metric| {
            let series: Vec<Point> = runs
                .iter()
                .filter_map(|r| {
                    Some(Point {
                        at: instant(&r.started_at)?,
                        value: (metric.value)(r)?,
                    })
                })
                .collect();
            // The newest run must be the series' last point, or there is nothing to judge.
            let newest = runs.last().and_then(|r| instant(&r.started_at))?;
            if series.last().map(|p| p.at) != Some(newest) {
                return None;
            }
            let detector = Detector {
                sensitivity,
                min_relative: min_change.max(metric.min_relative),
                min_absolute: metric.min_absolute,
                direction: metric.direction,
                log_scale: metric.log_scale,
                ..Detector::default()
            };
            let verdict = judge_last(&series, &detector)?;
            verdict.anomalous.then_some(RunAnomaly {
                metric: metric.name,
                verdict,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(day: i64, rows_in: u64, quarantined: u64, seconds: i64) -> RunRecord {
        let start =
            instant("2026-10-01T06:00:00Z").unwrap_or_default() + chrono::Duration::hours(72 * day);
        weir_orchestrate::testing::finished_run("success", start, seconds, rows_in, quarantined)
    }

    #[test]
    fn a_run_with_few_rows_and_many_quarantined_is_two_anomalies() {
        let mut runs: Vec<RunRecord> = (0..10)
            .map(|d| run(d, 10_000 + (d as u64 % 3) * 100, 20 + d as u64 % 4, 30))
            .collect();
        assert!(anomalies_of(&runs, 4.0, 0.1).is_empty());
        runs.push(run(10, 4_000, 900, 31));
        let found = anomalies_of(&runs, 4.0, 0.1);
        let metrics: Vec<&str> = found.iter().map(|a| a.metric).collect();
        assert_eq!(metrics, ["rows_in", "quarantine_rate"]);
        let text = found[0].describe();
        assert!(
            text.starts_with("rows_in 4000 is 60 % below the usual 10100"),
            "{text}"
        );
    }

    #[test]
    fn a_run_a_few_seconds_slower_is_not_news() {
        let mut runs: Vec<RunRecord> = (0..10).map(|d| run(d, 1000, 0, 2)).collect();
        runs.push(run(10, 1000, 0, 6));
        assert!(anomalies_of(&runs, 4.0, 0.1).is_empty());
        runs.push(run(11, 1000, 0, 60));
        let found = anomalies_of(&runs, 4.0, 0.1);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].metric, "duration_seconds");
    }
}
