//! How well the burn-rate alerts predict that an error budget will run out, measured on
//! simulated run histories with injected drifts (`cargo test -p weir-observe budget --
//! --nocapture`): recall (budgets exhausted after an alert at least one run earlier), median
//! lead, precision, and false alerts per asset per 30 days on steady assets. Targets, as for
//! the other predictions: recall ≥ 80 %, at most one false alert per asset per 30 days.
//!
//! Each simulated asset runs every 4 hours and reads 6,000 rows; the share quarantined is its
//! `good_rows` SLO's bad share (objective 99 %: a 1 % budget over a 30-day window). Steady
//! assets quarantine 10–90 % of the budget's share, with binomial noise. Drifting ones start
//! at 10–60 % and, from a random instant after a month of history, quarantine more and more:
//! 0.05 to 20 points of share more per day (the fastest nearly a step). The budget is exhausted when the window's bad
//! share passes 1 %; an alert is any page or ticket of the `good_rows` SLO, judged after
//! each run, and a new one (after a run without) counts once.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use weir_model::Project;
use weir_orchestrate::RunRecord;

use crate::anomaly::median_in_place as median;
use crate::slo::{SloInputs, SloStatus, evaluate, window_start};

const EVERY_HOURS: i64 = 4;
const ROWS: u64 = 6_000;
const RUNS_PER_DAY: usize = (24 / EVERY_HOURS) as usize;

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Quarantined rows of a run at bad share `share` (binomial, by its normal approximation).
fn quarantined(rng: &mut StdRng, share: f64) -> u64 {
    let share = share.clamp(0.0, 1.0);
    let mean = ROWS as f64 * share;
    let sd = (ROWS as f64 * share * (1.0 - share)).sqrt();
    (mean + sd * normal(rng)).round().clamp(0.0, ROWS as f64) as u64
}

/// The runs of one simulated history, each ending at its start (the SLOs count run ends).
fn history(start: DateTime<Utc>, shares: &[f64], rng: &mut StdRng) -> Vec<RunRecord> {
    shares
        .iter()
        .enumerate()
        .map(|(i, share)| {
            let at = start + Duration::hours(EVERY_HOURS * i as i64);
            weir_orchestrate::testing::finished_run(
                "success",
                at,
                0,
                ROWS,
                quarantined(rng, *share),
            )
        })
        .collect()
}

/// After each run from `from` on: (the good_rows budget is exhausted, an alert is raised).
fn judged(project: &Project, runs: &[RunRecord], from: usize) -> Vec<(bool, bool)> {
    let before = Default::default();
    (from..runs.len())
        .map(|i| {
            let now = crate::stats::instant(runs[i].ended_at.as_deref().unwrap_or_default())
                .unwrap_or_default();
            let start = window_start(project, now);
            let first = runs.partition_point(|r| {
                crate::stats::instant(r.ended_at.as_deref().unwrap_or_default())
                    .is_some_and(|e| e < start)
            });
            let inputs = SloInputs {
                runs: &runs[first..=i],
                published_before: &before,
            };
            let status: Vec<SloStatus> = evaluate(project, &inputs, now);
            let good_rows = status.iter().find(|s| s.slo == "good_rows");
            (
                good_rows
                    .and_then(|s| s.budget_remaining)
                    .is_some_and(|b| b < 0.0),
                good_rows.is_some_and(|s| s.alert.is_some()),
            )
        })
        .collect()
}

/// New alerts (after a judgement without one) among `judgements`.
fn onsets(judgements: &[(bool, bool)]) -> usize {
    let mut previous = false;
    judgements
        .iter()
        .filter(|(_, alert)| {
            let new = *alert && !previous;
            previous = *alert;
            new
        })
        .count()
}

#[test]
fn budget_exhaustion_is_predicted_by_the_burn_rate_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = crate::test_project::one_source(dir.path(), "");
    let mut rng = StdRng::seed_from_u64(21);
    let start = crate::stats::instant("2026-09-01T00:00:00Z").unwrap_or_default();
    let month = 30 * RUNS_PER_DAY;
    let (mut breaches, mut predicted, mut leads) = (0usize, 0usize, Vec::new());
    for _ in 0..60 {
        let base = rng.random_range(0.001..0.006);
        let drift_from = month + rng.random_range(0..20 * RUNS_PER_DAY);
        let per_day = rng.random_range(0.0005..0.2);
        let shares: Vec<f64> = (0..2 * month)
            .map(|i| {
                let days = i.saturating_sub(drift_from) as f64 / RUNS_PER_DAY as f64;
                base + per_day * days
            })
            .collect();
        let runs = history(start, &shares, &mut rng);
        let judgements = judged(&project, &runs, month);
        let Some(breach) = judgements.iter().position(|(exhausted, _)| *exhausted) else {
            continue;
        };
        breaches += 1;
        if let Some(first) = judgements[..breach].iter().position(|(_, alert)| *alert) {
            predicted += 1;
            leads.push(((breach - first) * EVERY_HOURS as usize) as f64);
        }
    }
    let (mut false_alerts, mut steady_runs) = (0usize, 0usize);
    for _ in 0..60 {
        let base = rng.random_range(0.001..0.009);
        let runs = history(start, &vec![base; 2 * month], &mut rng);
        let judgements = judged(&project, &runs, month);
        false_alerts += onsets(&judgements);
        steady_runs += judgements.len();
    }
    let recall = predicted as f64 / breaches.max(1) as f64;
    let false_per_30 = false_alerts as f64 / (steady_runs as f64 / month as f64);
    let precision = predicted as f64 / (predicted + false_alerts).max(1) as f64;
    println!(
        "error budget: {breaches} exhausted, {:.1} % predicted at least one run ahead, median lead {} h; precision {:.1} %; {false_alerts} false alerts over {steady_runs} steady runs ({false_per_30:.2} per asset per 30 days)",
        100.0 * recall,
        median(&mut leads),
        100.0 * precision,
    );
    assert!(breaches >= 40, "{breaches}");
    assert!(recall >= 0.8, "recall {recall}");
    assert!(false_per_30 <= 1.0, "{false_per_30}");
}
