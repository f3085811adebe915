//! SLO burn-rate alerts as incidents: an asset whose error budget burns too fast (a page or a
//! ticket of [`crate::slo`]) gets an incident of kind `slo_burn`, routed to its team like any
//! other, unless it or an asset upstream of it already has one open (the root cause is then
//! already being told), or one of its incidents was resolved within the alert's long window
//! (the burn is that incident's, whose owners heard of it then); the incident resolves once no
//! window burns past its threshold.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use weir_model::Project;
use weir_orchestrate::{AssetGraph, RunRecord, StateStore};

use crate::error::ObserveError;
use crate::observe::{Observed, truncate};
use crate::slo::{SloInputs, SloStatus, evaluate, window_start};
use crate::stats::instant;
use crate::watch::Round;

/// The kind of the incidents this opens.
const SLO_BURN: &str = "slo_burn";

/// The runs of the SLO window that ends at some instant, read once for every watcher of a
/// round: the runs of the window, and per asset its last publication before it.
pub struct RunWindow {
    pub runs: Vec<RunRecord>,
    pub published_before: BTreeMap<String, String>,
}

impl RunWindow {
    pub async fn read(
        project: &Project,
        state: &StateStore,
        now: DateTime<Utc>,
    ) -> Result<RunWindow, ObserveError> {
        let since = window_start(project, now).to_rfc3339_opts(SecondsFormat::Micros, true);
        Ok(RunWindow {
            runs: state.runs_since(&since).await?,
            published_before: state
                .last_published_before(&since)
                .await?
                .into_iter()
                .collect(),
        })
    }

    fn statuses(&self, project: &Project, now: DateTime<Utc>) -> Vec<SloStatus> {
        evaluate(
            project,
            &SloInputs {
                runs: &self.runs,
                published_before: &self.published_before,
            },
            now,
        )
    }
}

/// Every SLO of the project now, read from the state store.
pub async fn slo_statuses(
    project: &Project,
    state: &StateStore,
    now: DateTime<Utc>,
) -> Result<Vec<SloStatus>, ObserveError> {
    Ok(RunWindow::read(project, state, now)
        .await?
        .statuses(project, now))
}

/// Opens and resolves `slo_burn` incidents from the SLOs as they are at `now`, measured on
/// `window` (read at `now`).
pub async fn observe_slos(
    project: &Project,
    graph: &AssetGraph,
    state: &StateStore,
    window: &RunWindow,
    now: DateTime<Utc>,
) -> Result<Observed, ObserveError> {
    let statuses = window.statuses(project, now);
    let mut burning: BTreeMap<&str, Vec<&SloStatus>> = BTreeMap::new();
    for status in statuses.iter().filter(|s| s.alert.is_some()) {
        burning
            .entry(status.asset.as_str())
            .or_default()
            .push(status);
    }
    // When each asset's last incident was resolved, over the SLO window.
    let since = window_start(project, now).to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut last_resolved: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for incident in state.incidents(true, Some(&since)).await? {
        if let Some(at) = incident.resolved_at.as_deref().and_then(instant) {
            let entry = last_resolved.entry(incident.root_asset).or_insert(at);
            *entry = (*entry).max(at);
        }
    }
    let mut round = Round::start(project, graph, state, now, SLO_BURN).await?;
    for asset in &graph.order {
        let Some(alerts) = burning.get(asset.as_str()) else {
            round
                .clear(
                    asset,
                    &format!("{asset}: every SLO burns within its budget again"),
                )
                .await?;
            continue;
        };
        if round.told(asset) {
            continue;
        }
        let explained = alerts.iter().filter_map(|s| s.alert.as_ref()).all(|alert| {
            last_resolved
                .get(asset)
                .is_some_and(|at| *at >= now - alert.long_window_length)
        });
        if !explained {
            round.open(asset, describe(asset, alerts)).await?;
        }
    }
    Ok(round.observed)
}

/// `orders: freshness SLO (99 %) burns its budget 15.2× too fast over 1h and 5m (page); 62 %
/// of the 30-day budget left`.
fn describe(asset: &str, alerts: &[&SloStatus]) -> String {
    let parts: Vec<String> = alerts
        .iter()
        .filter_map(|s| {
            let alert = s.alert.as_ref()?;
            let left = s
                .budget_remaining
                .map(|b| {
                    format!(
                        "; {:.0} % of the {}-day budget left",
                        100.0 * b,
                        s.window_days
                    )
                })
                .unwrap_or_default();
            Some(format!(
                "{} SLO ({} %) burns its error budget {:.1}× too fast over {} and {} ({}){left}",
                s.slo,
                100.0 * s.objective,
                alert.burn_rate,
                alert.long_window,
                alert.short_window,
                alert.severity
            ))
        })
        .collect();
    truncate(&format!("{asset}: {}", parts.join("; ")), 500)
}
