//! The durable run queue of `weir serve`, in the state store.
//!
//! A queued run is a selection of assets to run (what `weir run SELECTORS` would run) with a
//! state machine whose every transition is recorded with its time: `queued` → `running` →
//! `succeeded` / `failed` / `cancelled`, and `retrying` while a failed attempt waits for its
//! backoff. A process executing a run holds a lease on it and renews it by heartbeat; a run
//! whose lease expired (its process died) is queued again. Claiming is one statement, so two
//! processes can never claim the same run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::{OrchestrateError, Result};
use crate::state::{StateStore, WriteTx, now, state_err, timestamp};

/// Times a run whose process died is queued again beyond its own attempts: a crash is not the
/// run's fault, but a run that kills its process every time must stop somewhere.
const CRASH_ALLOWANCE: i64 = 2;
/// The first retry waits this long; each further one twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Runs renewed by one statement: well under SQLite's and PostgreSQL's limits on bound values.
const RENEW_CHUNK: usize = 500;

/// A run to put in the queue.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub selection: Vec<String>,
    /// What asked for it: `schedule:<job>`, `file:<source>`, `api`, ...
    pub trigger: String,
    pub full_refresh: bool,
    pub priority: i64,
    pub max_attempts: u32,
    /// An attempt running longer is stopped (nothing it staged is published) and retried.
    pub timeout_secs: Option<u64>,
    /// How long the run waits before it may start (a debounce: triggers arriving meanwhile
    /// find it waiting and add no run).
    pub delay: Duration,
    /// Recompute only this partition of the selected (partitioned) models.
    pub partition: Option<String>,
}

impl NewRun {
    /// A run an automation asks for (a file arrival, an upstream publication, freshness): no
    /// full refresh, ordinary priority, three attempts, no timeout, no delay.
    pub fn automatic(selection: Vec<String>, trigger: String) -> NewRun {
        NewRun {
            selection,
            trigger,
            full_refresh: false,
            priority: 0,
            max_attempts: 3,
            timeout_secs: None,
            delay: Duration::ZERO,
            partition: None,
        }
    }
}

/// A run in the queue, as the API and `weir trigger` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedRun {
    pub id: String,
    pub selection: Vec<String>,
    pub trigger: String,
    pub full_refresh: bool,
    pub priority: i64,
    pub status: String,
    pub attempt: i64,
    pub max_attempts: i64,
    pub timeout_secs: Option<i64>,
    pub not_before: String,
    pub enqueued_at: String,
    pub claimed_by: Option<String>,
    pub lease_until: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    /// The partition it recomputes, if it is a partition run.
    pub partition: Option<String>,
}

/// One transition of a queued run.
#[derive(Debug, Clone, Serialize)]
pub struct QueueEvent {
    pub status: String,
    pub at: String,
    pub detail: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Succeeded,
    /// Failed with this reason (an error that may pass: I/O, a lock, a crash); retried while
    /// attempts remain.
    Failed(String),
    /// Failed in a way a retry cannot change (a blocking check on the data, a definition
    /// that needs a full refresh): failed at once.
    Refused(String),
    Cancelled(String),
}

fn row_to_run(row: &sqlx::any::AnyRow) -> Result<QueuedRun> {
    let selection: String = row.try_get("selection").map_err(state_err)?;
    let selection = serde_json::from_str(&selection)
        .map_err(|e| OrchestrateError::State(format!("run_queue.selection: {e}")))?;
    Ok(QueuedRun {
        id: row.try_get("id").map_err(state_err)?,
        selection,
        trigger: row.try_get("trigger").map_err(state_err)?,
        full_refresh: row.try_get::<i64, _>("full_refresh").map_err(state_err)? != 0,
        priority: row.try_get("priority").map_err(state_err)?,
        status: row.try_get("status").map_err(state_err)?,
        attempt: row.try_get("attempt").map_err(state_err)?,
        max_attempts: row.try_get("max_attempts").map_err(state_err)?,
        timeout_secs: row.try_get("timeout_secs").map_err(state_err)?,
        not_before: row.try_get("not_before").map_err(state_err)?,
        enqueued_at: row.try_get("enqueued_at").map_err(state_err)?,
        claimed_by: row.try_get("claimed_by").map_err(state_err)?,
        lease_until: row.try_get("lease_until").map_err(state_err)?,
        started_at: row.try_get("started_at").map_err(state_err)?,
        ended_at: row.try_get("ended_at").map_err(state_err)?,
        error: row.try_get("error").map_err(state_err)?,
        cancel_requested: row
            .try_get::<i64, _>("cancel_requested")
            .map_err(state_err)?
            != 0,
        partition: row.try_get("partition_key").map_err(state_err)?,
    })
}

fn after(duration: Duration) -> String {
    timestamp(Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default())
}

/// The queue's retry backoff: [`jittered_backoff`] from `FIRST_BACKOFF`, capped at
/// `MAX_BACKOFF`, half of it fixed and half random, so retries of many runs do not arrive
/// together and never at once.
pub fn backoff(attempt: i64) -> Duration {
    jittered_backoff(attempt, FIRST_BACKOFF, MAX_BACKOFF, 0.5)
}

/// Exponential backoff with jitter: attempt `n`'s ceiling is `first * 2^(n-1)`, capped at
/// `cap`; it waits the `fixed` share of that ceiling plus a random part of the rest.
pub fn jittered_backoff(attempt: i64, first: Duration, cap: Duration, fixed: f64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let ceiling = first.saturating_mul(2u32.saturating_pow(exponent)).min(cap);
    let floor = ceiling.mul_f64(fixed.clamp(0.0, 1.0));
    let spread = (ceiling - floor).as_millis() as u64;
    floor + Duration::from_millis(rand::rng().random_range(0..=spread))
}

impl StateStore {
    /// Queues a run; returns its id.
    pub async fn enqueue(&self, run: &NewRun) -> Result<String> {
        let mut ids = self.enqueue_all(std::slice::from_ref(run)).await?;
        ids.pop()
            .ok_or_else(|| OrchestrateError::State("no run was queued".into()))
    }

    /// Queues several runs in one transaction (a backfill's partitions): all or none.
    pub async fn enqueue_all(&self, runs: &[NewRun]) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(runs.len());
        for run in runs {
            let id = new_id();
            insert_queued(&mut tx, &id, run).await?;
            ids.push(id);
        }
        tx.commit().await.map_err(state_err)?;
        Ok(ids)
    }

    /// Every run queued with `trigger`, oldest first.
    pub async fn runs_with_trigger(&self, trigger: &str) -> Result<Vec<QueuedRun>> {
        let rows =
            sqlx::query("SELECT * FROM run_queue WHERE trigger = $1 ORDER BY enqueued_at, id")
                .bind(trigger)
                .fetch_all(&self.pool)
                .await
                .map_err(state_err)?;
        rows.iter().map(row_to_run).collect()
    }

    /// Queues the run of a schedule tick, once: a tick already queued (by this process before
    /// a restart, or after the clock stepped back) is not queued again. Returns the run's id
    /// when it was queued now.
    pub async fn enqueue_tick(
        &self,
        job: &str,
        tick: DateTime<Utc>,
        run: &NewRun,
    ) -> Result<Option<String>> {
        let mut tx = self.begin_write().await?;
        let id = new_id();
        // The tick's row first: of two processes queuing one tick, the second waits for the
        // first's commit and then finds the row (the transaction it drops queues nothing).
        let inserted = sqlx::query(
            "INSERT INTO schedule_ticks (job, tick, queue_id) VALUES ($1, $2, $3) ON CONFLICT (job, tick) DO NOTHING",
        )
        .bind(job)
        .bind(timestamp(tick))
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(state_err)?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        insert_queued(&mut tx, &id, run).await?;
        tx.commit().await.map_err(state_err)?;
        Ok(Some(id))
    }

    /// Records `tick` of `job` as passed without a run (a missed tick under
    /// `catch_up = "skip"`), so the next tick is computed from it.
    pub async fn skip_tick(&self, job: &str, tick: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO schedule_ticks (job, tick, queue_id) VALUES ($1, $2, '') ON CONFLICT (job, tick) DO NOTHING",
        )
        .bind(job)
        .bind(timestamp(tick))
        .execute(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(())
    }

    /// The latest tick of `job` that was queued.
    pub async fn last_tick(&self, job: &str) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT MAX(tick) AS tick FROM schedule_ticks WHERE job = $1")
            .bind(job)
            .fetch_one(&self.pool)
            .await
            .map_err(state_err)?;
        let tick: Option<String> = row.try_get("tick").map_err(state_err)?;
        Ok(tick
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// Whether a run that selects at least `selection` is waiting to start: a file that
    /// arrives while one waits needs no run of its own, the waiting one will read it.
    pub async fn has_waiting(&self, selection: &[String]) -> Result<bool> {
        let rows =
            sqlx::query("SELECT selection FROM run_queue WHERE status IN ('queued', 'retrying')")
                .fetch_all(&self.pool)
                .await
                .map_err(state_err)?;
        for row in rows {
            let text: String = row.try_get("selection").map_err(state_err)?;
            let waiting: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
            if selection.iter().all(|s| waiting.contains(s)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether a run with `trigger` is waiting or running: a trigger that fires again meanwhile
    /// adds no run.
    pub async fn has_open_run(&self, trigger: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM run_queue WHERE trigger = $1 AND status IN ('queued', 'retrying', 'running') LIMIT 1",
        )
        .bind(trigger)
        .fetch_optional(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(row.is_some())
    }

    /// Claims the most urgent run that may start now, for `worker`, with a lease of `lease`.
    pub async fn claim_run(&self, worker: &str, lease: Duration) -> Result<Option<QueuedRun>> {
        self.claim_run_of(worker, lease, None).await
    }

    /// [`StateStore::claim_run`], among the runs with `trigger` only when one is given (a
    /// `weir backfill` executing its own runs).
    pub async fn claim_run_of(
        &self,
        worker: &str,
        lease: Duration,
        trigger: Option<&str>,
    ) -> Result<Option<QueuedRun>> {
        Ok(self.claim_runs(worker, lease, trigger, 1).await?.pop())
    }

    /// Claims up to `max` runs, most urgent first, in one transaction: a worker with several
    /// free slots fills them with one durable commit instead of one each.
    pub async fn claim_runs(
        &self,
        worker: &str,
        lease: Duration,
        trigger: Option<&str>,
        max: usize,
    ) -> Result<Vec<QueuedRun>> {
        let mut tx = self.begin_write().await?;
        let runs = self.claim_in(&mut tx, worker, lease, trigger, max).await?;
        if runs.is_empty() {
            return Ok(runs);
        }
        tx.commit().await.map_err(state_err)?;
        Ok(runs)
    }

    /// [`StateStore::finish_attempts`] and then [`StateStore::claim_runs`] (of any trigger)
    /// in one transaction: a worker whose runs ended, and which has nothing to queue in
    /// between, records them and takes the next ones with one durable commit instead of two.
    /// All or nothing: when the commit fails, no attempt is ended and no run claimed.
    pub async fn finish_and_claim(
        &self,
        worker: &str,
        ended: &[(&str, &AttemptOutcome)],
        lease: Duration,
        max: usize,
    ) -> Result<Vec<QueuedRun>> {
        if ended.is_empty() {
            return self.claim_runs(worker, lease, None, max).await;
        }
        let mut tx = self.begin_write().await?;
        self.end_in(&mut tx, worker, ended).await?;
        let runs = self.claim_in(&mut tx, worker, lease, None, max).await?;
        tx.commit().await.map_err(state_err)?;
        Ok(runs)
    }

    /// Claims up to `max` runs in `tx` and records their `running` events there.
    async fn claim_in(
        &self,
        tx: &mut WriteTx,
        worker: &str,
        lease: Duration,
        trigger: Option<&str>,
        max: usize,
    ) -> Result<Vec<QueuedRun>> {
        let at = now();
        let until = after(lease);
        let claim = self.claim_statement();
        let mut runs = Vec::new();
        let mut events = Vec::new();
        while runs.len() < max {
            let row = sqlx::query(&claim)
                .bind(worker)
                .bind(&until)
                .bind(&at)
                .bind(trigger)
                .fetch_optional(&mut **tx)
                .await
                .map_err(state_err)?;
            let Some(row) = row else {
                break;
            };
            let run = row_to_run(&row)?;
            events.push(Event {
                id: run.id.clone(),
                status: "running",
                detail: Some(format!("attempt {} by {worker}", run.attempt)),
            });
            runs.push(run);
        }
        if !runs.is_empty() {
            record_events(tx, &events, &at).await?;
        }
        Ok(runs)
    }

    /// The statement that claims a run: $1 the worker, $2 its lease's end, $3 now, $4 the
    /// trigger or NULL. It reads the waiting runs in claim order from `run_queue_claimable`
    /// and stops at the first that may start, so a claim costs the same with ten runs waiting
    /// or a million. On PostgreSQL, workers claiming together each skip the row another is
    /// taking.
    pub(crate) fn claim_statement(&self) -> String {
        format!(
            "UPDATE run_queue SET status = 'running', attempt = attempt + 1, claimed_by = $1,
                lease_until = $2, started_at = $3, ended_at = NULL
             WHERE id = (SELECT id FROM run_queue{}
                         WHERE status IN ('queued', 'retrying') AND not_before <= $3 AND cancel_requested = 0
                           AND ($4 IS NULL OR trigger = $4)
                         ORDER BY priority DESC, not_before, enqueued_at, id LIMIT 1{})
             RETURNING *",
            self.claim_order_index(),
            self.skip_locked()
        )
    }

    /// Renews `worker`'s lease on run `id`. False when the lease is no longer its own (another
    /// process took the run over) or a cancel was asked for: the worker stops the run.
    pub async fn heartbeat(&self, id: &str, worker: &str, lease: Duration) -> Result<bool> {
        Ok(self.renew_leases(worker, &[id], lease).await?.len() == 1)
    }

    /// Renews `worker`'s leases on runs `ids`, in one statement per [`RENEW_CHUNK`] runs (a
    /// worker executing many runs at once renews them together, not one transaction each).
    /// Returns the ids whose lease is still `worker`'s; a run missing from it was taken over
    /// by another process or asked to cancel, and its worker stops it. Through the lease
    /// pool: the renewal is not waited on to reach the disk (see `SQLITE_LEASE_PRAGMAS`).
    pub async fn renew_leases(
        &self,
        worker: &str,
        ids: &[&str],
        lease: Duration,
    ) -> Result<Vec<String>> {
        let until = after(lease);
        let mut held = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(RENEW_CHUNK) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let statement = format!(
                "UPDATE run_queue SET lease_until = $1
                 WHERE claimed_by = $2 AND status = 'running' AND cancel_requested = 0
                   AND id IN ({})
                 RETURNING id",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&statement).bind(until.clone()).bind(worker);
            for id in chunk {
                query = query.bind(*id);
            }
            let rows = query.fetch_all(&self.lease_pool).await.map_err(state_err)?;
            for row in rows {
                held.push(row.try_get::<String, _>("id").map_err(state_err)?);
            }
        }
        Ok(held)
    }

    /// Ends `worker`'s attempt at run `id`. A failure with attempts left goes to `retrying`
    /// with a backoff. Does nothing if the run is no longer `worker`'s.
    pub async fn finish_attempt(
        &self,
        id: &str,
        worker: &str,
        outcome: &AttemptOutcome,
    ) -> Result<()> {
        self.finish_attempts(worker, &[(id, outcome)]).await
    }

    /// [`StateStore::finish_attempt`] for each of `ended`, in one transaction: the runs of a
    /// worker that ended since it last looked are recorded with one durable commit, all or
    /// none.
    pub async fn finish_attempts(
        &self,
        worker: &str,
        ended: &[(&str, &AttemptOutcome)],
    ) -> Result<()> {
        if ended.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        self.end_in(&mut tx, worker, ended).await?;
        tx.commit().await.map_err(state_err)
    }

    /// Ends `worker`'s attempts at `ended` in `tx` and records their events there.
    async fn end_in(
        &self,
        tx: &mut WriteTx,
        worker: &str,
        ended: &[(&str, &AttemptOutcome)],
    ) -> Result<()> {
        let at = now();
        let mut events = Vec::with_capacity(ended.len());
        for (id, outcome) in ended {
            events.extend(end_attempt(self, tx, id, worker, outcome, &at).await?);
        }
        record_events(tx, &events, &at).await
    }

    /// Queues again the runs whose process stopped heartbeating; returns their ids.
    pub async fn requeue_expired(&self) -> Result<Vec<String>> {
        let at = now();
        let mut tx = self.begin_write().await?;
        // Rows another process holds are being finished or requeued by it: skipped. A run
        // whose process is of this machine and gone is taken back at once, before its lease
        // runs out.
        let rows = sqlx::query(&format!(
            "SELECT id, attempt, max_attempts, claimed_by, lease_until FROM run_queue WHERE status = 'running' ORDER BY id{}",
            self.skip_locked()
        ))
        .fetch_all(&mut *tx)
        .await
        .map_err(state_err)?;
        let mut requeued = Vec::new();
        for row in rows {
            let lease_until: Option<String> = row.try_get("lease_until").map_err(state_err)?;
            let claimed_by: Option<String> = row.try_get("claimed_by").map_err(state_err)?;
            let expired = lease_until.is_none_or(|l| l < at);
            if !expired
                && !claimed_by
                    .as_deref()
                    .is_some_and(crate::leases::holder_is_gone)
            {
                continue;
            }
            let id: String = row.try_get("id").map_err(state_err)?;
            let attempt: i64 = row.try_get("attempt").map_err(state_err)?;
            let max_attempts: i64 = row.try_get("max_attempts").map_err(state_err)?;
            let worker: Option<String> = row.try_get("claimed_by").map_err(state_err)?;
            let worker = worker.unwrap_or_default();
            let (status, detail) = if attempt < max_attempts + CRASH_ALLOWANCE {
                (
                    "queued",
                    format!("{worker} stopped heartbeating during attempt {attempt}; queued again"),
                )
            } else {
                (
                    "failed",
                    format!(
                        "{worker} stopped heartbeating during attempt {attempt}, its last; the run kills or hangs its process"
                    ),
                )
            };
            sqlx::query(
                "UPDATE run_queue SET status = $1, claimed_by = NULL, lease_until = NULL, not_before = $2,
                    error = $3, ended_at = CASE WHEN $1 = 'failed' THEN $2 ELSE NULL END
                 WHERE id = $4",
            )
            .bind(status)
            .bind(&at)
            .bind(&detail)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
            record_event(&mut tx, &id, status, &at, Some(&detail)).await?;
            requeued.push(id);
        }
        tx.commit().await.map_err(state_err)?;
        Ok(requeued)
    }

    /// Asks for run `id` to stop: a waiting run is cancelled at once, a running one when its
    /// process next heartbeats. Returns the run's status after the request, None if unknown.
    pub async fn cancel_run(&self, id: &str) -> Result<Option<String>> {
        let at = now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT status FROM run_queue WHERE id = $1{}",
            self.for_update()
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(state_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let status: String = row.try_get("status").map_err(state_err)?;
        let new_status = match status.as_str() {
            "queued" | "retrying" => {
                sqlx::query(
                    "UPDATE run_queue SET status = 'cancelled', ended_at = $1, cancel_requested = 1 WHERE id = $2",
                )
                .bind(&at)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(state_err)?;
                record_event(
                    &mut tx,
                    id,
                    "cancelled",
                    &at,
                    Some("cancelled before it started"),
                )
                .await?;
                "cancelled".to_string()
            }
            "running" => {
                sqlx::query("UPDATE run_queue SET cancel_requested = 1 WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(state_err)?;
                "running".to_string()
            }
            _ => status,
        };
        tx.commit().await.map_err(state_err)?;
        Ok(Some(new_status))
    }

    pub async fn queued_run(&self, id: &str) -> Result<Option<QueuedRun>> {
        let row = sqlx::query("SELECT * FROM run_queue WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(state_err)?;
        row.as_ref().map(row_to_run).transpose()
    }

    /// Queued runs, newest first, optionally of one status.
    pub async fn queued_runs(&self, status: Option<&str>, limit: u32) -> Result<Vec<QueuedRun>> {
        let rows = sqlx::query(
            "SELECT * FROM run_queue WHERE ($1 IS NULL OR status = $1) ORDER BY enqueued_at DESC, id DESC LIMIT $2",
        )
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter().map(row_to_run).collect()
    }

    /// Every transition of run `id`, in order.
    pub async fn queue_events(&self, id: &str) -> Result<Vec<QueueEvent>> {
        let rows = sqlx::query(
            "SELECT status, at, detail FROM run_queue_events WHERE queue_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter()
            .map(|r| {
                Ok(QueueEvent {
                    status: r.try_get("status").map_err(state_err)?,
                    at: r.try_get("at").map_err(state_err)?,
                    detail: r.try_get("detail").map_err(state_err)?,
                })
            })
            .collect()
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn insert_queued(tx: &mut WriteTx, id: &str, run: &NewRun) -> Result<()> {
    let at = now();
    let not_before = after(run.delay);
    let selection = serde_json::to_string(&run.selection)
        .map_err(|e| OrchestrateError::State(e.to_string()))?;
    sqlx::query(
        "INSERT INTO run_queue (id, selection, trigger, full_refresh, priority, status, max_attempts, timeout_secs, not_before, enqueued_at, partition_key)
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(selection)
    .bind(&run.trigger)
    .bind(i64::from(run.full_refresh))
    .bind(run.priority)
    .bind(i64::from(run.max_attempts.max(1)))
    .bind(run.timeout_secs.map(|t| i64::try_from(t).unwrap_or(i64::MAX)))
    .bind(&not_before)
    .bind(&at)
    .bind(&run.partition)
    .execute(&mut **tx)
    .await
    .map_err(state_err)?;
    record_event(tx, id, "queued", &at, Some(&run.trigger)).await?;
    Ok(())
}

/// Ends `worker`'s attempt at run `id` inside `tx` (see [`StateStore::finish_attempt`]);
/// returns the transition to record, or `None` when the run is no longer `worker`'s.
async fn end_attempt(
    store: &StateStore,
    tx: &mut WriteTx,
    id: &str,
    worker: &str,
    outcome: &AttemptOutcome,
    at: &str,
) -> Result<Option<Event>> {
    let (status, error) = match outcome {
        AttemptOutcome::Succeeded => ("succeeded", None),
        AttemptOutcome::Cancelled(why) => ("cancelled", Some(why)),
        AttemptOutcome::Failed(why) => return fail_attempt(store, tx, id, worker, why, at).await,
        AttemptOutcome::Refused(why) => ("failed", Some(why)),
    };
    // An end that does not depend on the attempt number is one statement.
    let ended = sqlx::query(
        "UPDATE run_queue SET status = $1, ended_at = $2, error = $3, claimed_by = NULL, lease_until = NULL
         WHERE id = $4 AND claimed_by = $5 AND status = 'running'
         RETURNING id",
    )
    .bind(status)
    .bind(at)
    .bind(error)
    .bind(id)
    .bind(worker)
    .fetch_optional(&mut **tx)
    .await
    .map_err(state_err)?;
    Ok(ended.map(|_| Event {
        id: id.to_string(),
        status,
        detail: error.cloned(),
    }))
}

/// A failed attempt: `retrying` after a backoff that grows with the attempt number while
/// attempts remain, `failed` after the last.
async fn fail_attempt(
    store: &StateStore,
    tx: &mut WriteTx,
    id: &str,
    worker: &str,
    why: &str,
    at: &str,
) -> Result<Option<Event>> {
    let row = sqlx::query(&format!(
        "SELECT attempt, max_attempts FROM run_queue WHERE id = $1 AND claimed_by = $2 AND status = 'running'{}",
        store.for_update()
    ))
    .bind(id)
    .bind(worker)
    .fetch_optional(&mut **tx)
    .await
    .map_err(state_err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let attempt: i64 = row.try_get("attempt").map_err(state_err)?;
    let max_attempts: i64 = row.try_get("max_attempts").map_err(state_err)?;
    let (status, not_before, ended) = if attempt < max_attempts {
        ("retrying", Some(after(backoff(attempt))), None)
    } else {
        ("failed", None, Some(at))
    };
    sqlx::query(
        "UPDATE run_queue SET status = $1, not_before = COALESCE($2, not_before), ended_at = $3,
            error = $4, claimed_by = NULL, lease_until = NULL
         WHERE id = $5",
    )
    .bind(status)
    .bind(&not_before)
    .bind(ended)
    .bind(why)
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(state_err)?;
    let detail = match &not_before {
        Some(when) => format!("{why}; attempt {} at {when}", attempt + 1),
        None => why.to_string(),
    };
    Ok(Some(Event {
        id: id.to_string(),
        status,
        detail: Some(detail),
    }))
}

/// A transition of a queued run, to record in `run_queue_events`.
struct Event {
    id: String,
    status: &'static str,
    detail: Option<String>,
}

/// Records `events`, all at `at`, in as few statements as the databases' limits on bound
/// values allow (a batch of claims or ends is one statement, not one per run).
async fn record_events(tx: &mut WriteTx, events: &[Event], at: &str) -> Result<()> {
    for chunk in events.chunks(500) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(${}, ${}, ${}, ${})",
                    4 * i + 1,
                    4 * i + 2,
                    4 * i + 3,
                    4 * i + 4
                )
            })
            .collect();
        let statement = format!(
            "INSERT INTO run_queue_events (queue_id, status, at, detail) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&statement);
        for event in chunk {
            query = query
                .bind(event.id.as_str())
                .bind(event.status)
                .bind(at)
                .bind(event.detail.as_deref());
        }
        query.execute(&mut **tx).await.map_err(state_err)?;
    }
    Ok(())
}

async fn record_event(
    tx: &mut WriteTx,
    id: &str,
    status: &str,
    at: &str,
    detail: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO run_queue_events (queue_id, status, at, detail) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(status)
    .bind(at)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map_err(state_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Backend;

    /// A fresh store on each backend: SQLite in a temporary folder, and a new database on the
    /// test PostgreSQL server. Each comes with its URL, for tests that open more connections.
    async fn backends() -> Vec<(String, StateStore, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = format!("sqlite://{}", dir.path().join("state.db").display());
        let postgres = crate::testing::fresh_postgres_database()
            .await
            .expect("a PostgreSQL database for the test");
        let mut stores = Vec::new();
        for url in [sqlite, postgres] {
            let state = StateStore::connect(&url).await.expect("connect");
            stores.push((url, state, tempfile::tempdir().expect("tempdir")));
        }
        // The SQLite file's folder lives as long as the first store.
        stores[0].2 = dir;
        stores
    }

    fn run(trigger: &str, priority: i64, max_attempts: u32) -> NewRun {
        NewRun {
            selection: vec!["orders+".into()],
            trigger: trigger.into(),
            full_refresh: false,
            priority,
            max_attempts,
            timeout_secs: None,
            delay: Duration::ZERO,
            partition: None,
        }
    }

    /// A claim reads the waiting runs in order from `run_queue_claimable` instead of sorting
    /// all of them: on both backends its plan uses that index and holds no sort, with a queue
    /// deep enough for PostgreSQL's planner to weigh a sort against it.
    #[tokio::test]
    async fn a_claim_reads_the_queue_in_order_instead_of_sorting_it() {
        for (url, state, _dir) in backends().await {
            let runs: Vec<NewRun> = (0..2000).map(|i| run("api", i % 3, 1)).collect();
            state.enqueue_all(&runs).await.expect("enqueue");
            if state.backend() == Backend::Postgres {
                sqlx::query("ANALYZE run_queue")
                    .execute(&state.pool)
                    .await
                    .expect("analyze");
            }
            let explain = match state.backend() {
                Backend::Sqlite => "EXPLAIN QUERY PLAN ",
                Backend::Postgres => "EXPLAIN ",
            };
            let rows = sqlx::query(&format!("{explain}{}", state.claim_statement()))
                .bind("w")
                .bind(after(Duration::from_secs(60)))
                .bind(now())
                .bind(None::<String>)
                .fetch_all(&state.pool)
                .await
                .expect("explain");
            let plan: Vec<String> = rows
                .iter()
                .map(|row| {
                    let column = if state.backend() == Backend::Sqlite {
                        3
                    } else {
                        0
                    };
                    row.try_get::<String, _>(column).expect("plan line")
                })
                .collect();
            let plan = plan.join("\n");
            assert!(plan.contains("run_queue_claimable"), "{url}:\n{plan}");
            assert!(
                !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
                "{url}: the claim sorts the queue:\n{plan}"
            );
            // And it claims the most urgent run: the highest priority, then the oldest.
            let first = state
                .claim_run("w", Duration::from_secs(60))
                .await
                .expect("claim");
            let first = first.expect("a run");
            assert_eq!(first.priority, 2, "{url}");
            let waiting = state
                .queued_runs(Some("queued"), u32::MAX)
                .await
                .expect("runs");
            assert!(
                waiting.iter().filter(|r| r.priority == 2).all(|r| (
                    r.not_before.as_str(),
                    r.enqueued_at.as_str(),
                    r.id.as_str()
                ) > (
                    first.not_before.as_str(),
                    first.enqueued_at.as_str(),
                    first.id.as_str()
                )),
                "{url}: the first claimed is the oldest of the most urgent"
            );
            state.close().await;
        }
    }

    #[tokio::test]
    async fn a_run_of_a_gone_local_process_is_queued_again_before_its_lease_runs_out() {
        for (_url, state, _dir) in backends().await {
            let host = crate::leases::host_name();
            let id = state.enqueue(&run("api", 0, 2)).await.expect("enqueue");
            let hour = Duration::from_secs(3600);
            let gone = format!("worker:{host}:999999999:abc");
            let claimed = state.claim_run(&gone, hour).await.expect("claim");
            assert_eq!(claimed.map(|r| r.id), Some(id.clone()));
            // A live process (PID 1) with a lease of an hour keeps its run.
            let other = state.enqueue(&run("api", 0, 2)).await.expect("enqueue");
            let alive = format!("worker:{host}:1:abc");
            state.claim_run(&alive, hour).await.expect("claim");
            assert_eq!(
                state.requeue_expired().await.expect("requeue"),
                vec![id.clone()]
            );
            let again = state.queued_run(&id).await.expect("run").expect("there");
            assert_eq!(again.status, "queued");
            let kept = state.queued_run(&other).await.expect("run").expect("there");
            assert_eq!(kept.status, "running");
            state.close().await;
        }
    }

    #[tokio::test]
    async fn runs_are_claimed_once_by_priority_and_every_transition_is_recorded() {
        for (url, state, _dir) in backends().await {
            runs_are_claimed_once_by_priority_and_every_transition_is_recorded_on(&url, state)
                .await;
        }
    }

    async fn runs_are_claimed_once_by_priority_and_every_transition_is_recorded_on(
        _url: &str,
        state: StateStore,
    ) {
        let low = state.enqueue(&run("api", 0, 1)).await.expect("enqueue");
        let high = state.enqueue(&run("api", 5, 1)).await.expect("enqueue");
        let lease = Duration::from_secs(30);
        let first = state.claim_run("w1", lease).await.expect("claim");
        assert_eq!(first.as_ref().map(|r| r.id.as_str()), Some(high.as_str()));
        let second = state.claim_run("w2", lease).await.expect("claim");
        assert_eq!(second.as_ref().map(|r| r.id.as_str()), Some(low.as_str()));
        assert!(state.claim_run("w3", lease).await.expect("claim").is_none());
        // Only the holder of the lease can end the run.
        state
            .finish_attempt(&high, "w2", &AttemptOutcome::Succeeded)
            .await
            .expect("finish");
        let r = state.queued_run(&high).await.expect("get").expect("run");
        assert_eq!(r.status, "running");
        state
            .finish_attempt(&high, "w1", &AttemptOutcome::Succeeded)
            .await
            .expect("finish");
        let (status, events) = transitions(&state, high.clone()).await;
        assert_eq!(status, "succeeded");
        assert_eq!(events, ["queued", "running", "succeeded"]);
    }

    /// A worker with free slots claims several runs in one transaction, most urgent first, and
    /// records the ends of several in another: each run gets its own transitions, a failure
    /// with attempts left is retried, and a run no longer the worker's is left alone.
    #[tokio::test]
    async fn runs_are_claimed_and_ended_in_batches_each_with_its_own_transitions() {
        for (url, state, _dir) in backends().await {
            let mut ids = Vec::new();
            for (priority, attempts) in [(0, 1), (3, 2), (1, 1), (2, 1), (0, 1)] {
                ids.push(
                    state
                        .enqueue(&run("api", priority, attempts))
                        .await
                        .expect("enqueue"),
                );
            }
            let lease = Duration::from_secs(30);
            let claimed = state.claim_runs("w1", lease, None, 3).await.expect("claim");
            let claimed_ids: Vec<&str> = claimed.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(claimed_ids, [&ids[1], &ids[3], &ids[2]], "{url}");
            // Another worker takes what is left; nothing is claimed twice.
            let rest = state
                .claim_runs("w2", lease, None, 10)
                .await
                .expect("claim");
            let rest_ids: Vec<&str> = rest.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(rest_ids, [&ids[0], &ids[4]], "{url}");
            assert!(
                state
                    .claim_runs("w3", lease, None, 10)
                    .await
                    .expect("claim")
                    .is_empty()
            );

            let failed = AttemptOutcome::Failed("boom".into());
            let cancelled = AttemptOutcome::Cancelled("asked to".into());
            let succeeded = AttemptOutcome::Succeeded;
            state
                .finish_attempts(
                    "w1",
                    &[
                        (ids[1].as_str(), &failed),
                        (ids[3].as_str(), &cancelled),
                        (ids[2].as_str(), &succeeded),
                        // w2's: left alone.
                        (ids[0].as_str(), &succeeded),
                    ],
                )
                .await
                .expect("finish");
            let status = |id: &str| transitions(&state, id.to_string());
            let expect = |s: &str, e: &[&str]| {
                (
                    s.to_string(),
                    e.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                )
            };
            assert_eq!(
                status(&ids[1]).await,
                expect("retrying", &["queued", "running", "retrying"]),
                "{url}"
            );
            assert_eq!(
                status(&ids[3]).await,
                expect("cancelled", &["queued", "running", "cancelled"]),
                "{url}"
            );
            assert_eq!(
                status(&ids[2]).await,
                expect("succeeded", &["queued", "running", "succeeded"]),
                "{url}"
            );
            assert_eq!(
                status(&ids[0]).await,
                expect("running", &["queued", "running"]),
                "{url}"
            );
            state.close().await;
        }
    }

    /// A run's status and the statuses of its recorded transitions, in order.
    async fn transitions(state: &StateStore, id: String) -> (String, Vec<String>) {
        let run = state.queued_run(&id).await.expect("get").expect("run");
        let events = state
            .queue_events(&id)
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.status)
            .collect();
        (run.status, events)
    }

    /// Ending a worker's runs and claiming its next ones in one commit gives what the two
    /// steps give apart: the ended run's transitions, then the next runs in claim order, each
    /// claimed once; a run the worker no longer holds is left alone.
    #[tokio::test]
    async fn runs_ended_and_claimed_together_are_each_recorded_and_claimed_once() {
        for (url, state, _dir) in backends().await {
            let mut ids = Vec::new();
            for priority in [2, 1, 0, 0] {
                ids.push(
                    state
                        .enqueue(&run("api", priority, 1))
                        .await
                        .expect("enqueue"),
                );
            }
            let lease = Duration::from_secs(30);
            let first = state.claim_runs("w1", lease, None, 1).await.expect("claim");
            assert_eq!(first[0].id, ids[0], "{url}");
            let other = state.claim_runs("w2", lease, None, 1).await.expect("claim");
            assert_eq!(other[0].id, ids[1], "{url}");
            let succeeded = AttemptOutcome::Succeeded;
            let next = state
                .finish_and_claim(
                    "w1",
                    &[(ids[0].as_str(), &succeeded), (ids[1].as_str(), &succeeded)],
                    lease,
                    1,
                )
                .await
                .expect("finish and claim");
            let next_ids: Vec<&str> = next.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(next_ids, [ids[2].as_str()], "{url}");
            assert_eq!(next[0].claimed_by.as_deref(), Some("w1"), "{url}");
            let events = |id: String| transitions(&state, id);
            assert_eq!(
                events(ids[0].clone()).await.1,
                ["queued", "running", "succeeded"],
                "{url}"
            );
            // w2's run: not w1's to end.
            assert_eq!(events(ids[1].clone()).await.0, "running", "{url}");
            assert_eq!(
                events(ids[2].clone()).await.1,
                ["queued", "running"],
                "{url}"
            );
            let last = state
                .finish_and_claim("w1", &[(ids[2].as_str(), &succeeded)], lease, 5)
                .await
                .expect("finish and claim");
            let last_ids: Vec<&str> = last.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(last_ids, [ids[3].as_str()], "{url}");
            assert_eq!(events(ids[2].clone()).await.0, "succeeded", "{url}");
            state.close().await;
        }
    }

    #[tokio::test]
    async fn a_failure_retries_after_a_backoff_until_attempts_run_out() {
        for (url, state, _dir) in backends().await {
            a_failure_retries_after_a_backoff_until_attempts_run_out_on(&url, state).await;
        }
    }

    async fn a_failure_retries_after_a_backoff_until_attempts_run_out_on(
        _url: &str,
        state: StateStore,
    ) {
        let id = state.enqueue(&run("api", 0, 2)).await.expect("enqueue");
        let lease = Duration::from_secs(30);
        state.claim_run("w", lease).await.expect("claim");
        state
            .finish_attempt(&id, "w", &AttemptOutcome::Failed("boom".into()))
            .await
            .expect("finish");
        let r = state.queued_run(&id).await.expect("get").expect("run");
        assert_eq!(r.status, "retrying");
        assert!(r.not_before > now(), "the retry waits: {}", r.not_before);
        // Not claimable before its backoff ends.
        assert!(state.claim_run("w", lease).await.expect("claim").is_none());
        sqlx::query("UPDATE run_queue SET not_before = $1 WHERE id = $2")
            .bind(now())
            .bind(&id)
            .execute(&state.pool)
            .await
            .expect("fast-forward");
        let again = state
            .claim_run("w", lease)
            .await
            .expect("claim")
            .expect("run");
        assert_eq!(again.attempt, 2);
        state
            .finish_attempt(&id, "w", &AttemptOutcome::Failed("boom again".into()))
            .await
            .expect("finish");
        let r = state.queued_run(&id).await.expect("get").expect("run");
        assert_eq!(r.status, "failed");
        assert_eq!(r.error.as_deref(), Some("boom again"));
    }

    #[tokio::test]
    async fn an_expired_lease_queues_the_run_again_and_the_old_holder_cannot_finish_it() {
        for (url, state, _dir) in backends().await {
            an_expired_lease_queues_the_run_again_and_the_old_holder_cannot_finish_it_on(
                &url, state,
            )
            .await;
        }
    }

    async fn an_expired_lease_queues_the_run_again_and_the_old_holder_cannot_finish_it_on(
        _url: &str,
        state: StateStore,
    ) {
        let id = state.enqueue(&run("api", 0, 1)).await.expect("enqueue");
        state
            .claim_run("dead", Duration::from_millis(1))
            .await
            .expect("claim");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            state.requeue_expired().await.expect("requeue"),
            vec![id.clone()]
        );
        assert!(
            !state
                .heartbeat(&id, "dead", Duration::from_secs(30))
                .await
                .expect("heartbeat")
        );
        let r = state
            .claim_run("alive", Duration::from_secs(30))
            .await
            .expect("claim")
            .expect("run");
        assert_eq!(r.id, id);
        state
            .finish_attempt(&id, "dead", &AttemptOutcome::Failed("late".into()))
            .await
            .expect("finish");
        assert_eq!(
            state
                .queued_run(&id)
                .await
                .expect("get")
                .expect("run")
                .status,
            "running"
        );
    }

    #[tokio::test]
    async fn a_tick_is_queued_once() {
        for (url, state, _dir) in backends().await {
            a_tick_is_queued_once_on(&url, state).await;
        }
    }

    async fn a_tick_is_queued_once_on(_url: &str, state: StateStore) {
        let tick = Utc::now();
        assert!(
            state
                .enqueue_tick("nightly", tick, &run("schedule:nightly", 0, 1))
                .await
                .expect("tick")
                .is_some()
        );
        assert!(
            state
                .enqueue_tick("nightly", tick, &run("schedule:nightly", 0, 1))
                .await
                .expect("tick")
                .is_none()
        );
        let last = state
            .last_tick("nightly")
            .await
            .expect("last")
            .expect("tick");
        assert_eq!(timestamp(last), timestamp(tick));
    }

    #[tokio::test]
    async fn cancelling_a_waiting_run_ends_it_and_a_running_one_stops_its_heartbeat() {
        for (url, state, _dir) in backends().await {
            cancelling_a_waiting_run_ends_it_and_a_running_one_stops_its_heartbeat_on(&url, state)
                .await;
        }
    }

    async fn cancelling_a_waiting_run_ends_it_and_a_running_one_stops_its_heartbeat_on(
        _url: &str,
        state: StateStore,
    ) {
        let waiting = state.enqueue(&run("api", 0, 1)).await.expect("enqueue");
        let running = state.enqueue(&run("api", 9, 1)).await.expect("enqueue");
        let lease = Duration::from_secs(30);
        state.claim_run("w", lease).await.expect("claim");
        assert_eq!(
            state.cancel_run(&waiting).await.expect("cancel").as_deref(),
            Some("cancelled")
        );
        assert_eq!(
            state.cancel_run(&running).await.expect("cancel").as_deref(),
            Some("running")
        );
        assert!(
            !state
                .heartbeat(&running, "w", lease)
                .await
                .expect("heartbeat")
        );
        assert!(state.claim_run("w", lease).await.expect("claim").is_none());
        assert_eq!(state.cancel_run("nope").await.expect("cancel"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn concurrent_workers_drain_the_queue_each_run_once() {
        for (url, state, _dir) in backends().await {
            concurrent_workers_drain_the_queue_each_run_once_on(&url, state).await;
        }
    }

    async fn concurrent_workers_drain_the_queue_each_run_once_on(url: &str, state: StateStore) {
        for _ in 0..300 {
            state.enqueue(&run("api", 0, 1)).await.expect("enqueue");
        }
        // Three workers, each with its own connection pool, as separate processes would be.
        let mut tasks = Vec::new();
        for w in 0..3 {
            let url = url.to_string();
            tasks.push(tokio::spawn(async move {
                let state = StateStore::connect(&url).await.expect("connect");
                let worker = format!("w{w}");
                let lease = Duration::from_secs(30);
                let mut done = Vec::new();
                while let Some(r) = state.claim_run(&worker, lease).await.expect("claim") {
                    assert!(
                        state
                            .heartbeat(&r.id, &worker, lease)
                            .await
                            .expect("heartbeat")
                    );
                    state
                        .finish_attempt(&r.id, &worker, &AttemptOutcome::Succeeded)
                        .await
                        .expect("finish");
                    done.push(r.id);
                }
                done
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("worker"));
        }
        let unique: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!((all.len(), unique.len()), (300, 300));
        for id in &all {
            let r = state.queued_run(id).await.expect("get").expect("run");
            assert_eq!((r.status.as_str(), r.attempt), ("succeeded", 1));
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..20 {
            let ceiling = FIRST_BACKOFF
                .saturating_mul(2u32.saturating_pow((attempt - 1) as u32))
                .min(MAX_BACKOFF);
            let wait = backoff(attempt);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{attempt}: {wait:?}"
            );
        }
    }
}
