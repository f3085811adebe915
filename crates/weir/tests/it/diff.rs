//! `weir diff` on the demo: a table against a CSV export of itself with known edits reports
//! exactly those rows (changed, only in A, only in B) and the column they differ in, with a
//! tolerance that forgives a rounding; two Delta versions of one asset differ by exactly the
//! rows the run in between appended; a table against itself agrees (exit 0); a key that is not
//! unique is refused (exit 2).

use std::path::Path;

use serde_json::Value;

use crate::incidents::{assert_initial_run, orders_file};
use crate::support::{demo_project, weir};

pub(crate) fn diff(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["diff", "--json"];
    all.extend_from_slice(args);
    let out = weir(dir, &all);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "weir diff: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    crate::json_output::assert_documented(&["diff"], &doc);
    (out.status.code().unwrap_or(-1), doc)
}

pub(crate) fn mismatches(report: &Value, column: &str) -> u64 {
    report["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["column"] == column)
        .and_then(|c| c["mismatches"].as_u64())
        .unwrap_or_else(|| panic!("no column {column}: {report:#}"))
}

#[test]
fn diff_reports_exactly_the_rows_a_known_change_altered() {
    let (_tmp, dir) = demo_project();
    assert_initial_run(&dir);

    // A CSV export of orders, then known edits: three amounts changed by 1, one by a
    // rounding (0.001), two rows deleted and one added.
    let out = weir(
        &dir,
        &["query", "SELECT * FROM orders ORDER BY order_id", "--csv"],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let amount = header.iter().position(|h| *h == "amount").expect("amount");
    let rows = lines.len() as u64 - 1;
    let bump = |line: &str, by: f64| -> String {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        let value: f64 = cells[amount].parse().expect("an amount");
        cells[amount] = format!("{:.3}", value + by);
        cells.join(",")
    };
    for i in [10, 20, 30] {
        lines[i] = bump(&lines[i], 1.0);
    }
    lines[40] = bump(&lines[40], 0.001);
    let deleted: Vec<String> = [lines[50].clone(), lines[60].clone()]
        .iter()
        .map(|l| l.split(',').next().unwrap_or_default().to_string())
        .collect();
    lines.remove(60);
    lines.remove(50);
    let mut added: Vec<String> = lines[5].split(',').map(str::to_string).collect();
    added[0] = "99999999".into();
    lines.push(added.join(","));
    let export = dir.join("orders_export.csv");
    std::fs::write(&export, lines.join("\n") + "\n").expect("write export");
    let export = export.display().to_string();

    let (code, doc) = diff(
        &dir,
        &[
            "orders",
            &export,
            "--key",
            "order_id",
            "--abs-tolerance",
            "0.01",
        ],
    );
    assert_eq!(code, 1, "they differ: exit 1\n{doc:#}");
    let report = &doc["report"];
    assert_eq!(report["rows_a"], rows);
    assert_eq!(report["rows_b"], rows - 1);
    assert_eq!(report["changed"], 3, "{report:#}");
    assert_eq!(report["only_in_a"], 2);
    assert_eq!(report["only_in_b"], 1);
    assert_eq!(report["identical"], rows - 5);
    assert_eq!(mismatches(report, "amount"), 3);
    for column in ["customer_id", "order_ts", "status", "currency"] {
        assert_eq!(mismatches(report, column), 0, "{column}: {report:#}");
    }
    let mut only_a: Vec<&str> = report["samples_only_in_a"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|k| k["order_id"].as_str())
        .collect();
    only_a.sort();
    let mut deleted = deleted;
    deleted.sort();
    assert_eq!(only_a, deleted);
    assert_eq!(report["samples_only_in_b"][0]["order_id"], "99999999");
    // Without the tolerance the rounding counts too.
    let (_, exact) = diff(&dir, &["orders", &export, "--key", "order_id"]);
    assert_eq!(exact["report"]["changed"], 4);

    // A table agrees with itself.
    let (code, same) = diff(&dir, &["orders", "orders", "--key", "order_id"]);
    assert_eq!((code, &same["differs"]), (0, &Value::Bool(false)));
    assert_eq!(same["report"]["identical"], rows);

    // Two Delta versions: the rows one run appended, nothing else.
    let version = |dir: &Path| -> u64 {
        let out = weir(dir, &["show", "orders", "--json"]);
        let doc: Value = serde_json::from_slice(&out.stdout).expect("show JSON");
        doc["table_version"].as_u64().expect("a version")
    };
    let before = version(&dir);
    std::fs::write(
        dir.join("data/orders/2026-11-05.ndjson"),
        orders_file(800_001, 40, "placed"),
    )
    .expect("new orders");
    assert!(weir(&dir, &["run", "orders"]).status.success());
    let (code, versions) = diff(
        &dir,
        &[&format!("orders@{before}"), "orders", "--key", "order_id"],
    );
    assert_eq!(code, 1);
    assert_eq!(versions["report"]["only_in_b"], 40, "{versions:#}");
    assert_eq!(versions["report"]["only_in_a"], 0);
    assert_eq!(versions["report"]["changed"], 0);
    assert!(version(&dir) > before);

    // A key that does not identify rows is refused, not joined into nonsense.
    let (code, refused) = diff(&dir, &["orders", "orders", "--key", "status"]);
    assert_eq!(code, 2);
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not unique")),
        "{refused:#}"
    );
}

/// Reading is not writing: `weir diff` and `weir query` on a project never run leave no
/// state store behind (they look for a promotion's pins only in one that exists).
#[test]
fn reading_a_never_run_project_creates_no_state_store() {
    let (_tmp, dir) = demo_project();
    let csv = dir.join("a.csv");
    std::fs::write(&csv, "id,x\n1,a\n2,b\n").expect("write");
    let file = csv.to_str().expect("utf-8 path");
    let (code, doc) = diff(&dir, &[file, file, "--key", "id"]);
    assert_eq!(code, 0, "{doc}");
    let out = weir(&dir, &["query", "SELECT 1 AS one"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.join(".weir/state.db").exists(),
        "a read created the state store"
    );
}

/// Uniqueness is proven from the join's own counts, so each way a key can repeat is refused
/// with the side, its rows and its distinct keys: twice in A and once in B, once in A and
/// twice in B, twice in A and nowhere in B (never joined), three times in B only, twice in
/// both.
#[test]
fn every_way_a_key_can_repeat_is_refused() {
    let (_tmp, dir) = demo_project();
    let write = |name: &str, rows: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("id,x\n{rows}")).expect("write");
        path.to_str().expect("utf-8 path").to_string()
    };
    let unique = write("unique.csv", "1,a\n2,b\n3,c\n");
    let refused = |a: &str, b: &str, expected: &str| {
        let (code, doc) = diff(&dir, &[a, b, "--key", "id"]);
        assert_eq!(code, 2, "{a} vs {b}: {doc}");
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("not unique in {expected} distinct keys")),
            "{a} vs {b}: {message}"
        );
    };
    let cases = [
        ("a1.csv", "1,a\n1,z\n2,b\n3,c\n", true, "A: 4 rows but 3"),
        ("b1.csv", "1,a\n2,b\n2,y\n3,c\n", false, "B: 4 rows but 3"),
        (
            "a2.csv",
            "1,a\n2,b\n3,c\n9,q\n9,r\n",
            true,
            "A: 5 rows but 4",
        ),
        (
            "b2.csv",
            "1,a\n2,b\n3,c\n8,q\n8,r\n8,s\n",
            false,
            "B: 6 rows but 4",
        ),
    ];
    for (name, rows, in_a, expected) in cases {
        let repeated = write(name, rows);
        let (a, b) = if in_a {
            (&repeated, &unique)
        } else {
            (&unique, &repeated)
        };
        refused(a, b, expected);
    }
    refused(
        &write("both.csv", "1,a\n1,b\n"),
        &write("both2.csv", "1,a\n1,b\n"),
        "A: 2 rows but 1",
    );
    // And a unique key on both sides still diffs.
    let (code, doc) = diff(
        &dir,
        &[&unique, &write("c.csv", "1,a\n2,B\n4,d\n"), "--key", "id"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["report"]["changed"], 1);
    assert_eq!(doc["report"]["only_in_a"], 1);
    assert_eq!(doc["report"]["only_in_b"], 1);
}
