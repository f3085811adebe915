use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datafusion::prelude::SessionContext;
use serde_json::Value;
use weir_store::{LakeTable, register_delta};

pub fn weir_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir"))
}

pub fn weir(dir: &Path, args: &[&str]) -> Output {
    Command::new(weir_bin())
        .args(args)
        .arg("--project")
        .arg(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("weir runs")
}

/// `weir run --json` (plus `extra`), returning the exit code and the parsed document.
pub fn run_json(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["run", "--json"];
    args.extend_from_slice(extra);
    let out = weir(dir, &args);
    let code = out.status.code().unwrap_or(-1);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "run --json printed no JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, doc)
}

/// A fresh demo project in a temp dir.
pub fn demo_project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("shop");
    let out = Command::new(weir_bin())
        .arg("init")
        .arg(&dir)
        .output()
        .expect("init runs");
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, dir)
}

pub fn runs(doc: &Value) -> &Vec<Value> {
    doc["runs"].as_array().expect("runs array")
}

pub fn run_of<'a>(doc: &'a Value, asset: &str) -> &'a Value {
    runs(doc)
        .iter()
        .find(|r| r["asset"] == asset)
        .unwrap_or_else(|| panic!("no run for {asset} in {doc}"))
}

/// Rows of a Delta table read through the store's DataFusion provider, with a query.
pub fn query(table: &Path, sql_template: &str) -> Vec<String> {
    query_with(&[("t", table)], sql_template)
}

/// Rows of a query over several Delta tables, each registered under its name.
pub fn query_with(tables: &[(&str, &Path)], sql_template: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ctx = SessionContext::new();
        for (name, table) in tables {
            let Some(t) = LakeTable::open(table).await.expect("open table") else {
                return Vec::new();
            };
            register_delta(&ctx, name, &t).await.expect("register");
        }
        let batches = ctx
            .sql(sql_template)
            .await
            .expect("sql")
            .collect()
            .await
            .expect("collect");
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string();
        text.lines().map(str::to_string).collect()
    })
}

pub fn count(table: &Path) -> u64 {
    let lines = query(table, "SELECT COUNT(*) AS n FROM t");
    lines
        .get(3)
        .and_then(|l| l.trim_matches(|c| c == '|' || c == ' ').parse().ok())
        .unwrap_or(0)
}

pub fn scalar(table: &Path, sql: &str) -> u64 {
    let lines = query(table, sql);
    lines
        .get(3)
        .and_then(|l| l.trim_matches(|c| c == '|' || c == ' ').parse().ok())
        .unwrap_or(0)
}

/// Asserts datacontract-cli's `lint` passes every one of `files` (scripts/test.sh installs it).
pub fn assert_datacontract_lint_passes(files: &[PathBuf]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/datacontract_lint.py");
    let out = Command::new(python())
        .arg(script)
        .arg("--require-passed")
        .args(files)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "not every contract passed datacontract lint (scripts/test.sh installs datacontract-cli): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Python interpreter the tests use to read tables with `deltalake`, an independent reader.
pub fn python() -> String {
    std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Reads one request per line: `{"tables": [{"path", "column"}], "quarantines": [path]}`, and
/// answers one line: for each table the sorted values of `column`, for each quarantine table the
/// sorted `source|position|rule_id` of its live rows (published and not replayed). A missing
/// table reads as empty.
const PY_LAKE: &str = r#"
import json, os, sys
from deltalake import DeltaTable

def table(path):
    if not os.path.isdir(os.path.join(path, "_delta_log")):
        return None
    return DeltaTable(path).to_pyarrow_table()

for line in sys.stdin:
    req = json.loads(line)
    out = {"tables": {}, "quarantines": {}}
    try:
        for spec in req["tables"]:
            t = table(spec["path"])
            values = [] if t is None else t.column(spec["column"]).to_pylist()
            out["tables"][spec["path"]] = sorted(values, key=lambda v: (v is None, v))
        for path in req["quarantines"]:
            t = table(path)
            rows = [] if t is None else t.select(
                [c for c in ["source", "position", "rule_id", "run_status", "replayed_by"]
                 if c in t.column_names]).to_pylist()
            live = [
                "%s|%s|%s" % (r["source"], r["position"], r["rule_id"])
                for r in rows
                if (r.get("run_status") or "published") == "published"
                and r.get("replayed_by") is None
            ]
            out["quarantines"][path] = sorted(live)
    except Exception as e:
        out = {"error": repr(e)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
os._exit(0)
"#;

/// One long-lived Python `deltalake` reader, so that checking the lake after every step costs
/// a table scan, not an interpreter start.
pub struct PyLake {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

/// What [`PyLake::read`] found in one table (`column` values, sorted) or quarantine table
/// (`source|position|rule_id` of its live rows, sorted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LakeRead {
    pub tables: std::collections::BTreeMap<String, Vec<Value>>,
    pub quarantines: std::collections::BTreeMap<String, Vec<String>>,
}

impl PyLake {
    pub fn start() -> Self {
        use std::process::Stdio;
        let mut child = Command::new(python())
            .arg("-c")
            .arg(PY_LAKE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python runs (scripts/test.sh installs deltalake)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        PyLake {
            child,
            stdin,
            stdout,
        }
    }

    /// `tables`: `(table path, column)`; `quarantines`: quarantine table paths.
    pub fn read(&mut self, tables: &[(&Path, &str)], quarantines: &[&Path]) -> LakeRead {
        use std::io::{BufRead, Write};
        let request = serde_json::json!({
            "tables": tables.iter().map(|(p, c)| serde_json::json!({"path": p.display().to_string(), "column": c})).collect::<Vec<_>>(),
            "quarantines": quarantines.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        writeln!(self.stdin, "{request}").expect("write to python");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from python");
        let doc: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the Python reader answered {line:?}: {e}"));
        assert!(
            doc.get("error").is_none(),
            "the Python reader failed: {doc}"
        );
        let mut read = LakeRead::default();
        for (path, _) in tables {
            let key = path.display().to_string();
            let values = doc["tables"][&key].as_array().cloned().unwrap_or_default();
            read.tables.insert(key, values);
        }
        for path in quarantines {
            let key = path.display().to_string();
            let rows = doc["quarantines"][&key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            read.quarantines.insert(key, rows);
        }
        read
    }
}

impl Drop for PyLake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `weir ARGS --json`: its exit code and its (documented) document.
pub fn json_of(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = weir(dir, &all);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "weir {args:?}: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    crate::json_output::assert_documented(args, &doc);
    (out.status.code().unwrap_or(-1), doc)
}
