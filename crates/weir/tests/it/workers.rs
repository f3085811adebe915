//! `weir worker` processes sharing a queue in a real PostgreSQL state store (the server
//! `scripts/test.sh` starts on loopback): no run executes twice, a killed worker's run is
//! executed again once, and a restart of the database server (a server of that test's own)
//! loses and doubles nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_orchestrate::{NewRun, QueuedRun, StateStore};

use crate::support::{demo_project, weir_bin};

/// A running `weir worker`, killed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A new, empty database on the test PostgreSQL server.
fn fresh_state() -> String {
    runtime()
        .block_on(weir_orchestrate::testing::fresh_postgres_database())
        .expect("a PostgreSQL database (run the tests through ./scripts/test.sh)")
}

/// The demo project, its state in `state`, built once by `weir run`, with a quick poll. The
/// lease is long enough that a worker starved of CPU by the tests beside it still renews it.
fn built_project(state: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = demo_project();
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str("\n[serve]\npoll_ms = 20\nlease_secs = 10\n");
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
    crate::serve::weir_run(&dir, Some(state));
    (tmp, dir)
}

/// Starts `weir worker` and waits for its first document, which names it and its state
/// store (the password, were there one, masked).
fn worker(dir: &Path, state: &str) -> Worker {
    let mut child = Command::new(weir_bin())
        .args(["worker", "--json", "--project"])
        .arg(dir)
        .env("WEIR_STATE", state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("weir worker starts");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut text = String::new();
    let doc: serde_json::Value = loop {
        let read = reader.read_line(&mut text).expect("stdout");
        assert!(read > 0, "weir worker exited before working: {text}");
        if let Ok(doc) = serde_json::from_str(&text) {
            break doc;
        }
    };
    crate::json_output::assert_documented(&["worker"], &doc);
    assert_eq!(doc["state"], state, "{doc}");
    Worker(child)
}

/// Queues `count` runs, each of one selection of `selections` in turn.
fn enqueue(state: &str, selections: &[&[&str]], count: usize) -> Vec<String> {
    runtime().block_on(async {
        let store = StateStore::connect(state).await.expect("connect");
        let mut ids = Vec::new();
        for select in selections.iter().cycle().take(count) {
            let run = NewRun {
                selection: select.iter().map(|s| s.to_string()).collect(),
                trigger: "test".into(),
                full_refresh: false,
                priority: 0,
                max_attempts: 3,
                timeout_secs: None,
                delay: Duration::ZERO,
                partition: None,
            };
            ids.push(store.enqueue(&run).await.expect("enqueue"));
        }
        store.close().await;
        ids
    })
}

/// Every queued run and, for each, how many times a process started it. Panics if one was
/// started while it was already running (two `running` transitions with no end between).
fn queue(state: &str) -> Vec<(QueuedRun, usize)> {
    runtime().block_on(async {
        let store = StateStore::connect(state).await.expect("connect");
        let runs = store.queued_runs(None, u32::MAX).await.expect("runs");
        let mut out = Vec::new();
        for run in runs {
            let events = store.queue_events(&run.id).await.expect("events");
            let statuses: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
            assert!(
                !statuses.windows(2).any(|w| w == ["running", "running"]),
                "run {} started twice at once: {statuses:?}",
                run.id
            );
            let starts = statuses.iter().filter(|s| **s == "running").count();
            out.push((run, starts));
        }
        store.close().await;
        out
    })
}

fn finished(run: &QueuedRun) -> bool {
    matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled")
}

/// Waits until every queued run has ended; panics with the queue after `secs`.
fn wait_drained(state: &str, secs: u64) -> Vec<(QueuedRun, usize)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let runs = runtime().block_on(async {
            let store = StateStore::connect(state).await.expect("connect");
            let runs = store.queued_runs(None, u32::MAX).await.expect("runs");
            store.close().await;
            runs
        });
        if runs.iter().all(finished) {
            return queue(state);
        }
        assert!(
            Instant::now() < deadline,
            "the queue did not drain within {secs} s: {} of {} runs ended",
            runs.iter().filter(|r| finished(r)).count(),
            runs.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The workers that started each run, from the `running` transitions ("attempt N by NAME").
fn executors(state: &str, ids: &[String]) -> std::collections::BTreeSet<String> {
    runtime().block_on(async {
        let store = StateStore::connect(state).await.expect("connect");
        let mut names = std::collections::BTreeSet::new();
        for id in ids {
            for event in store.queue_events(id).await.expect("events") {
                if let Some(name) = event.detail.as_deref().and_then(|d| d.split(" by ").nth(1)) {
                    names.insert(name.to_string());
                }
            }
        }
        store.close().await;
        names
    })
}

const SELECTIONS: [&[&str]; 6] = [
    &["customers"],
    &["orders"],
    &["payments"],
    &["stg_orders+"],
    &["daily_revenue"],
    &["order_details"],
];

#[test]
fn three_workers_on_postgres_drain_a_thousand_runs_and_none_runs_twice() {
    let state = fresh_state();
    let (_tmp, dir) = built_project(&state);
    let ids = enqueue(&state, &SELECTIONS, 1000);
    let workers: Vec<Worker> = (0..3).map(|_| worker(&dir, &state)).collect();
    let runs = wait_drained(&state, 600);
    drop(workers);
    assert_eq!(runs.len(), 1000);
    for (run, starts) in &runs {
        assert_eq!(run.status, "succeeded", "{run:#?}");
        assert_eq!((run.attempt, *starts), (1, 1), "started once: {run:#?}");
    }
    let names = executors(&state, &ids);
    assert!(names.len() >= 2, "the workers shared the queue: {names:?}");
    crate::crash::assert_exactly_once(&dir);
}

/// SIGKILLs a worker at each publishing step of a run and starts another: the run is executed
/// again once, and the lake ends as one uninterrupted `weir run` leaves it.
#[test]
fn a_killed_worker_on_postgres_has_its_run_executed_again_once() {
    let (_reference_tmp, reference) = crate::serve::reference_project();
    for failpoint in crate::serve::RUN_FAILPOINTS {
        let state = fresh_state();
        let (_tmp, dir) = demo_project();
        let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
        // Short, so the killed worker's lease expires soon; not so short that the next
        // worker, starved of CPU by the tests beside it, misses renewing its own.
        config.push_str("\n[serve]\npoll_ms = 20\nlease_secs = 3\n");
        std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
        let ids = enqueue(&state, &[&["customers+", "orders+", "payments+"]], 1);
        let mut child = Command::new(weir_bin())
            .args(["worker", "--project"])
            .arg(&dir)
            .env("WEIR_STATE", &state)
            .env("WEIR_FAILPOINT", failpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("worker starts");
        let reached =
            crate::serve::reaches_failpoint(&mut child, failpoint, Duration::from_secs(120));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        assert!(reached, "{failpoint}: never reached");

        let second = worker(&dir, &state);
        let runs = wait_drained(&state, 120);
        drop(second);
        let (run, starts) = &runs[0];
        assert_eq!(run.id, ids[0]);
        assert_eq!(run.status, "succeeded", "{failpoint}: {run:#?}");
        assert_eq!(
            (run.attempt, *starts),
            (2, 2),
            "{failpoint}: executed again once: {run:#?}"
        );
        crate::crash::assert_exactly_once(&dir);
        crate::serve::assert_same_lake(&dir, &reference, failpoint);
    }
}

/// A PostgreSQL server of one test's own, stopped when dropped. A test that restarts the
/// server needs one: restarting the server the other tests share cuts their connections, and
/// they fail for a reason that is not theirs.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    url: String,
}

impl PrivatePostgres {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = pg_loopback("start", dir.path());
        let url = String::from_utf8(out).expect("URL").trim().to_string();
        Self { dir, url }
    }

    fn restart(&self) {
        pg_loopback("restart", self.dir.path());
    }

    /// A new, empty database on this server.
    fn fresh_state(&self) -> String {
        runtime()
            .block_on(weir_orchestrate::testing::fresh_database_on(&self.url))
            .expect("a database on the private PostgreSQL server")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(pg_loopback_script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

fn pg_loopback_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg_loopback.sh")
}

/// Runs `scripts/pg_loopback.sh COMMAND DIR` and returns what it printed; panics with its
/// error output when it fails.
fn pg_loopback(command: &str, dir: &Path) -> Vec<u8> {
    let out = Command::new("bash")
        .arg(pg_loopback_script())
        .arg(command)
        .arg(dir)
        .output()
        .expect("scripts/pg_loopback.sh runs");
    assert!(
        out.status.success(),
        "pg_loopback.sh {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The PostgreSQL server restarts in the middle of a drain: the workers reconnect and finish
/// every run; a run caught by the restart is retried by its policy, never started twice at
/// once, and the lake holds every row once. The server is this test's own (see
/// [`PrivatePostgres`]).
#[test]
fn workers_reconnect_after_postgres_restarts_mid_drain() {
    let server = PrivatePostgres::start();
    let state = server.fresh_state();
    let (_tmp, dir) = built_project(&state);
    enqueue(&state, &SELECTIONS, 300);
    let workers: Vec<Worker> = (0..3).map(|_| worker(&dir, &state)).collect();
    // Restart once some runs have ended and many are still waiting.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = queue(&state).iter().filter(|(r, _)| finished(r)).count();
        if done >= 30 {
            assert!(done < 300, "the drain ended before the restart");
            break;
        }
        assert!(Instant::now() < deadline, "no run ended within 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.restart();
    let runs = wait_drained(&state, 600);
    drop(workers);
    assert_eq!(runs.len(), 300);
    for (run, starts) in &runs {
        assert_eq!(run.status, "succeeded", "{run:#?}");
        assert_eq!(
            run.attempt as usize, *starts,
            "each start is an attempt of its own: {run:#?}"
        );
    }
    crate::crash::assert_exactly_once(&dir);
}
