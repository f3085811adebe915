//! Everything users read: summary tables on stdout, JSON documents for `--json`.

use serde_json::{Value, json};
use weir_model::Diagnostics;
use weir_orchestrate::{AssetRunReport, Recovery, RunRecord};

pub use crate::text_table::TextTable;

/// The version of the shape of every JSON document weir prints (a top-level `schema_version`):
/// raised when a field changes meaning or goes away, not when one is added.
pub const JSON_SCHEMA_VERSION: u64 = 1;

/// Whether the command line asked for JSON (`--json`, or `--format json`): decided from the
/// raw arguments so that a usage error, found before any parsing succeeds, is JSON too.
pub fn json_requested(args: &[String]) -> bool {
    args.iter().any(|a| a == "--json" || a == "--format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json")
}

static JSON_MODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_json_mode(on: bool) {
    JSON_MODE.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Prints one JSON document on stdout, with the top-level `schema_version`.
pub fn print_json(mut doc: Value) {
    if let Value::Object(map) = &mut doc {
        map.insert("schema_version".into(), json!(JSON_SCHEMA_VERSION));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
    );
}

/// An error the user can act on: `error: MESSAGE` on stderr, or under JSON one document on
/// stdout, `{"schema_version", "error": {"kind", "message"}}`. Returns the exit outcome (2).
pub fn user_error(kind: &str, message: impl std::fmt::Display) -> crate::Outcome {
    if JSON_MODE.load(std::sync::atomic::Ordering::Relaxed) {
        print_json(json!({ "error": { "kind": kind, "message": message.to_string() } }));
    } else {
        eprintln!("error: {message}");
    }
    crate::Outcome::BadInput
}

/// `1 error`, `2 errors`: a count with its noun in the right number.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub fn new_table(header: &[&str]) -> TextTable {
    TextTable::new(header)
}

pub fn diagnostics_json(diagnostics: &Diagnostics) -> Value {
    Value::Array(
        diagnostics
            .0
            .iter()
            .map(|d| {
                json!({
                    "level": if d.is_warning { "warning" } else { "error" },
                    "file": d.file, "line": d.line, "column": d.column, "field": d.field, "message": d.message,
                })
            })
            .collect(),
    )
}

/// The recovery lines on stderr, before a run's summary.
pub fn print_recovery(recovery: &Recovery) {
    for line in &recovery.messages {
        eprintln!("recovered: {line}");
    }
    for (asset, reason) in &recovery.held {
        eprintln!("held: {asset}: {reason}");
    }
}

/// `recovered` (one line per thing done) and `held` (assets held back, with the reason).
pub fn recovery_json(recovery: &Recovery) -> Value {
    let held: Vec<Value> = recovery
        .held
        .iter()
        .map(|(asset, reason)| json!({ "asset": asset, "reason": reason }))
        .collect();
    json!({ "recovered": recovery.messages, "held": held })
}

pub fn run_json(reports: &[AssetRunReport], recovery: &Recovery) -> Value {
    let runs: Vec<Value> = reports
        .iter()
        .map(|r| {
            let checks: Vec<Value> = r
                .checks
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id, "metric": c.metric, "column": c.column, "value": c.value, "threshold": c.threshold,
                        "unit": c.unit, "passed": c.passed, "severity": c.severity.as_str(),
                        "scope": match c.scope { weir_quality::CheckScope::Run => "run", weir_quality::CheckScope::Table => "table" },
                    })
                })
                .collect();
            json!({
                "run_id": r.run_id,
                "asset": r.asset,
                "status": r.status.as_str(),
                "rows_in": r.rows_in,
                "rows_stored": r.rows_stored,
                "rows_quarantined": r.rows_quarantined,
                "bytes_in": r.bytes_in,
                "files": r.files,
                "rejected_files": r.rejected_files.iter().map(|f| json!({"path": f.path, "reason": f.reason})).collect::<Vec<_>>(),
                "replaced_files": r.replaced_files,
                "partition": r.partition,
                "compacted_files": r.compacted.map(|(removed, added)| json!({ "removed": removed, "added": added })),
                "table_version": r.table_version,
                "quarantine_version": r.quarantine_version,
                "table_path": r.table_path,
                "quarantine_path": r.quarantine_path,
                "checks_passed": r.checks_passed(),
                "checks_failed": r.checks_failed(),
                "checks": checks,
                "quarantine_by_rule": r.quarantine_by_rule,
                "null_counts": r.null_counts,
                "components": r.components,
                "warnings": r.warnings,
                "error": r.error,
                "duration_ms": r.duration.as_millis() as u64,
            })
        })
        .collect();
    let mut doc = recovery_json(recovery);
    doc["runs"] = Value::Array(runs);
    doc
}

pub fn run_record_json(r: &RunRecord) -> Value {
    json!({
        "run_id": r.id, "asset": r.asset, "trigger": r.trigger, "status": r.status, "started_at": r.started_at,
        "ended_at": r.ended_at, "rows_in": r.rows_in, "rows_stored": r.rows_stored, "rows_quarantined": r.rows_quarantined,
        "bytes_in": r.bytes_in, "table_version": r.table_version, "contract_version": r.contract_version,
        "checks": serde_json::from_str::<Value>(&r.checks).unwrap_or(Value::Null), "error": r.error,
        "rejected_files": serde_json::from_str::<Value>(&r.rejected_files).unwrap_or(Value::Null),
        "files": serde_json::from_str::<Value>(&r.files).unwrap_or(Value::Null),
        "quarantine_by_rule": serde_json::from_str::<Value>(&r.quarantine_by_rule).unwrap_or(Value::Null),
        "null_counts": serde_json::from_str::<Value>(&r.null_counts).unwrap_or(Value::Null),
        "duration_ms": duration_ms(&r.started_at, r.ended_at.as_deref()),
    })
}

/// Milliseconds between two RFC 3339 instants, when the run has ended.
fn duration_ms(started_at: &str, ended_at: Option<&str>) -> Option<i64> {
    let start = chrono::DateTime::parse_from_rfc3339(started_at).ok()?;
    let end = chrono::DateTime::parse_from_rfc3339(ended_at?).ok()?;
    Some((end - start).num_milliseconds())
}

pub fn print_run_summary(reports: &[AssetRunReport]) {
    for r in reports {
        for w in &r.warnings {
            eprintln!("warning: {}: {w}", r.asset);
        }
    }
    let mut table = new_table(&[
        "asset",
        "status",
        "rows in",
        "stored",
        "quarantined",
        "checks",
        "duration",
        "version",
    ]);
    for r in reports {
        table.add_row(vec![
            r.asset.clone(),
            r.status.as_str().to_string(),
            r.rows_in.to_string(),
            r.rows_stored.to_string(),
            r.rows_quarantined.to_string(),
            format!("{} passed, {} failed", r.checks_passed(), r.checks_failed()),
            format!("{:.2}s", r.duration.as_secs_f64()),
            r.table_version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{table}");
    for r in reports {
        for c in r.checks.iter().filter(|c| !c.passed) {
            let level = c.severity.as_str();
            println!(
                "{level}: {}: check `{}` ({}{}) measured {} {}, expected {}",
                r.asset,
                c.id,
                c.metric,
                c.column
                    .as_deref()
                    .map(|c| format!(" on `{c}`"))
                    .unwrap_or_default(),
                trim_float(c.value),
                c.unit,
                c.threshold
            );
        }
        if !r.quarantine_by_rule.is_empty() {
            let parts: Vec<String> = r
                .quarantine_by_rule
                .iter()
                .map(|(rule, n)| format!("{rule}: {n}"))
                .collect();
            println!(
                "{}: quarantined by rule: {}  → {}",
                r.asset,
                parts.join(", "),
                r.quarantine_path.display()
            );
        }
        for f in &r.rejected_files {
            println!("rejected: {}: {}: {}", r.asset, f.path, f.reason);
        }
        if let Some(p) = &r.partition {
            println!(
                "partition: {}: {} replaced; its earlier {} stored and {} quarantined rows were replaced by the {} rows of this run",
                r.asset, p.partition, p.rows_removed, p.quarantined_removed, r.rows_in
            );
        }
        for f in &r.replaced_files {
            println!(
                "replaced: {}: {} was rewritten; its earlier {} stored and {} quarantined rows were replaced by its new content",
                r.asset, f.path, f.rows_removed, f.quarantined_removed
            );
        }
        if let Some(e) = &r.error {
            let level = if r.status == weir_orchestrate::RunStatus::Partial {
                "partial"
            } else {
                "error"
            };
            println!("{level}: {}: {e}", r.asset);
        }
    }
    let total_in: u64 = reports.iter().map(|r| r.rows_in).sum();
    let stored: u64 = reports.iter().map(|r| r.rows_stored).sum();
    let quarantined: u64 = reports.iter().map(|r| r.rows_quarantined).sum();
    println!("rows in {total_in} = stored {stored} + quarantined {quarantined}");
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Run history as a table; `with_asset` adds the asset and error columns (`weir runs`).
pub fn runs_table(runs: &[RunRecord], with_asset: bool) -> TextTable {
    let mut header = vec!["run"];
    if with_asset {
        header.push("asset");
    }
    header.extend([
        "status",
        "started",
        "rows in",
        "stored",
        "quarantined",
        "version",
    ]);
    if with_asset {
        header.push("error");
    }
    let mut table = new_table(&header);
    for r in runs {
        let mut row = vec![r.id.clone()];
        if with_asset {
            row.push(r.asset.clone());
        }
        row.extend([
            r.status.clone(),
            r.started_at.clone(),
            r.rows_in.to_string(),
            r.rows_stored.to_string(),
            r.rows_quarantined.to_string(),
            r.table_version.map(|v| v.to_string()).unwrap_or_default(),
        ]);
        if with_asset {
            row.push(r.error.clone().unwrap_or_default());
        }
        table.add_row(row);
    }
    table
}
