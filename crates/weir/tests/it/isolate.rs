//! Exactly-once ingest under bad input: unreadable files are rejected one by one and retried,
//! duplicate keys are refused row by row, and `max_quarantined` bounds a run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::support::{run_json, run_of, weir};

const THINGS: &str = "apiVersion: v3.1.0
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
";

fn project(contract: &str, asset: &str, source: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    for d in ["contracts", "sources", "data"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::fs::write(
        dir.join("weir.toml"),
        "[project]\nname = \"qa\"\n[teams.qa]\nchannels = [\"slack:#qa\"]\n",
    )
    .expect("write");
    std::fs::write(dir.join(format!("contracts/{asset}.odcs.yaml")), contract).expect("write");
    std::fs::write(dir.join(format!("sources/{asset}.toml")), source).expect("write");
    (tmp, dir)
}

/// A Parquet file of `id` (and `label` unless `with_id` is false, then only `label`) rows,
/// in row groups of 1000 rows, snappy-compressed.
fn write_parquet(path: &Path, ids: std::ops::Range<i64>, with_id: bool) {
    let labels: Vec<String> = ids.clone().map(|i| format!("label {i}")).collect();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    if with_id {
        fields.push(Field::new("id", DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from_iter_values(ids)));
    }
    fields.push(Field::new("label", DataType::Utf8, false));
    columns.push(Arc::new(StringArray::from(labels)));
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(File::create(path).expect("create"), schema, Some(props))
        .expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// Overwrites the page header of the last row group: the footer still reads, the first row
/// groups decode, and the file fails part-way.
fn break_last_row_group(path: &Path) {
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&File::open(path).expect("open"))
        .expect("metadata");
    let last = meta.row_groups().last().expect("row groups");
    let column = last.column(0);
    let offset = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset()) as usize;
    let mut bytes = std::fs::read(path).expect("read");
    for b in &mut bytes[offset..offset + 32] {
        *b = 0xff;
    }
    std::fs::write(path, bytes).expect("write");
}

/// Rows of a Delta table counted by the Python `deltalake` package, an independent reader.
fn python_count(table: &Path) -> u64 {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg("-c")
        .arg(
            "import os, sys\nfrom deltalake import DeltaTable\n\
             print(DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows)\n\
             sys.stdout.flush()\nos._exit(0)\n",
        )
        .arg(table)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the Python deltalake reader failed (scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

fn rejected(run: &Value) -> Vec<(String, String)> {
    run["rejected_files"]
        .as_array()
        .expect("rejected_files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_string(),
                f["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(true)
}

#[test]
fn unreadable_parquet_files_are_rejected_together_and_retried() {
    let (_tmp, dir) = project(
        THINGS,
        "things",
        "format = \"parquet\"\npath = \"data/*.parquet\"\n[options]\nbatch_rows = 1000\n",
    );
    let data = dir.join("data");
    write_parquet(&data.join("a_good.parquet"), 0..3, true);
    write_parquet(&data.join("b_truncated.parquet"), 100..200, true);
    let whole = std::fs::read(data.join("b_truncated.parquet")).expect("read");
    std::fs::write(data.join("b_truncated.parquet"), &whole[..whole.len() / 2]).expect("cut");
    std::fs::write(
        data.join("c_garbage.parquet"),
        b"PAR1 this is not Parquet at all",
    )
    .expect("write");
    write_parquet(&data.join("d_no_id.parquet"), 300..310, false);
    write_parquet(&data.join("e_good.parquet"), 10..15, true);
    // 5000 rows in 5 row groups, read 1000 at a time: four batches are staged before the
    // fifth fails, and none of them may be published.
    write_parquet(&data.join("f_fails_late.parquet"), 1000..6000, true);
    break_last_row_group(&data.join("f_fails_late.parquet"));
    let root = is_root();
    if root {
        eprintln!("running as root: chmod 000 does not stop reading, so that case is skipped");
    } else {
        write_parquet(&data.join("g_no_access.parquet"), 20..25, true);
        Command::new("chmod")
            .arg("000")
            .arg(data.join("g_no_access.parquet"))
            .status()
            .expect("chmod");
    }

    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "a partial run exits 1: {doc}");
    let run = run_of(&doc, "things");
    assert_eq!(run["status"], "partial", "{run}");
    assert_eq!(run["rows_in"], 8, "{run}");
    assert_eq!(run["rows_stored"], 8, "{run}");
    assert_eq!(
        run["files"],
        serde_json::json!(["data/a_good.parquet", "data/e_good.parquet"])
    );
    let bad = rejected(run);
    let mut expected = vec![
        "data/b_truncated.parquet",
        "data/c_garbage.parquet",
        "data/d_no_id.parquet",
        "data/f_fails_late.parquet",
    ];
    if !root {
        expected.push("data/g_no_access.parquet");
    }
    assert_eq!(
        bad.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        expected,
        "{run}"
    );
    let reason = |file: &str| {
        bad.iter()
            .find(|(p, _)| p.ends_with(file))
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("b_truncated.parquet").starts_with("not a valid Parquet file"),
        "{bad:?}"
    );
    assert!(
        reason("c_garbage.parquet").starts_with("not a valid Parquet file"),
        "{bad:?}"
    );
    assert!(
        reason("d_no_id.parquet").contains("no column `id`"),
        "{bad:?}"
    );
    assert!(
        reason("f_fails_late.parquet").starts_with("not a valid Parquet file"),
        "{bad:?}"
    );
    if !root {
        assert_eq!(
            reason("g_no_access.parquet"),
            "cannot open data/g_no_access.parquet: Permission denied (os error 13)"
        );
    }
    let message = run["error"].as_str().expect("message");
    for file in &expected {
        assert!(message.contains(file), "{message}");
    }
    let table = dir.join("lake/things");
    assert_eq!(python_count(&table), 8, "only the good files' rows");

    // The human summary says it too, and no dependency's panic text reaches the user.
    let out = weir(&dir, &["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&out.stdout).expect("runs json");
    let record = &runs["runs"][0];
    assert_eq!(record["status"], "partial", "{record}");
    assert_eq!(
        record["rejected_files"].as_array().map(Vec::len),
        Some(expected.len()),
        "{record}"
    );

    // Not fixed yet: the bad files are read again, the good ones are not.
    let out = weir(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("partial") || stdout.contains("error"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Already shut down"),
        "{stderr}"
    );
    for file in &expected {
        assert!(stdout.contains(file), "{stdout}");
    }

    // Fixed: the next run publishes exactly them.
    write_parquet(&data.join("b_truncated.parquet"), 100..200, true);
    write_parquet(&data.join("c_garbage.parquet"), 200..210, true);
    write_parquet(&data.join("d_no_id.parquet"), 300..310, true);
    write_parquet(&data.join("f_fails_late.parquet"), 1000..6000, true);
    if !root {
        Command::new("chmod")
            .arg("644")
            .arg(data.join("g_no_access.parquet"))
            .status()
            .expect("chmod");
    }
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "things");
    assert_eq!(run["status"], "success", "{run}");
    assert!(rejected(run).is_empty(), "{run}");
    let fixed = 100 + 10 + 10 + 5000 + if root { 0 } else { 5 };
    assert_eq!(run["rows_in"], fixed, "{run}");
    assert_eq!(python_count(&table), 8 + fixed);
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    assert_eq!(run_of(&doc, "things")["status"], "up_to_date");
}

const ORDERS: &str = "apiVersion: v3.1.0
kind: DataContract
id: o
version: 1.0.0
status: active
team:
  name: qa
  members:
    - username: qa@example.com
      role: owner
schema:
  - name: orders
    properties:
      - name: region
        logicalType: string
        primaryKey: true
        primaryKeyPosition: 1
      - name: n
        logicalType: integer
        primaryKey: true
        primaryKeyPosition: 2
      - name: code
        logicalType: string
        unique: true
";

#[test]
fn duplicate_keys_are_quarantined_row_by_row() {
    let (_tmp, dir) = project(
        ORDERS,
        "orders",
        "format = \"csv\"\npath = \"data/*.csv\"\nmax_quarantined = 10\n",
    );
    let data = dir.join("data");
    std::fs::write(
        data.join("a.csv"),
        "region,n,code\neu,1,A\neu,2,B\nus,1,C\n",
    )
    .expect("a");
    // eu/1 is in a.csv; code C is in a.csv; us/3 twice in this file.
    std::fs::write(
        data.join("b.csv"),
        "region,n,code\neu,1,X\nus,2,C\nus,3,D\nus,3,E\n",
    )
    .expect("b");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "orders");
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["rows_in"], 7, "{run}");
    assert_eq!(run["rows_stored"], 4, "{run}");
    assert_eq!(run["rows_quarantined"], 3, "{run}");
    assert_eq!(
        run["quarantine_by_rule"],
        serde_json::json!({"primaryKey.duplicate": 2, "code.duplicate": 1})
    );
    let check = |run: &Value, id: &str| {
        run["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id).cloned())
            .unwrap_or_else(|| panic!("no check {id} in {run}"))
    };
    let pk = check(run, "primaryKey");
    assert_eq!(pk["value"], 2.0, "{pk}");
    assert_eq!(pk["scope"], "run", "{pk}");
    assert_eq!(
        pk["severity"], "warning",
        "refused duplicates do not block: {pk}"
    );

    // Against the table: eu/2 and code A are published already; ap/2 twice in the file.
    std::fs::write(
        data.join("c.csv"),
        "region,n,code\neu,2,Z\nap,1,A\nap,2,F\nap,2,G\n",
    )
    .expect("c");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "orders");
    assert_eq!(run["files"], serde_json::json!(["data/c.csv"]), "{run}");
    assert_eq!(run["rows_in"], 4, "{run}");
    assert_eq!(run["rows_stored"], 1, "{run}");
    assert_eq!(run["rows_quarantined"], 3, "{run}");
    assert_eq!(
        run["quarantine_by_rule"],
        serde_json::json!({"primaryKey.duplicate": 2, "code.duplicate": 1})
    );
    assert_eq!(check(run, "code.unique")["value"], 1.0);

    let table = dir.join("lake/orders");
    assert_eq!(python_count(&table), 5);
    let unique = crate::support::query(
        &table,
        "SELECT COUNT(*) AS n, COUNT(DISTINCT region || '/' || CAST(n AS VARCHAR)) AS k, COUNT(DISTINCT code) AS c FROM t",
    )
    .join("\n");
    assert!(unique.contains("| 5 | 5 | 5 |"), "{unique}");
    let quarantine = dir.join("lake/_quarantine/orders");
    let reasons = crate::support::query(
        &quarantine,
        "SELECT source, position, rule_id, reason FROM t ORDER BY source, position",
    )
    .join("\n");
    for expected in [
        // Positions of CSV rows are line numbers; line 1 is the header.
        "duplicate key (`region`, `n`) = (eu, 1): first seen at data/a.csv:2",
        "duplicate key `code` = C: first seen at data/a.csv:4",
        "duplicate key (`region`, `n`) = (us, 3): first seen at data/b.csv:4",
        "duplicate key (`region`, `n`) = (eu, 2): the table already has it",
        "duplicate key `code` = A: the table already has it",
        "duplicate key (`region`, `n`) = (ap, 2): first seen at data/c.csv:4",
    ] {
        assert!(reasons.contains(expected), "{expected} in\n{reasons}");
    }
    assert!(
        reasons.contains("data/c.csv | 2 "),
        "the row refused against the table keeps its file and position: {reasons}"
    );

    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    assert_eq!(run_of(&doc, "orders")["status"], "up_to_date");
}

#[test]
fn too_many_quarantined_rows_publish_nothing() {
    let (_tmp, dir) = project(
        THINGS,
        "things",
        "format = \"csv\"\npath = \"data/*.csv\"\nmax_quarantined = 2\n",
    );
    std::fs::write(
        dir.join("data/a.csv"),
        "id,label\n1,ok\nx,bad\ny,bad\nz,bad\n",
    )
    .expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let run = run_of(&doc, "things");
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().expect("error");
    assert!(
        error.contains("3 of 4 rows quarantined = 75.0%, more than max_quarantined = 2 rows"),
        "{error}"
    );
    assert!(error.contains("nothing was published"), "{error}");
    assert_eq!(crate::support::count(&dir.join("lake/things")), 0);
    // The failed run's quarantined rows are kept, marked as such, and count as published nowhere.
    assert_eq!(
        crate::support::scalar(
            &dir.join("lake/_quarantine/things"),
            "SELECT COUNT(*) FROM t WHERE run_status = 'failed'"
        ),
        3
    );
    assert_eq!(
        crate::support::scalar(
            &dir.join("lake/_quarantine/things"),
            "SELECT COUNT(*) FROM t WHERE COALESCE(run_status, 'published') = 'published'"
        ),
        0
    );

    // The project default applies when the source sets none: 75% is over 50%.
    std::fs::write(
        dir.join("sources/things.toml"),
        "format = \"csv\"\npath = \"data/*.csv\"\n",
    )
    .expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let run = run_of(&doc, "things");
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_quarantined = 50%")),
        "{run}"
    );
    // Raised in weir.toml, the same file publishes.
    std::fs::write(
        dir.join("weir.toml"),
        "[project]\nname = \"qa\"\nmax_quarantined = \"80%\"\n[teams.qa]\nchannels = [\"slack:#qa\"]\n",
    )
    .expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(run_of(&doc, "things")["rows_stored"], 1);
}
