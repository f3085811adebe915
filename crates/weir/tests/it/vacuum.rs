//! `weir vacuum` after killed and failed runs: it deletes exactly the data files no version of
//! a table names, every table reads back the same rows (with the Python `deltalake` reader),
//! and a vacuum SIGKILLed halfway is finished by the next.

use std::path::Path;
use std::process::Command;

use crate::crash::{kill_at, kill_command_at};
use crate::support::{demo_project, python, run_json, weir};

/// For every table under `lake/` (quarantines too): the data files on disk that no version
/// names, and a digest of the latest version's rows.
const LAKE_STATE: &str = r#"
import hashlib, json, os, sys
from deltalake import DeltaTable
lake = sys.argv[1]
tables = []
for root, dirs, files in os.walk(lake):
    if "_delta_log" in dirs:
        tables.append(root)
        dirs[:] = [d for d in dirs if d not in ("_delta_log",)]
out = {}
for path in sorted(tables):
    dt = DeltaTable(path)
    named = set()
    for v in range(dt.version() + 1):
        for uri in DeltaTable(path, version=v).file_uris():
            named.add(os.path.relpath(uri.removeprefix("file://"), path).replace(os.sep, "/"))
    on_disk = set()
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != "_delta_log" and not d.startswith(("_", "."))]
        for f in files:
            if f.endswith(".parquet"):
                on_disk.add(os.path.relpath(os.path.join(root, f), path).replace(os.sep, "/"))
    rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in dt.to_pyarrow_table().to_pylist())
    out[os.path.relpath(path, lake)] = {
        "unreferenced": sorted(on_disk - named),
        "rows": len(rows),
        "digest": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
    }
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"#;

fn lake_state(dir: &Path) -> serde_json::Value {
    let out = Command::new(python())
        .arg("-c")
        .arg(LAKE_STATE)
        .arg(dir.join("lake"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the independent reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn unreferenced(state: &serde_json::Value) -> usize {
    state
        .as_object()
        .map(|tables| {
            tables
                .values()
                .map(|t| t["unreferenced"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
}

fn without_unreferenced(state: &serde_json::Value) -> serde_json::Value {
    let mut state = state.clone();
    if let Some(tables) = state.as_object_mut() {
        for table in tables.values_mut() {
            table["unreferenced"] = serde_json::json!([]);
        }
    }
    state
}

#[test]
fn vacuum_after_killed_and_failed_runs_keeps_every_version_and_every_row() {
    let (_tmp, dir) = demo_project();
    // A killed run leaves the files it staged.
    kill_at(&dir, "staged");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    // A failed run: a file of orders none of which is valid publishes nothing to the table.
    let bad: String = (0..100)
        .map(|i| {
            format!(
                "{{\"order_id\": {}, \"customer_id\": \"nobody\"}}\n",
                900_000 + i
            )
        })
        .collect();
    std::fs::write(dir.join("data/orders/bad.ndjson"), bad).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    // And one more killed run, on new valid input, after staging.
    std::fs::remove_file(dir.join("data/orders/bad.ndjson")).expect("remove");
    let good: String = (0..50)
        .map(|i| {
            format!(
                "{{\"order_id\": {}, \"customer_id\": 1, \"order_ts\": \"2026-11-05T10:00:00Z\", \"status\": \"paid\", \"amount\": 10.5, \"currency\": \"EUR\"}}\n",
                800_000 + i
            )
        })
        .collect();
    std::fs::write(dir.join("data/orders/late.ndjson"), good).expect("write");
    kill_at(&dir, "staged@orders");

    let before = lake_state(&dir);
    assert!(
        unreferenced(&before) > 0,
        "the kills left no file: {before}"
    );

    // A dry run lists them and deletes nothing.
    let out = weir(&dir, &["vacuum", "--json"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["applied"], false);
    assert_eq!(
        report["unreferenced_files"].as_u64(),
        Some(unreferenced(&before) as u64),
        "weir and the Python reader disagree on what no version names: {report} vs {before}"
    );
    assert_eq!(lake_state(&dir), before);

    // Killed halfway through deleting, then run again.
    kill_command_at(&dir, &["vacuum", "--apply"], "vacuum_deleted");
    let out = weir(&dir, &["vacuum", "--apply", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = lake_state(&dir);
    assert_eq!(unreferenced(&after), 0, "{after}");
    assert_eq!(
        after,
        without_unreferenced(&before),
        "a table reads back different rows after vacuum"
    );
    // Nothing left, and the pending run still completes normally afterwards.
    let out = weir(&dir, &["vacuum", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["unreferenced_files"], 0, "{report}");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
}

#[test]
fn retain_never_goes_below_the_tables_retention() {
    let (_tmp, dir) = demo_project();
    let (code, _) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    let out = weir(&dir, &["vacuum", "--retain", "1", "--apply"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--retain 1 hours is below the table's retention"),
        "{stderr}"
    );
    let out = weir(&dir, &["vacuum", "--retain", "168"]);
    assert!(out.status.success());
}

/// `n` valid orders with ids from `first`, as an NDJSON file's text.
fn orders(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|id| {
            format!(
                "{{\"order_id\": {id}, \"customer_id\": 1, \"order_ts\": \"2026-11-05T10:00:00Z\", \"status\": \"paid\", \"amount\": 10.5, \"currency\": \"EUR\"}}\n"
            )
        })
        .collect()
}

#[test]
fn optimize_compacts_without_changing_a_row_or_waking_incremental_models() {
    let (_tmp, dir) = demo_project();
    let (code, _) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    // Small appends: each run adds one small file to orders and to stg_orders.
    for batch in 0..4 {
        std::fs::write(
            dir.join(format!("data/orders/small-{batch}.ndjson")),
            orders(700_000 + batch * 10, 10),
        )
        .expect("write");
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 0, "{doc}");
    }
    let before = lake_state(&dir);

    // Killed while compacting, at random instants: no version changes a row.
    for delay_ms in [30u64, 120, 300] {
        let mut child = Command::new(crate::support::weir_bin())
            .args(["optimize", "--project"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = weir(&dir, &["optimize", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let out = weir(&dir, &["vacuum", "--apply", "--json"]);
    assert!(out.status.success());
    let after = lake_state(&dir);
    assert_eq!(
        after,
        without_unreferenced(&before),
        "compaction changed rows: {report}"
    );
    // The orders table is fewer files now (compacted by this call or a killed one that got to
    // its commit): its latest version holds one file.
    let files = Command::new(python())
        .arg("-c")
        .arg("import sys; from deltalake import DeltaTable; print(len(DeltaTable(sys.argv[1]).file_uris()))")
        .arg(dir.join("lake/orders"))
        .output()
        .expect("python");
    assert_eq!(
        String::from_utf8_lossy(&files.stdout).trim(),
        "1",
        "{report}"
    );

    // New rows after the compaction: the append model takes just them, incrementally.
    std::fs::write(dir.join("data/orders/after.ndjson"), orders(710_000, 5)).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let stg = crate::support::run_of(&doc, "stg_orders");
    assert_eq!(stg["rows_stored"], 5, "{stg}");
    assert!(
        !stg["warnings"].to_string().contains("recomputed in full"),
        "{stg}"
    );
}

#[test]
fn a_run_compacts_a_table_past_the_small_file_threshold() {
    let (_tmp, dir) = demo_project();
    let toml = std::fs::read_to_string(dir.join("weir.toml")).expect("read");
    std::fs::write(
        dir.join("weir.toml"),
        toml.replacen("[project]\n", "[project]\ncompact_after_files = 3\n", 1),
    )
    .expect("write");
    let (code, _) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    let mut compacted = false;
    for batch in 0..5 {
        std::fs::write(
            dir.join(format!("data/orders/small-{batch}.ndjson")),
            orders(600_000 + batch * 10, 10),
        )
        .expect("write");
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 0, "{doc}");
        let run = crate::support::run_of(&doc, "orders");
        compacted |= !run["compacted_files"].is_null();
        let stg = crate::support::run_of(&doc, "stg_orders");
        assert_eq!(stg["rows_stored"], 10, "{stg}");
        assert!(
            !stg["warnings"].to_string().contains("recomputed in full"),
            "{stg}"
        );
    }
    assert!(compacted, "no run compacted the orders table");
    let state = lake_state(&dir);
    // 9,666 rows of the demo plus 5 batches of 10, each once.
    assert_eq!(state["orders"]["rows"], 9_716, "{state}");
    assert_eq!(unreferenced(&state), 0, "{state}");
}
