//! Anomaly detection on a metric's history: a robust z-score.
//!
//! The baseline of a point is the points *before* it (it never pollutes its own baseline),
//! without those already found anomalous (a shock does not teach the detector that shocks are
//! normal). Volumes and durations vary by a share of their level: what a model expects of them
//! is worked out on their logarithm, and a point's distance from it is measured as a share of
//! it (on a logarithm a fall of 30 % reads further than a rise of 30 %; as shares they are
//! equally far, which is how people read them). Two models say what a point should be:
//!
//! - plain: the median of the most recent points;
//! - seasonal, when the cadence has a season (runs at most three hours apart: the hour of the
//!   day; at most two days apart: the day of the week) and the history spans a whole cycle of
//!   it: the level of the last two cycles with each point's season taken out, plus the tested
//!   point's season's offset (the level of that season's recent points against the median of
//!   all seasons'). Both levels are interquartile means, which resist outliers as medians do
//!   and are steadier on a few days of history. A point of a seasonal cadence is not judged
//!   until its season has enough history (weekends in the first weeks would look like drops,
//!   and a plain model on a day curve misses shocks in busy hours); an hourly series also
//!   waits until its seasonal model has measured its own errors, which takes it under a day.
//!
//! The spread a score divides by is the median absolute deviation (MAD, ×1.4826 to estimate a
//! standard deviation) of the model's own past errors on normal points: the honest measure of
//! how far a normal point falls from what the model expected, which a spread of the baseline
//! alone understates. Until a model has 20 past errors, the in-sample spread of its baseline
//! (leave-one-out residuals) widened by half serves. The seasonal model is used unless the
//! plain one has proved better on those past errors. Both medians and MADs resist the outliers
//! a mean and a standard deviation are dragged by.
//!
//! The sensitivity is the score to pass for runs daily or sparser; more frequent runs need a
//! higher score, so that false alerts stay about as rare per day. A run of anomalies the same
//! way is a new level, not a string of incidents: the baseline starts again from it.
//!
//! A point is anomalous when its score passes *and* it differs from the expected value by at
//! least the minimum magnitude (relative and absolute), so a table of ten rows that gets twelve
//! does not page anyone.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// One measurement of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// Which way a change must go to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Up or down (row counts: a drop is as suspicious as a spike).
    Both,
    /// Only up (durations, quarantine rates, lateness).
    Spike,
}

/// How a metric is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detector {
    /// The robust z-score a point of a daily (or sparser) series must pass.
    pub sensitivity: f64,
    /// The least change, as a share of the expected value, that may alert.
    pub min_relative: f64,
    /// The least change, in the metric's unit, that may alert.
    pub min_absolute: f64,
    /// Baseline points needed before anything is judged (cold start).
    pub min_history: usize,
    /// Baseline points needed in a season for the seasonal model.
    pub min_season: usize,
    /// Judge the logarithm of the values (volumes and durations vary by a share of their
    /// level, so a quiet hour and a busy one get the same relative band).
    pub log_scale: bool,
    /// The most recent baseline points the plain model takes the median of.
    pub recent: usize,
    /// The most recent baseline points of each season its offset is measured from.
    pub recent_per_season: usize,
    /// This many anomalies in a row, the same way, are a new level: the baseline restarts
    /// from them.
    pub level_shift_after: usize,
    pub direction: Direction,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            sensitivity: weir_model::DEFAULT_ANOMALY_SENSITIVITY,
            min_relative: 0.1,
            min_absolute: 0.0,
            min_history: 7,
            min_season: 4,
            log_scale: true,
            recent: 15,
            recent_per_season: 16,
            level_shift_after: 3,
            direction: Direction::Both,
        }
    }
}

/// The scale that makes the MAD of normal noise estimate its standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;

/// A judged point.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub value: f64,
    pub expected: f64,
    /// The range within which the point would not have been anomalous.
    pub low: f64,
    pub high: f64,
    /// (value − expected) / spread; infinite when the baseline has no spread.
    pub score: f64,
    /// `hour_of_day` or `day_of_week` when the expected value is seasonal.
    pub season: Option<&'static str>,
    pub anomalous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Season {
    HourOfDay,
    DayOfWeek,
}

impl Season {
    fn key(self, at: &DateTime<Utc>) -> u32 {
        match self {
            Season::HourOfDay => at.hour(),
            Season::DayOfWeek => at.weekday().num_days_from_monday(),
        }
    }

    /// How long a history must span before the season can be seen in it.
    fn cycle(self) -> chrono::Duration {
        match self {
            Season::HourOfDay => chrono::Duration::days(1),
            Season::DayOfWeek => chrono::Duration::days(7),
        }
    }

    /// The points of one cycle at the cadence that gives this season.
    fn points_per_cycle(self) -> usize {
        match self {
            Season::HourOfDay => 24,
            Season::DayOfWeek => 7,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Season::HourOfDay => "hour_of_day",
            Season::DayOfWeek => "day_of_week",
        }
    }
}

/// The detector's own past errors (in its scale) on the points it found normal, per model:
/// the honest measure of how far a normal point falls from what a model expected, and how the
/// better model is chosen.
#[derive(Default)]
struct Errors {
    plain: Vec<f64>,
    seasonal: Vec<f64>,
}

/// Judges every point of a series (in time order) against the points before it; `None` while
/// the history is too short.
pub fn judge_series(points: &[Point], detector: &Detector) -> Vec<Option<Verdict>> {
    let mut baseline: Vec<Point> = Vec::with_capacity(points.len());
    // The anomalies since the last normal point, all the same way.
    let mut streak: Vec<Point> = Vec::new();
    let mut streak_up = false;
    let mut errors = Errors::default();
    let mut verdicts = Vec::with_capacity(points.len());
    // Enough of the recent past for every model: the seasons' recent points at most.
    let keep = detector.recent.max(24 * detector.recent_per_season);
    for point in points {
        let from = baseline.len().saturating_sub(keep);
        let verdict = judge(&baseline[from..], point, detector, &mut errors);
        match &verdict {
            Some(v) if v.anomalous => {
                let up = v.value > v.expected;
                if streak.is_empty() || up != streak_up {
                    streak.clear();
                    streak_up = up;
                }
                streak.push(*point);
                if streak.len() >= detector.level_shift_after.max(1) {
                    baseline = std::mem::take(&mut streak);
                }
            }
            _ => {
                streak.clear();
                baseline.push(*point);
            }
        }
        verdicts.push(verdict);
    }
    verdicts
}

/// Judges the last point of a series against those before it, as [`judge_series`] did.
pub fn judge_last(points: &[Point], detector: &Detector) -> Option<Verdict> {
    judge_series(points, detector).pop().flatten()
}

/// Past errors a model's spread is measured from, once there are this many.
const MIN_ERRORS: usize = 20;
/// The most recent past errors used.
const RECENT_ERRORS: usize = 150;
/// While a model has too few past errors, the in-sample spread of its `n` baseline values is
/// widened by `1 + IN_SAMPLE_WIDENING / n`: a MAD of a few values is itself uncertain.
const IN_SAMPLE_WIDENING: f64 = 3.0;

/// What a model expects of a point, in the detector's scale, and its in-sample spread.
struct Expectation {
    expected: f64,
    in_sample: f64,
    /// The baseline values behind it.
    values: usize,
}

/// Judges `point` against `baseline` (points before it, none of them anomalous), and records
/// each model's error on it when it is normal.
fn judge(
    baseline: &[Point],
    point: &Point,
    detector: &Detector,
    errors: &mut Errors,
) -> Option<Verdict> {
    if baseline.len() < detector.min_history || !point.value.is_finite() {
        return None;
    }
    let scale = |v: f64| {
        if detector.log_scale {
            v.max(0.0).ln_1p()
        } else {
            v
        }
    };
    let unscale = |v: f64| if detector.log_scale { v.exp_m1() } else { v };
    // How far a value is from what was expected: on a log scale as a share of it, so a rise
    // and a fall of 30 % are equally far (as logarithms, a fall reads further than a rise).
    let deviate = |v: f64, expected: f64| {
        if detector.log_scale {
            (v - expected).exp_m1()
        } else {
            v - expected
        }
    };
    let season = match season_of(baseline, point, detector) {
        Ok(season) => season,
        Err(TooLittle) => return None,
    };
    let plain = expect_plain(baseline, detector, &scale)?;
    let seasonal =
        season.and_then(|season| expect_seasonal(baseline, point, season, detector, &scale));
    let recent = |e: &[f64]| spread(e[e.len().saturating_sub(RECENT_ERRORS)..].iter().copied());
    let measured = |e: &[f64], model: &Expectation| {
        if e.len() >= MIN_ERRORS {
            recent(e)
        } else {
            (1.0 + IN_SAMPLE_WIDENING / model.values as f64) * model.in_sample
        }
    };
    // The seasonal model, unless the plain one has proved better on the points both judged.
    let use_seasonal = seasonal.is_some()
        && (errors.plain.len() < MIN_ERRORS
            || errors.seasonal.len() < MIN_ERRORS
            || recent(&errors.seasonal) <= recent(&errors.plain));
    let (model, sigma, name) = match &seasonal {
        Some(model) if use_seasonal => (
            model,
            measured(&errors.seasonal, model),
            season.map(Season::name),
        ),
        _ => (&plain, measured(&errors.plain, &plain), None),
    };
    let value = scale(point.value);
    // An hourly series has past errors to spare within a day: until the seasonal model has
    // enough, its in-sample spread (fitted on a few days, so too narrow) is not trusted; the
    // point is not judged, and its errors are kept.
    if use_seasonal && season == Some(Season::HourOfDay) && errors.seasonal.len() < MIN_ERRORS {
        errors.plain.push(deviate(value, plain.expected));
        if let Some(seasonal) = &seasonal {
            errors.seasonal.push(deviate(value, seasonal.expected));
        }
        return None;
    }
    let deviation = deviate(value, model.expected);
    let score = if sigma > 0.0 {
        deviation / sigma
    } else if deviation == 0.0 {
        0.0
    } else {
        deviation.signum() * f64::INFINITY
    };
    let threshold = threshold(detector.sensitivity, baseline);
    let passes = match detector.direction {
        Direction::Both => score.abs() > threshold,
        Direction::Spike => score > threshold,
    };
    let band = threshold * sigma;
    let expected_value = unscale(model.expected);
    let change = (point.value - expected_value).abs();
    let gate = (detector.min_relative * expected_value.abs()).max(detector.min_absolute);
    let anomalous = passes && change >= gate && change > 0.0;
    if !anomalous {
        errors.plain.push(deviate(value, plain.expected));
        if let Some(seasonal) = &seasonal {
            errors.seasonal.push(deviate(value, seasonal.expected));
        }
    }
    // The range that would not have alerted: the score's band, or the gate when it is wider.
    let reach = |d: f64| {
        if detector.log_scale {
            unscale(model.expected + d.max(-1.0).ln_1p())
        } else {
            unscale(model.expected + d)
        }
    };
    Some(Verdict {
        value: point.value,
        expected: expected_value,
        low: reach(-band).min(expected_value - gate),
        high: reach(band).max(expected_value + gate),
        score,
        season: name,
        anomalous,
    })
}

/// The score a point must pass: the sensitivity for daily runs, higher for more frequent runs
/// and lower for sparser ones, so that false alerts stay about as rare per day. In a Gaussian
/// tail, k times the tests per day need about 2·ln k more on the squared score (Bonferroni);
/// neighbouring runs are not independent tests, so weir adds `PER_DAY_CORRECTION`·ln k.
fn threshold(sensitivity: f64, baseline: &[Point]) -> f64 {
    let Some(gap) = median_gap_seconds(baseline).filter(|g| *g > 0.0) else {
        return sensitivity;
    };
    let runs_per_day = 86_400.0 / gap;
    let squared = sensitivity * sensitivity + PER_DAY_CORRECTION * runs_per_day.ln();
    squared.max(MIN_THRESHOLD * MIN_THRESHOLD).sqrt()
}

/// How much of a Bonferroni correction per run frequency the threshold takes.
const PER_DAY_CORRECTION: f64 = 1.5;
/// No series, however sparse, alerts below this score.
const MIN_THRESHOLD: f64 = 2.0;

/// The plain model: the median of the most recent points.
fn expect_plain(
    baseline: &[Point],
    detector: &Detector,
    scale: &dyn Fn(f64) -> f64,
) -> Option<Expectation> {
    let recent: Vec<f64> = baseline[baseline.len().saturating_sub(detector.recent)..]
        .iter()
        .map(|p| scale(p.value))
        .collect();
    (recent.len() >= detector.min_history).then(|| Expectation {
        expected: median(&recent),
        in_sample: spread(leave_one_out(&recent)),
        values: recent.len(),
    })
}

/// The seasonal model: the level of the last two cycles without their season, plus the
/// point's season's offset.
fn expect_seasonal(
    baseline: &[Point],
    point: &Point,
    season: Season,
    detector: &Detector,
    scale: &dyn Fn(f64) -> f64,
) -> Option<Expectation> {
    let offsets = season_offsets(baseline, season, detector, scale);
    let own = offsets.get(&season.key(&point.at)).copied()?;
    let window = 2 * season.points_per_cycle();
    let deseasoned: Vec<f64> = baseline[baseline.len().saturating_sub(window)..]
        .iter()
        .filter_map(|p| Some(scale(p.value) - offsets.get(&season.key(&p.at))?))
        .collect();
    (deseasoned.len() >= detector.min_history).then(|| Expectation {
        expected: interquartile_mean(&deseasoned) + own,
        in_sample: spread(leave_one_out(&deseasoned)),
        values: deseasoned.len(),
    })
}

/// Each value's residual from the median of the others.
fn leave_one_out(values: &[f64]) -> impl Iterator<Item = f64> + '_ {
    (0..values.len()).map(move |i| {
        let others: Vec<f64> = values
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, v)| *v)
            .collect();
        values[i] - median(&others)
    })
}

/// The point's season has too little history to judge it.
struct TooLittle;

/// The season the tested point is compared within, if any.
fn season_of(
    baseline: &[Point],
    point: &Point,
    detector: &Detector,
) -> Result<Option<Season>, TooLittle> {
    let Some(season) = cadence_season(baseline) else {
        return Ok(None);
    };
    // Less than one cycle of history cannot show a season, and a seasonal cadence judged
    // without one would miss shocks in a busy season and cry wolf in a quiet one: wait.
    if let (Some(first), Some(last)) = (baseline.first(), baseline.last())
        && last.at - first.at < season.cycle()
    {
        return Err(TooLittle);
    }
    let key = season.key(&point.at);
    let seen = baseline.iter().filter(|p| season.key(&p.at) == key).count();
    if seen < detector.min_season {
        return Err(TooLittle);
    }
    Ok(Some(season))
}

/// Each season's offset: the median of its most recent points, less the median of those
/// medians. Seasons with too little history have none (their points are left out).
fn season_offsets(
    baseline: &[Point],
    season: Season,
    detector: &Detector,
    scale: &dyn Fn(f64) -> f64,
) -> std::collections::BTreeMap<u32, f64> {
    let mut by_key: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
    for p in baseline.iter().rev() {
        let values = by_key.entry(season.key(&p.at)).or_default();
        if values.len() < detector.recent_per_season {
            values.push(scale(p.value));
        }
    }
    let medians: std::collections::BTreeMap<u32, f64> = by_key
        .iter()
        .filter(|(_, v)| v.len() >= detector.min_season)
        .map(|(k, v)| (*k, interquartile_mean(v)))
        .collect();
    let centre = median(&medians.values().copied().collect::<Vec<_>>());
    medians.into_iter().map(|(k, m)| (k, m - centre)).collect()
}

/// The median gap between the points, in seconds.
fn median_gap_seconds(points: &[Point]) -> Option<f64> {
    let mut gaps: Vec<f64> = points
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds() as f64)
        .collect();
    (!gaps.is_empty()).then(|| median_in_place(&mut gaps))
}

/// The season the points' cadence allows: the median gap between them decides.
fn cadence_season(points: &[Point]) -> Option<Season> {
    let gap = median_gap_seconds(points)?;
    if gap <= 0.0 {
        None
    } else if gap <= 3.0 * 3600.0 {
        Some(Season::HourOfDay)
    } else if gap <= 2.0 * 86_400.0 {
        Some(Season::DayOfWeek)
    } else {
        None
    }
}

/// The robust standard deviation of residuals: MAD × 1.4826.
fn spread(residuals: impl Iterator<Item = f64>) -> f64 {
    let mut abs: Vec<f64> = residuals.map(f64::abs).collect();
    if abs.is_empty() {
        return 0.0;
    }
    MAD_TO_SIGMA * median_in_place(&mut abs)
}

/// The mean of the middle half of the values: as robust to a few outliers as a median of
/// them for the seasonal model's purposes, and steadier on normal noise (about 85 % of a
/// mean's efficiency, against 64 % for a median), so a season measured on a few days misleads
/// less.
fn interquartile_mean(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n < 4 {
        return median_in_place(&mut v);
    }
    let cut = n / 4;
    let middle = &v[cut..n - cut];
    middle.iter().sum::<f64>() / middle.len() as f64
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    median_in_place(&mut v)
}

/// The median (NaN for none), sorting `values`.
pub(crate) fn median_in_place(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points `hours` apart from a Monday.
    fn every(hours: i64, values: &[f64]) -> Vec<Point> {
        let start = DateTime::parse_from_rfc3339("2026-11-02T02:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                at: start + chrono::Duration::hours(hours * i as i64),
                value: *v,
            })
            .collect()
    }

    /// Every three days: a cadence without a season.
    fn sparse(values: &[f64]) -> Vec<Point> {
        every(72, values)
    }

    #[test]
    fn a_shock_is_found_and_kept_out_of_the_baseline() {
        let mut values = vec![
            1000.0, 1010.0, 990.0, 1005.0, 995.0, 1002.0, 998.0, 1001.0, 1003.0,
        ];
        values.push(600.0);
        values.push(600.0);
        values.push(1000.0);
        let verdicts = judge_series(&sparse(&values), &Detector::default());
        let flags: Vec<bool> = verdicts
            .iter()
            .map(|v| v.as_ref().is_some_and(|v| v.anomalous))
            .collect();
        // The two shocks both alert: the first did not become part of the second's baseline.
        assert_eq!(
            flags,
            [
                false, false, false, false, false, false, false, false, false, true, true, false
            ]
        );
        let shock = verdicts[9].as_ref().expect("judged");
        assert!(shock.score < -4.0, "{shock:?}");
        assert!((shock.expected - 1001.0).abs() < 5.0, "{shock:?}");
    }

    #[test]
    fn nothing_is_judged_before_the_minimum_history() {
        let verdicts = judge_series(&sparse(&[10.0, 10.0, 10.0, 50.0]), &Detector::default());
        assert!(verdicts.iter().all(Option::is_none));
    }

    #[test]
    fn a_small_change_on_a_flat_series_is_gated() {
        // A flat series has no spread: any change scores infinitely, but the gate holds back
        // changes under 10 %.
        let mut values = vec![100.0; 10];
        values.push(105.0);
        values.push(140.0);
        let verdicts = judge_series(&sparse(&values), &Detector::default());
        assert!(!verdicts[10].as_ref().expect("judged").anomalous);
        assert!(verdicts[11].as_ref().expect("judged").anomalous);
    }

    #[test]
    fn weekends_are_expected_to_be_quiet() {
        // Five weeks of weekdays at 1000 and weekends at 300: a Saturday at 300 is normal, a
        // Wednesday at 300 is not.
        let week = [1000.0, 1010.0, 990.0, 1005.0, 995.0, 300.0, 310.0];
        let mut values: Vec<f64> = week.iter().cycle().take(35).copied().collect();
        values.push(1000.0); // a Monday
        values.push(1000.0);
        values.push(300.0); // a Wednesday
        let verdicts = judge_series(&every(24, &values), &Detector::default());
        let flagged: Vec<usize> = verdicts
            .iter()
            .enumerate()
            .filter(|(_, v)| v.as_ref().is_some_and(|v| v.anomalous))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(flagged, [37]);
        assert_eq!(
            verdicts[37].as_ref().and_then(|v| v.season),
            Some("day_of_week")
        );
    }

    #[test]
    fn spikes_only_ignore_drops() {
        let detector = Detector {
            direction: Direction::Spike,
            ..Detector::default()
        };
        let mut values = vec![10.0, 11.0, 9.0, 10.5, 9.5, 10.2, 9.8, 10.1, 10.3];
        values.push(1.0);
        values.push(30.0);
        let verdicts = judge_series(&sparse(&values), &detector);
        assert!(!verdicts[9].as_ref().expect("judged").anomalous);
        assert!(verdicts[10].as_ref().expect("judged").anomalous);
    }
}
