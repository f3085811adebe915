//! Freshness automation: an asset whose contract promises a latency (`slaProperties` with
//! `latency` or `freshness`) is run, with everything upstream of it, once most of that
//! latency ([`FRESHNESS_LEAD`]) has passed since its last run, so that data landed upstream
//! reaches it before the promise is broken. An asset that has never run is left to its other
//! triggers: automation keeps assets fresh, it does not build them the first time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use weir_model::{FRESHNESS_LEAD, Project};
use weir_orchestrate::{NewRun, StateStore};

use crate::error::ServeError;

/// How often the assets' last runs are looked at: a latency SLA is seconds at the least.
const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct FreshnessWatch {
    last_check: Option<Instant>,
}

impl FreshnessWatch {
    /// Queues a run `+ASSET` for each asset due, unless one is already waiting or running;
    /// returns the assets queued.
    pub(crate) async fn enqueue_due(
        &mut self,
        project: &Project,
        state: &StateStore,
    ) -> Result<Vec<String>, ServeError> {
        if self.last_check.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return Ok(Vec::new());
        }
        self.last_check = Some(Instant::now());
        let now = Utc::now();
        // One query for every asset's last run, not one per asset each second.
        let last_runs: std::collections::HashMap<String, String> =
            state.last_run_starts().await?.into_iter().collect();
        let mut queued = Vec::new();
        for asset in &project.assets {
            let Some(latency) = asset.contract.latency_seconds() else {
                continue;
            };
            let Some(last) = last_runs.get(&asset.name) else {
                continue;
            };
            let Some(started) = DateTime::parse_from_rfc3339(last)
                .ok()
                .map(|t| t.with_timezone(&Utc))
            else {
                continue;
            };
            if !is_due(started, latency, now) {
                continue;
            }
            let trigger = format!("freshness:{}", asset.name);
            if state.has_open_run(&trigger).await? {
                continue;
            }
            let id = state
                .enqueue(&NewRun::automatic(
                    vec![format!("+{}", asset.name)],
                    trigger,
                ))
                .await?;
            tracing::info!(run = %id, asset = %asset.name, latency_secs = latency, "freshness: run queued before the latency SLA is breached");
            queued.push(asset.name.clone());
        }
        Ok(queued)
    }
}

/// Whether an asset last run at `last_run`, with a latency SLA of `latency_secs`, is due.
fn is_due(last_run: DateTime<Utc>, latency_secs: f64, now: DateTime<Utc>) -> bool {
    let lead = chrono::Duration::milliseconds((latency_secs * FRESHNESS_LEAD * 1000.0) as i64);
    now - last_run >= lead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asset_is_due_once_most_of_its_latency_has_passed() {
        let last = DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let at = |secs| last + chrono::Duration::seconds(secs);
        // A one-hour SLA: due from 48 minutes on.
        assert!(!is_due(last, 3600.0, at(0)));
        assert!(!is_due(last, 3600.0, at(47 * 60 + 59)));
        assert!(is_due(last, 3600.0, at(48 * 60)));
        assert!(is_due(last, 3600.0, at(5 * 3600)));
    }
}
