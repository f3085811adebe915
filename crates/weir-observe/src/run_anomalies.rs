//! The anomalies of a successful run: its row count, quarantine rate, duration and the null
//! rate of each column it stored, each judged against the asset's earlier successful runs
//! (see [`crate::anomaly`]).
//!
//! Runs that rebuild a table (a full refresh, a partition) are not judged: their row count is
//! the table's, not an increment's. Those in the history weigh little: the median and the MAD
//! shrug off a few outliers. Replays are left out of the history.

use std::collections::BTreeMap;

use weir_model::Project;
use weir_orchestrate::{RunRecord, StateStore};

use crate::anomaly::{Detector, Direction, Point, Verdict, judge_last};
use crate::error::ObserveError;
use crate::predict::{PredictedBreach, Timed, predict_timeout};
use crate::stats::instant;

/// The successful runs of an asset its newest run is judged against (at most).
const HISTORY: u32 = 500;

/// One metric of a run that is out of its usual range.
#[derive(Debug, Clone, PartialEq)]
pub struct RunAnomaly {
    /// `rows_in`, `quarantine_rate`, `duration_seconds` or `null_rate(COLUMN)`.
    pub metric: String,
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
        let show = |x: f64| match self.metric.as_str() {
            "quarantine_rate" => format!("{:.2} %", 100.0 * x),
            "duration_seconds" => format!("{x:.1} s"),
            m if m.starts_with("null_rate(") => format!("{:.2} %", 100.0 * x),
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
        value: duration_seconds,
    },
];

/// What the history says of an asset's newest successful run.
#[derive(Debug, Default)]
pub struct RunFindings {
    /// Its metrics out of their usual range (none while the history is short, or when
    /// detection is off for the asset).
    pub anomalies: Vec<RunAnomaly>,
    /// Its durations trending past the asset's `timeout_secs` within a few runs.
    pub predicted: Option<PredictedBreach>,
}

/// Judges `asset`'s newest successful run against its earlier ones.
pub async fn judge_run(
    project: &Project,
    state: &StateStore,
    asset: &str,
) -> Result<RunFindings, ObserveError> {
    let mut runs = state
        .runs_with_status(Some(asset), Some("success"), HISTORY)
        .await?;
    // A replay publishes quarantined rows again: its row count says nothing of the input.
    runs.retain(|r| r.trigger != "replay");
    runs.reverse();
    let config = &project.config.anomalies;
    let anomalies = match config.sensitivity_of(asset) {
        Some(sensitivity) => anomalies_of(&runs, sensitivity, config.min_change),
        None => Vec::new(),
    };
    let predicted = project
        .asset(asset)
        .and_then(|a| a.timeout())
        .and_then(|limit| {
            let timed: Vec<Timed> = runs
                .iter()
                .filter_map(|r| {
                    Some(Timed {
                        started: instant(&r.started_at)?,
                        seconds: duration_seconds(r)?,
                        rows: Some(r.rows_in as f64),
                    })
                })
                .collect();
            predict_timeout(&timed, limit.as_secs_f64())
        });
    Ok(RunFindings {
        anomalies,
        predicted,
    })
}

fn duration_seconds(r: &RunRecord) -> Option<f64> {
    let start = instant(&r.started_at)?;
    let end = instant(r.ended_at.as_deref()?)?;
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

/// A column's null rate must grow by at least this share of the rows (five in a hundred) to
/// be news: a column a few rows more often empty than usual is not.
const NULL_RATE_MIN_CHANGE: f64 = 0.05;

/// The anomalies of the last of `runs` (oldest first).
pub fn anomalies_of(runs: &[RunRecord], sensitivity: f64, min_change: f64) -> Vec<RunAnomaly> {
    let mut found: Vec<RunAnomaly> = METRICS
        .iter()
        .filter_map(|metric| {
            let detector = Detector {
                sensitivity,
                min_relative: min_change.max(metric.min_relative),
                min_absolute: metric.min_absolute,
                direction: metric.direction,
                log_scale: metric.log_scale,
                ..Detector::default()
            };
            judge_newest(
                runs,
                metric.name.to_string(),
                |i| (metric.value)(&runs[i]),
                &detector,
            )
        })
        .collect();
    // Each column the newest run stored: the share of its rows that were null.
    let nulls: Vec<BTreeMap<String, u64>> = runs
        .iter()
        .map(|r| serde_json::from_str(&r.null_counts).unwrap_or_default())
        .collect();
    let detector = Detector {
        sensitivity,
        min_relative: min_change,
        min_absolute: NULL_RATE_MIN_CHANGE,
        direction: Direction::Spike,
        log_scale: false,
        ..Detector::default()
    };
    for column in nulls.last().into_iter().flat_map(|n| n.keys()) {
        let rate = |i: usize| {
            let r = &runs[i];
            let n = nulls[i].get(column)?;
            (r.rows_stored > 0).then(|| *n as f64 / r.rows_stored as f64)
        };
        found.extend(judge_newest(
            runs,
            format!("null_rate({column})"),
            rate,
            &detector,
        ));
    }
    found
}

/// Judges the newest run's value (`value` of a run's index) against the earlier runs'.
fn judge_newest(
    runs: &[RunRecord],
    metric: String,
    value: impl Fn(usize) -> Option<f64>,
    detector: &Detector,
) -> Option<RunAnomaly> {
    let series: Vec<Point> = (0..runs.len())
        .filter_map(|i| {
            Some(Point {
                at: instant(&runs[i].started_at)?,
                value: value(i)?,
            })
        })
        .collect();
    // The newest run must be the series' last point, or there is nothing to judge.
    let newest = runs.last().and_then(|r| instant(&r.started_at))?;
    if series.last().map(|p| p.at) != Some(newest) {
        return None;
    }
    let verdict = judge_last(&series, detector)?;
    verdict.anomalous.then_some(RunAnomaly { metric, verdict })
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
        let metrics: Vec<&str> = found.iter().map(|a| a.metric.as_str()).collect();
        assert_eq!(metrics, ["rows_in", "quarantine_rate"]);
        let text = found[0].describe();
        assert!(
            text.starts_with("rows_in 4000 is 60 % below the usual 10100"),
            "{text}"
        );
    }

    #[test]
    fn a_column_that_starts_arriving_empty_is_an_anomaly_and_a_small_rise_is_not() {
        let with_nulls = |d: i64, email: u64, rows: u64| {
            let mut r = run(d, rows, 0, 30);
            r.null_counts = format!(r#"{{"email": {email}, "id": 0}}"#);
            r
        };
        // About 1 % of emails missing, run after run; runs recorded before null counts were
        // kept (`{}`) are left out of the series, not read as zero.
        let mut runs: Vec<RunRecord> = vec![run(0, 10_000, 0, 30)];
        runs.extend((1..12).map(|d| with_nulls(d, 90 + (d as u64 % 4) * 10, 10_000)));
        assert!(anomalies_of(&runs, 4.0, 0.1).is_empty());
        let mut small = runs.clone();
        small.push(with_nulls(12, 400, 10_000));
        assert!(
            anomalies_of(&small, 4.0, 0.1).is_empty(),
            "4 % is far from 1 % in MADs but under the 5-point gate"
        );
        runs.push(with_nulls(12, 4_000, 10_000));
        let found = anomalies_of(&runs, 4.0, 0.1);
        let metrics: Vec<&str> = found.iter().map(|a| a.metric.as_str()).collect();
        assert_eq!(metrics, ["null_rate(email)"]);
        let text = found[0].describe();
        assert!(text.starts_with("null_rate(email) 40.00 % is"), "{text}");
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

#[cfg(test)]
mod state_tests {
    use weir_orchestrate::StateStore;

    use super::*;

    /// A one-source project whose runs may take `timeout_secs`.
    fn project_with_timeout(dir: &std::path::Path, timeout_secs: u64) -> Project {
        crate::test_project::one_source(dir, &format!("timeout_secs = {timeout_secs}\n"))
    }

    #[tokio::test]
    async fn durations_climbing_towards_the_timeout_predict_a_breach() {
        let dir = tempfile::tempdir().expect("tempdir");
        let project = project_with_timeout(dir.path(), 700);
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let state = StateStore::connect(&url).await.expect("store");
        let start = instant("2026-11-01T02:00:00Z").unwrap_or_default();
        for day in 0..15i64 {
            let run = weir_orchestrate::testing::finished_run(
                "success",
                start + chrono::Duration::days(day),
                300 + 25 * day,
                1000,
                0,
            );
            state.insert_run(&run).await.expect("run");
        }
        let findings = judge_run(&project, &state, "orders").await.expect("judged");
        let breach = findings.predicted.expect("a breach is predicted");
        assert_eq!(breach.runs_ahead, 2, "{breach:?}");
        assert!(findings.anomalies.is_empty(), "{:?}", findings.anomalies);
        // With a generous limit, nothing.
        let roomy = project_with_timeout(dir.path(), 5000);
        let findings = judge_run(&roomy, &state, "orders").await.expect("judged");
        assert!(findings.predicted.is_none());
    }
}
