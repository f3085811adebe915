//! From the reports of finished runs to incidents: root cause, not noise.
//!
//! A bad run (failed, error, partial, needs a full refresh) of an asset with no unresolved
//! incident upstream of it opens an incident rooted at that asset, listing every asset
//! downstream with its team and owners, and queues one notification per channel of the
//! asset's team. A bad or skipped run of an asset downstream of an unresolved incident joins
//! that incident's timeline instead: one upstream failure with fifty skipped models is one
//! incident and one alert. A good run (success or up to date) of a root asset resolves its
//! incident, which queues a `resolved` notification to the channels the opening went to.
//!
//! A successful run whose metrics are anomalies (see [`crate::run_anomalies`]) is treated like
//! a bad one, as an incident of kind `anomaly`; one whose durations trend past the asset's
//! `timeout_secs` within a few runs (see [`crate::predict`]), as a `predicted_breach`; the next
//! run without them resolves it.

use std::collections::{BTreeMap, BTreeSet};

use weir_model::Project;
use weir_orchestrate::{
    AffectedAsset, AssetGraph, AssetRunReport, Incident, NewIncident, RunOptions, RunStatus,
    StateStore,
};

use crate::channel::deliverable_channels;
use crate::error::ObserveError;
use crate::run_anomalies::{RunAnomaly, RunFindings, judge_run};

/// What observing some reports changed.
#[derive(Debug, Default)]
pub struct Observed {
    /// Incidents opened, with the number of notifications queued for each.
    pub opened: Vec<(Incident, usize)>,
    /// Incidents resolved.
    pub resolved: Vec<Incident>,
    /// Bad or skipped runs that joined an incident already open.
    pub joined: usize,
}

/// Opens, joins and resolves incidents from the reports of one invocation (in graph order),
/// made with `options` (a full refresh or a partition run is not judged for anomalies).
pub async fn observe_runs(
    project: &Project,
    graph: &AssetGraph,
    state: &StateStore,
    reports: &[AssetRunReport],
    options: &RunOptions,
) -> Result<Observed, ObserveError> {
    let judge = !options.full_refresh && options.partition.is_none();
    let mut unresolved = unresolved_by_root(state).await?;
    let mut observed = Observed::default();
    for report in reports {
        let asset = report.asset.as_str();
        let run_id = recorded(report);
        let findings = if judge && report.status == RunStatus::Success {
            judge_run(project, state, asset).await?
        } else {
            RunFindings::default()
        };
        // What a good run can still be: unusual, or on its way past its time limit.
        let finding = if !findings.anomalies.is_empty() {
            Some((ANOMALY, describe_anomalies(asset, &findings.anomalies)))
        } else {
            findings
                .predicted
                .as_ref()
                .map(|p| (PREDICTED_BREACH, p.describe(asset)))
        };
        if is_good(report.status) {
            // An anomaly (or predicted breach) incident stays open while the runs still are.
            // A run that found nothing new to read says nothing about them either.
            let own_kind = unresolved.get(asset).map(|i| i.kind.as_str());
            let still = finding
                .as_ref()
                .is_some_and(|(kind, _)| own_kind == Some(*kind))
                || (report.status == RunStatus::UpToDate
                    && matches!(own_kind, Some(ANOMALY | PREDICTED_BREACH)));
            if !still && let Some(incident) = unresolved.remove(asset) {
                let detail = match run_id {
                    Some(id) => format!("{asset} {} (run {id})", report.status.as_str()),
                    None => format!("{asset} {}", report.status.as_str()),
                };
                let by = "weir";
                if state
                    .resolve_incident(incident.id, by, run_id, &detail)
                    .await?
                    && let Some(resolved) = state.incident(incident.id).await?
                {
                    observed.resolved.push(resolved);
                }
            }
            if finding.is_none() {
                continue;
            }
        }
        let found = finding.is_some();
        let (kind, title) = finding.unwrap_or_else(|| (report.status.as_str(), describe(report)));
        let bad = is_bad(report.status) || found;
        if !bad && report.status != RunStatus::Skipped {
            continue;
        }
        let event = if found { kind } else { "bad_run" };
        if bad && let Some(own) = unresolved.get(asset) {
            state
                .add_incident_event(own.id, event, Some(asset), run_id, &title)
                .await?;
            observed.joined += 1;
            continue;
        }
        if let Some(root) = upstream_incident(graph, asset, &unresolved) {
            let kind = if bad { "affected" } else { "skipped" };
            state
                .add_incident_event(root.id, kind, Some(asset), run_id, &title)
                .await?;
            observed.joined += 1;
            continue;
        }
        if !bad {
            // Skipped with no incident upstream (its upstream failed in an earlier invocation
            // that nobody observed): nothing to say beyond the run's own record.
            continue;
        }
        let Some(found) = project.asset(asset) else {
            continue;
        };
        let started =
            chrono::Utc::now() - chrono::Duration::from_std(report.duration).unwrap_or_default();
        let new = NewIncident {
            root_asset: asset.to_string(),
            team: found.team().map(str::to_string),
            owners: found.owners(),
            kind: kind.to_string(),
            title: title.clone(),
            started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            affected: affected(project, graph, asset),
            opened_by: "weir".into(),
            run_id: run_id.map(str::to_string),
        };
        let channels = deliverable_channels(project, found.team());
        let (incident, opened) = state.open_incident(&new, &channels).await?;
        if opened {
            if channels.is_empty() {
                tracing::warn!(
                    asset,
                    incident = incident.id,
                    "incident opened, but the asset's team has no channel weir delivers to (webhook:, slack:URL, command:)"
                );
            }
            observed.opened.push((incident.clone(), channels.len()));
        } else {
            state
                .add_incident_event(incident.id, event, Some(asset), run_id, &title)
                .await?;
            observed.joined += 1;
        }
        unresolved.insert(asset.to_string(), incident);
    }
    Ok(observed)
}

/// The unresolved incidents, by root asset (at most one each).
pub(crate) async fn unresolved_by_root(
    state: &StateStore,
) -> Result<BTreeMap<String, Incident>, ObserveError> {
    Ok(state
        .incidents(false, None)
        .await?
        .into_iter()
        .map(|i| (i.root_asset.clone(), i))
        .collect())
}

/// Opens an incident by hand (`weir incident open`), notifying the asset's team.
pub async fn open_manual(
    project: &Project,
    graph: &AssetGraph,
    state: &StateStore,
    asset: &str,
    title: &str,
    by: &str,
) -> Result<(Incident, bool), ObserveError> {
    let found = project
        .asset(asset)
        .ok_or_else(|| ObserveError::Invalid(format!("no asset named `{asset}` in the project")))?;
    let new = NewIncident {
        root_asset: asset.to_string(),
        team: found.team().map(str::to_string),
        owners: found.owners(),
        kind: "manual".into(),
        title: title.to_string(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        affected: affected(project, graph, asset),
        opened_by: by.to_string(),
        run_id: None,
    };
    let channels = deliverable_channels(project, found.team());
    Ok(state.open_incident(&new, &channels).await?)
}

/// The run's id when the state store keeps a record of it (`weir runs`): a skipped or up to
/// date run, or one that needs a full refresh, leaves none.
/// The kind of an incident opened by an unusual run (and of its timeline events).
const ANOMALY: &str = "anomaly";
/// The kind of an incident opened by a run whose durations trend past its time limit.
const PREDICTED_BREACH: &str = "predicted_breach";

fn describe_anomalies(asset: &str, anomalies: &[RunAnomaly]) -> String {
    let what: Vec<String> = anomalies.iter().map(RunAnomaly::describe).collect();
    truncate(
        &format!("{asset}: an unusual run: {}", what.join("; ")),
        500,
    )
}

fn recorded(report: &AssetRunReport) -> Option<&str> {
    matches!(
        report.status,
        RunStatus::Success | RunStatus::Partial | RunStatus::Failed | RunStatus::Error
    )
    .then_some(report.run_id.as_str())
}

fn is_good(status: RunStatus) -> bool {
    matches!(status, RunStatus::Success | RunStatus::UpToDate)
}

fn is_bad(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Failed | RunStatus::Error | RunStatus::Partial | RunStatus::NeedsRefresh
    )
}

/// The unresolved incident of the nearest asset upstream of `asset`, directly or not.
pub(crate) fn upstream_incident<'a>(
    graph: &AssetGraph,
    asset: &str,
    unresolved: &'a BTreeMap<String, Incident>,
) -> Option<&'a Incident> {
    let mut seen = BTreeSet::new();
    let mut frontier: Vec<&str> = vec![asset];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for a in frontier {
            for up in graph.upstream.get(a).into_iter().flatten() {
                if !seen.insert(up.as_str()) {
                    continue;
                }
                if let Some(incident) = unresolved.get(up) {
                    return Some(incident);
                }
                next.push(up.as_str());
            }
        }
        frontier = next;
    }
    None
}

/// Every asset downstream of `root`, directly or not, in graph order, with who owns it.
pub(crate) fn affected(project: &Project, graph: &AssetGraph, root: &str) -> Vec<AffectedAsset> {
    let mut reached = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(asset) = todo.pop() {
        for down in graph.downstream.get(&asset).into_iter().flatten() {
            if reached.insert(down.clone()) {
                todo.push(down.clone());
            }
        }
    }
    graph
        .order
        .iter()
        .filter(|a| reached.contains(*a))
        .map(|a| {
            let found = project.asset(a);
            AffectedAsset {
                asset: a.clone(),
                team: found.and_then(|f| f.team()).map(str::to_string),
                owners: found.map(|f| f.owners()).unwrap_or_default(),
            }
        })
        .collect()
}

/// One sentence saying what went wrong in a run.
fn describe(report: &AssetRunReport) -> String {
    let asset = &report.asset;
    let text = match report.status {
        RunStatus::Failed => {
            let blocking: Vec<String> = report
                .checks
                .iter()
                .filter(|c| c.blocks())
                .map(|c| {
                    let column = c
                        .column
                        .as_deref()
                        .map(|c| format!(" on {c}"))
                        .unwrap_or_default();
                    format!(
                        "{} ({}{column}: {}{}, {})",
                        c.id, c.metric, c.value, c.unit, c.threshold
                    )
                })
                .collect();
            if blocking.is_empty() {
                format!(
                    "{asset} failed: {}",
                    report.error.as_deref().unwrap_or("a blocking check failed")
                )
            } else {
                format!(
                    "{asset} failed its contract checks: {}",
                    blocking.join("; ")
                )
            }
        }
        RunStatus::Partial => {
            let files: Vec<String> = report
                .rejected_files
                .iter()
                .map(|f| format!("{} ({})", f.path, f.reason))
                .collect();
            format!("{asset} left input files out: {}", files.join("; "))
        }
        RunStatus::NeedsRefresh => format!(
            "{asset} needs a full refresh: {}",
            report.error.as_deref().unwrap_or("its definition changed")
        ),
        RunStatus::Skipped => format!(
            "{asset} skipped: {}",
            report
                .error
                .as_deref()
                .unwrap_or("an upstream asset failed")
        ),
        status => format!(
            "{asset} {}: {}",
            status.as_str(),
            report.error.as_deref().unwrap_or("no error recorded")
        ),
    };
    truncate(&text, 500)
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}
