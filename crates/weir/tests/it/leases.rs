//! One writer per table, any number per project: while one process writes `orders` (stopped
//! inside its publication), another `weir run` of other assets goes ahead at once, and a
//! `weir run` of `orders` waits for it; once the first is killed, the waiting one takes the
//! asset over at once (its holder is gone), completes nothing twice and leaves every row once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::serve::{assert_same_lake, reaches_failpoint, reference_project};
use crate::support::{demo_project, weir, weir_bin};

#[test]
fn writers_of_different_tables_go_ahead_and_writers_of_one_table_take_turns() {
    let (_reference_tmp, reference) = reference_project();
    let (_tmp, dir) = demo_project();
    // The first writer stops after journalling `orders`, holding its lease.
    let mut first = Command::new(weir_bin())
        .args(["run", "orders", "--project"])
        .arg(&dir)
        .env("WEIR_FAILPOINT", "journaled@orders")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir run starts");
    assert!(
        reaches_failpoint(&mut first, "journaled@orders", Duration::from_secs(120)),
        "never reached the failpoint"
    );

    // Another table: no waiting for the first writer.
    let started = Instant::now();
    let out = weir(&dir, &["run", "customers", "payments"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a run of other tables waited for the writer of orders"
    );

    // The same table: it waits while the first writer is alive.
    let mut second = Command::new(weir_bin())
        .args(["run", "--project"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("second weir run starts");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        second.try_wait().expect("try_wait").is_none(),
        "a second writer of orders did not wait for the first"
    );
    let mut stderr = String::new();
    first.kill().expect("SIGKILL");
    first.wait().expect("wait");
    let status = second.wait().expect("second run ends");
    if let Some(mut pipe) = second.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("another process is writing"),
        "the waiting run says why it waits: {stderr}"
    );

    crate::crash::assert_exactly_once(&dir);
    assert_same_lake(&dir, &reference, "two writers");
}

/// Appends `line` to a file of the project.
fn append(dir: &std::path::Path, file: &str, line: &str) {
    let path = dir.join(file);
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str(line);
    std::fs::write(&path, text).expect("write");
}

/// Three sources in a pool of one slot never run at the same time, even with four threads;
/// a pool that is not declared is an error that names the file.
#[test]
fn a_pool_of_one_slot_runs_its_assets_one_at_a_time() {
    let (_tmp, dir) = demo_project();
    for source in ["customers", "orders", "payments"] {
        // Before any [table] of the file.
        let path = dir.join(format!("sources/{source}.toml"));
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, format!("pool = \"serial\"\n{text}")).expect("write");
    }
    let out = weir(&dir, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("pool `serial` is not declared"), "{said}");
    append(&dir, "weir.toml", "\n[pools]\nserial = 1\n");
    let out = weir(&dir, &["run", "--threads", "4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = weir(&dir, &["runs", "--json", "--limit", "100"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut spans: Vec<(String, String, String)> = doc["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| {
            ["customers", "orders", "payments"].contains(&r["asset"].as_str().unwrap_or(""))
        })
        .map(|r| {
            (
                r["started_at"].as_str().unwrap_or_default().to_string(),
                r["ended_at"].as_str().unwrap_or_default().to_string(),
                r["asset"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    spans.sort();
    assert_eq!(spans.len(), 3, "{doc:#}");
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "{} ran until {} but {} started at {}: the pool's one slot was shared",
            pair[0].2,
            pair[0].1,
            pair[1].2,
            pair[1].0
        );
    }
}

/// A model past its own `timeout_secs` is stopped: the run says so and fails, its table
/// gains no version, no file it staged is left, and the other assets publish.
#[test]
fn a_model_past_its_timeout_is_stopped_and_leaves_nothing() {
    let (_tmp, dir) = demo_project();
    std::fs::write(
        dir.join("models/endless.sql"),
        "-- weir: timeout_secs = 2\nSELECT a.customer_id AS n FROM customers a CROSS JOIN customers b CROSS JOIN customers c\n",
    )
    .expect("write model");
    std::fs::write(
        dir.join("contracts/endless.odcs.yaml"),
        "apiVersion: v3.1.0\nkind: DataContract\nid: endless\nversion: 1.0.0\nstatus: active\nteam:\n  name: qa\n  members:\n    - username: qa@example.com\n      role: owner\nschema:\n  - name: endless\n    properties:\n      - name: n\n        logicalType: integer\n",
    )
    .expect("write contract");
    let started = Instant::now();
    let (code, doc) = crate::support::run_json(&dir, &[]);
    assert!(started.elapsed() < Duration::from_secs(120), "not stopped");
    assert_ne!(code, 0, "{doc:#}");
    let endless = crate::support::run_of(&doc, "endless");
    assert_eq!(endless["status"], "error", "{endless:#}");
    assert!(
        endless["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out after 2 s"),
        "{endless:#}"
    );
    assert_eq!(crate::support::run_of(&doc, "orders")["status"], "success");
    // Nothing published: no version beyond the table's creation, and no staged file left.
    let table = dir.join("lake/endless");
    assert_eq!(crate::support::count(&table), 0);
    let out = weir(&dir, &["vacuum", "endless", "--json"]);
    let vacuum: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(vacuum["unreferenced_files"], 0, "{vacuum:#}");
    let out = weir(&dir, &["runs", "--asset", "endless", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        runs["runs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["status"] == "error")),
        "{runs:#}"
    );
}

/// With `max_runs = 2`, `weir serve` executes a second queued run of another asset while the
/// first (a model that never ends) is still running.
#[test]
fn a_service_executes_runs_of_different_assets_at_once() {
    use crate::serve::{TOKEN, http, start, wait_for};
    let (_tmp, dir) = demo_project();
    let out = weir(&dir, &["run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.join("models/endless.sql"),
        "SELECT a.customer_id AS n FROM customers a CROSS JOIN customers b CROSS JOIN customers c\n",
    )
    .expect("write model");
    std::fs::write(
        dir.join("contracts/endless.odcs.yaml"),
        "apiVersion: v3.1.0\nkind: DataContract\nid: endless\nversion: 1.0.0\nstatus: active\nteam:\n  name: qa\n  members:\n    - username: qa@example.com\n      role: owner\nschema:\n  - name: endless\n    properties:\n      - name: n\n        logicalType: integer\n",
    )
    .expect("write contract");
    append(
        &dir,
        "weir.toml",
        "\n[serve]\nmax_runs = 2\nfile_arrival = false\npoll_ms = 50\nlease_secs = 5\n",
    );
    let server = start(&dir);
    let queue = |select: &str| {
        let (status, doc) = http(
            &server.base,
            "POST",
            "/runs",
            Some(TOKEN),
            Some(serde_json::json!({"select": [select], "full_refresh": true})),
        );
        assert_eq!(status, 201, "{doc}");
        doc["run"]["id"].as_str().expect("id").to_string()
    };
    let endless = queue("endless");
    wait_for(&server.base, 60, "the endless run starts", |runs| {
        runs.iter()
            .any(|r| r["id"] == endless.as_str() && r["status"] == "running")
    });
    let customers = queue("customers");
    let runs = wait_for(&server.base, 60, "customers runs beside it", |runs| {
        runs.iter()
            .any(|r| r["id"] == customers.as_str() && r["status"] == "succeeded")
    });
    let still = runs
        .iter()
        .find(|r| r["id"] == endless.as_str())
        .expect("endless");
    assert_eq!(still["status"], "running", "{still:#}");
    drop(server);
    assert_eq!(crate::support::count(&dir.join("lake/endless")), 0);
}
