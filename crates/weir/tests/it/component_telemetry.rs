//! The component specification, kept the way Vector keeps it: every kind of component a run
//! is made of (a CSV, NDJSON and Parquet source; a table, incremental-append and
//! incremental-merge model; the contract check; the Delta sink) is run, and the test fails if
//! one does not report the full set of figures, in `--json` and as one log line each, or if a
//! figure disagrees with what an independent reader finds (the Delta log's `add` actions for
//! the bytes written, the upstream table for the rows a model scanned).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{demo_project, json_of, run_of, runs, weir_bin};

const FIELDS: [&str; 10] = [
    "kind",
    "name",
    "rows_in",
    "rows_out",
    "rows_quarantined",
    "rows_discarded",
    "bytes_in",
    "bytes_out",
    "errors_by_stage",
    "duration_ms",
];

fn n(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("`{field}` is not a count in {v}"))
}

/// The sizes of the files a commit of the Delta table at `table` added, read from its log.
fn bytes_added(table: &Path, version: u64) -> u64 {
    let log = table.join(format!("_delta_log/{version:020}.json"));
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|action| action["add"]["size"].as_u64())
        .sum()
}

/// Checks one run's components against the spec and the run's own counts; returns them.
fn check_components(run: &Value) -> Vec<Value> {
    let asset = run["asset"].as_str().unwrap_or_default();
    let components = run["components"]
        .as_array()
        .unwrap_or_else(|| panic!("{asset}: no components in {run}"))
        .clone();
    let kinds: Vec<&str> = components
        .iter()
        .map(|c| c["kind"].as_str().unwrap_or_default())
        .collect();
    assert!(
        kinds == ["source", "check", "sink"] || kinds == ["model", "check", "sink"],
        "{asset}: components {kinds:?}"
    );
    for c in &components {
        for field in FIELDS {
            assert!(!c[field].is_null(), "{asset}: `{field}` missing in {c}");
        }
        for stage in ["receiving", "processing", "sending"] {
            n(&c["errors_by_stage"], stage);
        }
        if c["kind"] != "model" {
            assert_eq!(
                n(c, "rows_in"),
                n(c, "rows_out") + n(c, "rows_quarantined") + n(c, "rows_discarded"),
                "{asset}: a {} must account for every row it took in: {c}",
                c["kind"]
            );
        }
    }
    let (producer, check, sink) = (&components[0], &components[1], &components[2]);
    assert_eq!(n(producer, "rows_out"), n(run, "rows_in"), "{asset}");
    assert_eq!(n(check, "rows_in"), n(run, "rows_in"), "{asset}");
    assert_eq!(n(check, "rows_out"), n(run, "rows_stored"), "{asset}");
    assert_eq!(
        n(check, "rows_quarantined"),
        n(run, "rows_quarantined"),
        "{asset}"
    );
    assert_eq!(
        n(sink, "rows_in"),
        n(run, "rows_stored") + n(run, "rows_quarantined"),
        "{asset}"
    );
    components
}

#[test]
fn every_component_kind_reports_the_full_set_and_the_lake_agrees() {
    let (_tmp, dir) = demo_project();
    let out = Command::new(weir_bin())
        .args(["run", "--json", "-v", "--log-format", "json", "--project"])
        .arg(&dir)
        .output()
        .expect("weir runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("run --json");
    crate::json_output::assert_documented(&["run"], &doc);

    let mut seen_kinds = BTreeSet::new();
    let mut names = BTreeSet::new();
    for run in runs(&doc) {
        assert_eq!(run["status"], "success", "{run}");
        let components = check_components(run);
        for c in &components {
            seen_kinds.insert(c["kind"].as_str().unwrap_or_default().to_string());
            names.insert(c["name"].as_str().unwrap_or_default().to_string());
        }
        let (producer, sink) = (&components[0], &components[2]);
        assert!(n(producer, "bytes_in") > 0, "{}: {producer}", run["asset"]);
        assert!(
            producer["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
            "{producer}"
        );
        assert_eq!(n(sink, "rows_discarded"), 0);
        // What the sink says it wrote is what the Delta logs of the table and its quarantine
        // say this run's commits added.
        let table = Path::new(run["table_path"].as_str().expect("table path"));
        let quarantine = Path::new(run["quarantine_path"].as_str().expect("quarantine path"));
        let mut written = bytes_added(table, n(run, "table_version"));
        if n(run, "rows_quarantined") > 0 {
            written += bytes_added(quarantine, n(run, "quarantine_version"));
        }
        assert_eq!(n(sink, "bytes_out"), written, "{}: {sink}", run["asset"]);
        // The nulls per column recorded from the staged files' statistics are the nulls a
        // scan of the table finds (it holds only this first run's rows).
        let nulls = run["null_counts"].as_object().expect("null counts");
        assert!(!nulls.is_empty(), "{}", run["asset"]);
        for (column, recorded) in nulls {
            let counted = crate::support::scalar(
                table,
                &format!("SELECT COUNT(*) FROM t WHERE \"{column}\" IS NULL"),
            );
            assert_eq!(
                recorded.as_u64(),
                Some(counted),
                "{}.{column}",
                run["asset"]
            );
        }
    }
    assert_eq!(
        seen_kinds,
        ["check", "model", "sink", "source"]
            .map(String::from)
            .into_iter()
            .collect(),
    );
    for name in [
        "csv",
        "ndjson",
        "parquet",
        "table",
        "incremental_append",
        "incremental_merge",
        "delta",
    ] {
        assert!(names.contains(name), "no component `{name}` in {names:?}");
    }
    // A model over one table scans every row of it (its filter is above the scan).
    let orders = run_of(&doc, "orders");
    let stg = &run_of(&doc, "stg_orders")["components"][0];
    assert_eq!(n(stg, "rows_in"), n(orders, "rows_stored"), "{stg}");

    // One log line per component, with the run's id and asset and the same figures.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "weir::component")
        .collect();
    for run in runs(&doc) {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| l["run_id"] == run["run_id"])
            .collect();
        assert_eq!(mine.len(), 3, "{}: {mine:?}", run["asset"]);
        for (line, c) in mine
            .iter()
            .zip(run["components"].as_array().into_iter().flatten())
        {
            assert_eq!(line["asset"], run["asset"]);
            assert_eq!(line["component_kind"], c["kind"]);
            assert_eq!(line["component"], c["name"]);
            for field in [
                "rows_in",
                "rows_out",
                "rows_quarantined",
                "rows_discarded",
                "bytes_in",
                "bytes_out",
            ] {
                assert_eq!(line[field], c[field], "{field}: {line}");
            }
            for stage in ["receiving", "processing", "sending"] {
                assert_eq!(
                    line[format!("errors_{stage}")],
                    c["errors_by_stage"][stage],
                    "{line}"
                );
            }
        }
    }
}

/// A run stopped by a failed check: the check counts the error, the sink discards the good
/// rows (they stay in their file), keeps the quarantined ones and writes nothing to the table.
#[test]
fn a_failed_run_reports_its_error_and_the_rows_it_discarded() {
    let (_tmp, dir) = demo_project();
    // Two payments files with the same ids: the primary key check (severity error) fails.
    std::fs::copy(
        dir.join("data/payments/payments-2026-11.parquet"),
        dir.join("data/payments/copy.parquet"),
    )
    .expect("copy");
    let (code, doc) = json_of(&dir, &["run", "payments"]);
    assert_eq!(code, 1, "{doc}");
    let run = run_of(&doc, "payments");
    assert_eq!(run["status"], "failed");
    let components = check_components(run);
    let (source, check, sink) = (&components[0], &components[1], &components[2]);
    assert_eq!(n(source, "rows_in"), 8000, "both files read: {source}");
    assert!(n(&check["errors_by_stage"], "processing") >= 1, "{check}");
    assert_eq!(n(sink, "rows_discarded"), n(run, "rows_stored"), "{sink}");
    assert_eq!(n(sink, "rows_out"), n(run, "rows_quarantined"), "{sink}");
    // Only the quarantine's files were committed (the kept rows), and the table has none.
    assert_eq!(run["table_version"], 0, "only the create commit");
    let quarantine = Path::new(run["quarantine_path"].as_str().expect("quarantine path"));
    assert_eq!(
        n(sink, "bytes_out"),
        bytes_added(quarantine, n(run, "quarantine_version")),
        "{sink}"
    );
}
