//! Service-level objectives and error budgets, from the run history.
//!
//! Three SLOs per asset, each an objective over a rolling window (30 days by default):
//!
//! - `run_success`: the share of its ended runs that succeed (a `partial`, `failed`, `error` or
//!   `interrupted` run is a bad one); objective `[slo] run_success` (99.9 %) or the contract's
//!   `successRate`.
//! - `freshness`: the share of the time its data was within its `latency` SLA (else its
//!   `frequency`), measured from its publications; objective `[slo] freshness` (99 %) or the
//!   contract's `availability`. An asset with neither SLA has no freshness SLO.
//! - `good_rows`: the share of the rows its published runs read that were stored, not
//!   quarantined; objective 100 % less `[slo] error_rate` (1 %) or the contract's `errorRate`.
//!
//! The error budget is what the objective allows to go bad over the window; the burn rate of
//! a shorter window is how much faster than that it is going bad there (1 = the budget lasts
//! exactly the window). Alerts are multi-window, as in the Google SRE workbook: page when both
//! the 1 h and the 5 min windows burn 14.4 times too fast, or both the 6 h and the 30 min six
//! times; a ticket when both the 3 d and the 6 h windows burn faster than 1. The windows scale
//! with the SLO window (they are those of a 30-day window).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use weir_model::Project;
use weir_orchestrate::RunRecord;

use crate::stats::instant;

/// One SLO of one asset, measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloStatus {
    pub asset: String,
    pub team: Option<String>,
    /// `run_success`, `freshness` or `good_rows`.
    pub slo: &'static str,
    /// The objective, a ratio (0.999).
    pub objective: f64,
    /// Where the objective comes from: `contract` or `project`.
    pub objective_from: &'static str,
    pub window_days: f64,
    /// The share of good events (or time) over the window; `None` with nothing to measure.
    pub compliance: Option<f64>,
    /// The share of the window's error budget left (negative once it is spent).
    pub budget_remaining: Option<f64>,
    /// The burn rate of each alerting window, by its name (`5m`, `30m`, `1h`, `6h`, `3d`, for a
    /// 30-day window).
    pub burn_rates: BTreeMap<&'static str, f64>,
    /// The alert the burn rates raise, if any.
    pub alert: Option<BurnAlert>,
}

/// A multi-window burn-rate alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BurnAlert {
    /// `page` or `ticket`.
    pub severity: &'static str,
    pub long_window: &'static str,
    pub short_window: &'static str,
    /// The threshold both windows passed.
    pub threshold: f64,
    /// The burn rate of the long window.
    pub burn_rate: f64,
    /// How long the long window is (scaled to the SLO window).
    #[serde(skip)]
    pub long_window_length: Duration,
}

/// The alerting windows of a 30-day SLO: name and length.
const WINDOWS: [(&str, i64); 5] = [
    ("5m", 300),
    ("30m", 1_800),
    ("1h", 3_600),
    ("6h", 21_600),
    ("3d", 259_200),
];

/// (severity, long window, short window, threshold), most urgent first.
const RULES: [(&str, &str, &str, f64); 3] = [
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "3d", "6h", 1.0),
];

struct Target {
    slo: &'static str,
    objective: f64,
    from: &'static str,
    /// For `freshness`: how old the data may be, in seconds.
    max_age: Option<f64>,
}

/// How old an asset's data may be, in seconds: its contract's `latency` SLA, else its
/// `frequency`; `None` when it has neither (no freshness SLO).
pub(crate) fn max_age(asset: &weir_model::Asset) -> Option<f64> {
    asset
        .contract
        .latency_seconds()
        .or_else(|| asset.contract.frequency_seconds())
}

fn targets(project: &Project, asset: &weir_model::Asset) -> Vec<Target> {
    let config = &project.config.slo;
    let contract = &asset.contract;
    let pick = |own: Option<f64>, default: f64| match own {
        Some(percent) => (percent / 100.0, "contract"),
        None => (default / 100.0, "project"),
    };
    let mut targets = Vec::new();
    let (objective, from) = pick(contract.sla_percent("successRate"), config.run_success);
    targets.push(Target {
        slo: "run_success",
        objective,
        from,
        max_age: None,
    });
    if let Some(max_age) = max_age(asset) {
        let (objective, from) = pick(contract.sla_percent("availability"), config.freshness);
        targets.push(Target {
            slo: "freshness",
            objective,
            from,
            max_age: Some(max_age),
        });
    }
    let (allowed, from) = pick(contract.sla_percent("errorRate"), config.error_rate);
    targets.push(Target {
        slo: "good_rows",
        objective: 1.0 - allowed,
        from,
        max_age: None,
    });
    targets
}

/// What [`evaluate`] reads: the runs of the window (`StateStore::runs_since`) and, per asset,
/// its last publication before the window (`StateStore::last_published_before`).
pub struct SloInputs<'a> {
    pub runs: &'a [RunRecord],
    pub published_before: &'a BTreeMap<String, String>,
}

/// When the SLO window that ends `now` starts.
pub fn window_start(project: &Project, now: DateTime<Utc>) -> DateTime<Utc> {
    now - seconds(project.config.slo.window_days * 86_400.0)
}

fn seconds(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0) as i64)
}

/// Every SLO of every asset with a producer, in asset order.
pub fn evaluate(project: &Project, inputs: &SloInputs<'_>, now: DateTime<Utc>) -> Vec<SloStatus> {
    let window_days = project.config.slo.window_days;
    let scale = window_days / 30.0;
    let start = window_start(project, now);
    let mut by_asset: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for run in inputs.runs {
        by_asset.entry(run.asset.as_str()).or_default().push(run);
    }
    let mut out = Vec::new();
    for asset in &project.assets {
        if asset.source.is_none() && asset.model.is_none() {
            continue;
        }
        let runs = by_asset
            .get(asset.name.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for target in targets(project, asset) {
            let measure = |from: DateTime<Utc>| -> Option<(f64, f64)> {
                match target.slo {
                    "freshness" => {
                        let before = inputs.published_before.get(&asset.name);
                        stale_time(runs, before, target.max_age?, from.max(start), now)
                    }
                    "run_success" => Some(run_events(runs, from)),
                    _ => Some(row_events(runs, from)),
                }
                .filter(|(_, total)| *total > 0.0)
            };
            let budget = 1.0 - target.objective;
            let whole = measure(start);
            let compliance = whole.map(|(bad, total)| 1.0 - bad / total);
            let budget_remaining =
                whole.and_then(|(bad, total)| (budget > 0.0).then(|| 1.0 - (bad / total) / budget));
            let mut burn_rates = BTreeMap::new();
            for (name, length) in WINDOWS {
                let from = now - seconds(length as f64 * scale);
                let burn = match measure(from) {
                    Some((bad, total)) if budget > 0.0 => (bad / total) / budget,
                    Some((bad, _)) if bad > 0.0 => f64::INFINITY,
                    _ => 0.0,
                };
                burn_rates.insert(name, burn);
            }
            let length_of = |name: &str| {
                WINDOWS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, secs)| seconds(*secs as f64 * scale))
                    .unwrap_or_default()
            };
            let alert = RULES.iter().find_map(|(severity, long, short, threshold)| {
                let (l, s) = (burn_rates[long], burn_rates[short]);
                (l >= *threshold && s >= *threshold && l > 0.0).then_some(BurnAlert {
                    severity,
                    long_window: long,
                    short_window: short,
                    threshold: *threshold,
                    burn_rate: l,
                    long_window_length: length_of(long),
                })
            });
            out.push(SloStatus {
                asset: asset.name.clone(),
                team: asset.team().map(str::to_string),
                slo: target.slo,
                objective: target.objective,
                objective_from: target.from,
                window_days,
                compliance,
                budget_remaining,
                burn_rates,
                alert,
            });
        }
    }
    out
}

/// The runs that ended at or after `from`, with their end.
fn ended_since<'a>(
    runs: &'a [&'a RunRecord],
    from: DateTime<Utc>,
) -> impl Iterator<Item = &'a RunRecord> + 'a {
    runs.iter().copied().filter(move |r| {
        r.ended_at
            .as_deref()
            .and_then(instant)
            .is_some_and(|e| e >= from)
    })
}

/// (bad runs, runs) among those that ended since `from`.
fn run_events(runs: &[&RunRecord], from: DateTime<Utc>) -> (f64, f64) {
    let (mut bad, mut total) = (0.0, 0.0);
    for run in ended_since(runs, from) {
        match run.status.as_str() {
            "success" => total += 1.0,
            "partial" | "failed" | "error" | "interrupted" => {
                bad += 1.0;
                total += 1.0;
            }
            _ => {}
        }
    }
    (bad, total)
}

/// (rows quarantined, rows read) by the published runs that ended since `from`.
fn row_events(runs: &[&RunRecord], from: DateTime<Utc>) -> (f64, f64) {
    ended_since(runs, from)
        .filter(|r| r.status == "success" || r.status == "partial")
        .fold((0.0, 0.0), |(bad, total), r| {
            (bad + r.rows_quarantined as f64, total + r.rows_in as f64)
        })
}

/// (seconds the data was older than `max_age`, seconds measured) between `from` and `now`,
/// from the publications in `runs` and `before` (the last one before the SLO window). Time
/// before the asset's first publication is not measured.
fn stale_time(
    runs: &[&RunRecord],
    before: Option<&String>,
    max_age: f64,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<(f64, f64)> {
    let all: Vec<DateTime<Utc>> = runs
        .iter()
        .filter(|r| r.status == "success" || r.status == "partial")
        .filter_map(|r| r.ended_at.as_deref().and_then(instant))
        .collect();
    let mut publications: Vec<DateTime<Utc>> = all
        .iter()
        .copied()
        .filter(|at| *at >= from && *at <= now)
        .collect();
    publications.sort();
    // The last publication before `from`: in the runs, else the one before the SLO window.
    let mut last = all
        .iter()
        .copied()
        .filter(|at| *at < from)
        .max()
        .or_else(|| before.and_then(|b| instant(b)));
    let mut cursor = from;
    let (mut stale, mut measured) = (0.0, 0.0);
    let max_age = seconds(max_age);
    for at in publications.into_iter().chain(std::iter::once(now)) {
        if let Some(published) = last {
            let span = (at - cursor).num_milliseconds() as f64 / 1000.0;
            let stale_from = (published + max_age).max(cursor);
            stale += ((at - stale_from).num_milliseconds() as f64 / 1000.0).max(0.0);
            measured += span.max(0.0);
        }
        last = Some(at);
        cursor = at;
    }
    Some((stale, measured))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        instant(text).unwrap_or_default()
    }

    /// A run of `orders` that ended at `ended` (and started then too).
    fn run(status: &str, ended: &str, rows_in: u64, quarantined: u64) -> RunRecord {
        weir_orchestrate::testing::finished_run(status, at(ended), 0, rows_in, quarantined)
    }

    #[test]
    fn stale_time_counts_what_is_past_the_max_age() {
        // Published at 00:00 and 01:00 with a 30-minute latency, measured 00:00 to 02:00:
        // stale 00:30–01:00 and 01:30–02:00.
        let runs = [
            run("success", "2026-11-01T00:00:00Z", 1, 0),
            run("success", "2026-11-01T01:00:00Z", 1, 0),
        ];
        let refs: Vec<&RunRecord> = runs.iter().collect();
        let (stale, measured) = stale_time(
            &refs,
            None,
            1800.0,
            at("2026-11-01T00:00:00Z"),
            at("2026-11-01T02:00:00Z"),
        )
        .unwrap_or_default();
        assert_eq!((stale, measured), (3600.0, 7200.0));
        // A publication before the window counts from the window's start.
        let before = "2026-10-31T23:50:00Z".to_string();
        let (stale, measured) = stale_time(
            &refs[1..],
            Some(&before),
            1800.0,
            at("2026-11-01T00:00:00Z"),
            at("2026-11-01T02:00:00Z"),
        )
        .unwrap_or_default();
        // Stale 00:20–01:00 and 01:30–02:00.
        assert_eq!((stale, measured), (4200.0, 7200.0));
    }

    #[test]
    fn events_count_bad_runs_and_quarantined_rows() {
        let runs = [
            run("success", "2026-11-01T00:00:00Z", 1000, 10),
            run("failed", "2026-11-01T01:00:00Z", 500, 400),
            run("partial", "2026-11-01T02:00:00Z", 1000, 0),
            run("running", "2026-11-01T03:00:00Z", 0, 0),
        ];
        let refs: Vec<&RunRecord> = runs.iter().collect();
        let from = at("2026-11-01T00:00:00Z");
        assert_eq!(run_events(&refs, from), (2.0, 3.0));
        // The failed run's rows were never stored: only published runs count.
        assert_eq!(row_events(&refs, from), (10.0, 2000.0));
        assert_eq!(run_events(&refs, at("2026-11-01T01:30:00Z")), (1.0, 1.0));
    }
}
