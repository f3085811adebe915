//! Files rewritten in place: refused by default, or, with `on_change = "replace"`, replacing the
//! rows they contributed before in one atomic commit. Both survive SIGKILL at every publishing
//! step; the table is read back with the Python `deltalake` reader.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::crash::kill_at;
use crate::support::{PyLake, run_json, run_of, weir};

const THINGS: &str = "apiVersion: v3.1.0
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
        logicalTypeOptions:
          maxLength: 8
";

const A_V1: &str = "id,label\n1,one\n2,two\nx,bad\n3,three\n";
const A_V2: &str = "id,label\n1,uno\ny,bad\n4,four\n";
const B: &str = "id,label\n10,ten\n11,eleven\n";

fn project(policy: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    for sub in ["contracts", "sources", "data"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(dir.join("weir.toml"), "[project]\nname = \"oc\"\n").expect("write");
    std::fs::write(dir.join("contracts/things.odcs.yaml"), THINGS).expect("write");
    set_policy(&dir, policy);
    std::fs::write(dir.join("data/a.csv"), A_V1).expect("write");
    std::fs::write(dir.join("data/b.csv"), B).expect("write");
    (tmp, dir)
}

fn set_policy(dir: &Path, policy: Option<&str>) {
    let mut source = "format = \"csv\"\npath = \"data/*.csv\"\n".to_string();
    if let Some(p) = policy {
        source.push_str(&format!("on_change = \"{p}\"\n"));
    }
    std::fs::write(dir.join("sources/things.toml"), source).expect("write");
}

/// The labels stored and the live quarantine rows (`source|position|rule`), read by Python.
fn lake(py: &mut PyLake, dir: &Path) -> (Vec<String>, Vec<String>) {
    let table = dir.join("lake/things");
    let quarantine = dir.join("lake/_quarantine/things");
    let read = py.read(&[(&table, "label")], &[&quarantine]);
    let labels = read.tables[&table.display().to_string()]
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    (
        labels,
        read.quarantines[&quarantine.display().to_string()].clone(),
    )
}

fn labels(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Rewrites `data/a.csv` with `content` (good rows only): the run must replace `removed`
/// stored rows, leaving the labels `stored` and no live quarantine row.
fn replace_a(py: &mut PyLake, dir: &Path, content: &str, removed: u64, stored: &[&str]) {
    std::fs::write(dir.join("data/a.csv"), content).expect("write");
    let (code, doc) = run_json(dir, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        run_of(&doc, "things")["replaced_files"][0]["rows_removed"],
        removed,
        "{doc}"
    );
    let (got, bad) = lake(py, dir);
    assert_eq!(got, labels(stored));
    assert!(bad.is_empty(), "{bad:?}");
}

fn status(doc: &Value) -> &str {
    run_of(doc, "things")["status"].as_str().unwrap_or_default()
}

#[test]
fn a_rewritten_file_replaces_its_rows_once_and_only_its_rows() {
    let (_tmp, dir) = project(Some("replace"));
    let mut py = PyLake::start();
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let (stored, bad) = lake(&mut py, &dir);
    assert_eq!(stored, labels(&["one", "two", "three", "ten", "eleven"]));
    assert_eq!(bad, ["data/a.csv|4|id.type"]);

    // Rewritten in place, not by appending: its 4 earlier rows go, its new ones come in.
    std::fs::write(dir.join("data/a.csv"), A_V2).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "things");
    assert_eq!(run["status"], "success", "{doc}");
    assert_eq!(
        run["replaced_files"],
        serde_json::json!([{"path": "data/a.csv", "rows_removed": 3, "quarantined_removed": 1}]),
        "{doc}"
    );
    assert_eq!(
        (run["rows_in"].as_u64(), run["rows_stored"].as_u64()),
        (Some(3), Some(2))
    );
    let (stored, bad) = lake(&mut py, &dir);
    assert_eq!(stored, labels(&["uno", "four", "ten", "eleven"]));
    assert_eq!(bad, ["data/a.csv|3|id.type"]);
    let (code, again) = run_json(&dir, &[]);
    assert_eq!((code, status(&again)), (0, "up_to_date"), "{again}");

    // Appending lines to the new content reads only them; a rewrite then replaces both reads.
    std::fs::write(dir.join("data/a.csv"), format!("{A_V2}5,five\n")).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(
        (code, run_of(&doc, "things")["rows_in"].as_u64()),
        (0, Some(1)),
        "{doc}"
    );
    replace_a(
        &mut py,
        &dir,
        "id,label\n7,seven\n",
        3,
        &["seven", "ten", "eleven"],
    );

    // Back to content it held before: that is a rewrite too, not something already read.
    std::fs::write(dir.join("data/a.csv"), A_V1).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let (stored, _) = lake(&mut py, &dir);
    assert_eq!(stored, labels(&["one", "two", "three", "ten", "eleven"]));

    // The ledger rebuilt from the lake knows the replacements: nothing is read again.
    std::fs::remove_file(dir.join(".weir/state.db")).expect("rm state");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!((code, status(&doc)), (0, "up_to_date"), "{doc}");
    let (stored, bad) = lake(&mut py, &dir);
    assert_eq!(stored, labels(&["one", "two", "three", "ten", "eleven"]));
    assert_eq!(bad, ["data/a.csv|4|id.type"]);
}

#[test]
fn a_rewritten_file_is_refused_by_default_and_when_its_rows_are_untracked() {
    let (_tmp, dir) = project(None);
    let mut py = PyLake::start();
    assert_eq!(run_json(&dir, &[]).0, 0);
    std::fs::write(dir.join("data/a.csv"), A_V2).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let reason = run_of(&doc, "things")["rejected_files"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("on_change = \"replace\""), "{reason}");
    let (stored, _) = lake(&mut py, &dir);
    assert_eq!(stored, labels(&["one", "two", "three", "ten", "eleven"]));

    // Switching to `replace` now cannot find the earlier rows by their origin: still refused,
    // with the way out, and nothing changes.
    set_policy(&dir, Some("replace"));
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let reason = run_of(&doc, "things")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("--full-refresh"), "{reason}");
    let (stored, _) = lake(&mut py, &dir);
    assert_eq!(stored, labels(&["one", "two", "three", "ten", "eleven"]));

    // After a full refresh every file's rows are tagged, and the next rewrite replaces.
    let (code, doc) = run_json(&dir, &["--full-refresh"]);
    assert_eq!(code, 0, "{doc}");
    std::fs::write(dir.join("data/a.csv"), "id,label\n9,nine\n").expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let (stored, bad) = lake(&mut py, &dir);
    assert_eq!(stored, labels(&["nine", "ten", "eleven"]));
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn a_rewrite_that_cannot_be_read_keeps_the_earlier_rows() {
    let (_tmp, dir) = project(Some("replace"));
    let mut py = PyLake::start();
    assert_eq!(run_json(&dir, &[]).0, 0);
    // The required key column is missing from the new header: the file is rejected whole.
    std::fs::write(dir.join("data/a.csv"), "label\nlonely\n").expect("write");
    std::fs::write(dir.join("data/c.csv"), "id,label\n20,twenty\n").expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!((code, status(&doc)), (1, "partial"), "{doc}");
    assert_eq!(
        run_of(&doc, "things")["replaced_files"],
        serde_json::json!([])
    );
    let (stored, bad) = lake(&mut py, &dir);
    assert_eq!(
        stored,
        labels(&["one", "two", "three", "ten", "eleven", "twenty"])
    );
    assert_eq!(bad, ["data/a.csv|4|id.type"]);
    // Fixed, it replaces the rows it had before.
    std::fs::write(dir.join("data/a.csv"), A_V2).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let (stored, bad) = lake(&mut py, &dir);
    assert_eq!(stored, labels(&["uno", "four", "ten", "eleven", "twenty"]));
    assert_eq!(bad, ["data/a.csv|3|id.type"]);
}

#[test]
fn replayed_rows_are_replaced_with_the_file_they_came_from() {
    let (_tmp, dir) = project(Some("replace"));
    let mut py = PyLake::start();
    std::fs::write(
        dir.join("data/a.csv"),
        "id,label\n1,one\n2,too long a label\n",
    )
    .expect("write");
    assert_eq!(run_json(&dir, &[]).0, 0);
    let (_, bad) = lake(&mut py, &dir);
    assert_eq!(bad, ["data/a.csv|3|label.maxLength"]);
    // Relax the rule and replay: the row is published, from a.csv.
    std::fs::write(
        dir.join("contracts/things.odcs.yaml"),
        THINGS.replace("maxLength: 8", "maxLength: 80"),
    )
    .expect("write");
    let replay = weir(&dir, &["replay", "things"]);
    assert!(replay.status.success(), "{replay:?}");
    let (stored, bad) = lake(&mut py, &dir);
    assert_eq!(
        stored,
        labels(&["one", "too long a label", "ten", "eleven"])
    );
    assert!(bad.is_empty(), "{bad:?}");
    // Rewriting a.csv replaces the replayed row as well as the one stored at first.
    replace_a(
        &mut py,
        &dir,
        "id,label\n3,three\n",
        2,
        &["three", "ten", "eleven"],
    );
}

/// Killed at every publishing step while a rewritten file is replaced (or refused beside a new
/// file), the next run leaves exactly what the inputs and the policy say.
#[test]
fn sigkill_at_every_failpoint_while_replacing_or_refusing() {
    let mut py = PyLake::start();
    for policy in ["replace", "refuse"] {
        for failpoint in [
            "staged",
            "journaled",
            "between_commits",
            "published",
            "recorded",
        ] {
            let (_tmp, dir) = project(Some(policy));
            assert_eq!(run_json(&dir, &[]).0, 0);
            std::fs::write(dir.join("data/a.csv"), A_V2).expect("write");
            std::fs::write(dir.join("data/c.csv"), "id,label\n20,twenty\nz,bad\n").expect("write");
            kill_at(&dir, &format!("{failpoint}@things"));
            let (code, doc) = run_json(&dir, &[]);
            let (stored, bad) = lake(&mut py, &dir);
            let context = format!("{policy} killed at {failpoint}: {doc}");
            if policy == "replace" {
                assert_eq!(code, 0, "{context}");
                assert_eq!(
                    stored,
                    labels(&["uno", "four", "ten", "eleven", "twenty"]),
                    "{context}"
                );
                assert_eq!(
                    bad,
                    ["data/a.csv|3|id.type", "data/c.csv|3|id.type"],
                    "{context}"
                );
            } else {
                assert_eq!(code, 1, "{context}");
                assert_eq!(
                    stored,
                    labels(&["one", "two", "three", "ten", "eleven", "twenty"]),
                    "{context}"
                );
                assert_eq!(
                    bad,
                    ["data/a.csv|4|id.type", "data/c.csv|3|id.type"],
                    "{context}"
                );
            }
            let (_, again) = run_json(&dir, &[]);
            // A refused file stays an error naming it, run after run, until it is dealt with.
            let expected = if policy == "replace" {
                "up_to_date"
            } else {
                "error"
            };
            assert_eq!(status(&again), expected, "{context}; then {again}");
            assert_eq!(lake(&mut py, &dir), (stored, bad), "{context}");
        }
    }
}

/// `weir run --json` with every file's hash cached at once (no settling time).
fn run_cached(dir: &Path) -> (i32, Value) {
    let out = std::process::Command::new(crate::support::weir_bin())
        .args(["run", "--json", "--project"])
        .arg(dir)
        .env("WEIR_SETTLE_MS", "0")
        .output()
        .expect("weir runs");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc)
}

/// Hashes cached by file stat (so an unchanged file is not read again) never hide a change:
/// a rewrite of the same size, an append and a restore are each seen on the next run.
#[test]
fn cached_hashes_never_hide_a_change() {
    for policy in ["refuse", "replace"] {
        let (_tmp, dir) = project(Some(policy));
        let mut py = PyLake::start();
        assert_eq!(run_cached(&dir).0, 0);
        let (code, doc) = run_cached(&dir);
        assert_eq!((code, status(&doc)), (0, "up_to_date"), "{doc}");
        // The same number of bytes, other values.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let same_size = A_V1.replace("one", "uno").replace("two", "dos");
        assert_eq!(same_size.len(), A_V1.len());
        std::fs::write(dir.join("data/a.csv"), &same_size).expect("write");
        let (code, doc) = run_cached(&dir);
        let (stored, _) = lake(&mut py, &dir);
        if policy == "refuse" {
            assert_eq!(code, 1, "{doc}");
            assert_eq!(stored, labels(&["one", "two", "three", "ten", "eleven"]));
            // Restored: nothing to do, and nothing doubled.
            std::fs::write(dir.join("data/a.csv"), A_V1).expect("write");
        } else {
            assert_eq!(code, 0, "{doc}");
            assert_eq!(stored, labels(&["uno", "dos", "three", "ten", "eleven"]));
            std::fs::write(dir.join("data/a.csv"), &same_size).expect("write");
        }
        let (code, doc) = run_cached(&dir);
        assert_eq!((code, status(&doc)), (0, "up_to_date"), "{policy}: {doc}");
        // Appended lines are read, once.
        let current = std::fs::read_to_string(dir.join("data/a.csv")).expect("read");
        std::fs::write(dir.join("data/a.csv"), format!("{current}8,eight\n")).expect("write");
        let (code, doc) = run_cached(&dir);
        assert_eq!(
            (code, run_of(&doc, "things")["rows_in"].as_u64()),
            (0, Some(1)),
            "{policy}: {doc}"
        );
        let (stored, _) = lake(&mut py, &dir);
        assert!(stored.contains(&"eight".to_string()), "{stored:?}");
        assert_eq!(run_cached(&dir).1["runs"][0]["status"], "up_to_date");
    }
}
