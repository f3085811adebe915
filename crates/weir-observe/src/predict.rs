//! Failure prediction: a run duration trending towards the asset's time limit
//! (`timeout_secs`), seen before a run is stopped by it, from the durations themselves or
//! from the input volume they follow.
//!
//! The trend is a Theil–Sen line (the median of the slopes between every two of the recent
//! runs, by run number) through the durations; the runs' scatter around it is their median
//! absolute deviation, as a share of the line (a run's noise grows with its length). The
//! trend is real when the line has risen by more than twice its scatter over the recent runs.
//! Each next run is then taken to last the line's value give or take that scatter (normal),
//! and a breach is predicted when the chance that one of the next [`HORIZON`] runs passes the
//! limit reaches [`CHANCE`], once the latest run is past [`EARLIEST`] of it. That chance, not
//! the line alone, is what catches a slow drift: its runs cross the limit by their noise long
//! before the line does. The run named is the one by which a breach is more likely than not;
//! its instant is the last run's start plus the usual gap between runs for each run to go.
//!
//! Input volume growing towards the limit is seen the same way, through the cost of a row:
//! a Theil–Sen line of the durations against the rows read (seconds per row, plus a fixed
//! part) and one of the rows by run number. When the rows trend up for real, the durations
//! that line implies for the rows to come are judged as above, and the breach is predicted
//! with its cause. Durations that other things make noisy (a busy machine) hide a trend the
//! volume shows plainly.

use chrono::{DateTime, Utc};

use crate::anomaly::median_in_place as median;

/// How many runs ahead a breach is looked for.
pub const HORIZON: usize = 5;
/// The chance of a breach within [`HORIZON`] runs from which it is predicted: lower, and
/// slow drifts are caught earlier at the price of warnings that come many runs ahead;
/// higher, and a slow drift's noisy runs cross the limit before it is predicted (measured in
/// the accuracy tests below: at one half, 72–80 % of growing volumes are caught in time).
const CHANCE: f64 = 0.3;
/// How far the trend is followed to name the run by which a breach is more likely than not.
const LOOKOUT: usize = 4 * HORIZON;
/// The recent runs the trend is fitted on.
const RECENT: usize = 20;
/// Runs needed before anything is predicted.
const MIN_RUNS: usize = 6;
/// A breach is not predicted while the latest run is under this share of the limit.
const EARLIEST: f64 = 0.6;

/// One finished run: when it started, how long it took in seconds, and the rows it read
/// (when known).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    pub started: DateTime<Utc>,
    pub seconds: f64,
    pub rows: Option<f64>,
}

/// Why a breach is predicted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BreachCause {
    /// The durations themselves trend up.
    DurationTrend,
    /// The rows read trend up, and the durations follow them.
    VolumeGrowth {
        rows_per_run: f64,
        predicted_rows: f64,
    },
}

/// A predicted breach of a time limit.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedBreach {
    /// By how many runs from now a run past the limit is more likely than not (1 = the
    /// next run).
    pub runs_ahead: usize,
    /// When that run is expected to start.
    pub expected_at: DateTime<Utc>,
    /// The limit, and the duration the trend predicts for that run.
    pub limit_seconds: f64,
    pub predicted_seconds: f64,
    /// The chance that one of the next [`HORIZON`] runs passes the limit.
    pub chance: f64,
    /// How much longer each run takes, in seconds.
    pub slope_seconds_per_run: f64,
    pub cause: BreachCause,
}

impl PredictedBreach {
    pub fn describe(&self, asset: &str) -> String {
        let (trend, at_rows) = match self.cause {
            BreachCause::DurationTrend => (
                format!(
                    "run duration rising {:.1} s per run",
                    self.slope_seconds_per_run
                ),
                String::new(),
            ),
            BreachCause::VolumeGrowth {
                rows_per_run,
                predicted_rows,
            } => (
                format!(
                    "input volume rising {rows_per_run:.0} rows per run, with the run duration following it ({:.1} s per run)",
                    self.slope_seconds_per_run
                ),
                format!(" at {predicted_rows:.0} rows"),
            ),
        };
        format!(
            "{asset}: {trend}; a {:.0} % chance that one of the next {HORIZON} runs passes its {:.0} s limit (timeout_secs), more likely than not by the run expected around {} ({} run(s) from now), predicted to take {:.0} s{at_rows}",
            100.0 * self.chance,
            self.limit_seconds,
            self.expected_at.format("%Y-%m-%d %H:%M UTC"),
            self.runs_ahead,
            self.predicted_seconds,
        )
    }
}

/// The breach `runs` (oldest first) predict against `limit` seconds, if any: the earlier of
/// what their durations and what their input volume predict.
pub fn predict_timeout(runs: &[Timed], limit: f64) -> Option<PredictedBreach> {
    match (from_durations(runs, limit), from_volume(runs, limit)) {
        (Some(d), Some(v)) if v.runs_ahead < d.runs_ahead => Some(v),
        (Some(d), _) => Some(d),
        (None, v) => v,
    }
}

/// The median gap between the runs' starts, in seconds.
fn usual_gap(recent: &[Timed]) -> f64 {
    let mut gaps: Vec<f64> = recent
        .windows(2)
        .map(|w| (w[1].started - w[0].started).num_milliseconds() as f64 / 1000.0)
        .collect();
    median(&mut gaps)
}

/// A robust line through some points, and their scatter around it.
struct Line {
    slope: f64,
    intercept: f64,
    /// 1.4826 × the median absolute deviation from the line (one standard deviation, were
    /// the noise normal).
    scatter: f64,
    /// The same, of the deviations as shares of the line's value.
    relative_scatter: f64,
}

impl Line {
    /// The Theil–Sen line through `points`; `None` without two distinct x.
    fn through(points: &[(f64, f64)]) -> Option<Line> {
        let slope = theil_sen(points)?;
        let mut intercepts: Vec<f64> = points.iter().map(|(x, y)| y - slope * x).collect();
        let intercept = median(&mut intercepts);
        let line = |x: f64| intercept + slope * x;
        let mut residuals: Vec<f64> = points.iter().map(|(x, y)| (y - line(*x)).abs()).collect();
        let mut shares: Vec<f64> = points
            .iter()
            .filter(|(x, _)| line(*x) > 0.0)
            .map(|(x, y)| (y - line(*x)).abs() / line(*x))
            .collect();
        Some(Line {
            slope,
            intercept,
            scatter: 1.4826 * median(&mut residuals),
            relative_scatter: 1.4826 * median(&mut shares),
        })
    }

    fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }

    /// Whether the line rises by more than twice its scatter from `0` to `last`.
    fn rises_over(&self, last: f64) -> bool {
        self.slope > 0.0 && self.slope * last > 2.0 * self.scatter
    }
}

/// The recent runs a prediction is fitted on, or `None` while there are too few or no limit.
fn recent_runs(runs: &[Timed], limit: f64) -> Option<&[Timed]> {
    (runs.len() >= MIN_RUNS && limit > 0.0).then(|| &runs[runs.len() - RECENT.min(runs.len())..])
}

/// The chance that a run the trend puts at `predicted` seconds, with `scatter` seconds of
/// noise around it (taken as normal), passes `limit`.
fn chance_over(predicted: f64, scatter: f64, limit: f64) -> f64 {
    if scatter <= 0.0 {
        return if predicted >= limit { 1.0 } else { 0.0 };
    }
    0.5 * libm::erfc((limit - predicted) / (scatter * std::f64::consts::SQRT_2))
}

/// The breach the next runs' predicted durations (`at(ahead)`: seconds and cause) make
/// likely enough: when the chance that one of the next [`HORIZON`] runs passes `limit`
/// (each run's noise being `relative_scatter` of its duration) reaches [`CHANCE`], once the
/// latest run is past
/// [`EARLIEST`] of it. The run it names is the one by which a breach becomes more likely
/// than not, which may lie beyond the horizon when the trend is slow and the noise wide.
fn first_breach(
    recent: &[Timed],
    limit: f64,
    relative_scatter: f64,
    slope_seconds_per_run: f64,
    at: impl Fn(usize) -> (f64, BreachCause),
) -> Option<PredictedBreach> {
    let latest = recent.last()?;
    // No scatter to judge by (a line not above zero anywhere): nothing is predicted.
    if !relative_scatter.is_finite() || latest.seconds < EARLIEST * limit || latest.seconds >= limit
    {
        return None;
    }
    // The chance that none of the runs so far passes the limit.
    let mut none_yet = 1.0;
    let mut chance = 0.0;
    let mut likely = None;
    for ahead in 1..=LOOKOUT {
        let (predicted, cause) = at(ahead);
        none_yet *= 1.0 - chance_over(predicted, relative_scatter * predicted, limit);
        if ahead == HORIZON {
            chance = 1.0 - none_yet;
            if chance.is_nan() || chance < CHANCE {
                return None;
            }
        }
        if likely.is_none() && (1.0 - none_yet >= 0.5 || ahead == LOOKOUT) {
            likely = Some((ahead, predicted, cause));
        }
        if likely.is_some() && ahead >= HORIZON {
            break;
        }
    }
    let (runs_ahead, predicted_seconds, cause) = likely?;
    let gap = usual_gap(recent);
    Some(PredictedBreach {
        runs_ahead,
        expected_at: latest.started
            + chrono::Duration::milliseconds((gap * runs_ahead as f64 * 1000.0) as i64),
        limit_seconds: limit,
        predicted_seconds,
        chance,
        slope_seconds_per_run,
        cause,
    })
}

/// What the input volume predicts: rows trending up, and durations that follow the rows.
fn from_volume(runs: &[Timed], limit: f64) -> Option<PredictedBreach> {
    let recent = recent_runs(runs, limit)?;
    let rows: Vec<f64> = recent.iter().map(|r| r.rows).collect::<Option<_>>()?;
    let by_run: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, *r))
        .collect();
    let volume = Line::through(&by_run)?;
    let last = (by_run.len() - 1) as f64;
    if !volume.rises_over(last) {
        return None;
    }
    let cost: Vec<(f64, f64)> = recent
        .iter()
        .zip(&rows)
        .map(|(r, n)| (*n, r.seconds))
        .collect();
    let cost = Line::through(&cost)?;
    if cost.slope <= 0.0 {
        return None;
    }
    let per_run = cost.slope * volume.slope;
    first_breach(recent, limit, cost.relative_scatter, per_run, |ahead| {
        let predicted_rows = volume.at(last + ahead as f64);
        (
            cost.at(predicted_rows),
            BreachCause::VolumeGrowth {
                rows_per_run: volume.slope,
                predicted_rows,
            },
        )
    })
}

/// What the durations alone predict.
fn from_durations(runs: &[Timed], limit: f64) -> Option<PredictedBreach> {
    let recent = recent_runs(runs, limit)?;
    let points: Vec<(f64, f64)> = recent
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, r.seconds))
        .collect();
    let durations = Line::through(&points)?;
    let last = (points.len() - 1) as f64;
    if !durations.rises_over(last) {
        return None;
    }
    first_breach(
        recent,
        limit,
        durations.relative_scatter,
        durations.slope,
        |ahead| {
            (
                durations.at(last + ahead as f64),
                BreachCause::DurationTrend,
            )
        },
    )
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
                rows: None,
            })
            .collect()
    }

    /// What the accuracy tests count.
    #[derive(Default)]
    struct Tally {
        breaches: usize,
        /// Breaches predicted after a run before the breaching one.
        predicted: usize,
        /// Of those, how many runs ahead of the breach the first prediction came.
        leads: Vec<f64>,
        /// Of those, the breaches that came by the run the prediction named.
        by_named_run: usize,
        /// Predictions on steady assets (each run after which one is raised), and their runs.
        false_predictions: usize,
        steady_runs: usize,
    }

    impl Tally {
        /// A drifting history whose first run past `limit` is `breach_at`.
        fn drifting(&mut self, runs: &[Timed], breach_at: usize, limit: f64) {
            self.breaches += 1;
            let first =
                (1..=breach_at).find_map(|t| Some((t, predict_timeout(&runs[..t], limit)?)));
            if let Some((t, breach)) = first {
                // Raised after run t - 1: the breach is this many runs later.
                let lead = breach_at - (t - 1);
                self.predicted += 1;
                self.leads.push(lead as f64);
                self.by_named_run += usize::from(lead <= breach.runs_ahead);
            }
        }

        /// A steady history: every prediction on it is false.
        fn steady(&mut self, runs: &[Timed], limit: f64) {
            self.false_predictions += (1..=runs.len())
                .filter(|t| predict_timeout(&runs[..*t], limit).is_some())
                .count();
            self.steady_runs += runs.len();
        }

        fn recall(&self) -> f64 {
            self.predicted as f64 / self.breaches.max(1) as f64
        }

        fn false_per_30_days(&self) -> f64 {
            self.false_predictions as f64 / (self.steady_runs as f64 / 30.0)
        }

        fn report(&self, name: &str) {
            println!(
                "{name}: {} breaches, {:.1} % predicted at least one run ahead, median lead {} runs, {:.0} % of them by the run named; precision {:.1} %; {} false predictions over {} steady runs ({:.2} per asset per 30 days)",
                self.breaches,
                100.0 * self.recall(),
                median(&mut self.leads.clone()),
                100.0 * self.by_named_run as f64 / self.predicted.max(1) as f64,
                100.0 * self.predicted as f64
                    / (self.predicted + self.false_predictions).max(1) as f64,
                self.false_predictions,
                self.steady_runs,
                self.false_per_30_days(),
            );
        }
    }

    #[test]
    fn a_steady_climb_is_predicted_before_the_limit() {
        let durations: Vec<f64> = (0..15).map(|i| 300.0 + 25.0 * i as f64).collect();
        // 650 s now, 25 s more per run: 700 s is reached in two runs.
        let breach = predict_timeout(&daily(&durations), 700.0).expect("predicted");
        assert_eq!(breach.runs_ahead, 2);
        assert_eq!(breach.expected_at.to_rfc3339(), "2026-11-17T02:00:00+00:00");
        assert!(
            breach
                .describe("orders")
                .contains("a 100 % chance that one of the next 5 runs passes its 700 s limit"),
            "{}",
            breach.describe("orders")
        );
        // Far from the limit: nothing yet.
        assert!(predict_timeout(&daily(&durations), 5000.0).is_none());
    }

    #[test]
    fn a_scatter_that_cannot_be_measured_predicts_nothing() {
        let runs = daily(&[600.0, 650.0, 700.0, 750.0, 800.0, 850.0]);
        let at = |ahead: usize| (850.0 + 50.0 * ahead as f64, BreachCause::DurationTrend);
        assert!(first_breach(&runs, 1000.0, f64::NAN, 50.0, at).is_none());
        assert!(first_breach(&runs, 1000.0, 0.05, 50.0, at).is_some());
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
        let mut tally = Tally::default();
        for _ in 0..200 {
            // A drifting asset: from 30–60 % of the limit, 0.5–4 % of it more per run.
            let level = rng.random_range(0.3..0.6) * limit;
            let drift = rng.random_range(0.005..0.04) * limit;
            let history: Vec<f64> = (0..120)
                .map(|i| (level + drift * i as f64) * (1.0 + 0.08 * normal(&mut rng)))
                .collect();
            if let Some(breach_at) = history.iter().position(|d| *d >= limit) {
                tally.drifting(&daily(&history), breach_at, limit);
            }
        }
        for _ in 0..200 {
            let level = rng.random_range(0.3..0.75) * limit;
            let history: Vec<f64> = (0..90)
                .map(|_| level * (1.0 + 0.08 * normal(&mut rng)))
                .collect();
            tally.steady(&daily(&history), limit);
        }
        tally.report("duration trend");
        assert!(tally.breaches >= 150, "{}", tally.breaches);
        assert!(tally.recall() >= 0.8, "recall {}", tally.recall());
        assert!(tally.false_per_30_days() <= 1.0);
    }

    fn daily_with_rows(runs: &[(f64, f64)]) -> Vec<Timed> {
        let mut out = daily(&runs.iter().map(|r| r.0).collect::<Vec<_>>());
        for (t, r) in out.iter_mut().zip(runs) {
            t.rows = Some(r.1);
        }
        out
    }

    #[test]
    fn growing_volume_predicts_a_breach_its_noisy_durations_hide() {
        // Rows grow 5,000 a run; each row costs 1 ms on top of 100 s, but the durations
        // jump ±20 % from run to run for other reasons.
        let noise = [1.0, 1.2, 0.8, 1.15, 0.85, 1.2, 0.8, 1.1, 0.9, 1.2, 0.8, 1.0];
        let runs: Vec<(f64, f64)> = noise
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let rows = 300_000.0 + 5_000.0 * i as f64;
                ((100.0 + rows / 1000.0) * n, rows)
            })
            .collect();
        let history = daily_with_rows(&runs);
        let limit = 500.0;
        assert!(
            from_durations(&history, limit).is_none(),
            "the durations alone show no trend"
        );
        let breach = predict_timeout(&history, limit).expect("predicted from the volume");
        assert!(
            matches!(breach.cause, BreachCause::VolumeGrowth { rows_per_run, .. } if (rows_per_run - 5_000.0).abs() < 1.0)
        );
        let text = breach.describe("events");
        assert!(
            text.starts_with("events: input volume rising 5000 rows per run")
                && text.contains(" rows"),
            "{text}"
        );
        println!("{text}");
        // The same volume, steady: nothing.
        let steady: Vec<(f64, f64)> = noise.iter().map(|n| (400.0 * n, 300_000.0)).collect();
        assert!(predict_timeout(&daily_with_rows(&steady), limit).is_none());
    }

    /// Input volume growing towards the limit (`cargo test -p weir-observe prediction --
    /// --nocapture`): rows growing 1–5 % of their start a run with 3 % noise, durations a fixed
    /// part plus a cost per row with noise of their own (8 %, as in the duration test, and
    /// 15 %), against steady volumes at 30–75 % of the limit with the same noise. Same targets
    /// as the duration trend; the durations alone do worse.
    #[test]
    fn volume_prediction_accuracy_on_simulated_growth() {
        for noise in [0.08, 0.15] {
            let (tally, by_durations) = volume_accuracy(noise);
            assert!(tally.breaches >= 150, "{}", tally.breaches);
            assert!(tally.recall() >= 0.8, "recall {}", tally.recall());
            assert!(tally.recall() > by_durations, "recall {}", tally.recall());
            assert!(tally.false_per_30_days() <= 1.0);
        }
    }

    /// The tally, and the recall of the durations' trend alone.
    fn volume_accuracy(duration_noise: f64) -> (Tally, f64) {
        let mut rng = StdRng::seed_from_u64(12);
        let limit = 1000.0;
        let (mut tally, mut by_durations) = (Tally::default(), 0);
        for _ in 0..200 {
            let start_rows = rng.random_range(100_000.0..500_000.0);
            let growth = rng.random_range(0.01..0.05) * start_rows;
            // The first run takes 30–60 % of the limit, a fifth of it fixed.
            let first = rng.random_range(0.3..0.6) * limit;
            let per_row = 0.8 * first / start_rows;
            let history: Vec<(f64, f64)> = (0..120)
                .map(|i| {
                    let rows = (start_rows + growth * i as f64) * (1.0 + 0.03 * normal(&mut rng));
                    let seconds =
                        (0.2 * first + per_row * rows) * (1.0 + duration_noise * normal(&mut rng));
                    (seconds, rows)
                })
                .collect();
            let Some(breach_at) = history.iter().position(|(d, _)| *d >= limit) else {
                continue;
            };
            let runs = daily_with_rows(&history);
            if (1..=breach_at).any(|t| from_durations(&runs[..t], limit).is_some()) {
                by_durations += 1;
            }
            tally.drifting(&runs, breach_at, limit);
        }
        for _ in 0..200 {
            let rows = rng.random_range(100_000.0..500_000.0);
            let level = rng.random_range(0.3..0.75) * limit;
            let history: Vec<(f64, f64)> = (0..90)
                .map(|_| {
                    (
                        level * (1.0 + duration_noise * normal(&mut rng)),
                        rows * (1.0 + 0.03 * normal(&mut rng)),
                    )
                })
                .collect();
            tally.steady(&daily_with_rows(&history), limit);
        }
        let by_durations = by_durations as f64 / tally.breaches.max(1) as f64;
        tally.report(&format!(
            "volume growth, {:.0} % duration noise (the durations alone: {:.1} %)",
            100.0 * duration_noise,
            100.0 * by_durations
        ));
        (tally, by_durations)
    }
}
