//! Working with the quarantine: a failed run keeps its rows, `quarantine.<asset>` in
//! `weir query`, `weir quarantine`, and `weir replay` publishing each row exactly once, even
//! when killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{run_json, run_of, scalar, weir, weir_bin};

fn contract(min_rows: u64, maximum: u64) -> String {
    format!(
        "apiVersion: v3.1.0
kind: DataContract
id: q
version: 1.0.0
status: active
team:
  name: qa
  members:
    - username: qa@example.com
      role: owner
schema:
  - name: orders
    quality:
      - id: volume
        metric: rowCount
        mustBeGreaterThan: {min_rows}
        severity: error
    properties:
      - name: order_id
        logicalType: integer
        primaryKey: true
        required: true
      - name: amount
        logicalType: number
        logicalTypeOptions:
          minimum: 0
          maximum: {maximum}
"
    )
}

/// The amount of order `id` in the generated input: every 7th is 150 (passes a maximum of
/// 1000, not 100), every 11th 5000 (fails both), every 13th not a number, the others 50.
fn amount(id: u64) -> String {
    if id.is_multiple_of(13) {
        "\"cheap\"".into()
    } else if id.is_multiple_of(11) {
        "5000".into()
    } else if id.is_multiple_of(7) {
        "150".into()
    } else {
        "50".into()
    }
}

const FILES: u64 = 3;
const PER_FILE: u64 = 200;
/// Plus one undecodable line per file.
const INPUT: u64 = FILES * (PER_FILE + 1);

/// A project whose orders break `amount.maximum`, `amount.type`, and `decode.utf8`.
fn project(min_rows: u64, maximum: u64) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    for d in ["contracts", "sources", "data"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::fs::write(
        dir.join("weir.toml"),
        "[project]\nname = \"qa\"\n[teams.qa]\nchannels = [\"slack:#qa\"]\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("contracts/orders.odcs.yaml"),
        contract(min_rows, maximum),
    )
    .expect("write");
    std::fs::write(
        dir.join("sources/orders.toml"),
        "format = \"ndjson\"\npath = \"data/*.ndjson\"\n",
    )
    .expect("write");
    for f in 0..FILES {
        let mut bytes = Vec::new();
        for i in 0..PER_FILE {
            let id = f * PER_FILE + i + 1;
            bytes.extend_from_slice(
                format!("{{\"order_id\":{id},\"amount\":{}}}\n", amount(id)).as_bytes(),
            );
        }
        bytes.extend_from_slice(&bad_line(f));
        bytes.push(b'\n');
        std::fs::write(dir.join(format!("data/{f}.ndjson")), bytes).expect("write");
    }
    (tmp, dir)
}

/// An undecodable line: Latin-1 bytes in a JSON string.
fn bad_line(f: u64) -> Vec<u8> {
    let mut line = format!("{{\"order_id\":{},\"note\":\"caf", 90_000 + f).into_bytes();
    line.extend_from_slice(&[0xe9, 0xff]);
    line.extend_from_slice(b"\"}");
    line
}

fn ids() -> impl Iterator<Item = u64> {
    1..=FILES * PER_FILE
}

fn good(id: u64, maximum: u64) -> bool {
    match amount(id).as_str() {
        "\"cheap\"" => false,
        a => a.parse::<u64>().is_ok_and(|v| v <= maximum),
    }
}

fn set_contract(dir: &Path, min_rows: u64, maximum: u64) {
    std::fs::write(
        dir.join("contracts/orders.odcs.yaml"),
        contract(min_rows, maximum),
    )
    .expect("write");
}

fn json_of(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = weir(dir, &all);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

fn table(dir: &Path) -> PathBuf {
    dir.join("lake/orders")
}

fn quarantine(dir: &Path) -> PathBuf {
    dir.join("lake/_quarantine/orders")
}

/// The Python `deltalake` reader's view of the quarantine: rows per (run_status, rule_id), and
/// the hex of every `raw_bytes`.
fn python_quarantine(path: &Path) -> Value {
    let script = r#"
import json, os, sys
from collections import Counter
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1]).to_pyarrow_table()
statuses = t.column("run_status").to_pylist()
rules = t.column("rule_id").to_pylist()
runs = t.column("run_id").to_pylist()
counts = Counter(f"{s}/{r}" for s, r in zip(statuses, rules))
print(json.dumps({
    "rows": t.num_rows,
    "counts": counts,
    "runs": sorted(set(runs)),
    "raw_bytes": sorted(b.hex() for b in t.column("raw_bytes").to_pylist() if b is not None),
}))
sys.stdout.flush()
os._exit(0)
"#;
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python reader: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn txn(path: &Path, app_id: &str) -> Option<i64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let t = weir_store::LakeTable::open(path)
            .await
            .expect("open")
            .expect("table");
        t.txn_version(app_id).await.expect("txn")
    })
}

/// The single count `weir query --json` prints for `args` (the SQL, then options).
fn count(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    let (code, doc) = json_of(dir, &all);
    assert_eq!(code, 0, "{args:?}: {doc}");
    doc["rows"][0]["n"].clone()
}

/// Adds `data/<file>` and runs the project; the orders run's `rows_quarantined`.
fn quarantined_by_a_run_of(dir: &Path, file: &str, lines: &str) -> Value {
    std::fs::write(dir.join("data").join(file), lines).expect("write");
    let (code, doc) = run_json(dir, &[]);
    assert_eq!(code, 0, "{doc}");
    run_of(&doc, "orders")["rows_quarantined"].clone()
}

#[test]
fn a_quarantine_table_is_created_with_the_first_quarantined_row() {
    let (_tmp, dir) = project(0, 100_000);
    for f in 0..FILES {
        std::fs::remove_file(dir.join(format!("data/{f}.ndjson"))).expect("rm");
    }
    let clean = "{\"order_id\":1,\"amount\":5}\n{\"order_id\":2,\"amount\":6}\n";
    assert_eq!(quarantined_by_a_run_of(&dir, "clean.ndjson", clean), 0);
    assert!(
        !quarantine(&dir).exists(),
        "no row quarantined, no quarantine table"
    );
    // Every reader takes the missing table as one without rows.
    let sql = "SELECT COUNT(*) AS n FROM quarantine.orders";
    assert_eq!(count(&dir, &[sql]), 0);
    let (code, q) = json_of(&dir, &["quarantine", "orders"]);
    assert_eq!((code, &q["rows"]), (0, &Value::from(0)), "{q}");
    let out = weir(&dir, &["quarantine", "orders"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no row of `orders` has been quarantined"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = weir(&dir, &["query", sql, "--at", "0"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no version of a missing table to read"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`quarantine.orders` has no versions"),
        "{out:?}"
    );

    let before = chrono::Utc::now().to_rfc3339();
    // The first bad row creates it, with that row, under the run's txn.
    let dirty = "{\"order_id\":3,\"amount\":\"cheap\"}\n{\"order_id\":4,\"amount\":7}\n";
    assert_eq!(quarantined_by_a_run_of(&dir, "dirty.ndjson", dirty), 1);
    assert_eq!(count(&dir, &[sql]), 1);
    // Read as of an instant before it existed: no rows then either.
    assert_eq!(count(&dir, &[sql, "--as-of", &before]), 0);
    let py = python_quarantine(&quarantine(&dir));
    assert_eq!(py["rows"], 1, "{py}");
    assert_eq!(py["counts"]["published/amount.type"], 1, "{py}");
    assert_eq!(txn(&quarantine(&dir), "weir:orders"), Some(2));
    assert_eq!(scalar(&table(&dir), "SELECT COUNT(*) FROM t"), 3);
}

#[test]
fn a_failed_run_keeps_its_quarantined_rows_marked_failed() {
    let (_tmp, dir) = project(10_000, 100);
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let run = run_of(&doc, "orders");
    assert_eq!(run["status"], "failed", "{run}");
    let failed_run = run["run_id"].as_str().expect("run id").to_string();
    let bad = ids().filter(|i| !good(*i, 100)).count() as u64 + FILES;
    assert_eq!(run["rows_quarantined"], bad, "{run}");
    assert_eq!(scalar(&table(&dir), "SELECT COUNT(*) FROM t"), 0);

    // Queryable from weir under quarantine.<asset>.
    let out = weir(
        &dir,
        &[
            "query",
            "SELECT COUNT(*) AS n FROM quarantine.orders WHERE run_status = 'failed'",
            "--json",
        ],
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("query json");
    assert_eq!(doc["rows"][0]["n"], bad, "{doc}");
    let out = weir(&dir, &["query", "SELECT COUNT(*) FROM quarantine.orders"]);
    assert!(out.status.success());
    let out = weir(
        &dir,
        &[
            "query",
            "SELECT COUNT(*) FROM quarantine.orders",
            "--at",
            "0",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("| 0 "),
        "time travel to the empty table: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The failed run did not advance weir:orders; its rows went in under weir-failed:orders.
    assert_eq!(txn(&quarantine(&dir), "weir:orders"), None);
    assert_eq!(txn(&quarantine(&dir), "weir-failed:orders"), Some(1));

    // Counts by rule equal the rows, seen by an independent reader.
    let (code, q) = json_of(&dir, &["quarantine", "orders"]);
    assert_eq!(code, 0, "{q}");
    assert_eq!(q["rows"], bad, "{q}");
    let py = python_quarantine(&quarantine(&dir));
    assert_eq!(py["rows"], bad, "{py}");
    assert_eq!(py["runs"], serde_json::json!([failed_run]));
    let by_rule = q["by_rule"].as_object().expect("by_rule");
    for (rule, n) in by_rule {
        assert_eq!(py["counts"][format!("failed/{rule}")], *n, "{rule}: {py}");
    }
    assert_eq!(by_rule.values().filter_map(Value::as_u64).sum::<u64>(), bad);
    assert_eq!(q["by_run"][0]["run_status"], "failed", "{q}");
    assert_eq!(q["by_run"][0]["run_id"], failed_run.as_str(), "{q}");

    // The files were not recorded: a run that passes reads them again, and only its rows
    // count as published.
    set_contract(&dir, 1, 100);
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let (_, q) = json_of(&dir, &["quarantine", "orders", "--status", "published"]);
    assert_eq!(q["rows"], bad, "{q}");
    let (_, q) = json_of(&dir, &["quarantine", "orders", "--status", "failed"]);
    assert_eq!(q["rows"], bad, "{q}");
    let (_, q) = json_of(
        &dir,
        &[
            "quarantine",
            "orders",
            "--rule",
            "decode.utf8",
            "--limit",
            "1",
        ],
    );
    assert_eq!(q["rows"], 2 * FILES, "{q}");
    assert_eq!(q["samples"].as_array().map(Vec::len), Some(1), "{q}");
    assert_eq!(
        scalar(&table(&dir), "SELECT COUNT(*) FROM t"),
        ids().filter(|i| good(*i, 100)).count() as u64
    );
    assert_eq!(
        txn(&quarantine(&dir), "weir:orders"),
        txn(&table(&dir), "weir:orders")
    );
}

#[test]
fn undecodable_records_keep_their_exact_bytes() {
    let (_tmp, dir) = project(1, 100);
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let py = python_quarantine(&quarantine(&dir));
    let mut expected: Vec<String> = (0..FILES)
        .map(|f| {
            bad_line(f)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
        .collect();
    expected.sort();
    assert_eq!(py["raw_bytes"], serde_json::json!(expected), "{py}");
    assert_eq!(py["counts"]["published/decode.utf8"], FILES, "{py}");
}

/// Stored rows, replayed quarantine rows and pending quarantine rows, checked against the input.
fn assert_replayed_once(dir: &Path) {
    let stored = scalar(&table(dir), "SELECT COUNT(*) FROM t");
    let distinct = scalar(&table(dir), "SELECT COUNT(DISTINCT order_id) FROM t");
    assert_eq!(stored, distinct, "a row was published twice");
    assert_eq!(
        stored,
        ids().filter(|i| good(*i, 1000)).count() as u64,
        "stored rows"
    );
    let pending = scalar(
        &quarantine(dir),
        "SELECT COUNT(*) FROM t WHERE replayed_by IS NULL",
    );
    assert_eq!(
        stored + pending,
        INPUT,
        "stored + quarantined (not replayed)"
    );
    let all = scalar(&quarantine(dir), "SELECT COUNT(*) FROM t");
    let distinct_q = scalar(
        &quarantine(dir),
        "SELECT COUNT(DISTINCT source || ':' || CAST(position AS VARCHAR)) FROM t",
    );
    assert_eq!(all, distinct_q, "a quarantined row was duplicated");
    assert_eq!(
        all,
        ids().filter(|i| !good(*i, 100)).count() as u64 + FILES,
        "the quarantine keeps every row it had"
    );
    let replayed = scalar(
        &quarantine(dir),
        "SELECT COUNT(*) FROM t WHERE replayed_by IS NOT NULL",
    );
    assert_eq!(
        replayed,
        ids().filter(|i| good(*i, 1000) && !good(*i, 100)).count() as u64
    );
    assert_eq!(
        txn(&quarantine(dir), "weir:orders"),
        txn(&table(dir), "weir:orders")
    );
}

/// A project run with a maximum of 100, whose contract then allows 1000.
fn relaxed_project() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = project(1, 100);
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    set_contract(&dir, 1, 1000);
    (tmp, dir)
}

#[test]
fn replay_publishes_the_rows_that_now_pass_exactly_once() {
    let (_tmp, dir) = relaxed_project();
    let now_pass = ids().filter(|i| good(*i, 1000) && !good(*i, 100)).count() as u64;
    let still_max = ids().filter(|i| amount(*i) == "5000").count() as u64;
    let still_type = ids().filter(|i| amount(*i) == "\"cheap\"").count() as u64;
    let (code, doc) = json_of(&dir, &["replay", "orders"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["status"], "success", "{doc}");
    assert_eq!(doc["considered"], now_pass + still_max + still_type + FILES);
    assert_eq!(doc["published"], now_pass, "{doc}");
    assert_eq!(doc["still_failing_by_rule"]["amount.maximum"], still_max);
    assert_eq!(doc["still_failing_by_rule"]["amount.type"], still_type);
    assert_eq!(doc["still_failing_by_rule"]["decode.utf8"], FILES);
    assert_replayed_once(&dir);
    // The replayed rows are the 150s.
    assert_eq!(
        scalar(&table(&dir), "SELECT COUNT(*) FROM t WHERE amount = 150"),
        now_pass
    );

    let (code, again) = json_of(&dir, &["replay", "orders"]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["published"], 0, "{again}");
    assert_eq!(again["status"], "up_to_date", "{again}");
    assert_replayed_once(&dir);

    // weir quarantine shows what was replayed.
    let (_, q) = json_of(&dir, &["quarantine", "orders", "--rule", "amount.maximum"]);
    assert_eq!(q["replayed"], now_pass, "{q}");
    // A later run finds nothing new.
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    assert_eq!(run_of(&doc, "orders")["status"], "up_to_date");
    assert_replayed_once(&dir);
}

#[test]
fn replay_filters_by_rule() {
    let (_tmp, dir) = relaxed_project();
    let (code, doc) = json_of(&dir, &["replay", "orders", "--rule", "amount.type"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["published"], 0, "{doc}");
    let (code, doc) = json_of(&dir, &["replay", "orders", "--rule", "amount.maximum"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc["published"],
        ids().filter(|i| good(*i, 1000) && !good(*i, 100)).count() as u64
    );
    assert_replayed_once(&dir);
}

#[test]
fn replay_killed_at_every_publishing_step_publishes_each_row_once() {
    for failpoint in ["staged", "journaled", "between_commits", "published"] {
        let (_tmp, dir) = relaxed_project();
        crate::crash::kill_command_at(&dir, &["replay", "orders", "--json"], failpoint);
        let (code, doc) = json_of(&dir, &["replay", "orders"]);
        assert_eq!(code, 0, "{failpoint}: {doc}");
        if failpoint != "staged" {
            assert_eq!(
                doc["recovered"].as_array().map(Vec::is_empty),
                Some(false),
                "{failpoint}: {doc}"
            );
            assert_eq!(doc["published"], 0, "{failpoint}: recovery did it: {doc}");
        }
        assert_replayed_once(&dir);
        let (_, again) = json_of(&dir, &["replay", "orders"]);
        assert_eq!(again["published"], 0, "{failpoint}: {again}");
        assert_replayed_once(&dir);
    }
}

#[test]
fn replay_killed_at_random_instants_then_rerun_is_exact() {
    let (_tmp, dir) = relaxed_project();
    for delay in [5u64, 30, 60, 90, 120, 160, 200, 260, 330, 420] {
        let mut child = Command::new(weir_bin())
            .args(["replay", "orders", "--json", "--project"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
    }
    let (code, doc) = json_of(&dir, &["replay", "orders"]);
    assert_eq!(code, 0, "{doc}");
    assert_replayed_once(&dir);
}
