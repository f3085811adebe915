//! `weir incidents` and `weir incident ...`: the incidents bad runs opened, their timelines,
//! acknowledging and resolving them by hand, and a post-mortem draft; plus what `weir run`
//! does after its runs (open, join or resolve incidents, deliver their notifications).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use weir_model::Project;
use weir_orchestrate::{
    Alert, AssetGraph, AssetRunReport, Incident, IncidentEvent, RunOptions, StateStore,
};

use crate::Outcome;

/// How long `weir run` spends delivering notifications before it exits; what is left is
/// delivered by `weir serve` or the next `weir run`.
const DELIVERY_BUDGET: Duration = Duration::from_secs(10);

/// After `weir run`'s runs: incidents opened, joined or resolved, notifications delivered,
/// OpenLineage events sent.
/// Told on stderr, so `--json` output stays one document; a failure here does not change the
/// runs' outcome, and is said.
pub async fn after_runs(
    project: &Project,
    graph: &AssetGraph,
    state: &StateStore,
    reports: &[AssetRunReport],
    options: &RunOptions,
) {
    match weir_observe::observe_runs(project, graph, state, reports, options).await {
        Ok(observed) => {
            for (incident, channels) in &observed.opened {
                eprintln!(
                    "incident #{} opened on {}: {} ({} affected downstream; {})",
                    incident.id,
                    incident.root_asset,
                    incident.title,
                    incident.affected.len(),
                    match channels {
                        0 => "no channel to notify: add webhook:, slack: or command: channels to its team in weir.toml".to_string(),
                        n => crate::output::count(*n, "notification"),
                    }
                );
            }
            for incident in &observed.resolved {
                eprintln!(
                    "incident #{} on {} resolved",
                    incident.id, incident.root_asset
                );
            }
        }
        Err(e) => eprintln!("warning: the runs were recorded, but observing them failed: {e}"),
    }
    match weir_observe::deliver_due(
        state,
        &project.root,
        &project.config.project.name,
        DELIVERY_BUDGET,
    )
    .await
    {
        Ok(round) if round.retrying > 0 || round.given_up > 0 => {
            if round.retrying > 0 {
                eprintln!(
                    "warning: {} not delivered yet (see `weir incident show ID`); `weir serve` or the next `weir run` tries again",
                    crate::output::count(round.retrying, "notification")
                );
            }
            if round.given_up > 0 {
                eprintln!(
                    "warning: {} given up after a day of failed deliveries (see `weir incident show ID`)",
                    crate::output::count(round.given_up, "notification")
                );
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: delivering notifications failed: {e}"),
    }
    for problem in weir_observe::emit_runs(project, graph, reports).await {
        eprintln!("warning: {problem}");
    }
}

/// Who acknowledges or resolves by hand: `--by`, else the login name.
fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "someone".into())
}

pub(crate) async fn open_state(
    root: &Path,
    json: bool,
) -> anyhow::Result<Option<(Project, StateStore)>> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(None);
    };
    let state = StateStore::connect(&project.state_url()).await?;
    Ok(Some((project, state)))
}

/// `--since`: a date (`2026-11-01`, midnight UTC) or an RFC 3339 instant.
fn since_instant(since: &str) -> Option<String> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(since, "%Y-%m-%d") {
        let at = date.and_hms_opt(0, 0, 0)?.and_utc();
        return Some(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
    chrono::DateTime::parse_from_rfc3339(since).ok().map(|t| {
        t.with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    })
}

fn seconds(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "—".into())
}

pub async fn list(
    root: &Path,
    all: bool,
    since: Option<&str>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let since = match since.map(|s| (s, since_instant(s))) {
        Some((text, None)) => {
            return Ok(crate::output::user_error(
                "since",
                format!("--since {text}: expected a date (2026-11-01) or an RFC 3339 instant"),
            ));
        }
        Some((_, at)) => at,
        None => None,
    };
    let Some((_, state)) = open_state(root, json).await? else {
        return Ok(Outcome::BadInput);
    };
    let incidents = state
        .incidents(all || since.is_some(), since.as_deref())
        .await?;
    state.close().await;
    let (total, by_asset, by_team) = weir_observe::incident_stats(&incidents);
    if json {
        crate::output::print_json(json!({
            "incidents": incidents,
            "stats": { "all": total, "by_asset": by_asset, "by_team": by_team },
        }));
        return Ok(Outcome::Ok);
    }
    if incidents.is_empty() {
        println!(
            "{}",
            if all || since.is_some() {
                "no incidents"
            } else {
                "no open incidents (--all lists resolved ones too)"
            }
        );
        return Ok(Outcome::Ok);
    }
    let mut table = crate::text_table::TextTable::new(&[
        "id",
        "status",
        "root asset",
        "team",
        "detected",
        "affected",
        "title",
    ]);
    for i in &incidents {
        table.add_row(vec![
            i.id.to_string(),
            i.status.clone(),
            i.root_asset.clone(),
            i.team.clone().unwrap_or_default(),
            i.detected_at.chars().take(19).collect(),
            i.affected.len().to_string(),
            i.title.chars().take(80).collect(),
        ]);
    }
    println!("{table}");
    println!();
    let mut stats = crate::text_table::TextTable::new(&[
        "",
        "incidents",
        "unresolved",
        "MTTD",
        "time to notify",
        "MTTR",
    ]);
    let row = |name: String, s: &weir_observe::IncidentStats| {
        vec![
            name,
            s.incidents.to_string(),
            s.unresolved.to_string(),
            seconds(s.mttd_seconds),
            seconds(s.mttn_seconds),
            seconds(s.mttr_seconds),
        ]
    };
    for (team, s) in &by_team {
        stats.add_row(row(format!("team {team}"), s));
    }
    for (asset, s) in &by_asset {
        stats.add_row(row(format!("asset {asset}"), s));
    }
    stats.add_row(row("all".into(), &total));
    println!("{stats}");
    Ok(Outcome::Ok)
}

/// What `weir incident` does.
#[derive(Debug, Clone)]
pub enum Action {
    Show(i64),
    Ack {
        id: i64,
        by: Option<String>,
    },
    Resolve {
        id: i64,
        by: Option<String>,
        note: Option<String>,
    },
    Open {
        asset: String,
        title: String,
        by: Option<String>,
    },
    Postmortem {
        id: i64,
        out: Option<PathBuf>,
    },
}

pub async fn incident(root: &Path, action: Action, json: bool) -> anyhow::Result<Outcome> {
    let Some((project, state)) = open_state(root, json).await? else {
        return Ok(Outcome::BadInput);
    };
    let outcome = act(&project, &state, action, json).await;
    state.close().await;
    outcome
}

async fn act(
    project: &Project,
    state: &StateStore,
    action: Action,
    json: bool,
) -> anyhow::Result<Outcome> {
    match action {
        Action::Show(id) => {
            let (incident, events, alerts) = match with_timeline(state, id).await? {
                Ok(found) => found,
                Err(refused) => return Ok(refused),
            };
            if json {
                crate::output::print_json(
                    json!({ "incident": incident, "timeline": events, "notifications": alerts }),
                );
            } else {
                print!("{}", weir_observe::postmortem(&incident, &events, &alerts));
            }
            Ok(Outcome::Ok)
        }
        Action::Ack { id, by } => {
            let by = who(by);
            if !state.acknowledge_incident(id, &by).await? {
                return not_open(state, id).await;
            }
            done(json, id, "acknowledged", &by);
            Ok(Outcome::Ok)
        }
        Action::Resolve { id, by, note } => {
            let by = who(by);
            let detail = note.unwrap_or_else(|| format!("resolved by hand by {by}"));
            if !state.resolve_incident(id, &by, None, &detail).await? {
                return not_open(state, id).await;
            }
            let round = weir_observe::deliver_due(
                state,
                &project.root,
                &project.config.project.name,
                DELIVERY_BUDGET,
            )
            .await?;
            if round.retrying + round.given_up > 0 {
                eprintln!(
                    "warning: the resolved notification is not delivered yet; `weir serve` tries again"
                );
            }
            done(json, id, "resolved", &by);
            Ok(Outcome::Ok)
        }
        Action::Open { asset, title, by } => {
            let Some(graph) = super::graph(project, json) else {
                return Ok(Outcome::BadInput);
            };
            let by = who(by);
            let (incident, opened) = match weir_observe::open_manual(
                project, &graph, state, &asset, &title, &by,
            )
            .await
            {
                Ok(x) => x,
                Err(weir_observe::ObserveError::Invalid(why)) => {
                    return Ok(crate::output::user_error("unknown_asset", why));
                }
                Err(e) => return Err(e.into()),
            };
            if !opened {
                return Ok(crate::output::user_error(
                    "already_open",
                    format!(
                        "incident #{} is already open on {asset}: {}",
                        incident.id, incident.title
                    ),
                ));
            }
            weir_observe::deliver_due(
                state,
                &project.root,
                &project.config.project.name,
                DELIVERY_BUDGET,
            )
            .await?;
            done(json, incident.id, "opened", &by);
            Ok(Outcome::Ok)
        }
        Action::Postmortem { id, out } => {
            let (incident, events, alerts) = match with_timeline(state, id).await? {
                Ok(found) => found,
                Err(refused) => return Ok(refused),
            };
            let text = weir_observe::postmortem(&incident, &events, &alerts);
            match out {
                Some(path) => {
                    if path.exists() {
                        return Ok(crate::output::user_error(
                            "exists",
                            format!(
                                "{} exists: weir never writes over a post-mortem",
                                path.display()
                            ),
                        ));
                    }
                    std::fs::write(&path, text)
                        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
                    if json {
                        crate::output::print_json(json!({ "incident": id, "written": path }));
                    } else {
                        println!(
                            "post-mortem draft of incident #{id} written to {}",
                            path.display()
                        );
                    }
                }
                None => print!("{text}"),
            }
            Ok(Outcome::Ok)
        }
    }
}

fn done(json: bool, id: i64, what: &str, by: &str) {
    if json {
        crate::output::print_json(json!({ "incident": id, "status": what, "by": by }));
    } else {
        println!("incident #{id} {what} by {by}");
    }
}

/// An incident with its timeline and its notifications (channels redacted), or the refusal
/// naming an unknown number.
async fn with_timeline(
    state: &StateStore,
    id: i64,
) -> anyhow::Result<Result<(Incident, Vec<IncidentEvent>, Vec<Alert>), Outcome>> {
    let Some(incident) = state.incident(id).await? else {
        return Ok(Err(crate::output::user_error(
            "unknown_incident",
            format!("no incident #{id}: `weir incidents --all` lists them"),
        )));
    };
    let events = state.incident_events(id).await?;
    let mut alerts = state.alerts_of(id).await?;
    for a in &mut alerts {
        a.channel = weir_observe::channel_label(&a.channel);
    }
    Ok(Ok((incident, events, alerts)))
}

async fn not_open(state: &StateStore, id: i64) -> anyhow::Result<Outcome> {
    Ok(match state.incident(id).await? {
        None => crate::output::user_error(
            "unknown_incident",
            format!("no incident #{id}: `weir incidents --all` lists them"),
        ),
        Some(i) => crate::output::user_error(
            "incident_state",
            format!(
                "incident #{id} is {} (since {}): nothing to do",
                i.status,
                i.resolved_at.or(i.acknowledged_at).unwrap_or_default()
            ),
        ),
    })
}
