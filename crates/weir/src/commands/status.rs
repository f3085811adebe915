//! `weir status`: every asset at a glance: its last run, when it last published, how fresh
//! that is against its contract's latency SLA, and when a job next runs it.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use weir_orchestrate::{RunRecord, StateStore};

use crate::Outcome;
use crate::output::{new_table, print_json};

/// Runs looked through for an asset's last publication.
const HISTORY: u32 = 200;

struct AssetStatus {
    asset: String,
    kind: &'static str,
    last_run: Option<RunRecord>,
    published_at: Option<DateTime<Utc>>,
    sla_seconds: Option<f64>,
    next_run: Option<(DateTime<Utc>, String)>,
}

impl AssetStatus {
    fn lag_seconds(&self, now: DateTime<Utc>) -> Option<f64> {
        self.published_at
            .map(|at| (now - at).num_milliseconds() as f64 / 1000.0)
    }

    /// Whether the data is older than the SLA allows; None without an SLA or a publication.
    fn stale(&self, now: DateTime<Utc>) -> Option<bool> {
        Some(self.lag_seconds(now)? > self.sla_seconds?)
    }
}

pub async fn status(root: &Path, json: bool) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let Some(graph) = super::graph(&project, json) else {
        return Ok(Outcome::BadInput);
    };
    let now = Utc::now();
    let next_runs = next_runs(&project, &graph, now);
    let state = StateStore::connect(&project.state_url()).await?;
    let mut statuses = Vec::new();
    for name in &graph.order {
        let Some(asset) = project.asset(name) else {
            continue;
        };
        let history = state.runs(Some(name), HISTORY).await?;
        let published_at = history
            .iter()
            .filter(|r| r.status == "success" || r.status == "partial")
            .find_map(|r| r.ended_at.as_deref().and_then(parse_time));
        statuses.push(AssetStatus {
            asset: name.clone(),
            kind: asset.kind(),
            last_run: history.into_iter().next(),
            published_at,
            sla_seconds: asset.contract.latency_seconds(),
            next_run: next_runs.get(name).cloned(),
        });
    }
    state.close().await;
    if json {
        let assets: Vec<Value> = statuses.iter().map(|s| status_json(s, now)).collect();
        print_json(json!({ "assets": assets }));
        return Ok(Outcome::Ok);
    }
    let mut table = new_table(&["asset", "last run", "published", "freshness", "next run"]);
    for s in &statuses {
        let last = match &s.last_run {
            Some(r) => format!(
                "{} {}",
                r.status,
                r.ended_at
                    .as_deref()
                    .and_then(parse_time)
                    .map(|t| ago(now - t))
                    .unwrap_or_else(|| "now".into())
            ),
            None => "never".into(),
        };
        let published = s
            .published_at
            .map(|t| ago(now - t))
            .unwrap_or_else(|| "never".into());
        let freshness = match (s.stale(now), s.sla_seconds) {
            (Some(true), Some(sla)) => format!("STALE (SLA {})", span(sla)),
            (Some(false), Some(sla)) => format!("fresh (SLA {})", span(sla)),
            (None, Some(sla)) => format!("no data (SLA {})", span(sla)),
            _ => "no SLA".into(),
        };
        let next = s
            .next_run
            .as_ref()
            .map(|(t, job)| format!("in {} ({job})", span(((*t - now).num_seconds()) as f64)))
            .unwrap_or_else(|| "not scheduled".into());
        table.add_row(vec![s.asset.clone(), last, published, freshness, next]);
    }
    println!("{table}");
    Ok(Outcome::Ok)
}

fn status_json(s: &AssetStatus, now: DateTime<Utc>) -> Value {
    json!({
        "asset": s.asset,
        "kind": s.kind,
        "last_run": s.last_run.as_ref().map(|r| json!({
            "run_id": r.id,
            "status": r.status,
            "trigger": r.trigger,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
        })),
        "last_published_at": s.published_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        "freshness": {
            "lag_seconds": s.lag_seconds(now),
            "sla_seconds": s.sla_seconds,
            "stale": s.stale(now),
        },
        "next_run": s.next_run.as_ref().map(|(t, job)| json!({
            "at": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "job": job,
        })),
    })
}

/// For each asset a job selects, the job's next tick (the earliest, if several jobs do).
fn next_runs(
    project: &weir_model::Project,
    graph: &weir_orchestrate::AssetGraph,
    now: DateTime<Utc>,
) -> BTreeMap<String, (DateTime<Utc>, String)> {
    let mut next: BTreeMap<String, (DateTime<Utc>, String)> = BTreeMap::new();
    for (name, job) in &project.config.jobs {
        let Ok(Some((cron, zone))) = job.schedule() else {
            continue;
        };
        let Ok(tick) = cron.find_next_occurrence(&now.with_timezone(&zone), false) else {
            continue;
        };
        let tick = tick.with_timezone(&Utc);
        let Ok(selected) = weir_orchestrate::select(project, graph, &job.select) else {
            continue;
        };
        for asset in selected {
            let slot = next.entry(asset).or_insert((tick, name.clone()));
            if tick < slot.0 {
                *slot = (tick, name.clone());
            }
        }
    }
    next
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn ago(delta: chrono::TimeDelta) -> String {
    format!("{} ago", span(delta.num_seconds() as f64))
}

/// A duration the way a person says it: `45s`, `12m`, `3h 5m`, `2d 4h`.
fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let two = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit} {small}{small_unit}")
        }
    };
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => two(s / 3_600, "h", s % 3_600 / 60, "m"),
        _ => two(s / 86_400, "d", s % 86_400 / 3_600, "h"),
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_read_like_a_person_says_them() {
        assert_eq!(span(0.4), "0s");
        assert_eq!(span(59.0), "59s");
        assert_eq!(span(61.0), "1m");
        assert_eq!(span(3_600.0 * 2.0 + 300.0), "2h 5m");
        assert_eq!(span(86_400.0 * 2.0 + 3_600.0 * 4.0), "2d 4h");
        assert_eq!(span(86_400.0), "1d");
        assert_eq!(span(7_200.0), "2h");
    }
}
