//! `weir serve`: one process that schedules runs (cron ticks, file arrivals), executes them
//! from the durable queue, and answers the HTTP API, until it is told to stop. `weir worker`:
//! a process that only executes runs from the queue, beside a `weir serve` that schedules them
//! (on PostgreSQL, on any machine that sees the project and its lake).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use weir_model::{JobConfig, Project};
use weir_orchestrate::{ArrivalWatch, AttemptOutcome, Due, NewRun, QueuedRun, StateStore};

use crate::api::{self, Api};
use crate::error::ServeError;
use crate::execute::{Executed, execute};
use crate::freshness::FreshnessWatch;
use crate::renewer::Renewer;

/// What the command line adds to `[serve]` in weir.toml.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Overrides `[serve] addr`.
    pub addr: Option<String>,
    /// How long a run in progress may take to finish after a stop is asked for.
    pub grace: Option<Duration>,
}

/// What `serve` tells its caller once it listens.
#[derive(Debug, Clone)]
pub struct Listening {
    pub addr: SocketAddr,
    pub jobs: usize,
    pub file_arrival: bool,
    pub token_set: bool,
}

const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How often a process records that it is alive; one not seen for [`ALIVE_WITHIN`] is not
/// counted as a live worker.
const ALIVE_EVERY: Duration = Duration::from_secs(5);
pub(crate) const ALIVE_WITHIN: Duration = Duration::from_secs(30);

/// Serves the project in `root` until `shutdown` completes; `on_listening` is called once
/// the API accepts connections.
pub async fn serve(
    root: &Path,
    options: ServeOptions,
    on_listening: impl FnOnce(&Listening),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (project, state, _) = open(root).await?;
    let config = project.config.serve.clone();
    let addr = options.addr.clone().unwrap_or(config.addr.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| ServeError::Listen {
            addr: addr.clone(),
            source: e,
        })?;
    let local = listener.local_addr().map_err(|e| ServeError::Listen {
        addr: addr.clone(),
        source: e,
    })?;
    let token = std::env::var(&config.token_env)
        .ok()
        .filter(|t| !t.is_empty());
    let ready = Arc::new(AtomicBool::new(false));
    // Wakes the loop before its next poll: a run queued through the API, a run that ended.
    let wake = Arc::new(Notify::new());
    let api = Arc::new(Api {
        state: state.clone(),
        root: root.to_path_buf(),
        token: token.clone(),
        token_env: config.token_env.clone(),
        open_reads: config.open_reads,
        ready: ready.clone(),
        wake: wake.clone(),
    });
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        axum::serve(listener, api::router(api))
            .with_graceful_shutdown(async {
                let _ = http_stopped.await;
            })
            .await
    });
    on_listening(&Listening {
        addr: local,
        jobs: project.config.jobs.len(),
        file_arrival: config.file_arrival,
        token_set: token.is_some(),
    });

    let (stop_delivery, delivery_stopped) = tokio::sync::oneshot::channel::<()>();
    let delivery = tokio::spawn(deliver_notifications(
        state.clone(),
        root.to_path_buf(),
        project.config.project.name.clone(),
        delivery_stopped,
    ));
    let (stop_slos, slos_stopped) = tokio::sync::oneshot::channel::<()>();
    let slos = tokio::spawn(watch_slos(state.clone(), root.to_path_buf(), slos_stopped));
    let role = Role::Serve {
        file_arrival: config.file_arrival,
    };
    let worker = executor_name(role);
    let looped = run_loop(
        &state, root, &config, role, &worker, &options, &ready, &wake, shutdown,
    )
    .await;
    let _ = stop_http.send(());
    let _ = stop_delivery.send(());
    let _ = stop_slos.send(());
    if let Err(e) = delivery.await {
        tracing::warn!("notification delivery task: {e}");
    }
    if let Err(e) = slos.await {
        tracing::warn!("SLO watch task: {e}");
    }
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("http server: {e}"),
        Err(e) => tracing::warn!("http server task: {e}"),
    }
    state.close().await;
    looped
}

/// How often the service looks for notifications due.
const DELIVER_EVERY: Duration = Duration::from_secs(1);

/// Delivers incident notifications from the outbox until told to stop (between rounds, so a
/// delivery is never cut off half-way).
async fn deliver_notifications(
    state: StateStore,
    root: PathBuf,
    project: String,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        match weir_observe::deliver_due(&state, &root, &project, Duration::from_secs(30)).await {
            Ok(round) if round.given_up > 0 => {
                tracing::warn!(
                    given_up = round.given_up,
                    "notifications given up after a day of failed deliveries"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("delivering notifications: {e}"),
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(DELIVER_EVERY) => {}
        }
    }
}

/// How often the service measures SLOs and their burn rates.
const SLO_EVERY: Duration = Duration::from_secs(5);

/// Opens and resolves SLO burn incidents, and predicted breaches from late upstreams, until
/// told to stop: freshness burns with time alone, without any run to notice it. The project
/// is read again each round, so edits apply.
async fn watch_slos(
    state: StateStore,
    root: PathBuf,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(SLO_EVERY) => {}
        }
        let (Some(project), diagnostics) = weir_model::load_project(&root) else {
            continue;
        };
        if diagnostics.has_errors() {
            continue;
        }
        let (graph, _) = weir_orchestrate::build_graph(&project);
        // Before the SLOs: a predicted breach resolves once its deadline passes, and the
        // freshness SLO's alert may then open on that asset.
        let now = chrono::Utc::now();
        // One read of the SLO window's runs serves both watchers.
        let window = match weir_observe::RunWindow::read(&project, &state, now).await {
            Ok(window) => window,
            Err(e) => {
                tracing::warn!("reading the runs to watch: {e}");
                continue;
            }
        };
        log_opened(
            "predicted breach",
            weir_observe::observe_late_upstreams(&project, &graph, &state, &window, now).await,
        );
        log_opened(
            "SLO burn",
            weir_observe::observe_slos(&project, &graph, &state, &window, now).await,
        );
    }
}

/// Logs the incidents a watcher opened, or why it could not look.
fn log_opened(what: &str, observed: Result<weir_observe::Observed, weir_observe::ObserveError>) {
    match observed {
        Ok(observed) => {
            for (incident, _) in &observed.opened {
                tracing::warn!(
                    incident = incident.id,
                    asset = %incident.root_asset,
                    "{what} incident opened: {}",
                    incident.title
                );
            }
        }
        Err(e) => tracing::warn!("watching for {what} incidents: {e}"),
    }
}

/// What a worker tells its caller once it works.
#[derive(Debug, Clone)]
pub struct Working {
    pub name: String,
    pub state: String,
}

/// Executes runs from the queue of the project in `root` until `shutdown` completes: no
/// schedules, no file watching, no API (a `weir serve` does those). Any number of workers, on
/// any machines that see the project, share the queue through leases.
pub async fn work(
    root: &Path,
    options: ServeOptions,
    on_working: impl FnOnce(&Working),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (project, state, url) = open(root).await?;
    let config = project.config.serve.clone();
    let ready = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let worker = executor_name(Role::Worker);
    on_working(&Working {
        name: worker.clone(),
        state: weir_orchestrate::redact(&url),
    });
    let looped = run_loop(
        &state,
        root,
        &config,
        Role::Worker,
        &worker,
        &options,
        &ready,
        &wake,
        shutdown,
    )
    .await;
    state.close().await;
    looped
}

/// What a process running the loop does besides executing runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    /// Schedules cron ticks, and file arrivals when `file_arrival`.
    Serve { file_arrival: bool },
    /// Executes only.
    Worker,
    /// Executes the runs of one backfill (`weir backfill`), then stops.
    Backfill,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Serve { .. } => "serve",
            Role::Worker => "worker",
            Role::Backfill => "backfill",
        }
    }
}

/// A name for this process in the queue's leases: its role, its machine, its process id and a
/// random part (process ids repeat across machines and restarts). A run claimed by a process
/// of this machine that is gone is queued again at once (`holder_is_gone`).
pub(crate) fn executor_name(role: Role) -> String {
    format!(
        "{}:{}:{}:{}",
        role.name(),
        weir_orchestrate::host_name(),
        std::process::id(),
        &uuid::Uuid::now_v7().simple().to_string()[24..]
    )
}

/// The loop of `serve` and `work`: one turn per poll (or sooner, when woken), until
/// `shutdown`; then the run in progress gets `options.grace` to finish.
#[allow(clippy::too_many_arguments)]
async fn run_loop(
    state: &StateStore,
    root: &Path,
    config: &weir_model::ServeConfig,
    role: Role,
    worker: &str,
    options: &ServeOptions,
    ready: &AtomicBool,
    wake: &Arc<Notify>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let mut triggers = Triggers {
        scheduler: Scheduler::new(Utc::now()),
        arrivals: ArrivalWatch::default(),
        freshness: FreshnessWatch::default(),
        downstream: Default::default(),
    };
    let mut definitions = Definitions::default();
    let lease = Duration::from_secs(config.lease_secs.max(1));
    let poll = Duration::from_millis(config.poll_ms.max(10));
    let renewer = Arc::new(Renewer::start(state.clone(), worker.to_string(), lease));
    let mut running: Vec<Running> = Vec::new();
    ready.store(true, Ordering::SeqCst);
    tokio::pin!(shutdown);
    let mut seen: Option<std::time::Instant> = None;
    loop {
        // Alive, for monitoring (`weir_workers`): every few seconds, not every poll.
        if seen.is_none_or(|t| t.elapsed() >= ALIVE_EVERY) {
            match state.worker_seen(worker, role.name()).await {
                Ok(()) => seen = Some(std::time::Instant::now()),
                Err(e) => tracing::warn!("{worker}: {e}"),
            }
        }
        let turn = Turn {
            state,
            worker,
            lease,
            renewer: &renewer,
            root,
            wake,
            role,
        };
        // A failed turn (the state store restarting, say) is logged and tried again at the
        // next poll: the run in progress goes on, and its lease keeps it.
        if let Err(e) = turn
            .tick(&mut triggers, &mut definitions, &mut running)
            .await
        {
            tracing::warn!("{worker}: {e}");
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(poll) => {}
            _ = wake.notified() => {}
        }
    }
    ready.store(false, Ordering::SeqCst);
    tracing::info!("stopping: no new run is claimed");
    let grace = options.grace.unwrap_or(DEFAULT_GRACE);
    let deadline = tokio::time::Instant::now() + grace;
    for Running {
        run, mut handle, ..
    } in running
    {
        let outcome = match tokio::time::timeout_at(deadline, &mut handle).await {
            Ok(Ok(executed)) => executed.outcome,
            Ok(Err(e)) => AttemptOutcome::Failed(format!("the run's task failed: {e}")),
            Err(_) => {
                // Stopped where it stands, as a kill would: recovery settles it.
                handle.abort();
                AttemptOutcome::Failed(format!(
                    "{worker} was stopped and the run did not finish within {} s; the next run completes a publication it had begun and publishes nothing else it staged",
                    grace.as_secs()
                ))
            }
        };
        state.finish_attempt(&run.id, worker, &outcome).await?;
    }
    if let Err(e) = state.worker_gone(worker).await {
        tracing::warn!("{worker}: {e}");
    }
    Ok(())
}

/// The project in `root`, its state store (what opening it repaired is logged) and the
/// store's URL.
pub(crate) async fn open(root: &Path) -> Result<(Project, StateStore, String), ServeError> {
    let project = load(root)?;
    let url = project.state_url();
    let state = StateStore::connect(&url).await?;
    for notice in state.notices() {
        tracing::warn!("{notice}");
    }
    Ok((project, state, url))
}

fn load(root: &Path) -> Result<Project, ServeError> {
    let (project, diagnostics) = weir_model::load_project(root);
    match project {
        Some(project) if !diagnostics.has_errors() => Ok(project),
        _ => Err(ServeError::Project(
            diagnostics
                .errors()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

/// What queues runs in `weir serve`, each with what it remembers between turns.
struct Triggers {
    scheduler: Scheduler,
    arrivals: ArrivalWatch,
    freshness: FreshnessWatch,
    /// Downstream runs owed to ended runs (the id of the run that published, the stale
    /// assets), not queued yet. They outlive a turn whose state store failed halfway, so a
    /// trigger is queued at a later turn instead of being lost with the error.
    downstream: std::collections::VecDeque<(String, Vec<String>)>,
}

/// What one turn of the loop works with.
struct Turn<'a> {
    state: &'a StateStore,
    worker: &'a str,
    lease: Duration,
    /// Renews the leases of the runs this process executes.
    renewer: &'a Arc<Renewer>,
    root: &'a Path,
    wake: &'a Arc<Notify>,
    role: Role,
}

impl Turn<'_> {
    /// One turn of the loop: leases, schedules, arrivals and freshness (`weir serve`), then
    /// the executor.
    async fn tick(
        &self,
        triggers: &mut Triggers,
        definitions: &mut Definitions,
        running: &mut Vec<Running>,
    ) -> Result<(), ServeError> {
        let Turn {
            state,
            worker,
            lease,
            renewer,
            root,
            wake,
            role,
        } = *self;
        for id in state.requeue_expired().await? {
            tracing::warn!(run = %id, "a run whose process stopped was queued again");
        }
        // Edits to the project apply without a restart; one that does not load keeps the last
        // good schedule and sources.
        let project = definitions.current(root);
        if let (Some(project), Role::Serve { file_arrival }) = (project, role) {
            triggers
                .scheduler
                .enqueue_due(state, &project.config.jobs)
                .await?;
            if project.config.serve.freshness_automation {
                triggers.freshness.enqueue_due(project, state).await?;
            }
            if file_arrival {
                // Sources whose files arrived together run together, in one run, so a model
                // that reads several of them is built once, after all of them.
                let arrived = triggers.arrivals.poll(project, state).await?;
                let selection: Vec<String> = arrived.iter().map(|s| format!("{s}+")).collect();
                if !selection.is_empty() && !state.has_waiting(&selection).await? {
                    let id = state
                        .enqueue(&NewRun::automatic(
                            selection,
                            format!("file:{}", arrived.join(",")),
                        ))
                        .await?;
                    tracing::info!(run = %id, sources = ?arrived, "new files: run queued");
                }
            }
        }
        // The runs that ended since the last turn are recorded together, in one commit.
        let mut ended = Vec::new();
        let mut next = 0;
        while next < running.len() {
            if !running[next].has_ended() {
                next += 1;
                continue;
            }
            let Running { run, handle, .. } = running.swap_remove(next);
            let executed = handle.await.unwrap_or_else(|e| Executed {
                outcome: AttemptOutcome::Failed(format!("the run's task failed: {e}")),
                stale_downstream: Vec::new(),
            });
            tracing::info!(run = %run.id, outcome = ?executed.outcome, "run ended");
            ended.push((run, executed));
        }
        // Downstream runs are queued only while dependency automation is on; turning it off
        // drops what is owed.
        let debounce = definitions
            .project()
            .map(|p| &p.config.serve)
            .filter(|s| s.dependency_automation)
            .map(|s| Duration::from_millis(s.debounce_ms));
        let max_runs = definitions
            .project()
            .map_or(1, |p| p.config.serve.max_runs.max(1));
        let free = max_runs.saturating_sub(running.len());
        // With no downstream run to queue in between, the ended runs are recorded and the
        // next ones claimed in one durable commit; otherwise the downstream runs are queued
        // first, so that a claim sees them.
        let owes_downstream = debounce.is_some()
            && (!triggers.downstream.is_empty()
                || ended.iter().any(|(_, e)| !e.stale_downstream.is_empty()));
        let recorded = {
            let outcomes: Vec<(&str, &AttemptOutcome)> = ended
                .iter()
                .map(|(run, executed)| (run.id.as_str(), &executed.outcome))
                .collect();
            if owes_downstream || ended.is_empty() {
                state
                    .finish_attempts(worker, &outcomes)
                    .await
                    .map(|()| None)
            } else {
                state
                    .finish_and_claim(worker, &outcomes, lease, free)
                    .await
                    .map(Some)
            }
        };
        let claimed_with_ends = match recorded {
            Ok(claimed) => claimed,
            Err(e) => {
                // The state store is away (restarting, say): the outcomes are kept, as tasks
                // that have finished, and recorded at a next turn. Dropping them would leave
                // the runs to be executed again when their leases expire.
                for (run, executed) in ended {
                    running.push(Running::ended(run, executed));
                }
                return Err(e.into());
            }
        };
        match debounce {
            None => triggers.downstream.clear(),
            Some(debounce) => {
                triggers.downstream.extend(
                    ended
                        .into_iter()
                        .filter(|(_, executed)| !executed.stale_downstream.is_empty())
                        .map(|(run, executed)| (run.id, executed.stale_downstream)),
                );
                while let Some((upstream, assets)) = triggers.downstream.front() {
                    if !state.has_waiting(assets).await? {
                        let id = state
                            .enqueue(&NewRun {
                                delay: debounce,
                                ..NewRun::automatic(assets.clone(), format!("upstream:{upstream}"))
                            })
                            .await?;
                        tracing::info!(run = %id, assets = ?assets, "upstream published: downstream run queued");
                    }
                    triggers.downstream.pop_front();
                }
            }
        }
        let claimed = match claimed_with_ends {
            Some(claimed) => claimed,
            None if free > 0 => state.claim_runs(worker, lease, None, free).await?,
            None => Vec::new(),
        };
        for run in claimed {
            tracing::info!(run = %run.id, selection = ?run.selection, trigger = %run.trigger, attempt = run.attempt, "run started");
            let (state, renewer, root, claimed): (StateStore, Arc<Renewer>, PathBuf, QueuedRun) = (
                state.clone(),
                renewer.clone(),
                root.to_path_buf(),
                run.clone(),
            );
            let wake = wake.clone();
            let done = Arc::new(AtomicBool::new(false));
            let handle = tokio::spawn({
                let done = done.clone();
                async move {
                    let outcome = execute(&root, &state, &renewer, &claimed).await;
                    done.store(true, Ordering::Release);
                    wake.notify_one();
                    outcome
                }
            });
            running.push(Running { run, handle, done });
        }
        Ok(())
    }
}

/// A run this process executes, on a task of its own.
struct Running {
    run: QueuedRun,
    handle: JoinHandle<Executed>,
    /// Set by the task once it has its outcome, just before it wakes the loop. The wake
    /// comes before the task has returned, so the loop, woken at once, can find the task not
    /// yet finished: without this mark the run's end waited for the next poll (a quarter of
    /// a second by default; one run in forty did in the serve bench).
    done: Arc<AtomicBool>,
}

impl Running {
    /// A run whose outcome is already known (kept for a later turn).
    fn ended(run: QueuedRun, executed: Executed) -> Running {
        Running {
            run,
            handle: tokio::spawn(std::future::ready(executed)),
            done: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether its outcome is there, or about to be: awaiting its task then returns at once.
    fn has_ended(&self) -> bool {
        self.done.load(Ordering::Acquire) || self.handle.is_finished()
    }
}

/// The project as last loaded, read again only when a definition file changed: a poll costs
/// a `stat` of each file, not a parse of every contract.
#[derive(Default)]
struct Definitions {
    fingerprint: Option<u64>,
    project: Option<Project>,
}

impl Definitions {
    /// The project as last loaded, without looking at the files again.
    fn project(&self) -> Option<&Project> {
        self.project.as_ref()
    }

    fn current(&mut self, root: &Path) -> Option<&Project> {
        let fingerprint = definitions_fingerprint(root);
        if self.fingerprint != Some(fingerprint) {
            self.fingerprint = Some(fingerprint);
            let (project, diagnostics) = weir_model::load_project(root);
            match project.filter(|_| !diagnostics.has_errors()) {
                Some(project) => self.project = Some(project),
                None => tracing::warn!(
                    "the project does not load; the last version that did goes on being served: {}",
                    diagnostics
                        .errors()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            }
        }
        self.project.as_ref()
    }
}

/// The paths, sizes and modification times of weir.toml and every file under `contracts/`,
/// `sources/` and `models/`.
fn definitions_fingerprint(root: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut stack = vec![root.join("weir.toml")];
    stack.extend(["contracts", "sources", "models"].map(|d| root.join(d)));
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                children.sort();
                stack.extend(children);
            }
            continue;
        }
        path.hash(&mut hasher);
        meta.len().hash(&mut hasher);
        meta.modified().ok().hash(&mut hasher);
    }
    hasher.finish()
}

/// Queues each job's due cron tick.
struct Scheduler {
    /// When each job was first seen: a new job runs from its next tick, not from the past.
    first_seen: BTreeMap<String, DateTime<Utc>>,
    started: DateTime<Utc>,
}

impl Scheduler {
    fn new(started: DateTime<Utc>) -> Self {
        Scheduler {
            first_seen: BTreeMap::new(),
            started,
        }
    }

    async fn enqueue_due(
        &mut self,
        state: &StateStore,
        jobs: &BTreeMap<String, JobConfig>,
    ) -> Result<(), ServeError> {
        let now = Utc::now();
        for (name, job) in jobs {
            let Ok(Some((cron, zone))) = job.schedule() else {
                continue;
            };
            let since = *self
                .first_seen
                .entry(name.clone())
                .or_insert(self.started.min(now));
            let last = state.last_tick(name).await?;
            let run = NewRun {
                selection: job.select.clone(),
                trigger: format!("schedule:{name}"),
                full_refresh: false,
                priority: job.priority,
                max_attempts: job.max_attempts,
                timeout_secs: job.timeout_secs,
                delay: Duration::ZERO,
                partition: None,
            };
            match weir_orchestrate::due(&cron, zone, last, since, now, job.catch_up) {
                Due::Run(tick) => {
                    if let Some(id) = state.enqueue_tick(name, tick, &run).await? {
                        tracing::info!(run = %id, job = %name, tick = %tick, "schedule tick: run queued");
                    }
                }
                Due::Skip(tick) => {
                    state.skip_tick(name, tick).await?;
                    tracing::info!(job = %name, tick = %tick, "missed ticks skipped (catch_up = \"skip\")");
                }
                Due::Wait(_) | Due::Never => {}
            }
        }
        Ok(())
    }
}
