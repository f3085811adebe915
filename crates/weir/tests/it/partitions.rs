//! Partitioned models and `weir backfill` against their oracle: after upstream rows change,
//! backfilling the touched partitions leaves each table (and its quarantine) exactly as a
//! `--full-refresh` of a copy of the project does. A partition run again replaces, never
//! appends; a backfill killed at any step of a partition's publication and run again
//! finishes with the same tables, each partition's run executed again at most once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::serve::reaches_failpoint;
use crate::support::{query, weir, weir_bin};

const EVENTS_CONTRACT: &str = "apiVersion: v3.1.0\nkind: DataContract\nid: events\nversion: 1.0.0\nstatus: active\nteam:\n  name: qa\n  members:\n    - username: qa@example.com\n      role: owner\nschema:\n  - name: events\n    properties:\n      - name: id\n        logicalType: integer\n        required: true\n      - name: ts\n        logicalType: timestamp\n      - name: country\n        logicalType: string\n      - name: amount\n        logicalType: number\n";

/// Per day and country; a negative total is quarantined (`total.minimum`), a NULL day too.
const DAILY_SQL: &str = "-- weir: partition_by = day\nSELECT CAST(ts AS DATE) AS day, country, COUNT(*) AS n, SUM(amount) AS total FROM events GROUP BY CAST(ts AS DATE), country\n";
const DAILY_CONTRACT: &str = "apiVersion: v3.1.0\nkind: DataContract\nid: daily\nversion: 1.0.0\nstatus: active\nteam:\n  name: qa\n  members:\n    - username: qa@example.com\n      role: owner\nschema:\n  - name: daily\n    properties:\n      - name: day\n        logicalType: date\n        required: true\n      - name: country\n        logicalType: string\n      - name: n\n        logicalType: integer\n        required: true\n      - name: total\n        logicalType: number\n        logicalTypeOptions:\n          minimum: 0\n";

/// Every event, by hour of its timestamp; NULL timestamps are in no partition.
const HOURLY_SQL: &str =
    "-- weir: partition_by = ts, partition_grain = hour\nSELECT id, ts, amount FROM events\n";
const HOURLY_CONTRACT: &str = "apiVersion: v3.1.0\nkind: DataContract\nid: hourly\nversion: 1.0.0\nstatus: active\nteam:\n  name: qa\n  members:\n    - username: qa@example.com\n      role: owner\nschema:\n  - name: hourly\n    properties:\n      - name: id\n        logicalType: integer\n        required: true\n      - name: ts\n        logicalType: timestamp\n      - name: amount\n        logicalType: number\n";

fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    for sub in ["contracts", "sources", "models", "data/events"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let files = [
        (
            "weir.toml",
            "[project]\nname = \"parts\"\n\n[serve]\nlease_secs = 1\npoll_ms = 50\n",
        ),
        ("contracts/events.odcs.yaml", EVENTS_CONTRACT),
        (
            "sources/events.toml",
            "format = \"ndjson\"\npath = \"data/events/*.ndjson\"\n",
        ),
        ("models/daily.sql", DAILY_SQL),
        ("contracts/daily.odcs.yaml", DAILY_CONTRACT),
        ("models/hourly.sql", HOURLY_SQL),
        ("contracts/hourly.odcs.yaml", HOURLY_CONTRACT),
    ];
    for (path, text) in files {
        std::fs::write(dir.join(path), text).expect("write");
    }
    (tmp, dir)
}

/// `n` events from id `first`, spread over November 1st to 5th (or only over `days`), some
/// with a NULL timestamp, some negative.
fn write_events(dir: &Path, name: &str, first: u64, n: u64, days: &[u64]) {
    let lines: Vec<String> = (first..first + n)
        .map(|id| {
            let day = days[(id as usize * 7) % days.len()];
            let ts = if id % 23 == 0 {
                "null".to_string()
            } else {
                format!("\"2026-11-{day:02}T{:02}:{:02}:00Z\"", id % 6, id % 60)
            };
            let amount = if id % 5 == 0 { -40.0 } else { (id % 17) as f64 };
            let country = ["DE", "FR", "NL"][(id % 3) as usize];
            format!("{{\"id\":{id},\"ts\":{ts},\"country\":\"{country}\",\"amount\":{amount}}}")
        })
        .collect();
    std::fs::write(
        dir.join("data/events").join(format!("{name}.ndjson")),
        lines.join("\n"),
    )
    .expect("write events");
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = weir(dir, args);
    assert!(
        out.status.success(),
        "weir {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The rows of a table and of its counted quarantine rows, sorted.
fn contents(dir: &Path, asset: &str) -> (Vec<String>, Vec<String>) {
    let mut rows = query(&dir.join("lake").join(asset), "SELECT * FROM t");
    rows.sort();
    let mut quarantined = query(
        &dir.join("lake/_quarantine").join(asset),
        "SELECT rule_id, raw_record FROM t WHERE COALESCE(run_status, 'published') = 'published' AND replayed_by IS NULL",
    );
    quarantined.sort();
    (rows, quarantined)
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

/// The project after a first build and a second batch of events touching November 2nd to
/// 4th (hours 00 to 05), ingested but not yet modelled; and the oracle: a copy rebuilt with
/// `--full-refresh`.
fn built_with_new_events() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let (tmp, dir) = project();
    write_events(&dir, "batch_1", 1, 400, &[1, 2, 3, 4, 5]);
    ok(&dir, &["run"]);
    write_events(&dir, "batch_2", 1000, 150, &[2, 3, 4]);
    ok(&dir, &["run", "events"]);
    let oracle = tmp.path().join("oracle");
    copy_dir(&dir, &oracle);
    ok(&oracle, &["run", "--full-refresh"]);
    (tmp, dir, oracle)
}

fn backfill_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["backfill", "--json"];
    all.extend_from_slice(args);
    let out = weir(dir, &all);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "weir {all:?}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    crate::json_output::assert_documented(&all, &doc);
    (out.status.code().unwrap_or(-1), doc)
}

#[test]
fn a_backfill_of_the_touched_partitions_equals_a_full_refresh() {
    let (_tmp, dir, oracle) = built_with_new_events();
    for asset in ["daily", "hourly"] {
        assert_ne!(
            contents(&dir, asset),
            contents(&oracle, asset),
            "{asset}: the new events must change it"
        );
    }
    let (code, doc) = backfill_json(
        &dir,
        &["daily", "--from", "2026-11-01", "--to", "2026-11-05"],
    );
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["succeeded"], 5, "{doc:#}");
    assert_eq!(doc["queued_now"], 5);
    let (code, doc) = backfill_json(
        &dir,
        &["hourly", "--from", "2026-11-02T00", "--to", "2026-11-04T05"],
    );
    assert_eq!(code, 0, "{doc:#}");
    // 3 days × 24 hours, the last day up to 05.
    assert_eq!(doc["partitions"].as_array().map(Vec::len), Some(54));
    for asset in ["daily", "hourly"] {
        assert_eq!(
            contents(&dir, asset),
            contents(&oracle, asset),
            "{asset}: backfilled partitions differ from a full refresh"
        );
    }

    // The same backfill again queues nothing; a partition run again replaces it.
    let (code, doc) = backfill_json(
        &dir,
        &["daily", "--from", "2026-11-01", "--to", "2026-11-05"],
    );
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["queued_now"], 0, "{doc:#}");
    let out = ok(
        &dir,
        &["run", "daily", "--partition", "2026-11-03", "--json"],
    );
    let run: Value = serde_json::from_str(&out).expect("json");
    crate::json_output::assert_documented(&["run"], &run);
    let partition = &run["runs"][0]["partition"];
    assert_eq!(partition["partition"], "2026-11-03", "{run:#}");
    assert!(
        partition["rows_removed"].as_u64().unwrap_or(0) > 0,
        "{run:#}"
    );
    assert_eq!(
        contents(&dir, "daily"),
        contents(&oracle, "daily"),
        "a partition run again must replace, not append"
    );

    // Misuse is refused, loudly.
    let out = weir(&dir, &["run", "events", "--partition", "2026-11-03"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a partitioned model"));
    for (args, says) in [
        (["daily", "2026-11-05", "2026-11-01"], "before"),
        (
            ["events", "2026-11-01", "2026-11-02"],
            "not a partitioned model",
        ),
        (
            ["daily", "2026-11-01", "2026-11-01T05"],
            "not a day partition",
        ),
    ] {
        let (code, doc) = backfill_json(&dir, &[args[0], "--from", args[1], "--to", args[2]]);
        assert_eq!(code, 2, "{doc:#}");
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{args:?}: {doc:#}");
    }
}

/// Where a backfill is SIGKILLed: before the journal, after it, and between the table's and
/// the quarantine's commits.
const BACKFILL_FAILPOINTS: [&str; 3] = ["staged@daily", "journaled@daily", "between_commits@daily"];

#[test]
fn a_killed_backfill_run_again_finishes_with_the_same_tables() {
    let (_tmp, dir, oracle) = built_with_new_events();
    let pristine = dir.with_file_name("pristine");
    copy_dir(&dir, &pristine);
    for (i, failpoint) in BACKFILL_FAILPOINTS.iter().enumerate() {
        let dir = dir.with_file_name(format!("killed_{i}"));
        copy_dir(&pristine, &dir);
        let mut child = Command::new(weir_bin())
            .args([
                "backfill",
                "daily",
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-05",
                "--project",
            ])
            .arg(&dir)
            .env("WEIR_FAILPOINT", failpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("backfill starts");
        let reached = reaches_failpoint(&mut child, failpoint, Duration::from_secs(120));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        assert!(reached, "{failpoint}: never reached");

        let (code, doc) = backfill_json(
            &dir,
            &["daily", "--from", "2026-11-01", "--to", "2026-11-05"],
        );
        assert_eq!(code, 0, "{failpoint}: {doc:#}");
        assert_eq!(doc["succeeded"], 5, "{failpoint}: {doc:#}");
        let partitions = doc["partitions"].as_array().expect("partitions");
        let attempts: Vec<i64> = partitions
            .iter()
            .map(|p| p["attempts"].as_i64().unwrap_or(0))
            .collect();
        // The killed partition ran twice, every other once.
        assert_eq!(
            attempts.iter().filter(|a| **a == 2).count(),
            1,
            "{failpoint}: {doc:#}"
        );
        assert!(attempts.iter().all(|a| *a <= 2), "{failpoint}: {doc:#}");
        assert_eq!(
            contents(&dir, "daily"),
            contents(&oracle, "daily"),
            "{failpoint}: a killed and resumed backfill differs from a full refresh"
        );
    }
}

/// A backfill queued through the API of `weir serve` is executed by the service, and leaves
/// the same table as a full refresh.
#[test]
fn a_backfill_queued_through_the_api_is_run_by_the_service() {
    use crate::serve::{TOKEN, http, start, wait_for};
    let (_tmp, dir, oracle) = built_with_new_events();
    let server = start(&dir);
    let request = serde_json::json!({"asset": "daily", "from": "2026-11-01", "to": "2026-11-05"});
    let (status, doc) = http(
        &server.base,
        "POST",
        "/backfills",
        None,
        Some(request.clone()),
    );
    assert_eq!(status, 401, "mutating without the token: {doc}");
    let (status, doc) = http(
        &server.base,
        "POST",
        "/backfills",
        Some(TOKEN),
        Some(request.clone()),
    );
    assert_eq!(status, 201, "{doc}");
    assert_eq!(doc["queued_now"], 5, "{doc}");
    let trigger = doc["trigger"].as_str().expect("trigger").to_string();
    let runs = wait_for(&server.base, 120, "the backfill's runs", |runs| {
        let mine: Vec<&Value> = runs.iter().filter(|r| r["trigger"] == trigger).collect();
        mine.len() == 5
            && mine
                .iter()
                .all(|r| r["status"] == "succeeded" || r["status"] == "failed")
    });
    let mut partitions: Vec<&str> = runs
        .iter()
        .filter(|r| r["trigger"] == trigger)
        .inspect(|r| assert_eq!(r["status"], "succeeded", "{r:#}"))
        .filter_map(|r| r["partition"].as_str())
        .collect();
    partitions.sort();
    assert_eq!(
        partitions,
        [
            "2026-11-01",
            "2026-11-02",
            "2026-11-03",
            "2026-11-04",
            "2026-11-05"
        ]
    );
    // Queued again: every partition already succeeded, so nothing is.
    let (status, doc) = http(
        &server.base,
        "POST",
        "/backfills",
        Some(TOKEN),
        Some(request),
    );
    assert_eq!(status, 201, "{doc}");
    assert_eq!(doc["queued_now"], 0, "{doc}");
    let (status, doc) = http(
        &server.base,
        "POST",
        "/backfills",
        Some(TOKEN),
        Some(serde_json::json!({"asset": "events", "from": "2026-11-01", "to": "2026-11-02"})),
    );
    assert_eq!(status, 400, "{doc}");
    drop(server);
    assert_eq!(
        contents(&dir, "daily"),
        contents(&oracle, "daily"),
        "a backfill run by the service differs from a full refresh"
    );
}
