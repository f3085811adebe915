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
def rows(p):
    # A quarantine table is created with the first row quarantined: none, no rows.
    if "/_quarantine/" in p and not os.path.isdir(os.path.join(p, "_delta_log")):
        return 0
    return DeltaTable(p).to_pyarrow_table().num_rows
print(json.dumps({p: rows(p) for p in sys.argv[1:]}))
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

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(text.as_bytes()).expect("append");
}

#[test]
fn a_file_that_grows_contributes_only_its_new_lines() {
    let (_tmp, dir) = project();
    assert_eq!(run_json(&dir, &[]).0, 0);
    append(
        &dir.join("data/events/e1.csv"),
        "late,1\nlate,2\nlate,oops\n",
    );
    append(
        &dir.join("data/things/t2.ndjson"),
        "\n{\"id\":900,\"label\":\"new\"}\n",
    );
    let (code, doc) = run_json(&dir, &[]);
    // t2.ndjson ended without a newline: its last line may have been cut, so the file is
    // refused rather than guessed at; e1.csv grew by whole lines.
    let events = run_of(&doc, "events");
    assert_eq!(events["status"], "success", "{doc}");
    assert_eq!(events["rows_in"], 3, "{events}");
    assert_eq!(events["rows_quarantined"], 1);
    let things = run_of(&doc, "things");
    assert_eq!(things["status"], "error", "{things}");
    assert!(
        things["error"]
            .as_str()
            .unwrap_or_default()
            .contains("data/things/t2.ndjson"),
        "{things}"
    );
    assert_eq!(code, 1);
    assert_eq!(counts(&dir), vec![95, 4, 60, 0]);
    // The appended bad row is quarantined at its real line in the file: 33 lines were there.
    let position = crate::support::scalar(
        &dir.join("lake/_quarantine/events"),
        "SELECT position FROM t WHERE raw_record LIKE '%oops%'",
    );
    assert_eq!(position, 36);
    // It keeps growing, also after the state store is lost.
    append(&dir.join("data/events/e1.csv"), "later,3\n");
    remove_state(&dir);
    let (_, doc) = run_json(&dir, &[]);
    assert_eq!(run_of(&doc, "events")["rows_in"], 1, "{doc}");
    assert_eq!(counts(&dir)[0], 96);
}

#[test]
fn a_file_rewritten_in_place_is_refused_and_others_go_on() {
    let (_tmp, dir) = project();
    assert_eq!(run_json(&dir, &[]).0, 0);
    let path = dir.join("data/events/e0.csv");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("k0,5", "k0,500")).expect("write");
    std::fs::write(dir.join("data/events/e5.csv"), "kind,n\nfresh,1\n").expect("write");
    for round in 0..2 {
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 1, "{doc}");
        let events = run_of(&doc, "events");
        let expected = if round == 0 { "partial" } else { "error" };
        assert_eq!(events["status"], expected, "{events}");
        let error = events["error"].as_str().unwrap_or_default();
        assert!(error.contains("data/events/e0.csv changed"), "{error}");
        // Nothing doubled; the new file was published once.
        assert_eq!(counts(&dir), vec![94, 3, 60, 0], "round {round}");
    }
    // A full refresh rebuilds from the files as they are now.
    let (code, doc) = run_json(&dir, &["events", "--full-refresh"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(counts(&dir)[..2], [94, 3]);
}

#[test]
fn an_appended_file_survives_sigkill_at_every_failpoint() {
    for point in [
        "staged",
        "journaled",
        "between_commits",
        "published",
        "recorded",
    ] {
        let (_tmp, dir) = project();
        assert_eq!(run_json(&dir, &[]).0, 0);
        append(
            &dir.join("data/events/e2.csv"),
            "tail,1\ntail,2\ntail,bad\n",
        );
        crate::crash::kill_at(&dir, &format!("{point}@events"));
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 0, "{point}: {doc}");
        assert_eq!(counts(&dir), vec![95, 4, 60, 0], "{point}");
        let (_, doc) = run_json(&dir, &[]);
        assert_eq!(run_of(&doc, "events")["status"], "up_to_date", "{point}");
    }
}
