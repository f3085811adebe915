//! The JSON the dashboard is drawn from, and that any tooling may read: the project's health
//! at a glance (`GET /overview`), one asset in depth (`GET /assets/{name}`) and the lineage
//! graph of the whole project (`GET /lineage`). Everything here is read from the project on
//! disk and the state store at request time, so a page polled every few seconds shows a run
//! that just failed without anyone pushing it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use weir_model::{Project, arrow_type};
use weir_orchestrate::{AssetGraph, Incident, RunRecord, StateStore};

use crate::error::ServeError;

/// Runs shown in an asset's history charts.
const HISTORY: u32 = 60;
/// Runs shown under "recent runs" on the overview.
const RECENT: u32 = 15;

/// Run statuses that make an asset failing: the ones that open an incident.
const FAILING: [&str; 4] = ["failed", "error", "partial", "needs_full_refresh"];

fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

/// One asset's health: `failing` (its last run went wrong), `blocked` (skipped because
/// something upstream failed), `late` (older than its contract's latency allows), `fresh`, or
/// `not_run`.
fn health(last: Option<&RunRecord>, lag: Option<f64>, sla: Option<f64>) -> &'static str {
    let Some(last) = last else {
        return "not_run";
    };
    if FAILING.contains(&last.status.as_str()) {
        "failing"
    } else if last.status == "skipped" {
        "blocked"
    } else if matches!((lag, sla), (Some(lag), Some(sla)) if lag > sla) {
        "late"
    } else {
        "fresh"
    }
}

/// Every asset's health, with what it was judged on.
struct Healths {
    assets: BTreeMap<String, Value>,
}

async fn healths(
    project: &Project,
    state: &StateStore,
    now: DateTime<Utc>,
) -> Result<Healths, ServeError> {
    let last_runs: BTreeMap<String, RunRecord> = state
        .last_runs()
        .await?
        .into_iter()
        .map(|r| (r.asset.clone(), r))
        .collect();
    let published: BTreeMap<String, DateTime<Utc>> = state
        .last_published()
        .await?
        .into_iter()
        .filter_map(|(asset, at)| Some((asset, parse(&at)?)))
        .collect();
    let mut assets = BTreeMap::new();
    for asset in &project.assets {
        let last = last_runs.get(&asset.name);
        let lag = published.get(&asset.name).map(|at| seconds(*at, now));
        let sla = asset.contract.latency_seconds();
        assets.insert(
            asset.name.clone(),
            json!({
                "name": asset.name,
                "kind": asset.kind(),
                "team": asset.team(),
                "owners": asset.owners(),
                "health": health(last, lag, sla),
                "lag_seconds": lag,
                "sla_seconds": sla,
                "last_run": last.map(run_summary),
            }),
        );
    }
    Ok(Healths { assets })
}

fn run_summary(r: &RunRecord) -> Value {
    let duration = r
        .ended_at
        .as_deref()
        .and_then(parse)
        .zip(parse(&r.started_at))
        .map(|(end, start)| seconds(start, end));
    json!({
        "id": r.id,
        "asset": r.asset,
        "status": r.status,
        "trigger": r.trigger,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration_seconds": duration,
        "rows_in": r.rows_in,
        "rows_stored": r.rows_stored,
        "rows_quarantined": r.rows_quarantined,
        "table_version": r.table_version,
        "error": r.error,
    })
}

/// `GET /overview`: the health grid, open incidents, SLO compliance per team, recent runs.
pub(crate) async fn overview(
    project: &Project,
    state: &StateStore,
    now: DateTime<Utc>,
) -> Result<Value, ServeError> {
    let healths = healths(project, state, now).await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for asset in healths.assets.values() {
        let health = asset["health"].as_str().unwrap_or("not_run").to_string();
        *counts.entry(health).or_default() += 1;
    }
    let incidents = state.incidents(false, None).await?;
    let slos = weir_observe::slo_statuses(project, state, now)
        .await
        .map_err(|e| ServeError::Request(format!("measuring SLOs: {e}")))?;
    let recent: Vec<Value> = state
        .runs(None, RECENT)
        .await?
        .iter()
        .map(run_summary)
        .collect();
    Ok(json!({
        "generated_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "health_counts": counts,
        "assets": healths.assets.into_values().collect::<Vec<_>>(),
        "incidents": incidents,
        "teams": team_slos(&slos),
        "recent_runs": recent,
    }))
}

/// SLO compliance rolled up per team: how many objectives are met, the least error budget
/// left, and the burn-rate alerts firing.
fn team_slos(slos: &[weir_observe::SloStatus]) -> Vec<Value> {
    let mut teams: BTreeMap<String, Vec<&weir_observe::SloStatus>> = BTreeMap::new();
    for slo in slos {
        let team = slo.team.clone().unwrap_or_else(|| "(no team)".into());
        teams.entry(team).or_default().push(slo);
    }
    teams
        .into_iter()
        .map(|(team, slos)| {
            let measured: Vec<_> = slos.iter().filter(|s| s.compliance.is_some()).collect();
            let met = measured
                .iter()
                .filter(|s| s.compliance.is_some_and(|c| c >= s.objective))
                .count();
            let least_budget = slos
                .iter()
                .filter_map(|s| s.budget_remaining)
                .fold(None, |least: Option<f64>, b| {
                    Some(least.map_or(b, |l| l.min(b)))
                });
            json!({
                "team": team,
                "slos": slos.len(),
                "measured": measured.len(),
                "met": met,
                "least_budget_remaining": least_budget,
                "alerts": slos.iter().filter(|s| s.alert.is_some()).count(),
            })
        })
        .collect()
}

/// `GET /assets/{name}`: contract, owners, schema, run history (with the runs an anomaly
/// incident was opened on), incidents and the lineage neighbourhood; `None` for an unknown
/// asset.
pub(crate) async fn asset(
    project: &Project,
    graph: &AssetGraph,
    state: &StateStore,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<Value>, ServeError> {
    let Some(asset) = project.asset(name) else {
        return Ok(None);
    };
    let healths = healths(project, state, now).await?;
    let mut runs = state.runs(Some(name), HISTORY).await?;
    runs.reverse();
    let incidents: Vec<Incident> = state
        .incidents(true, None)
        .await?
        .into_iter()
        .filter(|i| i.root_asset == name || i.affected.iter().any(|a| a.asset == name))
        .collect();
    let mut anomalies = Vec::new();
    for incident in incidents
        .iter()
        .filter(|i| i.kind == "anomaly" && i.root_asset == name)
    {
        for event in state.incident_events(incident.id).await? {
            if let Some(run_id) = event.run_id.filter(|_| event.kind == "opened") {
                anomalies.push(json!({
                    "run_id": run_id,
                    "incident_id": incident.id,
                    "title": incident.title,
                }));
            }
        }
    }
    let columns: Vec<Value> = asset
        .contract
        .table()
        .map(|t| t.properties.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "type": arrow_type(p).to_string(),
                "required": p.required || p.primary_key,
                "unique": p.unique,
                "primary_key": p.primary_key,
                "description": p.description,
            })
        })
        .collect();
    let neighbours = |names: Option<&Vec<String>>| -> Vec<Value> {
        names
            .into_iter()
            .flatten()
            .filter_map(|n| healths.assets.get(n).cloned())
            .collect()
    };
    Ok(Some(json!({
        "asset": healths.assets.get(name),
        "description": asset.contract.description.as_ref().and_then(|d| d.purpose.clone()),
        "contract": {
            "path": asset.contract_path,
            "id": asset.contract.id,
            "version": asset.contract.version,
            "status": asset.contract.status,
        },
        "columns": columns,
        "model": asset.model.as_ref().map(|m| json!({
            "path": m.path,
            "materialization": m.materialization.as_str(),
        })),
        "source": asset.source.as_ref().map(|s| json!({ "format": s.format.as_str(), "path": s.path })),
        "upstream": neighbours(graph.upstream.get(name)),
        "downstream": neighbours(graph.downstream.get(name)),
        "runs": runs.iter().map(run_summary).collect::<Vec<_>>(),
        "anomalies": anomalies,
        "incidents": incidents,
    })))
}

/// `GET /lineage`: every asset (with its health) and every edge between them, each node with
/// its depth (the longest path from a source), which is how the dashboard lays it out.
pub(crate) async fn lineage(
    project: &Project,
    graph: &AssetGraph,
    state: &StateStore,
    now: DateTime<Utc>,
) -> Result<Value, ServeError> {
    let healths = healths(project, state, now).await?;
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    // `order` is topological: every upstream asset's depth is known before its children's.
    for name in &graph.order {
        let d = graph
            .upstream
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|u| depth.get(u.as_str()))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        depth.insert(name, d);
    }
    let mut edges = BTreeSet::new();
    for (to, ups) in &graph.upstream {
        for from in ups {
            edges.insert((from.clone(), to.clone()));
        }
    }
    let nodes: Vec<Value> = graph
        .order
        .iter()
        .filter_map(|name| {
            let mut node = healths.assets.get(name)?.clone();
            node["depth"] = json!(depth.get(name.as_str()).copied().unwrap_or(0));
            Some(node)
        })
        .collect();
    Ok(json!({
        "nodes": nodes,
        "edges": edges.into_iter().map(|(from, to)| json!({ "from": from, "to": to })).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: &str) -> RunRecord {
        weir_orchestrate::testing::finished_run(status, Utc::now(), 1, 10, 0)
    }

    #[test]
    fn a_failed_run_outranks_freshness_and_lateness_needs_an_sla() {
        assert_eq!(health(None, None, Some(60.0)), "not_run");
        assert_eq!(
            health(Some(&run("failed")), Some(1.0), Some(60.0)),
            "failing"
        );
        assert_eq!(health(Some(&run("partial")), None, None), "failing");
        assert_eq!(health(Some(&run("skipped")), Some(1.0), None), "blocked");
        assert_eq!(
            health(Some(&run("success")), Some(61.0), Some(60.0)),
            "late"
        );
        assert_eq!(
            health(Some(&run("success")), Some(59.0), Some(60.0)),
            "fresh"
        );
        assert_eq!(health(Some(&run("up_to_date")), Some(1e9), None), "fresh");
    }
}
