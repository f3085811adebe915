//! Running assets in dependency order: each run stages, audits and publishes (see
//! `staging.rs`); a failed asset skips exactly its downstream assets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::Instrument;
use weir_model::{Asset, Project};
use weir_store::QUARANTINE_DIR;

use crate::dag::AssetGraph;
use crate::error::{OrchestrateError, Result};
use crate::leases::AssetLease;
use crate::progress::Progress;
use crate::report::{AssetRunReport, RunStatus};
use crate::state::{LedgerEntry, RunRecord, StateStore, now};

/// How many independent assets `weir run` builds at the same time unless told otherwise.
/// Most of a small asset's run is spent waiting for files and the state store, so four at a
/// time keep two cores busy where two left them idle about half the time (BENCHMARKS.md: the
/// model DAG). Each asset streams its rows in batches: four at a time hold four assets'
/// batches in memory, not four tables.
pub const DEFAULT_THREADS: usize = 4;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Rebuild every table from all its input instead of only what is new.
    pub full_refresh: bool,
    /// What started the run (`cli`, `schedule`, ...), kept on the run record.
    pub trigger: String,
    /// How many assets may run at the same time.
    pub threads: usize,
    /// Recompute only this partition (`2026-11-25`, `2026-11-25T05`) of the selected models,
    /// which must all be partitioned (see [`check_partition_selection`]).
    pub partition: Option<String>,
}

/// Why `partition` cannot apply to `selected`: every selected asset must be a partitioned
/// model and the partition a valid name for its grain.
pub fn check_partition_selection(
    project: &Project,
    selected: &[String],
    partition: &str,
) -> std::result::Result<(), String> {
    for name in selected {
        let Some(asset) = project.asset(name) else {
            return Err(format!("unknown asset `{name}`"));
        };
        let Some(partitioning) = asset.model.as_ref().and_then(|m| m.partition.as_ref()) else {
            return Err(format!(
                "`{name}` is not a partitioned model (no `partition_by` in models/{name}.sql), so it has no partition {partition}; select only partitioned models"
            ));
        };
        weir_model::PartitionKey::parse(partitioning.grain, partition)
            .map_err(|e| format!("`{name}`: {e}"))?;
    }
    Ok(())
}

/// Where an asset's Delta table and its quarantine table live: in production's lake, or in
/// the environment's when the project is set to one that holds the asset.
pub fn table_paths(project: &Project, asset: &str) -> (PathBuf, PathBuf) {
    let lake = project.lake_dir_of(asset);
    (lake.join(asset), lake.join(QUARANTINE_DIR).join(asset))
}

/// What the journal carries for the state store: enough to finish a run after a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LedgerPayload {
    pub asset: String,
    pub replace: bool,
    pub files: Vec<LedgerEntry>,
    pub run: RunRecord,
}

pub(crate) fn journal_path(project: &Project, asset: &str) -> PathBuf {
    project
        .state_dir()
        .join("journal")
        .join(format!("{asset}.json"))
}

/// Runs `selected` (asset names, in graph order), up to `options.threads` at a time: an asset
/// starts once every selected asset upstream of it has finished. An asset whose upstream
/// failed in this invocation is skipped with the reason; the others go on. Only a state-store
/// failure stops everything. Reports come back in graph order.
///
/// Each asset runs as a task of its own, so independent assets plan, decode logs and commit on
/// different cores at once (polled inside this future, they all ran on the one thread polling
/// it). Dropping the returned future aborts the tasks where they stand, as a kill would.
///
/// `held` (from [`crate::recover_pending`]) names assets whose pending publication could not
/// be settled: they are not run but reported as `error` with the reason, so their downstream
/// is skipped.
pub async fn run_assets(
    project: &Project,
    state: &StateStore,
    graph: &AssetGraph,
    selected: &[String],
    held: &BTreeMap<String, String>,
    options: &RunOptions,
    progress: Arc<dyn Progress>,
) -> Result<Vec<AssetRunReport>> {
    // Assets without a producer are not run, so nobody waits for them.
    let mut pending: Vec<&String> = selected
        .iter()
        .filter(|n| {
            project
                .asset(n)
                .is_some_and(|a| a.source.is_some() || a.model.is_some())
        })
        .collect();
    let chosen: BTreeSet<&String> = pending.iter().copied().collect();
    // Each asset's selected upstream, walked once: the loop below looks at the waiting
    // assets again every time one finishes.
    let upstream_of: BTreeMap<&String, Vec<String>> = pending
        .iter()
        .map(|name| {
            let upstream = graph.all_upstream(name).into_iter();
            (*name, upstream.filter(|u| chosen.contains(u)).collect())
        })
        .collect();
    let mut finished: BTreeMap<String, AssetRunReport> = BTreeMap::new();
    let mut broken: BTreeMap<String, String> = BTreeMap::new();
    // Asked once for the whole run rather than by every asset: an asset with a run left
    // `running` takes the full path, whose recovery settles it under the lease.
    let left_running = state.assets_running().await?;
    // What every asset's task reads, shared: a task must own what it borrows.
    let shared = Arc::new(Shared {
        project: project.clone(),
        state: state.clone(),
        graph: graph.clone(),
        left_running,
        options: options.clone(),
        progress: progress.clone(),
    });
    // Dropped with this future, the set aborts every task still running.
    let mut running = tokio::task::JoinSet::new();
    let threads = options.threads.max(1);
    loop {
        let mut idx = 0;
        while idx < pending.len() && running.len() < threads {
            let name = pending[idx];
            let upstream = upstream_of.get(name).map_or(&[][..], Vec::as_slice);
            if let Some(cause) = upstream.iter().find(|u| broken.contains_key(*u)) {
                let asset = project
                    .asset(name)
                    .ok_or_else(|| OrchestrateError::Config(format!("unknown asset {name}")))?;
                let report = skipped(project, asset, cause, &broken[cause]);
                broken.insert(name.clone(), "skipped".into());
                finished.insert(name.clone(), report);
                pending.remove(idx);
                idx = 0;
                continue;
            }
            if upstream.iter().all(|u| finished.contains_key(u)) {
                let asset = project
                    .asset(name)
                    .ok_or_else(|| OrchestrateError::Config(format!("unknown asset {name}")))?;
                if let Some(reason) = held.get(name) {
                    let mut report = empty_report(project, asset);
                    report.status = RunStatus::Error;
                    report.error = Some(format!("held back by recovery: {reason}"));
                    broken.insert(name.clone(), "is held back by recovery".into());
                    progress.asset_finished(name);
                    finished.insert(name.clone(), report);
                    pending.remove(idx);
                    idx = 0;
                    continue;
                }
                let shared = shared.clone();
                let name = name.clone();
                running.spawn(
                    async move {
                        let report = shared.run(&name).await;
                        (name, report)
                    }
                    .in_current_span(),
                );
                pending.remove(idx);
                continue;
            }
            idx += 1;
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (name, report) = match joined {
            Ok(done) => done,
            // A panic in an asset's task is the panic it was before assets had tasks.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(OrchestrateError::Config(format!(
                    "an asset's task was stopped: {e}"
                )));
            }
        };
        let report = report?;
        progress.asset_finished(&name);
        if report.status.skips_downstream() {
            broken.insert(name.clone(), report.status.as_str().to_string());
        }
        finished.insert(name, report);
    }
    Ok(selected.iter().filter_map(|n| finished.remove(n)).collect())
}

/// What the tasks of one [`run_assets`] share.
struct Shared {
    project: Project,
    state: StateStore,
    graph: AssetGraph,
    left_running: BTreeSet<String>,
    options: RunOptions,
    progress: Arc<dyn Progress>,
}

impl Shared {
    async fn run(&self, name: &str) -> Result<AssetRunReport> {
        let asset = self
            .project
            .asset(name)
            .ok_or_else(|| OrchestrateError::Config(format!("unknown asset {name}")))?;
        run_one(
            &self.project,
            &self.state,
            &self.graph,
            asset,
            &self.left_running,
            &self.options,
            self.progress.as_ref(),
        )
        .await
    }
}

pub(crate) fn empty_report(project: &Project, asset: &Asset) -> AssetRunReport {
    let (table_path, quarantine_path) = table_paths(project, &asset.name);
    AssetRunReport {
        run_id: uuid::Uuid::now_v7().to_string(),
        asset: asset.name.clone(),
        status: RunStatus::Success,
        rows_in: 0,
        rows_stored: 0,
        rows_quarantined: 0,
        bytes_in: 0,
        files: Vec::new(),
        rejected_files: Vec::new(),
        replaced_files: Vec::new(),
        partition: None,
        compacted: None,
        checks: Vec::new(),
        quarantine_by_rule: BTreeMap::new(),
        null_counts: BTreeMap::new(),
        table_version: None,
        quarantine_version: None,
        table_path,
        quarantine_path,
        warnings: Vec::new(),
        error: None,
        duration: Default::default(),
        stages: Default::default(),
        components: Vec::new(),
    }
}

fn skipped(project: &Project, asset: &Asset, cause: &str, how: &str) -> AssetRunReport {
    let mut report = empty_report(project, asset);
    report.status = RunStatus::Skipped;
    report.error = Some(format!("skipped: upstream `{cause}` {how}"));
    report
}

/// Runs one asset under its lease: waits while another process writes it, settles what a
/// process that died writing it left, then runs it.
async fn run_one(
    project: &Project,
    state: &StateStore,
    graph: &AssetGraph,
    asset: &Asset,
    left_running: &BTreeSet<String>,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<AssetRunReport> {
    // An up-to-date model is found so without its lease or its pool's slot: no work, no write.
    if let Some(model) = &asset.model
        && let Some(mut report) =
            crate::unchanged::unchanged_model(project, graph, asset, model, left_running, options)
                .await?
    {
        report.components = crate::telemetry::components(asset, &report);
        crate::telemetry::emit(&report);
        return Ok(report);
    }
    let slot = match asset.pool() {
        Some(pool) => {
            let slots = project.config.pools.get(pool).copied().unwrap_or(1);
            Some(crate::leases::PoolSlot::acquire(state, pool, slots).await?)
        }
        None => None,
    };
    let lease = AssetLease::acquire(state, &asset.name).await?;
    let ran = async {
        let recovery = crate::recover::recover_leased(project, state, &asset.name).await?;
        if let Some(reason) = recovery.held.get(&asset.name) {
            let mut report = empty_report(project, asset);
            report.status = RunStatus::Error;
            report.error = Some(format!("held back by recovery: {reason}"));
            return Ok(report);
        }
        let mut report = run_leased(project, state, graph, asset, options, progress).await?;
        report.warnings.splice(
            0..0,
            recovery
                .messages
                .into_iter()
                .map(|m| format!("recovered first: {m}")),
        );
        Ok::<AssetRunReport, OrchestrateError>(report)
    };
    let ran = match asset.timeout() {
        None => ran.await,
        Some(limit) => match tokio::time::timeout(limit, ran).await {
            Ok(ran) => ran,
            Err(_) => timed_out(project, state, asset, options, limit).await,
        },
    };
    let released = lease.release().await;
    if let Some(slot) = slot {
        slot.release().await?;
    }
    let report = ran?;
    released?;
    Ok(report)
}

/// After a run of `asset` was stopped at its timeout (its future dropped wherever it was):
/// what it left is settled under the lease still held, as after a kill (a journalled
/// publication is completed, a commit made without one is recorded, its run record marked),
/// and the files it staged are deleted.
async fn timed_out(
    project: &Project,
    state: &StateStore,
    asset: &Asset,
    options: &RunOptions,
    limit: std::time::Duration,
) -> Result<AssetRunReport> {
    let recovery = crate::recover::recover_leased(project, state, &asset.name).await?;
    let completed = !recovery.messages.is_empty() && recovery.held.is_empty();
    let vacuum = crate::upkeep::VacuumOptions {
        apply: true,
        retain_hours: None,
    };
    crate::upkeep::vacuum(
        project,
        std::slice::from_ref(&asset.name),
        &recovery.held,
        &vacuum,
    )
    .await?;
    let mut report = empty_report(project, asset);
    report.status = RunStatus::Error;
    report.error = Some(if completed {
        format!(
            "timed out after {} s (timeout_secs) while publishing; what it left was settled from its journal or its tables' logs: {}",
            limit.as_secs(),
            recovery.messages.join("; ")
        )
    } else {
        format!(
            "timed out after {} s (timeout_secs); it was stopped and nothing it staged was published",
            limit.as_secs()
        )
    });
    let mut record = RunRecord::start(&report.run_id, asset, &options.trigger);
    record.status = "error".into();
    record.error = report.error.clone();
    record.ended_at = Some(now());
    state.insert_run(&record).await?;
    Ok(report)
}

async fn run_leased(
    project: &Project,
    state: &StateStore,
    graph: &AssetGraph,
    asset: &Asset,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<AssetRunReport> {
    let mut report = empty_report(project, asset);
    let started = Instant::now();
    let mut record = RunRecord::start(&report.run_id, asset, &options.trigger);
    // Every log line of the run carries its id and asset.
    let span = tracing::info_span!("asset_run", run_id = %report.run_id, asset = %asset.name);
    let outcome = tracing::Instrument::instrument(
        async {
            match (&asset.source, &asset.model) {
                (Some(source), _) => {
                    crate::run_source::ingest(
                        project,
                        state,
                        asset,
                        source,
                        options,
                        progress,
                        &mut report,
                        &mut record,
                    )
                    .await
                }
                (None, Some(model)) => {
                    crate::run_model::materialize(
                        project,
                        state,
                        graph,
                        asset,
                        model,
                        options,
                        progress,
                        &mut report,
                        &mut record,
                    )
                    .await
                }
                (None, None) => Ok(()),
            }
        },
        span,
    )
    .await;
    // Compaction changes no row: a failure to compact is a warning, never a failed run.
    if outcome.is_ok() && report.status == RunStatus::Success {
        match crate::upkeep::compact_if_due(project, asset).await {
            Ok(done) => report.compacted = done,
            Err(e) => report.warnings.push(format!(
                "the table was published but could not be compacted: {e}"
            )),
        }
    }
    report.duration = started.elapsed();
    if let Err(e) = outcome {
        if matches!(e, OrchestrateError::State(_)) {
            return Err(e);
        }
        report.status = RunStatus::Error;
        report.error = Some(e.to_string());
        record.status = "error".into();
        record.error = report.error.clone();
        record.ended_at = Some(now());
        state.insert_run(&record).await?;
    }
    report.components = crate::telemetry::components(asset, &report);
    crate::telemetry::emit(&report);
    // A run that found its asset up to date did nothing worth a durable record: its figures
    // are zeros (they are still emitted above).
    if report.status != RunStatus::UpToDate {
        state.record_components(&report).await?;
    }
    Ok(report)
}

pub(crate) fn checks_json(checks: &[weir_quality::CheckResult]) -> String {
    let list: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id, "metric": c.metric, "column": c.column, "value": c.value,
                "threshold": c.threshold, "unit": c.unit, "passed": c.passed, "severity": c.severity.as_str(),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// A test hook: with `WEIR_FAILPOINT=<name>` (or `<name>@<asset>` for one asset's run), the
/// process announces the point on stderr and waits there, so a crash test can SIGKILL it at
/// exactly that instant.
pub(crate) fn failpoint(name: &str, asset: &str) {
    let Ok(wanted) = std::env::var("WEIR_FAILPOINT") else {
        return;
    };
    let (point, only) = wanted
        .split_once('@')
        .map_or((wanted.as_str(), None), |(p, a)| (p, Some(a)));
    if point == name && only.is_none_or(|a| a == asset) {
        eprintln!("weir-failpoint: {name}");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
