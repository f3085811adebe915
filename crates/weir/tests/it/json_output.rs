//! `--json` for scripts: every outcome of every command, success or failure, is exactly one
//! JSON document on stdout with a top-level `schema_version`; failures carry
//! `error: {kind, message}` and exit 2 (an unknown asset the same way everywhere).

use std::path::Path;

use serde_json::Value;

use crate::support::{demo_project, weir};

/// The documented JSON Schema of a command's output (`docs/json/NAME.schema.json`).
fn schema_of(command: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/json")
        .join(format!("{command}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The schema a command line's output is documented by.
fn schema_name(args: &[&str]) -> String {
    match args {
        ["contract", "infer", ..] => "contract-infer".into(),
        ["new", what, ..] => format!("new-{what}"),
        ["demo", ..] => "run".into(),
        [command, ..] => command.to_string(),
        [] => unreachable!("a command"),
    }
}

/// Asserts `doc` validates against the schema documented for `args`.
pub(crate) fn assert_documented(args: &[&str], doc: &Value) {
    let validator = schema_of(&schema_name(args));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "weir {args:?} --json does not match docs/json/{}.schema.json: {}\n{doc}",
        schema_name(args),
        errors.join("; ")
    );
}

/// Runs `weir ARGS --json`: its exit code and its stdout, which must be one JSON document
/// valid against the command's documented schema.
fn json_of(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = weir(dir, &all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "weir {args:?} --json printed no single JSON document ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(doc["schema_version"], 1, "weir {args:?}: {doc}");
    assert_documented(args, &doc);
    (out.status.code().unwrap_or(-1), doc)
}

#[test]
fn every_command_prints_one_versioned_document() {
    let (_tmp, dir) = demo_project();
    let (code, _) = json_of(&dir, &["run"]);
    assert_eq!(code, 0);
    let sample = dir
        .join("data/customers/customers.csv")
        .display()
        .to_string();
    for args in [
        vec!["check"],
        vec!["show", "orders"],
        vec!["runs"],
        vec!["runs", "--status", "success"],
        vec!["status"],
        vec!["slo"],
        vec!["plan"],
        vec!["test"],
        vec!["lineage"],
        vec!["query", "SELECT COUNT(*) AS n FROM orders"],
        vec!["doctor", "--dry-run"],
        vec!["recover"],
        vec!["quarantine", "orders"],
        vec!["replay", "orders"],
        vec!["vacuum"],
        vec!["optimize"],
        vec!["contract", "infer", sample.as_str()],
        vec![
            "new",
            "model",
            "big_orders",
            "--sql",
            "SELECT order_id, amount FROM orders WHERE amount > 100",
        ],
        vec!["run", "big_orders"],
        vec!["new", "source", "more_orders", "--from", sample.as_str()],
    ] {
        let (code, doc) = json_of(&dir, &args);
        assert_eq!(code, 0, "weir {args:?}: {doc}");
        assert!(
            doc.get("error").is_none_or(Value::is_null),
            "weir {args:?}: {doc}"
        );
    }
}

#[test]
fn run_and_runs_say_the_same_of_a_run() {
    let (_tmp, dir) = demo_project();
    let (_, run) = json_of(&dir, &["run"]);
    let (_, runs) = json_of(&dir, &["runs"]);
    let listed = runs["runs"].as_array().expect("runs");
    for report in run["runs"].as_array().expect("runs") {
        let id = &report["run_id"];
        let record = listed
            .iter()
            .find(|r| &r["run_id"] == id)
            .unwrap_or_else(|| panic!("run {id} is not in `weir runs`: {runs}"));
        for field in [
            "asset",
            "status",
            "rows_in",
            "rows_stored",
            "rows_quarantined",
            "bytes_in",
            "files",
            "quarantine_by_rule",
            "table_version",
            "error",
        ] {
            assert_eq!(report[field], record[field], "{field} of run {id}");
        }
        assert_eq!(
            report["checks"].as_array().map(Vec::len),
            record["checks"].as_array().map(Vec::len),
            "checks of run {id}"
        );
        assert!(
            record["duration_ms"].as_i64().is_some_and(|d| d >= 0),
            "{record}"
        );
    }
}

#[test]
fn init_documents_are_documented() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, extra) in [("shop", None), ("blank", Some("--empty"))] {
        let mut args = vec!["init", name];
        args.extend(extra);
        args.push("--json");
        let out = std::process::Command::new(crate::support::weir_bin())
            .args(&args)
            .current_dir(tmp.path())
            .output()
            .expect("init runs");
        assert!(out.status.success());
        let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_documented(&args, &doc);
    }
}

#[test]
fn failures_are_json_errors_with_exit_2() {
    let (_tmp, dir) = demo_project();
    for args in [
        vec!["show", "nope"],
        vec!["quarantine", "nope"],
        vec!["replay", "nope"],
        vec!["recover", "--abandon", "nope"],
        vec!["run", "nope"],
        vec!["lineage", "nope"],
        vec!["vacuum", "nope"],
        vec!["optimize", "nope"],
    ] {
        let (code, doc) = json_of(&dir, &args);
        assert_eq!(code, 2, "weir {args:?}: {doc}");
        assert_eq!(
            doc["error"]["kind"], "unknown_asset",
            "weir {args:?}: {doc}"
        );
        assert!(
            doc["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("nope")),
            "{doc}"
        );
    }
    let (code, doc) = json_of(&dir, &["lineage", "--format", "dot"]);
    assert_eq!(code, 2);
    assert_eq!(doc["error"]["kind"], "usage", "{doc}");
    let (code, doc) = json_of(&dir, &["run", "--no-such-flag"]);
    assert_eq!(code, 2);
    assert_eq!(doc["error"]["kind"], "usage", "{doc}");
    let (code, doc) = json_of(&dir, &["query", "SELECT nope FROM orders"]);
    assert_eq!(code, 2);
    assert_eq!(doc["error"]["kind"], "query", "{doc}");
    // A broken project: its diagnostics, and an error saying so.
    std::fs::write(dir.join("weir.toml"), "[project]\nname = 3\n").expect("write");
    let (code, doc) = json_of(&dir, &["run"]);
    assert_eq!(code, 2);
    assert_eq!(doc["error"]["kind"], "project", "{doc}");
    assert!(
        doc["diagnostics"].as_array().is_some_and(|d| !d.is_empty()),
        "{doc}"
    );
}
