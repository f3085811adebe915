//! An independent Delta reader (the Python `deltalake` package, installed by
//! `scripts/test.sh`) opens weir's tables and finds the same rows.

use std::path::Path;
use std::process::Command;

use crate::support::{demo_project, run_json, runs, scalar};

const READER: &str = r#"
import json, os, sys
from deltalake import DeltaTable
out = {}
for path, key in zip(sys.argv[1::2], sys.argv[2::2]):
    dt = DeltaTable(path)
    t = dt.to_pyarrow_table()
    ids = t.column(key).to_pylist()
    history = dt.history()
    out[path] = {
        "rows": t.num_rows,
        "key_sum": sum(ids),
        "version": dt.version(),
        "run_ids": [h.get("weir.runId") for h in history if h.get("weir.runId")],
        "columns": t.column_names,
    }
print(json.dumps(out))
sys.stdout.flush()
# Skip interpreter teardown: the reader's background threads can abort the process there
# ("terminate called without an active exception") after the answer is printed.
os._exit(0)
"#;

#[test]
fn python_deltalake_reads_the_same_rows() {
    let (_tmp, dir) = demo_project();
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    let keys = [
        ("customers", "customer_id"),
        ("orders", "order_id"),
        ("payments", "payment_id"),
    ];
    let mut args = vec!["-c".to_string(), READER.to_string()];
    for (asset, key) in keys {
        args.push(dir.join("lake").join(asset).display().to_string());
        args.push(key.to_string());
    }
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(&args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the independent reader failed (run scripts/test.sh, which installs the `deltalake` Python package): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for (asset, key) in keys {
        let path = dir.join("lake").join(asset);
        let r = &read[path.display().to_string()];
        let run = runs(&doc)
            .iter()
            .find(|r| r["asset"] == asset)
            .expect("run");
        assert_eq!(r["rows"], run["rows_stored"], "{asset}: {r}");
        assert_eq!(r["version"], run["table_version"], "{asset}");
        assert_eq!(
            r["key_sum"].as_u64(),
            Some(scalar(
                Path::new(&path),
                &format!("SELECT SUM({key}) FROM t")
            )),
            "{asset}"
        );
        assert_eq!(
            r["run_ids"],
            serde_json::json!([run["run_id"]]),
            "{asset}: commit info carries the run id"
        );
    }
}
