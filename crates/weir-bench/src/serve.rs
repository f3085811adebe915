//! The orchestration figures: the durable queue alone, sequential runs through `weir serve`,
//! and the time from a file landing in a source folder to its run starting.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use weir_orchestrate::{AttemptOutcome, NewRun, StateStore};

fn new_run(selection: &str, full_refresh: bool) -> NewRun {
    NewRun {
        selection: vec![selection.to_string()],
        trigger: "bench".into(),
        full_refresh,
        priority: 0,
        max_attempts: 1,
        timeout_secs: None,
        delay: Duration::ZERO,
        partition: None,
    }
}

/// `runs` no-op runs enqueued, then claimed, heartbeated and completed by 1 and 3 workers, on
/// SQLite and, when `WEIR_TEST_POSTGRES` names a server (`scripts/pg_loopback.sh start DIR`
/// prints one), on a new database there. Each PostgreSQL worker has its own connections, as a
/// worker process would.
pub async fn queue(dir: &Path, runs: usize) -> anyhow::Result<()> {
    let postgres = std::env::var(weir_orchestrate::testing::POSTGRES_ENV).is_ok();
    if !postgres {
        println!(
            "queue: {} is not set, so PostgreSQL is not measured",
            weir_orchestrate::testing::POSTGRES_ENV
        );
    }
    // `max_runs`: how many runs a worker executes at once (`[serve] max_runs`, 1 by default).
    // It claims that many at a time and records together the runs that ended together, as
    // `weir serve` and `weir worker` do.
    for (backend, workers, max_runs) in [
        ("SQLite", 1usize, 1usize),
        ("SQLite", 1, 16),
        ("SQLite", 3, 1),
        ("SQLite", 3, 16),
        ("PostgreSQL", 1, 1),
        ("PostgreSQL", 1, 16),
        ("PostgreSQL", 3, 1),
        ("PostgreSQL", 3, 16),
    ] {
        let url = if backend == "SQLite" {
            let path = dir.join(format!("queue-{workers}-{max_runs}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            format!("sqlite://{}", path.display())
        } else if postgres {
            weir_orchestrate::testing::fresh_postgres_database().await?
        } else {
            continue;
        };
        let state = StateStore::connect(&url).await?;
        let started = Instant::now();
        for _ in 0..runs {
            state.enqueue(&new_run("noop", false)).await?;
        }
        let enqueued = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let state = if backend == "SQLite" {
                state.clone()
            } else {
                StateStore::connect(&url).await?
            };
            tasks.push(tokio::spawn(async move {
                let worker = format!("bench-{w}");
                let lease = Duration::from_secs(30);
                let mut done = 0usize;
                loop {
                    let runs = state.claim_runs(&worker, lease, None, max_runs).await?;
                    if runs.is_empty() {
                        break;
                    }
                    // Renewed together, as `weir serve` renews the leases of its runs.
                    let ids: Vec<&str> = runs.iter().map(|run| run.id.as_str()).collect();
                    let held = state.renew_leases(&worker, &ids, lease).await?;
                    anyhow::ensure!(held.len() == runs.len(), "lost lease");
                    let ended: Vec<(&str, &AttemptOutcome)> = runs
                        .iter()
                        .map(|run| (run.id.as_str(), &AttemptOutcome::Succeeded))
                        .collect();
                    state.finish_attempts(&worker, &ended).await?;
                    done += runs.len();
                }
                anyhow::Ok(done)
            }));
        }
        let mut done = 0;
        for task in tasks {
            done += task.await??;
        }
        let drained = started.elapsed().as_secs_f64();
        anyhow::ensure!(done == runs, "{done} of {runs} runs completed");
        let succeeded = state.queued_runs(Some("succeeded"), u32::MAX).await?.len();
        anyhow::ensure!(succeeded == runs, "{succeeded} succeeded");
        state.close().await;
        println!(
            "queue ({backend}, {workers} worker task(s), max_runs {max_runs}): {runs} runs enqueued in {enqueued:.2}s ({:.0}/s); claimed, heartbeated and completed in {drained:.2}s ({:.0} runs/s)",
            runs as f64 / enqueued,
            runs as f64 / drained
        );
    }
    Ok(())
}

const PROJECT: &str = r#"[project]
name = "serve_bench"

[serve]
poll_ms = 250
dependency_automation = false
token_env = "WEIR_BENCH_TOKEN"
"#;

const MODEL: &str = "-- weir: materialized = table\nSELECT 1 AS x\n";

const SOURCE: &str = "path = \"data/landing/*.csv\"\nformat = \"csv\"\n";

/// A one-column contract for asset `name`.
pub(crate) fn contract(name: &str, column: &str, primary_key: bool) -> String {
    format!(
        "apiVersion: v3.1.0\nkind: DataContract\nid: {name}\nversion: 1.0.0\nstatus: active\n\
         team:\n  name: bench\n  members:\n    - username: bench@example.com\n      role: owner\n\
         schema:\n  - name: {name}\n    physicalType: table\n    properties:\n\
         \x20     - name: {column}\n        logicalType: integer\n        physicalType: bigint\n\
         \x20       primaryKey: {primary_key}\n"
    )
}

fn write_project(dir: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    for folder in ["models", "contracts", "sources", "data/landing"] {
        std::fs::create_dir_all(dir.join(folder))?;
    }
    std::fs::write(dir.join("weir.toml"), PROJECT)?;
    std::fs::write(dir.join("models/one.sql"), MODEL)?;
    std::fs::write(
        dir.join("contracts/one.odcs.yaml"),
        contract("one", "x", false),
    )?;
    std::fs::write(dir.join("sources/landing.toml"), SOURCE)?;
    std::fs::write(
        dir.join("contracts/landing.odcs.yaml"),
        contract("landing", "id", true),
    )?;
    Ok(())
}

fn time(text: Option<&String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The service of the bench: `weir serve` on the project at `project`, on a loopback port it
/// prints on its first line, until its standard input closes. Run by [`serve`] as a process
/// of its own, as a service is, with the API token in its environment.
pub async fn serve_child(project: &Path) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = stop.send(());
    });
    weir_server::serve(
        project,
        weir_server::ServeOptions {
            addr: Some("127.0.0.1:0".into()),
            grace: None,
        },
        |listening| println!("{}", listening.addr),
        async {
            let _ = stopped.await;
        },
    )
    .await?;
    Ok(())
}

/// A `weir serve` of the bench's project in a child process, stopped when dropped.
struct Service {
    child: std::process::Child,
    base: String,
    token: String,
}

impl Service {
    fn start(project: &Path) -> anyhow::Result<Service> {
        use std::io::BufRead;
        // 74 random bits: nobody else on the machine guesses it.
        let token = uuid::Uuid::now_v7().to_string();
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("serve-child")
            .arg(project)
            .env("WEIR_BENCH_TOKEN", &token)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("the service's output")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let addr = line.trim();
        anyhow::ensure!(!addr.is_empty(), "the service did not start");
        Ok(Service {
            base: format!("http://{addr}"),
            child,
            token,
        })
    }

    /// Queues a full refresh of `asset` through the API, as a client of the service would;
    /// the run's id.
    async fn trigger(&self, client: &reqwest::Client, asset: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"select": [asset], "full_refresh": true});
        let response = client
            .post(format!("{}/runs", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "POST /runs: {status} {text}");
        let created: serde_json::Value = serde_json::from_str(&text)?;
        created["run"]["id"]
            .as_str()
            .map(str::to_string)
            .context("POST /runs gave no run id")
    }

    fn stop(mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "the service exited with {status}");
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// 40 sequential runs of a one-row `table` model through `weir serve`, then 200 files landed
/// one at a time: the time from each landing to its run's start.
pub async fn serve(dir: &Path) -> anyhow::Result<()> {
    let project = dir.join("serve-bench");
    write_project(&project)?;
    let service = Service::start(&project)?;
    let client = reqwest::Client::new();
    let state = StateStore::connect(&format!(
        "sqlite://{}",
        project.join(".weir/state.db").display()
    ))
    .await?;
    // The first build, outside the figure.
    let first = service.trigger(&client, "one").await?;
    wait_done(&state, &first, Duration::from_millis(2)).await?;

    // The 40 runs are requested through the API one after the other, as a client would, and
    // timed from before the first request to the end the service recorded for the last run
    // (it claims them in the order they came, one at a time). The bench looks for that end
    // only every 20 ms, so its own polling, on the same two cores, neither slows the service
    // nor rounds the figure.
    let started = Utc::now();
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(service.trigger(&client, "one").await?);
    }
    for id in &ids {
        wait_done(&state, id, Duration::from_millis(20)).await?;
    }
    let last = ids.last().context("no run")?;
    let ended = state.queued_run(last).await?.context("run")?.ended_at;
    let ended = time(ended.as_ref()).context("ended_at")?;
    let elapsed = (ended - started).num_microseconds().unwrap_or_default() as f64 / 1e6;
    println!(
        "40 sequential runs of a one-row table model through weir serve (each a full Delta commit): {elapsed:.2}s ({:.0} ms per run)",
        elapsed * 1000.0 / 40.0
    );

    let mut latencies = Vec::new();
    for i in 0..200 {
        let part = project.join(format!("data/landing/.f{i}.part"));
        std::fs::write(&part, format!("id\n{i}\n"))?;
        let landed = Utc::now();
        std::fs::rename(&part, project.join(format!("data/landing/f{i:03}.csv")))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let run = loop {
            let runs = state.queued_runs(None, 5).await?;
            if let Some(run) = runs
                .into_iter()
                .find(|r| r.trigger == "file:landing" && time(Some(&r.enqueued_at)) >= Some(landed))
                && run.started_at.is_some()
            {
                break run;
            }
            anyhow::ensure!(Instant::now() < deadline, "file {i} never triggered a run");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let start = time(run.started_at.as_ref()).context("started_at")?;
        latencies.push((start - landed).num_milliseconds());
        wait_done(&state, &run.id, Duration::from_millis(2)).await?;
    }
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "file landing -> run start over 200 files (poll_ms = 250): p50 {} ms, p99 {} ms, max {} ms",
        pick(0.5),
        pick(0.99),
        latencies.last().copied().unwrap_or_default()
    );
    service.stop()?;
    state.close().await;
    Ok(())
}

async fn wait_done(state: &StateStore, id: &str, poll: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = state.queued_run(id).await?.context("run")?;
        match run.status.as_str() {
            "succeeded" => return Ok(()),
            "failed" | "cancelled" => anyhow::bail!("run {id}: {} {:?}", run.status, run.error),
            _ => {}
        }
        anyhow::ensure!(Instant::now() < deadline, "run {id} did not end");
        tokio::time::sleep(poll).await;
    }
}
