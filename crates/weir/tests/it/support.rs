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
