//! `weir diff` between a Delta table and a PostgreSQL table on the real server `scripts/test.sh`
//! starts: one million rows ingested by weir from a CSV file, the same rows generated in
//! PostgreSQL by the same formulas; ten rows changed in PostgreSQL (in five different columns)
//! are found exactly, with the columns they differ in, while only a sliver of the table crosses
//! the network (the bytes fetched are reported and bounded). Then a row deleted and one
//! inserted show as only in A and only in B; and equal tables are equal with no row fetched.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;
use sqlx::{Connection, Executor};

use crate::diff::mismatches;
use crate::support::weir;

const ROWS: u64 = 1_000_000;
/// 2026-01-01T00:00:00Z.
const EPOCH: i64 = 1_767_225_600;

const CONTRACT: &str = r#"apiVersion: v3.1.0
kind: DataContract
id: events
version: 1.0.0
status: active
schema:
  - name: events
    properties:
      - name: id
        logicalType: integer
        primaryKey: true
        required: true
      - name: name
        logicalType: string
      - name: amount
        logicalType: number
        physicalType: decimal(12,2)
      - name: day
        logicalType: date
      - name: ts
        logicalType: timestamp
      - name: flag
        logicalType: boolean
"#;

/// A project whose source `events` is one CSV file of [`ROWS`] rows.
fn project(dir: &Path) {
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
        std::fs::write(path, text).expect("write");
    };
    write("weir.toml", "[project]\nname = \"pgdiff\"\n");
    write("contracts/events.odcs.yaml", CONTRACT);
    write(
        "sources/events.toml",
        "format = \"csv\"\npath = \"data/*.csv\"\n\n[options]\nheader = true\n",
    );
    let mut csv = String::with_capacity(70 * ROWS as usize);
    csv.push_str("id,name,amount,day,ts,flag\n");
    let day0 = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    for i in 1..=ROWS {
        let cents = i % 100_000;
        let day = day0 + chrono::Days::new(i % 365);
        let ts = chrono::DateTime::from_timestamp(EPOCH + i as i64, 0).expect("instant");
        let _ = writeln!(
            csv,
            "{i},user-{},{}.{:02},{day},{},{}",
            i % 5000,
            cents / 100,
            cents % 100,
            ts.format("%Y-%m-%dT%H:%M:%SZ"),
            i % 3 == 0
        );
    }
    write("data/events.csv", &csv);
}

/// The same rows in PostgreSQL, by the same formulas.
const CREATE: &str = "CREATE TABLE events (
    id bigint PRIMARY KEY, name text, amount numeric(12,2), day date, ts timestamptz, flag boolean);
  INSERT INTO events
    SELECT i, 'user-' || (i % 5000), ((i % 100000) / 100.0)::numeric(12,2),
           date '2026-01-01' + (i % 365)::int,
           timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second', i % 3 = 0
    FROM generate_series(1, 1000000) AS i;
  ANALYZE events;";

fn diff(dir: &Path, url: &str) -> (i32, Value) {
    let remote = format!("{url}#public.events");
    crate::diff::diff(dir, &["events", &remote, "--key", "id", "--samples", "10"])
}

#[test]
fn a_million_rows_against_postgres_find_exactly_the_ten_changed_and_move_little() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime
        .block_on(weir_orchestrate::testing::fresh_postgres_database())
        .expect("a PostgreSQL database (run the tests through ./scripts/test.sh)");
    let exec = |sql: &str| {
        runtime.block_on(async {
            let mut conn = sqlx::postgres::PgConnection::connect(&url)
                .await
                .expect("connect");
            conn.execute(sql).await.expect(sql);
            let _ = conn.close().await;
        })
    };
    exec(CREATE);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    project(&dir);
    let out = weir(&dir, &["run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Equal: one round of checksums, nothing fetched.
    let (code, doc) = diff(&dir, &url);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["report"]["identical"].as_u64(), Some(ROWS));
    assert_eq!(doc["transfer"]["rows_fetched"].as_u64(), Some(0), "{doc}");

    // Ten rows changed, across five columns.
    let changed: [u64; 10] = [
        1, 77, 4_242, 99_999, 250_000, 500_001, 612_345, 777_777, 999_000, 1_000_000,
    ];
    exec(
        "UPDATE events SET amount = amount + 0.01 WHERE id IN (1, 77, 4242, 99999);
         UPDATE events SET name = name || '!' WHERE id IN (250000, 500001);
         UPDATE events SET ts = ts + interval '1 microsecond' WHERE id = 612345;
         UPDATE events SET day = day + 1 WHERE id = 777777;
         UPDATE events SET flag = NOT flag WHERE id IN (999000, 1000000);",
    );
    let (code, doc) = diff(&dir, &url);
    assert_eq!(code, 1, "{doc}");
    let report = &doc["report"];
    assert_eq!(report["changed"].as_u64(), Some(10), "{report}");
    assert_eq!(report["identical"].as_u64(), Some(ROWS - 10));
    assert_eq!(
        (report["rows_a"].as_u64(), report["rows_b"].as_u64()),
        (Some(ROWS), Some(ROWS))
    );
    assert_eq!(
        (report["only_in_a"].as_u64(), report["only_in_b"].as_u64()),
        (Some(0), Some(0))
    );
    for (column, n) in [
        ("amount", 4),
        ("name", 2),
        ("ts", 1),
        ("day", 1),
        ("flag", 2),
    ] {
        assert_eq!(mismatches(report, column), n, "{column}: {report}");
    }
    let mut found: Vec<u64> = report["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .flat_map(|c| c["samples"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["key"]["id"].as_str().and_then(|k| k.parse().ok()))
        .collect();
    found.sort_unstable();
    assert_eq!(found, changed);
    let transfer = &doc["transfer"];
    let bytes = transfer["bytes_fetched"].as_u64().expect("bytes");
    let rows = transfer["rows_fetched"].as_u64().expect("rows");
    eprintln!(
        "1M rows, 10 changed: {} queries, {} segments, {rows} rows and {bytes} bytes fetched",
        transfer["queries"], transfer["segments_compared"]
    );
    // The whole table is about 60 MB of text; what crossed is a few kilobytes per change.
    assert!(rows <= 10 * 512, "{transfer}");
    assert!(bytes < 1_000_000, "{transfer}");

    // A row gone from PostgreSQL, one it has that the lake has not.
    exec(
        "DELETE FROM events WHERE id = 333333;
         INSERT INTO events VALUES (2000000, 'late', 1.00, date '2026-02-02', now(), true);",
    );
    let (code, doc) = diff(&dir, &url);
    assert_eq!(code, 1);
    let report = &doc["report"];
    assert_eq!(
        (report["only_in_a"].as_u64(), report["only_in_b"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["changed"].as_u64(), Some(10));
    assert_eq!(report["samples_only_in_a"][0]["id"], "333333");
    assert_eq!(report["samples_only_in_b"][0]["id"], "2000000");
}
