//! Executing one queued run: the same pipeline `weir run` drives (each asset under its
//! lease), with the run's queue lease renewed by heartbeat while it works.

use std::path::Path;
use std::time::Duration;

use crate::renewer::{Renewer, Stop};

use weir_orchestrate::{
    AssetGraph, AssetLeases, AttemptOutcome, NoProgress, OrchestrateError, QueuedRun, RunOptions,
    RunStatus, StateStore, VacuumOptions,
};

/// How an executed run ended, and the assets downstream of what it published that it did not
/// run itself (stale now: dependency automation runs them).
pub struct Executed {
    pub outcome: AttemptOutcome,
    pub stale_downstream: Vec<String>,
}

/// Runs `run` to its end, or until its lease is lost, a cancel is asked for or it times out.
pub async fn execute(
    root: &Path,
    state: &StateStore,
    renewer: &Renewer,
    run: &QueuedRun,
) -> Executed {
    let limit = run
        .timeout_secs
        .and_then(|t| u64::try_from(t).ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::MAX);
    // Every log line of the run, its asset runs' too, carries the queued run's id.
    let span = tracing::info_span!("queued_run", queued_run = %run.id);
    let (outcome, clean) = tokio::select! {
        executed = tracing::Instrument::instrument(attempt(root, state, run), span) => return executed,
        stop = renewer.watch(&run.id) => match stop {
            Stop::Cancelled => (
                AttemptOutcome::Cancelled(
                    "cancelled on request while running; what it staged was not published".into(),
                ),
                true,
            ),
            // Another process runs it now: what is on disk may be its.
            Stop::TakenOver => (
                AttemptOutcome::Cancelled("its lease was taken over by another process".into()),
                false,
            ),
        },
        _ = tokio::time::sleep(limit) => (
            AttemptOutcome::Failed(format!(
                "timed out after {} s (timeout_secs); it was stopped and nothing it staged was published",
                limit.as_secs()
            )),
            true,
        ),
    };
    if clean && let Err(e) = clean_up(root, state, run).await {
        tracing::warn!(run = %run.id, "cleaning up after the stopped run: {e}");
    }
    Executed {
        outcome,
        stale_downstream: Vec::new(),
    }
}

/// After an attempt was stopped part-way (like a kill): settles what it left, as the next run
/// would (a journalled publication is completed), and deletes the files it staged that no
/// table version names.
async fn clean_up(
    root: &Path,
    state: &StateStore,
    run: &QueuedRun,
) -> Result<(), OrchestrateError> {
    let (project, diagnostics) = weir_model::load_project(root);
    let Some(project) = project.filter(|_| !diagnostics.has_errors()) else {
        return Ok(());
    };
    let recovery = weir_orchestrate::recover_pending(&project, state).await?;
    let (graph, _) = weir_orchestrate::build_graph(&project);
    let Ok(selected) = weir_orchestrate::select(&project, &graph, &run.selection) else {
        return Ok(());
    };
    let options = VacuumOptions {
        apply: true,
        retain_hours: None,
    };
    // Under the assets' leases, so no other process is staging files in them meanwhile.
    let leases = AssetLeases::acquire(state, &selected).await?;
    let vacuumed = weir_orchestrate::vacuum(&project, &selected, &recovery.held, &options).await;
    leases.release().await?;
    for table in vacuumed? {
        tracing::info!(run = %run.id, table = ?table, "staged files of the stopped run deleted");
    }
    Ok(())
}

async fn attempt(root: &Path, state: &StateStore, run: &QueuedRun) -> Executed {
    match attempt_inner(root, state, run).await {
        Ok(executed) => executed,
        Err(e) => Executed {
            outcome: AttemptOutcome::Failed(e.to_string()),
            stale_downstream: Vec::new(),
        },
    }
}

async fn attempt_inner(
    root: &Path,
    state: &StateStore,
    run: &QueuedRun,
) -> Result<Executed, OrchestrateError> {
    // The project is read again for every run: an edit to a model or a contract is picked up
    // without restarting the service.
    let (project, diagnostics) = weir_model::load_project(root);
    let Some(project) = project.filter(|_| !diagnostics.has_errors()) else {
        let errors: Vec<String> = diagnostics.errors().map(|d| d.to_string()).collect();
        return Ok(final_outcome(AttemptOutcome::Refused(format!(
            "the project does not load: {}",
            errors.join("; ")
        ))));
    };
    let recovery = weir_orchestrate::recover_pending(&project, state).await?;
    for message in &recovery.messages {
        tracing::info!(run = %run.id, "recovery: {message}");
    }
    let (graph, _) = weir_orchestrate::build_graph(&project);
    let selected = match weir_orchestrate::select(&project, &graph, &run.selection) {
        Ok(selected) => selected,
        Err(why) => return Ok(final_outcome(AttemptOutcome::Refused(why))),
    };
    if let Some(partition) = &run.partition
        && let Err(why) =
            weir_orchestrate::check_partition_selection(&project, &selected, partition)
    {
        return Ok(final_outcome(AttemptOutcome::Refused(why)));
    }
    let options = RunOptions {
        full_refresh: run.full_refresh,
        trigger: format!("serve:{}", run.id),
        threads: 1,
        partition: run.partition.clone(),
    };
    let reports = weir_orchestrate::run_assets(
        &project,
        state,
        &graph,
        &selected,
        &recovery.held,
        &options,
        std::sync::Arc::new(NoProgress),
    )
    .await?;
    // Incidents are opened, joined and resolved here, by whichever process ran the assets;
    // their notifications are delivered by `weir serve`'s delivery loop.
    if let Err(e) = weir_observe::observe_runs(&project, &graph, state, &reports, &options).await {
        tracing::warn!(run = %run.id, "observing the run for incidents: {e}");
    }
    for problem in weir_observe::emit_runs(&project, &graph, &reports).await {
        tracing::warn!(run = %run.id, "{problem}");
    }
    if let Err(e) = weir_change::compare_shadows(&project, state, &reports).await {
        tracing::warn!(run = %run.id, "comparing shadow assets: {e}");
    }
    let failures: Vec<String> = reports
        .iter()
        .filter(|r| r.status.is_failure() && r.status != RunStatus::Skipped)
        .map(|r| match &r.error {
            Some(e) => format!("{}: {e}", r.asset),
            None => format!("{}: {}", r.asset, r.status.as_str()),
        })
        .collect();
    // Only an error may pass on a retry; a failed check or a model that needs a full refresh
    // fails the same way again.
    let retryable = reports.iter().any(|r| r.status == RunStatus::Error);
    for r in &reports {
        tracing::info!(
            run = %run.id,
            asset = %r.asset,
            status = r.status.as_str(),
            rows_in = r.rows_in,
            rows_stored = r.rows_stored,
            rows_quarantined = r.rows_quarantined,
            "asset run"
        );
    }
    let skipped = reports
        .iter()
        .filter(|r| r.status == RunStatus::Skipped)
        .count();
    let mut summary = failures.join("; ");
    match skipped {
        0 => {}
        1 => summary.push_str("; 1 downstream asset skipped"),
        n => summary.push_str(&format!("; {n} downstream assets skipped")),
    }
    let outcome = if failures.is_empty() {
        AttemptOutcome::Succeeded
    } else if retryable {
        AttemptOutcome::Failed(summary)
    } else {
        AttemptOutcome::Refused(summary)
    };
    let published: Vec<&str> = reports
        .iter()
        .filter(|r| r.status == RunStatus::Success)
        .map(|r| r.asset.as_str())
        .collect();
    Ok(Executed {
        outcome,
        stale_downstream: downstream_of(&graph, &published, &selected),
    })
}

fn final_outcome(outcome: AttemptOutcome) -> Executed {
    Executed {
        outcome,
        stale_downstream: Vec::new(),
    }
}

/// The assets downstream of `published`, directly or not, that are not in `ran`, in graph order.
fn downstream_of(graph: &AssetGraph, published: &[&str], ran: &[String]) -> Vec<String> {
    let mut stale = std::collections::BTreeSet::new();
    let mut todo: Vec<&str> = published.to_vec();
    while let Some(asset) = todo.pop() {
        for next in graph.downstream.get(asset).into_iter().flatten() {
            if stale.insert(next.clone()) {
                todo.push(next);
            }
        }
    }
    graph
        .order
        .iter()
        .filter(|a| stale.contains(*a) && !ran.contains(a))
        .cloned()
        .collect()
}
