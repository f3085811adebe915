//! The lake is the record: losing, emptying, corrupting or swapping `.weir/state.db` never
//! reads a file twice nor skips one, because the file ledger is rebuilt from what the Delta
//! commits say they consumed. Counts come from the Python `deltalake` reader.

use std::path::Path;
use std::process::Command;

use crate::support::{run_json, run_of, weir};

const CONTRACT_EVENTS: &str = "apiVersion: v3.1.0
kind: DataContract
id: events
version: 1.0.0
status: active
schema:
  - name: events
    properties:
      - name: kind
        logicalType: string
        required: true
      - name: n
        logicalType: integer
";

const CONTRACT_THINGS: &str = "apiVersion: v3.1.0
kind: DataContract
id: things
version: 1.0.0
status: active
schema:
  - name: things
    properties:
      - name: id
        logicalType: integer
        primaryKey: true
        required: true
      - name: label
        logicalType: string
";

fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    for sub in ["contracts", "sources", "data/events", "data/things"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(dir.join("weir.toml"), "[project]\nname = \"rec\"\n").expect("write");
    std::fs::write(dir.join("contracts/events.odcs.yaml"), CONTRACT_EVENTS).expect("write");
    std::fs::write(dir.join("contracts/things.odcs.yaml"), CONTRACT_THINGS).expect("write");
    std::fs::write(
        dir.join("sources/events.toml"),
        "format = \"csv\"\npath = \"data/events/*.csv\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("sources/things.toml"),
        "format = \"ndjson\"\npath = \"data/things/*.ndjson\"\n",
    )
    .expect("write");
    for f in 0..3 {
        // 32 rows per file, one of them bad (n is not an integer).
        let mut csv = String::from("kind,n\n");
        for i in 0..31 {
            csv.push_str(&format!("k{f},{i}\n"));
        }
        csv.push_str("bad,x\n");
        std::fs::write(dir.join(format!("data/events/e{f}.csv")), csv).expect("write");
        let things: Vec<String> = (0..20)
            .map(|i| format!("{{\"id\":{},\"label\":\"t{i}\"}}", f * 100 + i))
            .collect();
        std::fs::write(
            dir.join(format!("data/things/t{f}.ndjson")),
            things.join("\n"),
        )
        .expect("write");
    }
    (tmp, dir)
}

const COUNT: &str = r#"
import json, os, sys
from deltalake import DeltaTable
print(json.dumps({p: DeltaTable(p).to_pyarrow_table().num_rows for p in sys.argv[1:]}))
sys.stdout.flush()
os._exit(0)
"#;

/// Rows in each table and quarantine table, as the Python `deltalake` package reads them.
fn counts(dir: &Path) -> Vec<u64> {
    let paths: Vec<String> = [
        "lake/events",
        "lake/_quarantine/events",
        "lake/things",
        "lake/_quarantine/things",
    ]
    .iter()
    .map(|p| dir.join(p).display().to_string())
    .collect();
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg("-c")
        .arg(COUNT)
        .args(&paths)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    paths
        .iter()
        .map(|p| doc[p].as_u64().unwrap_or(u64::MAX))
        .collect()
}

fn state_db(dir: &Path) -> std::path::PathBuf {
    dir.join(".weir/state.db")
}

fn remove_state(dir: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state_db(dir).display()));
    }
}

fn sql(dir: &Path, statement: &str) {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = format!(
        "import sqlite3; c = sqlite3.connect({:?}); c.execute({statement:?}); c.commit()",
        state_db(dir).display().to_string()
    );
    let ok = Command::new(python)
        .arg("-c")
        .arg(script)
        .status()
        .expect("python");
    assert!(ok.success());
}

/// Whatever happened to the state store, a run reads nothing again and says so.
fn assert_nothing_read_again(dir: &Path, expected: &[u64], label: &str) {
    let (code, doc) = run_json(dir, &[]);
    assert_eq!(code, 0, "{label}: {doc}");
    for asset in ["events", "things"] {
        let run = run_of(&doc, asset);
        assert_eq!(run["status"], "up_to_date", "{label}: {run}");
    }
    assert_eq!(counts(dir), expected, "{label}");
}

#[test]
fn losing_the_state_store_duplicates_and_loses_nothing() {
    let (_tmp, dir) = project();
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let expected = vec![93, 3, 60, 0];
    assert_eq!(counts(&dir), expected);

    remove_state(&dir);
    assert_nothing_read_again(&dir, &expected, "deleted");

    sql(&dir, "DELETE FROM file_ledger");
    assert_nothing_read_again(&dir, &expected, "emptied");

    remove_state(&dir);
    std::fs::write(state_db(&dir), b"this is not a database").expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "garbage: {doc}");
    assert!(
        doc["recovered"].to_string().contains("moved to"),
        "the repair is reported: {doc}"
    );
    assert_eq!(counts(&dir), expected, "garbage");
    let aside = std::fs::read_dir(dir.join(".weir"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains("corrupt"));
    assert!(aside, "the corrupt file is kept");

    // Another project's state store (same asset names, other files).
    let (_other_tmp, other) = project();
    std::fs::write(other.join("data/events/e0.csv"), "kind,n\nz,1\n").expect("write");
    assert_eq!(run_json(&other, &[]).0, 0);
    remove_state(&dir);
    std::fs::copy(state_db(&other), state_db(&dir)).expect("copy");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "swapped: {doc}");
    assert_eq!(counts(&dir), expected, "swapped");

    // A new file after all that is read alone.
    std::fs::write(dir.join("data/events/e9.csv"), "kind,n\nnew,1\nnew,2\n").expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(run_of(&doc, "events")["rows_in"], 2, "{doc}");
    assert_eq!(counts(&dir), vec![95, 3, 60, 0]);
}

#[test]
fn doctor_finds_and_repairs_a_ledger_that_disagrees_with_the_lake() {
    let (_tmp, dir) = project();
    assert_eq!(run_json(&dir, &[]).0, 0);
    let doctor = |args: &[&str]| {
        let mut all = vec!["doctor", "--json"];
        all.extend_from_slice(args);
        let out = weir(&dir, &all);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), doc)
    };
    let (code, doc) = doctor(&["--dry-run"]);
    assert_eq!(code, Some(0), "{doc}");
    sql(
        &dir,
        "DELETE FROM file_ledger WHERE path = 'data/things/t1.ndjson'",
    );
    sql(
        &dir,
        "INSERT INTO file_ledger VALUES ('events', 'data/events/never.csv', 'h', 1, 1, 1, 0, 'r', 1, 'now')",
    );
    let (code, doc) = doctor(&["--dry-run"]);
    assert_eq!(code, Some(1), "{doc}");
    let text = doc.to_string();
    assert!(
        text.contains("data/things/t1.ndjson") && text.contains("data/events/never.csv"),
        "{doc}"
    );
    let (code, doc) = doctor(&[]);
    assert_eq!(code, Some(0), "{doc}");
    assert!(doc.to_string().contains("repaired"), "{doc}");
    let (code, doc) = doctor(&["--dry-run"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_nothing_read_again(&dir, &[93, 3, 60, 0], "after doctor");
}
