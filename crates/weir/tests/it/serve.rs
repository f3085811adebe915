//! `weir serve` unattended: cron ticks and file arrivals run the project without anyone
//! typing a command, the HTTP API lists and triggers runs behind its token, and SIGTERM stops
//! the service cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{count, demo_project, weir_bin};

pub(crate) const TOKEN: &str = "test-token-1234";

pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `weir serve` on a free loopback port and waits until it listens.
pub(crate) fn start(dir: &Path) -> Server {
    let mut child = Command::new(weir_bin())
        .args(["serve", "--json", "--addr", "127.0.0.1:0", "--project"])
        .arg(dir)
        .env("WEIR_API_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    // The first JSON document on stdout says where it listens.
    let mut reader = BufReader::new(stdout);
    let mut text = String::new();
    let doc: Value = loop {
        let read = reader.read_line(&mut text).expect("stdout");
        assert!(read > 0, "weir serve exited before listening: {text}");
        if let Ok(doc) = serde_json::from_str(&text) {
            break doc;
        }
    };
    crate::json_output::assert_documented(&["serve"], &doc);
    let base = doc["listening"]
        .as_str()
        .expect("listening address")
        .trim_start_matches("http://")
        .to_string();
    Server { child, base }
}

/// One HTTP/1.1 request; the status code and the JSON body.
pub(crate) fn http(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(base).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {base}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn queued_runs(base: &str) -> Vec<Value> {
    let (status, doc) = http(base, "GET", "/runs?limit=1000", Some(TOKEN), None);
    assert_eq!(status, 200, "{doc}");
    doc["runs"].as_array().cloned().unwrap_or_default()
}

/// Waits until `pred` holds for the queued runs; panics with them after `secs`.
pub(crate) fn wait_for(
    base: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let runs = queued_runs(base);
        if pred(&runs) {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s: {runs:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn succeeded_with(runs: &[Value], trigger: &str) -> usize {
    runs.iter()
        .filter(|r| r["trigger"] == trigger && r["status"] == "succeeded")
        .count()
}

#[test]
fn cron_and_file_arrival_run_the_project_unattended() {
    let (_tmp, dir) = demo_project();
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str(
        "\n[jobs.payments_every_second]\nselect = [\"payments\"]\ncron = \"* * * * * *\"\n\n[serve]\npoll_ms = 50\ndebounce_ms = 100\n",
    );
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
    let server = start(&dir);
    let base = server.base.clone();

    let (status, doc) = http(&base, "GET", "/ready", None, None);
    assert_eq!((status, &doc), (200, &json!({"ready": true})));
    let (status, doc) = http(&base, "GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");

    // The files already in the source folders are ingested, and what is downstream built.
    // The three sources' files are seen in one poll, so one run builds them and everything
    // downstream, in order.
    let first = "file:customers,orders,payments";
    let runs = wait_for(&base, 120, "first ingestion", |runs| {
        succeeded_with(runs, first) == 1
    });
    let orders_run = runs
        .iter()
        .find(|r| r["trigger"] == first)
        .expect("first run");
    let id = orders_run["id"].as_str().expect("id");
    let (_, detail) = http(&base, "GET", &format!("/runs/{id}"), Some(TOKEN), None);
    let assets: Vec<&str> = detail["asset_runs"]
        .as_array()
        .expect("asset runs")
        .iter()
        .filter(|r| r["status"] == "success")
        .filter_map(|r| r["asset"].as_str())
        .collect();
    // (payments may have been built first by its every-second schedule, then up to date here)
    for asset in [
        "customers",
        "orders",
        "stg_orders",
        "daily_revenue",
        "order_details",
    ] {
        assert!(assets.contains(&asset), "{asset} not built: {detail:#}");
    }
    let events: Vec<&str> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(events, ["queued", "running", "succeeded"], "{detail:#}");

    // The every-second schedule runs, on its own.
    wait_for(&base, 30, "two scheduled runs", |runs| {
        succeeded_with(runs, "schedule:payments_every_second") >= 2
    });

    // A new file lands: it is ingested and the downstream models rebuilt, unasked.
    let orders_table = dir.join("lake/orders");
    let before = count(&orders_table);
    let lines: String = (0..200)
        .map(|i| {
            format!(
                "{{\"amount\":10.5,\"currency\":\"EUR\",\"customer_id\":1,\"order_id\":{},\"order_ts\":\"2026-11-03T10:00:00Z\",\"status\":\"paid\"}}\n",
                900_000 + i
            )
        })
        .collect();
    let landing = dir.join("data/orders/.2026-11-03.ndjson.part");
    std::fs::write(&landing, lines).expect("write");
    std::fs::rename(&landing, dir.join("data/orders/2026-11-03.ndjson")).expect("land");
    wait_for(&base, 60, "the new file's run", |runs| {
        succeeded_with(runs, "file:orders") == 1
    });
    assert_eq!(count(&orders_table), before + 200);

    // The API: writes need the token; an unknown asset is the caller's error.
    let (status, _) = http(
        &base,
        "POST",
        "/runs",
        None,
        Some(json!({"select": ["payments"]})),
    );
    assert_eq!(status, 401);
    let (status, doc) = http(&base, "GET", "/runs", Some("wrong"), None);
    assert_eq!(status, 401, "{doc}");
    let (status, doc) = http(
        &base,
        "POST",
        "/runs",
        Some(TOKEN),
        Some(json!({"select": ["nope"]})),
    );
    assert_eq!(
        (status, doc["error"]["kind"].as_str()),
        (400, Some("unknown_asset")),
        "{doc}"
    );
    let (status, doc) = http(
        &base,
        "POST",
        "/runs",
        Some(TOKEN),
        Some(json!({"select": ["customers+"]})),
    );
    assert_eq!(status, 201, "{doc}");
    let id = doc["run"]["id"].as_str().expect("id").to_string();
    wait_for(&base, 60, "the triggered run", |runs| {
        runs.iter()
            .any(|r| r["id"] == id.as_str() && r["status"] == "succeeded")
    });
    let (status, _) = http(&base, "GET", "/runs/nope", Some(TOKEN), None);
    assert_eq!(status, 404);

    // Dependency automation: orders rebuilt on its own, what reads it runs after it.
    let (status, doc) = http(
        &base,
        "POST",
        "/runs",
        Some(TOKEN),
        Some(json!({"select": ["orders"], "full_refresh": true})),
    );
    assert_eq!(status, 201, "{doc}");
    let upstream = format!("upstream:{}", doc["run"]["id"].as_str().expect("id"));
    let runs = wait_for(&base, 60, "the downstream run", |runs| {
        succeeded_with(runs, &upstream) == 1
    });
    let downstream = runs
        .iter()
        .find(|r| r["trigger"] == upstream.as_str())
        .expect("downstream run");
    assert_eq!(
        downstream["selection"],
        json!(["stg_orders", "daily_revenue", "order_details"]),
        "{downstream:#}"
    );

    // The CLI: `weir trigger` through the API and through the local state store.
    let weir_json = |args: &[&str]| {
        let out = Command::new(weir_bin())
            .args(args)
            .args(["--json", "--project"])
            .arg(&dir)
            .env("WEIR_API_TOKEN", TOKEN)
            .output()
            .expect("weir runs");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
        (out.status.code(), doc)
    };
    let server_url = format!("http://{base}");
    let (code, doc) = weir_json(&["trigger", "payments", "--server", &server_url]);
    assert_eq!(code, Some(0), "{doc}");
    crate::json_output::assert_documented(&["trigger"], &doc);
    let remote = doc["run"]["id"].as_str().expect("id").to_string();
    let (code, doc) = weir_json(&["trigger", "customers"]);
    assert_eq!(code, Some(0), "{doc}");
    let local = doc["run"]["id"].as_str().expect("id").to_string();
    assert_eq!(doc["run"]["trigger"], "cli");
    wait_for(&base, 60, "the runs weir trigger queued", |runs| {
        [&remote, &local].iter().all(|id| {
            runs.iter()
                .any(|r| r["id"] == id.as_str() && r["status"] == "succeeded")
        })
    });
    let (code, doc) = weir_json(&["trigger", "nope", "--server", &server_url]);
    assert_eq!(
        (code, doc["error"]["kind"].as_str()),
        (Some(2), Some("unknown_asset")),
        "{doc}"
    );
    let (code, doc) = weir_json(&["cancel", "nope"]);
    assert_eq!(
        (code, doc["error"]["kind"].as_str()),
        (Some(2), Some("unknown_run")),
        "{doc}"
    );
    let (code, doc) = weir_json(&["cancel", &local, "--server", &server_url]);
    assert_eq!(
        (code, doc["status"].as_str()),
        (Some(0), Some("succeeded")),
        "{doc}"
    );
    crate::json_output::assert_documented(&["cancel"], &doc);

    // A run past its timeout is stopped, publishes nothing, and is retried by its policy.
    let orders_now = count(&orders_table);
    let (status, doc) = http(
        &base,
        "POST",
        "/runs",
        Some(TOKEN),
        Some(
            json!({"select": ["orders"], "full_refresh": true, "timeout_secs": 0, "max_attempts": 2}),
        ),
    );
    assert_eq!(status, 201, "{doc}");
    let id = doc["run"]["id"].as_str().expect("id").to_string();
    let runs = wait_for(&base, 60, "the timed-out run", |runs| {
        runs.iter()
            .any(|r| r["id"] == id.as_str() && r["status"] == "failed")
    });
    let run = runs.iter().find(|r| r["id"] == id.as_str()).expect("run");
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out")),
        "{run:#}"
    );
    let (_, detail) = http(&base, "GET", &format!("/runs/{id}"), Some(TOKEN), None);
    let events: Vec<&str> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(
        events,
        ["queued", "running", "retrying", "running", "failed"],
        "{detail:#}"
    );
    assert_eq!(count(&orders_table), orders_now);

    // SIGTERM: the service stops by itself, cleanly.
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            assert!(status.success(), "weir serve exited with {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "weir serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every row of each table, sorted: two tables hold the same rows when these are equal.
fn rows(table: &Path) -> Vec<String> {
    let mut lines = crate::support::query(table, "SELECT * FROM t");
    lines.sort();
    lines
}

/// Where a run of the demo project is killed in the tests of serve and workers: each step of
/// publishing a source, and a model's.
pub(crate) const RUN_FAILPOINTS: [&str; 6] = [
    "staged@orders",
    "journaled@orders",
    "between_commits@orders",
    "published@orders",
    "recorded@orders",
    "journaled@daily_revenue",
];

/// The demo project after one uninterrupted `weir run`: what a killed and resumed run must
/// leave.
pub(crate) fn reference_project() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, reference) = demo_project();
    weir_run(&reference, None);
    (tmp, reference)
}

/// `weir run` of the project in `dir`, with its state in `state` when given; it must succeed.
pub(crate) fn weir_run(dir: &Path, state: Option<&str>) {
    let mut command = Command::new(weir_bin());
    command.args(["run", "--project"]).arg(dir);
    if let Some(state) = state {
        command.env("WEIR_STATE", state);
    }
    let out = command.output().expect("weir run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `child` (started with `WEIR_FAILPOINT`, its stderr piped) stops at `failpoint`
/// within `limit`: false rather than a test that hangs when it never does.
pub(crate) fn reaches_failpoint(child: &mut Child, failpoint: &str, limit: Duration) -> bool {
    let stderr = child.stderr.take().expect("stderr");
    let point = failpoint.split('@').next().unwrap_or(failpoint).to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reached = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(&format!("weir-failpoint: {point}")));
        let _ = tx.send(reached);
    });
    rx.recv_timeout(limit).unwrap_or(false)
}

/// Every table of the demo project in `dir` holds the rows it holds in `reference`.
pub(crate) fn assert_same_lake(dir: &Path, reference: &Path, label: &str) {
    for asset in [
        "customers",
        "orders",
        "payments",
        "stg_orders",
        "daily_revenue",
        "order_details",
    ] {
        assert_eq!(
            rows(&dir.join("lake").join(asset)),
            rows(&reference.join("lake").join(asset)),
            "{label}: {asset} differs from an uninterrupted run"
        );
    }
}

/// SIGKILLs `weir serve` in the middle of a run, at each publishing step, and restarts it: the
/// run is executed again once, and the lake ends as one uninterrupted `weir run` leaves it.
#[test]
fn a_killed_service_reruns_its_run_once_and_loses_or_doubles_nothing() {
    let (_reference_tmp, reference) = reference_project();
    for failpoint in RUN_FAILPOINTS {
        let (_tmp, dir) = demo_project();
        let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
        config.push_str("\n[serve]\npoll_ms = 50\nlease_secs = 1\n");
        std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");

        // The first service stops at the failpoint, and is killed there.
        let mut child = Command::new(weir_bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--project"])
            .arg(&dir)
            .env("WEIR_API_TOKEN", TOKEN)
            .env("WEIR_FAILPOINT", failpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let reached = reaches_failpoint(&mut child, failpoint, Duration::from_secs(120));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        assert!(reached, "{failpoint}: never reached");

        // The second one finds the run's lease expired, and runs it again.
        let server = start(&dir);
        let runs = wait_for(&server.base, 120, failpoint, |runs| {
            !runs.is_empty()
                && runs
                    .iter()
                    .all(|r| r["status"] == "succeeded" || r["status"] == "failed")
        });
        let first = runs
            .iter()
            .find(|r| r["trigger"] == "file:customers,orders,payments")
            .expect("the killed run");
        assert_eq!(first["status"], "succeeded", "{failpoint}: {runs:#?}");
        assert_eq!(
            first["attempt"], 2,
            "{failpoint}: run again once: {first:#}"
        );
        assert!(
            runs.iter().all(|r| r["status"] == "succeeded"),
            "{failpoint}: {runs:#?}"
        );
        drop(server);

        crate::crash::assert_exactly_once(&dir);
        assert_same_lake(&dir, &reference, failpoint);
    }
}

/// Two services on one project share the queue: each run is executed once, by one of them,
/// and the tables hold every row once.
#[test]
fn two_services_on_one_project_share_the_runs_and_never_double_one() {
    let (_tmp, dir) = demo_project();
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str("\n[serve]\npoll_ms = 20\ndependency_automation = false\n");
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
    let a = start(&dir);
    let b = start(&dir);
    let mut ids = Vec::new();
    for (i, select) in [
        "customers",
        "orders",
        "payments",
        "stg_orders+",
        "orders+",
        "+order_details",
    ]
    .iter()
    .cycle()
    .take(12)
    .enumerate()
    {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let (status, doc) = http(
            base,
            "POST",
            "/runs",
            Some(TOKEN),
            Some(json!({"select": [select]})),
        );
        assert_eq!(status, 201, "{doc}");
        ids.push(doc["run"]["id"].as_str().expect("id").to_string());
    }
    let runs = wait_for(&a.base, 120, "every run", |runs| {
        ids.iter().all(|id| {
            runs.iter().any(|r| {
                r["id"] == id.as_str() && (r["status"] == "succeeded" || r["status"] == "failed")
            })
        })
    });
    for id in &ids {
        let run = runs.iter().find(|r| r["id"] == id.as_str()).expect("run");
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(run["attempt"], 1, "executed once: {run:#}");
        let (_, detail) = http(&a.base, "GET", &format!("/runs/{id}"), Some(TOKEN), None);
        let starts: Vec<&Value> = detail["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["status"] == "running")
            .collect();
        assert_eq!(starts.len(), 1, "{detail:#}");
    }
    drop((a, b));
    crate::crash::assert_exactly_once(&dir);
}

/// Freshness automation: an asset whose contract promises a 3 s latency is run again, with
/// its upstream, every 80% of that (2.4 s) after its last run; assets with a day's latency are
/// left alone, and runs do not pile up.
#[test]
fn an_asset_runs_again_before_its_latency_sla_is_breached() {
    let (_tmp, dir) = demo_project();
    let path = dir.join("contracts/orders.odcs.yaml");
    let contract = std::fs::read_to_string(&path).expect("contract");
    let tight = contract.replace("value: 2\n    unit: h", "value: 3\n    unit: s");
    assert_ne!(tight, contract, "the orders contract's latency SLA moved");
    std::fs::write(&path, tight).expect("write contract");
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str("\n[serve]\npoll_ms = 50\ndependency_automation = false\n");
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
    weir_run(&dir, None);
    let started = Instant::now();
    let server = start(&dir);
    let runs = wait_for(&server.base, 60, "two freshness runs", |runs| {
        succeeded_with(runs, "freshness:orders") >= 2
    });
    let elapsed = started.elapsed().as_secs_f64();
    let freshness: Vec<&Value> = runs
        .iter()
        .filter(|r| {
            r["trigger"]
                .as_str()
                .is_some_and(|t| t.starts_with("freshness:"))
        })
        .collect();
    assert!(
        freshness.iter().all(|r| r["trigger"] == "freshness:orders"),
        "only orders has a latency shorter than the test: {freshness:#?}"
    );
    assert!(
        freshness
            .iter()
            .all(|r| r["selection"] == json!(["+orders"])),
        "{freshness:#?}"
    );
    // One run per 2.4 s at most, plus the one waiting or running now.
    let most = (elapsed / 2.4).ceil() as usize + 1;
    assert!(
        freshness.len() <= most,
        "{} freshness runs in {elapsed:.1} s: {freshness:#?}",
        freshness.len()
    );
}

/// `GET /metrics` is a valid Prometheus exposition (`promtool check metrics`, the
/// reference linter, which `scripts/test.sh` installs) and its figures agree with the lake.
#[test]
fn metrics_pass_promtool_and_agree_with_the_lake() {
    let (_tmp, dir) = reference_project();
    let server = start(&dir);
    let (status, _) = http(&server.base, "GET", "/metrics", None, None);
    assert_eq!(status, 401, "metrics are a read behind the token");
    let text = http_text(&server.base, "/metrics", TOKEN);

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test.sh installs Debian's prometheus package)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let stored = crate::support::scalar(&dir.join("lake/orders"), "SELECT COUNT(*) FROM t");
    let quarantined = crate::support::scalar(
        &dir.join("lake/_quarantine/orders"),
        "SELECT COUNT(*) FROM t",
    );
    assert_eq!(
        value("weir_asset_rows_stored_total{asset=\"orders\"}"),
        stored as f64
    );
    assert_eq!(
        value("weir_asset_rows_quarantined_total{asset=\"orders\"}"),
        quarantined as f64
    );
    assert_eq!(
        value("weir_asset_rows_in_total{asset=\"orders\"}"),
        (stored + quarantined) as f64
    );
    assert_eq!(
        value("weir_asset_runs_total{asset=\"orders\",status=\"success\"}"),
        1.0
    );
    assert_eq!(
        value("weir_asset_run_duration_seconds_count{asset=\"orders\"}"),
        1.0
    );
    assert_eq!(
        value("weir_asset_latency_sla_seconds{asset=\"orders\"}"),
        7200.0
    );
    let lag = value("weir_asset_freshness_lag_seconds{asset=\"orders\"}");
    assert!((0.0..600.0).contains(&lag), "lag {lag}");
    assert_eq!(value("weir_workers{role=\"serve\"}"), 1.0);
    assert_eq!(value("weir_queue_runs{status=\"queued\"}"), 0.0);
}

/// `GET path` with the token; the body as text.
pub(crate) fn http_text(base: &str, path: &str, token: &str) -> String {
    let mut stream = TcpStream::connect(base).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {base}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}
