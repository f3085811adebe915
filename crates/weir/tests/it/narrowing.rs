//! No silent narrowing, end to end: a value the contract's type cannot hold exactly is
//! quarantined as `<column>.type` with its original text, from CSV, NDJSON, Parquet and models.

use std::process::Command;

use crate::support::{query, run_json, run_of};

const CONTRACT: &str = "apiVersion: v3.1.0
kind: DataContract
id: NAME
version: 1.0.0
status: active
schema:
  - name: NAME
    properties:
      - name: id
        logicalType: integer
        required: true
      - name: qty
        logicalType: integer
      - name: price
        logicalType: number
        physicalType: decimal(10,2)
";

fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    for sub in ["contracts", "sources", "models", "data"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(dir.join("weir.toml"), "[project]\nname = \"n\"\n").expect("write");
    for (name, format, ext) in [
        ("from_csv", "csv", "csv"),
        ("from_ndjson", "ndjson", "ndjson"),
        ("from_parquet", "parquet", "parquet"),
    ] {
        std::fs::write(
            dir.join(format!("contracts/{name}.odcs.yaml")),
            CONTRACT.replace("NAME", name),
        )
        .expect("write");
        std::fs::write(
            dir.join(format!("sources/{name}.toml")),
            // Most rows are bad on purpose: lift the default 50% quarantine limit.
            format!(
                "format = \"{format}\"\npath = \"data/{name}.{ext}\"\nmax_quarantined = \"100%\"\n"
            ),
        )
        .expect("write");
    }
    std::fs::write(
        dir.join("data/from_csv.csv"),
        "id,qty,price\n1,2,1.50\n2,2.5,1.00\n3,3,1.005\n4,99999999999999999999,1\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("data/from_ndjson.ndjson"),
        "{\"id\":1,\"qty\":2,\"price\":1.5}\n{\"id\":2,\"qty\":2.5,\"price\":1}\n{\"id\":3,\"qty\":3,\"price\":1.005}\n{\"id\":4,\"qty\":3.0,\"price\":2}\n",
    )
    .expect("write");
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = format!(
        "import pyarrow as pa, pyarrow.parquet as pq\npq.write_table(pa.table({{'id': pa.array([1, 2, 3, 4], pa.int64()), 'qty': pa.array([2.0, 2.5, 3.0, 1e20], pa.float64()), 'price': pa.array([1.5, 1.0, 1.005, 2.0], pa.float64())}}), {:?})",
        dir.join("data/from_parquet.parquet").display().to_string()
    );
    let ok = Command::new(python)
        .arg("-c")
        .arg(script)
        .status()
        .expect("python");
    assert!(ok.success(), "pyarrow writes the Parquet file");
    std::fs::write(
        dir.join("contracts/from_model.odcs.yaml"),
        CONTRACT.replace("NAME", "from_model"),
    )
    .expect("write");
    std::fs::write(
        dir.join("models/from_model.sql"),
        "SELECT CAST(id AS BIGINT) AS id, qty, price FROM (VALUES (1, 2.0, 1.5), (2, 94.7, 1.0), (3, 3.0, 1.006)) AS v(id, qty, price)\n",
    )
    .expect("write");
    (tmp, dir)
}

#[test]
fn lossy_values_are_quarantined_from_every_format_and_from_models() {
    let (_tmp, dir) = project();
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    for (asset, qty_type, price_type) in [
        ("from_csv", 2, 1),
        // JSON text `3.0` is not read as an integer either: integer text is strict.
        ("from_ndjson", 2, 1),
        ("from_parquet", 2, 1),
    ] {
        let run = run_of(&doc, asset);
        let rules = &run["quarantine_by_rule"];
        assert_eq!(rules["qty.type"], qty_type, "{asset}: {run}");
        assert_eq!(rules["price.type"], price_type, "{asset}: {run}");
        assert_eq!(
            run["rows_in"].as_u64(),
            Some(
                run["rows_stored"].as_u64().unwrap_or(0)
                    + run["rows_quarantined"].as_u64().unwrap_or(0)
            ),
            "{asset}"
        );
    }
    // The original value is kept: 2.5 is in the quarantined record, never 2 in the table.
    let quarantined = query(
        &dir.join("lake/_quarantine/from_parquet"),
        "SELECT raw_record FROM t WHERE rule_id = 'qty.type' ORDER BY position",
    )
    .join("\n");
    assert!(quarantined.contains("2.5"), "{quarantined}");
    // Only row 1 (qty 2.0, price 1.5) fits exactly.
    let table = dir.join("lake/from_parquet");
    assert_eq!(crate::support::count(&table), 1);
    assert_eq!(crate::support::scalar(&table, "SELECT SUM(id) FROM t"), 1);
    // The model: 94.7 for an integer column and 1.006 for decimal(10,2) are quarantined.
    let model = run_of(&doc, "from_model");
    assert_eq!(model["quarantine_by_rule"]["qty.type"], 1, "{model}");
    assert_eq!(model["quarantine_by_rule"]["price.type"], 1, "{model}");
    let rows = query(
        &dir.join("lake/from_model"),
        "SELECT COUNT(*) AS n FROM t WHERE qty = 94",
    )
    .join("\n");
    assert!(
        rows.contains("| 0 |"),
        "94.7 was not narrowed to 94: {rows}"
    );
}
