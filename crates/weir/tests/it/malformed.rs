//! Malformed inputs become clear messages and quarantined rows, never a panic.

use std::path::Path;

use crate::support::{count, query, run_json, run_of};

const CONTRACT: &str = "apiVersion: v3.1.0
kind: DataContract
id: t
version: 1.0.0
status: active
team:
  name: qa
  members:
    - username: qa@example.com
      role: owner
schema:
  - name: things
    properties:
      - name: id
        logicalType: integer
        required: true
      - name: label
        logicalType: string
      - name: price
        logicalType: number
";

fn project(format: &str, glob: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("contracts")).expect("mkdir");
    std::fs::create_dir_all(dir.join("sources")).expect("mkdir");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::write(
        dir.join("weir.toml"),
        "[project]\nname = \"qa\"\n[teams.qa]\nchannels = [\"slack:#qa\"]\n",
    )
    .expect("write");
    std::fs::write(dir.join("contracts/things.odcs.yaml"), CONTRACT).expect("write");
    std::fs::write(
        dir.join("sources/things.toml"),
        // Most rows of these files are broken on purpose: lift the 50% default.
        format!("format = \"{format}\"\npath = \"{glob}\"\nmax_quarantined = \"100%\"\n"),
    )
    .expect("write");
    (tmp, dir)
}

fn rules(run: &serde_json::Value) -> serde_json::Value {
    run["quarantine_by_rule"].clone()
}

#[test]
fn broken_csv_is_quarantined_row_by_row() {
    let (_tmp, dir) = project("csv", "data/*.csv");
    let mut bytes = b"id,label,price\n1,fine,1.5\n2,\"unterminated,3\n".to_vec();
    // The unterminated quote runs to the end of the file: its line is one bad record.
    std::fs::write(dir.join("data/a_broken_quote.csv"), &bytes).expect("write");
    bytes = b"id,label,price\n1,ok,2\nx,wrong id,3\n2,bad price,cheap\n3,\xff\xfe bad utf8,4\n4,too,many,fields\n5,truncated".to_vec();
    std::fs::write(dir.join("data/b_mixed.csv"), &bytes).expect("write");
    std::fs::write(dir.join("data/c_empty.csv"), b"").expect("write");
    std::fs::write(dir.join("data/d_header_only.csv"), b"id,label,price\n").expect("write");
    let huge = "z".repeat(20 * 1024 * 1024);
    std::fs::write(
        dir.join("data/e_huge.csv"),
        format!("id,label,price\n6,{huge},1\n7,small,2\n"),
    )
    .expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "things");
    // a: 2 records (1 good), b: 6 (1 good), c: 0, d: 0, e: 2 (1 good)
    assert_eq!(run["rows_in"], 10, "{run}");
    assert_eq!(run["rows_stored"], 3, "{run}");
    assert_eq!(run["rows_quarantined"], 7, "{run}");
    let by_rule = rules(run);
    // the extra field and the truncated last line
    assert_eq!(by_rule["decode.field_count"], 2, "{by_rule}");
    assert_eq!(by_rule["decode.unbalanced_quote"], 1, "{by_rule}");
    assert_eq!(by_rule["decode.utf8"], 1, "{by_rule}");
    assert_eq!(by_rule["decode.record_too_large"], 1, "{by_rule}");
    assert_eq!(by_rule["id.type"], 1, "{by_rule}");
    assert_eq!(by_rule["price.type"], 1, "{by_rule}");
    let warnings = run["warnings"].to_string();
    assert!(
        warnings.contains("c_empty.csv: file is empty"),
        "{warnings}"
    );
    let quarantine = Path::new(run["quarantine_path"].as_str().expect("path"));
    let rows = query(
        quarantine,
        "SELECT source, position, rule_id, reason FROM t WHERE rule_id = 'price.type'",
    );
    let text = rows.join("\n");
    assert!(
        text.contains("data/b_mixed.csv")
            && text.contains("| 4 ")
            && text.contains("cannot read \"cheap\" as number"),
        "{text}"
    );
    let cut = query(
        quarantine,
        "SELECT length(raw_record) AS n FROM t WHERE rule_id = 'decode.record_too_large'",
    )
    .join("\n");
    assert!(cut.contains("655"), "raw record is cut near 64 KiB: {cut}");
    assert_eq!(
        count(Path::new(run["table_path"].as_str().expect("path"))),
        3
    );
}

#[test]
fn broken_ndjson_lines_are_quarantined() {
    let (_tmp, dir) = project("ndjson", "data/*.ndjson");
    let mut bytes = b"{\"id\":1,\"label\":\"a\",\"price\":1}\n\n[1,2]\n{\"id\":2,\"label\":\"b\"\n{\"id\":\"three\"}\n".to_vec();
    bytes.extend_from_slice(
        b"{\"id\":4,\"label\":\"\xff\"}\n{\"id\":5,\"label\":{\"nested\":true},\"price\":\"2.5\"}",
    );
    std::fs::write(dir.join("data/x.ndjson"), &bytes).expect("write");
    std::fs::write(dir.join("data/y.ndjson"), b"").expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "things");
    assert_eq!(run["rows_in"], 6, "{run}");
    assert_eq!(run["rows_stored"], 2, "{run}");
    let by_rule = rules(run);
    assert_eq!(by_rule["decode.json"], 2, "{by_rule}");
    assert_eq!(by_rule["decode.utf8"], 1, "{by_rule}");
    assert_eq!(by_rule["id.type"], 1, "{by_rule}");
    assert!(
        run["warnings"]
            .to_string()
            .contains("y.ndjson: file is empty")
    );
    let quarantine = Path::new(run["quarantine_path"].as_str().expect("path"));
    let text = query(
        quarantine,
        "SELECT position, rule_id, raw_record FROM t ORDER BY position",
    )
    .join("\n");
    assert!(
        text.contains("[1,2]") && text.contains("| 3 "),
        "line numbers count blank lines: {text}"
    );
}

#[test]
fn a_truncated_parquet_file_fails_the_run_with_its_name() {
    let (_tmp, dir) = project("parquet", "data/*.parquet");
    std::fs::write(
        dir.join("data/cut.parquet"),
        b"PAR1 this is not really parquet",
    )
    .expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let run = run_of(&doc, "things");
    assert_eq!(run["status"], "error");
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|e| e.contains("cut.parquet") && e.contains("Parquet")),
        "{run}"
    );
    assert_eq!(run["table_version"], serde_json::Value::Null);
}
