//! Failure prediction from a late upstream: an asset whose data will be older than its
//! freshness SLA because an upstream it waits for has not published when it usually does.
//!
//! From the publications alone (the successful runs' ends): the upstream's usual gap between
//! publications (median) and its scatter (1.4826 × MAD) say when it should have published
//! next; past that by more than three scatters (and a hundredth of the gap), it is late. The
//! asset's usual lag behind the upstream (median of the time from each upstream publication to
//! the asset's next one) says by when the upstream must publish for the asset to make its
//! deadline (its last publication plus its `latency`). A breach is predicted when the upstream
//! is late by as long as what is left before then: a late upstream tends to stay late for
//! about as long again as it already is, so waiting any longer would leave its owners no time
//! to act. Once the deadline has passed, the freshness SLO's burn-rate alert speaks instead.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use weir_model::Project;
use weir_orchestrate::{AssetGraph, RunRecord, StateStore};

use crate::anomaly::median_in_place as median;
use crate::error::ObserveError;
use crate::observe::{Observed, truncate};
use crate::slo::max_age;
use crate::slo_incidents::RunWindow;
use crate::stats::instant;
use crate::watch::Round;

/// The kind of the incidents this opens.
pub const PREDICTED_LATE: &str = "predicted_late";

/// The most recent publications the usual gap and lag are measured on.
const RECENT: usize = 20;
/// Publications of the upstream needed before it is judged late.
const MIN_PUBLICATIONS: usize = 5;
/// The asset's publications after one of the upstream's needed to know its lag.
const MIN_LAGS: usize = 3;
/// How many scatters past its usual time an upstream is late.
const LATE_SCATTERS: f64 = 3.0;
/// ... and at least this share of its usual gap.
const LATE_SHARE: f64 = 0.01;

/// A predicted freshness breach caused by a late upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct LateUpstream {
    pub upstream: String,
    /// When the upstream last published, and when it usually would have published next.
    pub last_published: DateTime<Utc>,
    pub expected_at: DateTime<Utc>,
    pub usual_gap_secs: f64,
    /// How long the asset usually publishes after the upstream.
    pub lag_secs: f64,
    /// When the asset's data gets older than its SLA, and the last moment the upstream can
    /// publish for the asset to make it.
    pub deadline: DateTime<Utc>,
    pub publish_by: DateTime<Utc>,
    pub max_age_secs: f64,
}

impl LateUpstream {
    pub fn describe(&self, asset: &str, now: DateTime<Utc>) -> String {
        let late = (now - self.expected_at).num_seconds().max(0) as f64;
        format!(
            "{asset}: predicted freshness breach at {}: upstream {} is {} late (it publishes about every {}, last at {}); {asset} usually follows it within {}, so unless {} publishes by {} its data will be older than its {} latency",
            at(self.deadline),
            self.upstream,
            span(late),
            span(self.usual_gap_secs),
            at(self.last_published),
            span(self.lag_secs),
            self.upstream,
            at(self.publish_by),
            span(self.max_age_secs),
        )
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2 h 05 min`, `14 min`, `40 s`.
fn span(secs: f64) -> String {
    let s = secs.round() as i64;
    if s >= 3_600 {
        format!("{} h {:02} min", s / 3_600, (s % 3_600) / 60)
    } else if s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

fn seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// Whether `upstream` (its publications, oldest first) is late enough at `now` to make the
/// asset (its publications, oldest first; data at most `max_age_secs` old) miss its deadline.
pub fn predict_late(
    asset: &[DateTime<Utc>],
    upstream_name: &str,
    upstream: &[DateTime<Utc>],
    max_age_secs: f64,
    now: DateTime<Utc>,
) -> Option<LateUpstream> {
    let (&last_asset, &last_upstream) = (asset.last()?, upstream.last()?);
    let deadline = last_asset + millis(max_age_secs);
    // Past the deadline the SLO speaks; an upstream that has published since the asset did
    // is not what the asset waits for.
    if now >= deadline || last_upstream > last_asset || upstream.len() < MIN_PUBLICATIONS {
        return None;
    }
    let recent = &upstream[upstream.len().saturating_sub(RECENT + 1)..];
    let mut gaps: Vec<f64> = recent.windows(2).map(|w| seconds(w[0], w[1])).collect();
    let usual_gap = median(&mut gaps);
    let mut deviations: Vec<f64> = gaps.iter().map(|g| (g - usual_gap).abs()).collect();
    let scatter = 1.4826 * median(&mut deviations);
    let expected_at = last_upstream + millis(usual_gap);
    let late_by = seconds(expected_at, now);
    if !(usual_gap > 0.0 && late_by > (LATE_SCATTERS * scatter).max(LATE_SHARE * usual_gap)) {
        return None;
    }
    // The asset's lag: from each of its publications back to the upstream's latest before
    // it, when that is within one usual gap (else the asset published without the upstream).
    let mut lags: Vec<f64> = asset[asset.len().saturating_sub(RECENT)..]
        .iter()
        .filter_map(|x| {
            let before = upstream.partition_point(|u| u <= x);
            let u = upstream.get(before.checked_sub(1)?)?;
            let lag = seconds(*u, *x);
            (lag <= usual_gap).then_some(lag)
        })
        .collect();
    if lags.len() < MIN_LAGS {
        return None;
    }
    let lag = median(&mut lags);
    let publish_by = deadline - millis(lag);
    // Late by as long as what is left: staying late as long again misses the deadline.
    (late_by >= seconds(now, publish_by)).then(|| LateUpstream {
        upstream: upstream_name.to_string(),
        last_published: last_upstream,
        expected_at,
        usual_gap_secs: usual_gap,
        lag_secs: lag,
        deadline,
        publish_by,
        max_age_secs,
    })
}

/// Every asset with a freshness SLA whose upstream is late enough, now, to make it breach
/// (judged from `runs`, those of the SLO window): the upstream whose deadline to publish comes
/// first, per asset.
pub fn late_upstreams(
    project: &Project,
    graph: &AssetGraph,
    runs: &[RunRecord],
    now: DateTime<Utc>,
) -> BTreeMap<String, LateUpstream> {
    let mut published: BTreeMap<&str, Vec<DateTime<Utc>>> = BTreeMap::new();
    for run in runs {
        if matches!(run.status.as_str(), "success" | "partial")
            && let Some(at) = run.ended_at.as_deref().and_then(instant)
        {
            published.entry(run.asset.as_str()).or_default().push(at);
        }
    }
    for times in published.values_mut() {
        times.sort();
    }
    let mut late = BTreeMap::new();
    for asset in &graph.order {
        let (Some(found), Some(own)) = (project.asset(asset), published.get(asset.as_str())) else {
            continue;
        };
        let Some(max_age) = max_age(found) else {
            continue;
        };
        let first = graph
            .upstream
            .get(asset)
            .into_iter()
            .flatten()
            .filter_map(|up| predict_late(own, up, published.get(up.as_str())?, max_age, now))
            .min_by_key(|l| l.publish_by);
        if let Some(first) = first {
            late.insert(asset.clone(), first);
        }
    }
    late
}

/// Opens a `predicted_late` incident on each asset an upstream is making late (unless it or
/// an asset upstream of it already has an incident open: the root cause is being told), and
/// resolves it once nothing predicts the breach any more: the upstream published, or the
/// deadline passed (the freshness SLO's burn-rate alert takes over).
pub async fn observe_late_upstreams(
    project: &Project,
    graph: &AssetGraph,
    state: &StateStore,
    window: &RunWindow,
    now: DateTime<Utc>,
) -> Result<Observed, ObserveError> {
    let late = late_upstreams(project, graph, &window.runs, now);
    let mut round = Round::start(project, graph, state, now, PREDICTED_LATE).await?;
    for asset in &graph.order {
        match late.get(asset) {
            None => {
                round
                    .clear(
                        asset,
                        &format!(
                            "{asset}: no upstream is late enough to make it miss its freshness SLA any more (it published, or the deadline passed and the freshness SLO tracks the breach)"
                        ),
                    )
                    .await?
            }
            Some(_) if round.told(asset) => {}
            Some(prediction) => {
                round
                    .open(asset, truncate(&prediction.describe(asset, now), 500))
                    .await?
            }
        }
    }
    Ok(round.observed)
}

fn millis(secs: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn minutes(m: f64) -> chrono::Duration {
        millis(m * 60.0)
    }

    /// Upstream daily at 02:00, the asset 15 min later, for ten days; data at most 25 h old.
    fn history() -> (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
        let upstream: Vec<_> = (0..10)
            .map(|d| t0() + chrono::Duration::days(d) + minutes(120.0 + (d % 3) as f64))
            .collect();
        let asset = upstream.iter().map(|u| *u + minutes(15.0)).collect();
        (asset, upstream)
    }

    #[test]
    fn an_upstream_late_by_as_long_as_is_left_predicts_the_breach() {
        let (asset, upstream) = history();
        let max_age = 25.0 * 3600.0;
        let day10 = t0() + chrono::Duration::days(10);
        // The last publications: the upstream's on day 9 at 02:00, the asset's at 02:15, so
        // the deadline is day 10 at 03:15 and the upstream, usually there 24 h 1 min after
        // its last, must publish by 03:00. At 02:20 it is 19 min late with 40 min left: no
        // prediction yet.
        assert!(predict_late(&asset, "raw", &upstream, max_age, day10 + minutes(140.0)).is_none());
        // At 02:32 it is 31 min late with 28 min left: predicted.
        let late = predict_late(&asset, "raw", &upstream, max_age, day10 + minutes(152.0))
            .expect("predicted");
        assert_eq!(late.lag_secs, 900.0);
        assert_eq!(late.deadline, day10 + minutes(195.0));
        assert_eq!(late.publish_by, day10 + minutes(180.0));
        let text = late.describe("daily_sales", day10 + minutes(152.0));
        assert!(
            text.starts_with("daily_sales: predicted freshness breach at 2026-11-11 03:15:00 UTC: upstream raw is 31 min late"),
            "{text}"
        );
        // The upstream published: nothing to predict.
        let mut published = upstream.clone();
        published.push(day10 + minutes(153.0));
        assert!(predict_late(&asset, "raw", &published, max_age, day10 + minutes(154.0)).is_none());
        // Past the deadline, the SLO speaks.
        assert!(predict_late(&asset, "raw", &upstream, max_age, day10 + minutes(197.0)).is_none());
    }

    /// The accuracy of late-upstream prediction on simulated days (`cargo test -p
    /// weir-observe late_upstream -- --nocapture`): an upstream that publishes daily around
    /// 02:00 (jitter of 2–10 min) and, one day in eight, late by a log-normal delay (median
    /// 1 h; a quarter over 2 h); an asset 5–30 min behind it whose data may be 30 min to 4 h
    /// older than a day. Judged every 5 minutes, as `weir serve` does (every few seconds).
    /// Reported: recall (breaches predicted at least 5 minutes before their deadline),
    /// precision, median lead and false predictions per asset per 30 days; targets as for the
    /// other predictions: recall ≥ 80 %, at most one false prediction per asset per 30 days.
    #[test]
    fn late_upstream_prediction_accuracy_on_simulated_days() {
        let mut rng = StdRng::seed_from_u64(21);
        let normal = |rng: &mut StdRng| {
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let (assets, days) = (100, 90);
        let (mut breaches, mut predicted_breaches, mut false_days, mut leads) =
            (0usize, 0usize, 0usize, Vec::new());
        let mut judged_days = 0usize;
        for _ in 0..assets {
            let jitter = rng.random_range(2.0..10.0);
            let lag = rng.random_range(5.0..30.0);
            let max_age = 24.0 * 3600.0 + rng.random_range(30.0..240.0) * 60.0;
            let (mut upstream, mut asset) = (Vec::new(), Vec::new());
            for day in 0..days {
                let midnight = t0() + chrono::Duration::days(day);
                let mut delay = jitter * normal(&mut rng);
                if rng.random_range(0..8) == 0 {
                    delay += 60.0 * (1.0 * normal(&mut rng)).exp();
                }
                let u = midnight + minutes(120.0 + delay);
                let x = u + minutes(lag * (1.0 + 0.1 * normal(&mut rng)).max(0.1));
                if day >= 7
                    && let Some(&last) = asset.last()
                {
                    judged_days += 1;
                    let deadline = last + millis(max_age);
                    let breach = x > deadline;
                    // Every 5 minutes from the day's start until the upstream publishes or
                    // the deadline passes.
                    let end = u.min(deadline);
                    let mut first = None;
                    let mut now = midnight;
                    while now < end {
                        if predict_late(&asset, "up", &upstream, max_age, now).is_some() {
                            first = Some(now);
                            break;
                        }
                        now += minutes(5.0);
                    }
                    match (breach, first) {
                        (true, Some(at)) if deadline - at >= minutes(5.0) => {
                            breaches += 1;
                            predicted_breaches += 1;
                            leads.push(seconds(at, deadline) / 60.0);
                        }
                        (true, _) => breaches += 1,
                        (false, Some(_)) => false_days += 1,
                        (false, None) => {}
                    }
                }
                upstream.push(u);
                asset.push(x);
            }
        }
        let recall = predicted_breaches as f64 / breaches.max(1) as f64;
        let raised = predicted_breaches + false_days;
        let precision = predicted_breaches as f64 / raised.max(1) as f64;
        let false_per_30 =
            false_days as f64 / assets as f64 / (judged_days as f64 / assets as f64 / 30.0);
        let median_lead = median(&mut leads.clone());
        println!(
            "late upstream: {breaches} breaches over {judged_days} asset-days, {:.1} % predicted at least 5 min ahead, precision {:.1} %, median lead {median_lead:.0} min; {false_days} false predictions ({false_per_30:.2} per asset per 30 days)",
            100.0 * recall,
            100.0 * precision,
        );
        assert!(breaches >= 200, "{breaches}");
        assert!(recall >= 0.8, "recall {recall}");
        assert!(false_per_30 <= 1.0, "{false_per_30}");
    }
}
