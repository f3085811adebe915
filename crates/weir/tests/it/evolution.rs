//! Contract evolution without a rebuild: an optional column added to a source's contract (in
//! the middle of its columns) is a non-breaking change for `weir plan`, and the next run
//! evolves the Delta table in place: one metadata commit, no data file rewritten or removed,
//! old rows read the column as null, new rows carry it, and the Python `deltalake` reader (an
//! independent implementation) sees the new schema. A breaking change is still refused, naming
//! the choices.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::incidents::assert_initial_run;
use crate::support::{demo_project, python, weir};

const READ: &str = r#"
import json, os, sys
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
t = dt.to_pyarrow_table()
names = [f.name for f in dt.schema().fields]
channel = t.column("channel").to_pylist() if "channel" in names else []
history = dt.history()
print(json.dumps({
    "columns": names,
    "files": sorted(dt.file_uris()),
    "rows": t.num_rows,
    "null_channel": sum(1 for v in channel if v is None),
    "web_channel": sum(1 for v in channel if v == "web"),
    "operations": [h.get("operation") for h in history],
}))
sys.stdout.flush()
# The reader's runtime can abort at interpreter exit; its answer is out already.
os._exit(0)
"#;

fn read_with_python(table: &Path) -> Value {
    let out = Command::new(python())
        .args(["-c", READ])
        .arg(table)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python deltalake: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

fn table_path(dir: &Path) -> std::path::PathBuf {
    let out = weir(dir, &["show", "orders", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("show JSON");
    dir.join(doc["table_path"].as_str().expect("table path"))
}

#[test]
fn an_optional_column_evolves_the_table_in_place_and_old_rows_read_null() {
    let (_tmp, dir) = demo_project();
    assert_initial_run(&dir);
    assert!(weir(&dir, &["apply"]).status.success());
    let table = table_path(&dir);
    let before = read_with_python(&table);
    assert!(
        !before["columns"]
            .as_array()
            .expect("columns")
            .contains(&json!("channel"))
    );

    let contract = dir.join("contracts/orders.odcs.yaml");
    let text = std::fs::read_to_string(&contract).expect("contract");
    let anchor = "      - name: currency\n";
    assert!(text.contains(anchor));
    let evolved = text.replacen(
        anchor,
        &format!("      - name: channel\n        logicalType: string\n{anchor}"),
        1,
    );
    std::fs::write(&contract, &evolved).expect("write contract");
    let out = weir(&dir, &["plan", "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(out.status.code(), Some(0), "non-breaking: {plan:#}");
    assert_eq!(plan["changes"][0]["class"], "non_breaking");

    // New orders carry the new column.
    let lines: String = (0..30)
        .map(|i| {
            format!(
                "{}\n",
                json!({"order_id": 700_000 + i, "customer_id": 1 + i, "order_ts": "2026-11-06T10:00:00Z",
                       "status": "placed", "amount": 10.5, "currency": "EUR", "channel": "web"})
            )
        })
        .collect();
    std::fs::write(dir.join("data/orders/2026-11-06.ndjson"), lines).expect("new file");
    let out = weir(&dir, &["run", "--json"]);
    let run: Value = serde_json::from_slice(&out.stdout).expect("run JSON");
    assert!(out.status.success(), "{run:#}");

    let after = read_with_python(&table);
    let columns = after["columns"].as_array().expect("columns");
    assert!(columns.contains(&json!("channel")), "{after:#}");
    assert_eq!(after["web_channel"], 30);
    assert_eq!(after["null_channel"], before["rows"], "old rows read null");
    assert_eq!(
        after["rows"].as_u64(),
        before["rows"].as_u64().map(|r| r + 30)
    );
    let old_files = before["files"].as_array().expect("files");
    let new_files = after["files"].as_array().expect("files");
    for file in old_files {
        assert!(new_files.contains(file), "{file} was rewritten or removed");
    }
    assert!(
        after["operations"]
            .as_array()
            .expect("history")
            .iter()
            .any(|o| o == "ADD COLUMN"),
        "one schema-evolution commit: {after:#}"
    );

    // A breaking change (a column removed) is still refused, saying what to do.
    let without_customer = evolved.replacen(
        "      - name: customer_id\n        logicalType: integer\n        required: true\n",
        "",
        1,
    );
    assert_ne!(
        without_customer, evolved,
        "the demo's customer_id column moved"
    );
    std::fs::write(&contract, without_customer).expect("write contract");
    std::fs::write(
        dir.join("data/orders/2026-11-07.ndjson"),
        format!(
            "{}\n",
            json!({"order_id": 710_000, "order_ts": "2026-11-07T10:00:00Z", "status": "placed",
                   "amount": 1.0, "currency": "EUR"})
        ),
    )
    .expect("new file");
    let out = weir(&dir, &["run", "orders"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("breaking") && text.contains("weir plan"),
        "{text}"
    );
    assert_eq!(read_with_python(&table)["rows"], after["rows"]);
}
