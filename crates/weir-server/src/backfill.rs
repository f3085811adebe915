//! `weir backfill ASSET --from A --to B`: one queued run per partition of a partitioned
//! model, all queued in one transaction under one trigger (`backfill:<asset>:<from>..<to>`),
//! then executed here (or by `weir serve` and `weir worker`, which claim them like any run).
//!
//! Resumable by construction: the queue is the backfill's state. Running the same command
//! again queues only the partitions that have no run yet or whose last run failed or was
//! cancelled; a run left `running` by a killed process is queued again once its lease
//! expires, and re-running a partition replaces it (it is never appended twice).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use weir_orchestrate::{AttemptOutcome, NewRun, QueuedRun, StateStore};

use crate::error::ServeError;
use crate::execute::execute;
use crate::renewer::Renewer;
use crate::service::{Role, executor_name, open};

/// How often a backfill waiting on runs it cannot claim (another process runs them, or a
/// retry waits for its backoff) looks again.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub asset: String,
    pub from: String,
    pub to: String,
    /// Queue the runs and return: `weir serve` or `weir worker` executes them.
    pub enqueue_only: bool,
    /// Attempts per partition (retries with backoff on errors that may pass).
    pub max_attempts: u32,
}

/// Where one partition stands.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionState {
    pub partition: String,
    /// The queue status of its latest run: queued, retrying, running, succeeded, failed,
    /// cancelled.
    pub status: String,
    pub run_id: String,
    pub attempts: i64,
    pub error: Option<String>,
}

/// Where the whole backfill stands.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillReport {
    pub trigger: String,
    pub asset: String,
    /// Partitions given a new run by this invocation (the others already had one).
    pub queued_now: usize,
    pub partitions: Vec<PartitionState>,
    pub succeeded: usize,
    pub failed: usize,
    /// Queued, retrying or running (only when the runs were left to others).
    pub pending: usize,
    /// Assets downstream of the backfilled one that are stale now.
    pub stale_downstream: Vec<String>,
}

impl BackfillReport {
    pub fn done(&self) -> usize {
        self.succeeded + self.failed
    }
}

fn is_open(status: &str) -> bool {
    matches!(status, "queued" | "retrying" | "running")
}

/// What [`enqueue`] queued.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub trigger: String,
    /// Every partition of the range, in order.
    pub partitions: Vec<weir_model::PartitionKey>,
    pub queued_now: usize,
}

/// Queues, in one transaction, a run for each partition of the range that has none yet or
/// whose latest run failed or was cancelled.
pub(crate) async fn enqueue(
    project: &weir_model::Project,
    state: &StateStore,
    request: &BackfillRequest,
) -> Result<Queued, ServeError> {
    let asset = &request.asset;
    let partitioning = project
        .asset(asset)
        .ok_or_else(|| {
            ServeError::Request(format!(
                "unknown asset `{asset}`{}",
                weir_model::did_you_mean(asset, project.assets.iter().map(|a| &a.name))
            ))
        })?
        .model
        .as_ref()
        .and_then(|m| m.partition.clone())
        .ok_or_else(|| {
            ServeError::Request(format!(
                "`{asset}` is not a partitioned model: add `-- weir: partition_by = <date or timestamp column>` to models/{asset}.sql"
            ))
        })?;
    let keys = weir_model::partition_range(partitioning.grain, &request.from, &request.to)
        .map_err(ServeError::Request)?;
    // Normalized names, so `--from 2026-11-01T5` and `2026-11-01T05` are one backfill.
    let (first, last) = match (keys.first(), keys.last()) {
        (Some(f), Some(l)) => (f.to_string(), l.to_string()),
        _ => return Err(ServeError::Request("no partition in the range".into())),
    };
    let trigger = format!("backfill:{asset}:{first}..{last}");
    let before = state.runs_with_trigger(&trigger).await?;
    let latest = latest_by_partition(&before);
    let to_queue: Vec<NewRun> = keys
        .iter()
        .map(ToString::to_string)
        .filter(|k| {
            latest
                .get(k)
                .is_none_or(|r| matches!(r.status.as_str(), "failed" | "cancelled"))
        })
        .map(|k| NewRun {
            max_attempts: request.max_attempts.max(1),
            partition: Some(k),
            ..NewRun::automatic(vec![asset.clone()], trigger.clone())
        })
        .collect();
    state.enqueue_all(&to_queue).await?;
    Ok(Queued {
        trigger,
        partitions: keys,
        queued_now: to_queue.len(),
    })
}

/// Queues the partitions of `request` that need a run and, unless `enqueue_only`, executes
/// them; `on_finished` is called as each partition's run ends here.
pub async fn backfill(
    root: &Path,
    request: &BackfillRequest,
    mut on_finished: impl FnMut(&PartitionState),
) -> Result<BackfillReport, ServeError> {
    let (project, state, _) = open(root).await?;
    let result = async {
        let asset = &request.asset;
        let queued = enqueue(&project, &state, request).await?;
        let (trigger, keys, queued_now) = (queued.trigger, queued.partitions, queued.queued_now);
        let mut stale = std::collections::BTreeSet::new();
        if !request.enqueue_only {
            drain(
                root,
                &project,
                &state,
                &trigger,
                &mut stale,
                &mut on_finished,
            )
            .await?;
        }
        let runs = state.runs_with_trigger(&trigger).await?;
        let latest = latest_by_partition(&runs);
        let partitions: Vec<PartitionState> = keys
            .iter()
            .filter_map(|k| latest.get(&k.to_string()))
            .map(|r| partition_state(r))
            .collect();
        let count = |f: &dyn Fn(&str) -> bool| partitions.iter().filter(|p| f(&p.status)).count();
        Ok(BackfillReport {
            succeeded: count(&|s| s == "succeeded"),
            failed: count(&|s| s == "failed" || s == "cancelled"),
            pending: count(&is_open),
            trigger,
            asset: asset.clone(),
            queued_now,
            partitions,
            stale_downstream: stale.into_iter().collect(),
        })
    }
    .await;
    state.close().await;
    result
}

/// Claims and executes the backfill's runs until none is waiting or running; waits for the
/// ones another process runs and for retries' backoff.
async fn drain(
    root: &Path,
    project: &weir_model::Project,
    state: &StateStore,
    trigger: &str,
    stale: &mut std::collections::BTreeSet<String>,
    on_finished: &mut impl FnMut(&PartitionState),
) -> Result<(), ServeError> {
    let worker = executor_name(Role::Backfill);
    let lease = Duration::from_secs(project.config.serve.lease_secs.max(1));
    let renewer = Renewer::start(state.clone(), worker.clone(), lease);
    let mut seen: Option<std::time::Instant> = None;
    loop {
        if seen.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            state.worker_seen(&worker, Role::Backfill.name()).await?;
            seen = Some(std::time::Instant::now());
        }
        // A run whose process died (an earlier backfill killed mid-run) is queued again.
        state.requeue_expired().await?;
        if let Some(run) = state.claim_run_of(&worker, lease, Some(trigger)).await? {
            let executed = execute(root, state, &renewer, &run).await;
            state
                .finish_attempt(&run.id, &worker, &executed.outcome)
                .await?;
            stale.extend(executed.stale_downstream);
            if let Some(now) = state.queued_run(&run.id).await? {
                on_finished(&partition_state(&now));
            }
            if matches!(executed.outcome, AttemptOutcome::Cancelled(_)) {
                tracing::info!(run = %run.id, "cancelled");
            }
            continue;
        }
        let runs = state.runs_with_trigger(trigger).await?;
        if !latest_by_partition(&runs)
            .values()
            .any(|r| is_open(&r.status))
        {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    state.worker_gone(&worker).await?;
    Ok(())
}

/// Each partition's latest run (runs come oldest first).
fn latest_by_partition(runs: &[QueuedRun]) -> BTreeMap<String, &QueuedRun> {
    let mut latest = BTreeMap::new();
    for run in runs {
        if let Some(p) = &run.partition {
            latest.insert(p.clone(), run);
        }
    }
    latest
}

fn partition_state(run: &QueuedRun) -> PartitionState {
    PartitionState {
        partition: run.partition.clone().unwrap_or_default(),
        status: run.status.clone(),
        run_id: run.id.clone(),
        attempts: run.attempt,
        error: run.error.clone(),
    }
}
