//! Renews the queue leases of every run one worker executes, together: one statement every
//! third of a lease for all of them, instead of one transaction per run (a worker with
//! `max_runs = 16` would otherwise renew sixteen times as often as it needs to).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use weir_orchestrate::StateStore;

/// Why a run's lease stopped being renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Cancelled,
    TakenOver,
}

type Watched = Arc<Mutex<HashMap<String, oneshot::Sender<Stop>>>>;

/// The lease renewals of one worker's runs; the renewing task ends when this is dropped.
pub struct Renewer {
    watched: Watched,
    task: tokio::task::JoinHandle<()>,
}

impl Renewer {
    /// Starts renewing, every third of `lease`, the leases of the runs [`Renewer::watch`]ed.
    pub fn start(state: StateStore, worker: String, lease: Duration) -> Renewer {
        let watched: Watched = Arc::default();
        let task = tokio::spawn(renew(state, worker, lease, watched.clone()));
        Renewer { watched, task }
    }

    /// Resolves when the lease on run `id` is lost (taken over, or refused because a cancel
    /// was asked for); pending while it is renewed. Dropping the future stops renewing it.
    pub async fn watch(&self, id: &str) -> Stop {
        let (tell, told) = oneshot::channel();
        lock(&self.watched).insert(id.to_string(), tell);
        let _unwatch = Unwatch {
            watched: &self.watched,
            id,
        };
        // The sender only goes away with the renewing task, which lives as long as `self`.
        told.await.unwrap_or(Stop::TakenOver)
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Stops renewing a run whose execution ended (or was stopped).
struct Unwatch<'a> {
    watched: &'a Watched,
    id: &'a str,
}

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        lock(self.watched).remove(self.id);
    }
}

fn lock(watched: &Watched) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Stop>>> {
    // The map holds no invariant a panicking holder could break half-way.
    watched.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn renew(state: StateStore, worker: String, lease: Duration, watched: Watched) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let ids: Vec<String> = lock(&watched).keys().cloned().collect();
        if ids.is_empty() {
            continue;
        }
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let held = match state.renew_leases(&worker, &refs, lease).await {
            Ok(held) => held,
            Err(e) => {
                // The leases last three renewals: the next tick tries again.
                tracing::warn!("{worker}: renewing leases failed, retrying: {e}");
                continue;
            }
        };
        for id in ids.iter().filter(|id| !held.contains(id)) {
            let cancelled = state
                .queued_run(id)
                .await
                .ok()
                .flatten()
                .is_some_and(|r| r.cancel_requested);
            if let Some(tell) = lock(&watched).remove(id) {
                let _ = tell.send(if cancelled {
                    Stop::Cancelled
                } else {
                    Stop::TakenOver
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_orchestrate::{NewRun, StateStore};

    fn run() -> NewRun {
        NewRun::automatic(vec!["a".into()], "test".into())
    }

    /// Two runs of one worker renewed together: the one cancelled is told so, the other keeps
    /// its lease past the time it would have expired without renewals.
    #[tokio::test]
    async fn a_worker_renews_its_runs_together_and_stops_the_cancelled_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let state = StateStore::connect(&url).await.expect("connect");
        state.enqueue(&run()).await.expect("enqueue");
        state.enqueue(&run()).await.expect("enqueue");
        let lease = Duration::from_millis(600);
        let claimed = state.claim_runs("w", lease, None, 2).await.expect("claim");
        assert_eq!(claimed.len(), 2);
        let renewer = Renewer::start(state.clone(), "w".into(), lease);
        state.cancel_run(&claimed[0].id).await.expect("cancel");
        let kept = tokio::time::timeout(Duration::from_millis(1500), renewer.watch(&claimed[1].id));
        let (cancelled, kept) = tokio::join!(renewer.watch(&claimed[0].id), kept);
        assert_eq!(cancelled, Stop::Cancelled);
        assert!(kept.is_err(), "the other run's lease was kept: {kept:?}");
        // 1.5 s after both 0.6 s leases began: only the cancelled run's, no longer renewed,
        // has run out.
        let expired = state.requeue_expired().await.expect("requeue");
        assert_eq!(expired, vec![claimed[0].id.clone()]);
        assert!(
            state
                .heartbeat(&claimed[1].id, "w", lease)
                .await
                .expect("heartbeat")
        );
    }
}
