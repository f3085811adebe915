//! What the periodic watchers (SLO burns, late upstreams) share: one round over the assets,
//! opening an incident of their kind on an asset whose root cause nobody has been told yet and
//! resolving their own once the cause is gone.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use weir_model::Project;
use weir_orchestrate::{AssetGraph, Incident, NewIncident, StateStore};

use crate::channel::deliverable_channels;
use crate::error::ObserveError;
use crate::observe::{Observed, affected, unresolved_by_root, upstream_incident};

/// One round of a watcher that opens incidents of `kind`.
pub(crate) struct Round<'a> {
    project: &'a Project,
    graph: &'a AssetGraph,
    state: &'a StateStore,
    now: DateTime<Utc>,
    kind: &'static str,
    unresolved: BTreeMap<String, Incident>,
    pub observed: Observed,
}

impl<'a> Round<'a> {
    pub async fn start(
        project: &'a Project,
        graph: &'a AssetGraph,
        state: &'a StateStore,
        now: DateTime<Utc>,
        kind: &'static str,
    ) -> Result<Round<'a>, ObserveError> {
        Ok(Round {
            project,
            graph,
            state,
            now,
            kind,
            unresolved: unresolved_by_root(state).await?,
            observed: Observed::default(),
        })
    }

    /// Resolves the asset's open incident of this round's kind, if it has one.
    pub async fn clear(&mut self, asset: &str, detail: &str) -> Result<(), ObserveError> {
        if let Some(own) = self.unresolved.get(asset).filter(|i| i.kind == self.kind)
            && self
                .state
                .resolve_incident(own.id, "weir", None, detail)
                .await?
            && let Some(resolved) = self.state.incident(own.id).await?
        {
            self.unresolved.remove(asset);
            self.observed.resolved.push(resolved);
        }
        Ok(())
    }

    /// Whether the asset, or an asset upstream of it, already has an incident open: the root
    /// cause is being told.
    pub fn told(&self, asset: &str) -> bool {
        self.unresolved.contains_key(asset)
            || upstream_incident(self.graph, asset, &self.unresolved).is_some()
    }

    /// Opens an incident of this round's kind on the asset, routed to its team.
    pub async fn open(&mut self, asset: &str, title: String) -> Result<(), ObserveError> {
        let Some(found) = self.project.asset(asset) else {
            return Ok(());
        };
        let new = NewIncident {
            root_asset: asset.to_string(),
            team: found.team().map(str::to_string),
            owners: found.owners(),
            kind: self.kind.into(),
            title,
            started_at: self.now.to_rfc3339_opts(SecondsFormat::Micros, true),
            affected: affected(self.project, self.graph, asset),
            opened_by: "weir".into(),
            run_id: None,
        };
        let channels = deliverable_channels(self.project, found.team());
        let (incident, opened) = self.state.open_incident(&new, &channels).await?;
        if opened {
            self.observed
                .opened
                .push((incident.clone(), channels.len()));
        }
        self.unresolved.insert(asset.to_string(), incident);
        Ok(())
    }
}
