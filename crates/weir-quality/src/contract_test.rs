//! Contract tests (`weir test --contracts`): sample rows checked against a contract exactly as
//! a source run checks a text file's rows (each value read as its text, types parsed, row
//! rules and keys applied, then the dataset rules audited on the rows that would be stored),
//! and compared with what the test expects.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use weir_ingest::SourceBatch;
use weir_model::{CheckVerdict, ContractExpectation, TestRow};

use crate::audit::{AuditScope, audit};
use crate::check::CheckResult;
use crate::keys::KeyGuard;
use crate::rules::ParseOptions;
use crate::validate::Validator;

/// What the sample rows did, and how it differs from what was expected.
#[derive(Debug, Clone)]
pub struct ContractTestOutcome {
    pub stored: u64,
    /// Row number (1-based) → the rule it was quarantined for.
    pub quarantined: BTreeMap<u64, String>,
    pub checks: Vec<CheckResult>,
    /// One sentence per difference from the expectation; empty when the test passes.
    pub failures: Vec<String>,
}

/// A value as a text file holds it: strings as they are, numbers and booleans as written,
/// anything else as JSON; `None` for null.
fn as_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Runs one contract test of `asset`'s contract; `Err` when it cannot run (a column the
/// contract does not have, a contract that does not compile).
pub async fn run_contract_test(
    asset: &str,
    contract: &weir_model::Contract,
    rows: &[TestRow],
    expect: &ContractExpectation,
) -> Result<ContractTestOutcome, String> {
    let validator =
        Validator::new(asset, contract, ParseOptions::default()).map_err(|e| e.to_string())?;
    let columns = validator.column_names();
    for (i, row) in rows.iter().enumerate() {
        if let Some(unknown) = row.keys().find(|k| !columns.contains(k)) {
            return Err(format!(
                "row {}: `{asset}` has no column `{unknown}` (its columns: {})",
                i + 1,
                columns.join(", ")
            ));
        }
    }
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|c| {
            let values: StringArray = rows.iter().map(|r| r.get(c).and_then(as_text)).collect();
            Arc::new(values) as ArrayRef
        })
        .collect();
    let fields: Vec<arrow::datatypes::Field> = columns
        .iter()
        .map(|c| arrow::datatypes::Field::new(c, arrow::datatypes::DataType::Utf8, true))
        .collect();
    let batch = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), arrays)
        .map_err(|e| e.to_string())?;
    let raw: StringArray = rows.iter().map(|r| serde_json::to_string(r).ok()).collect();
    let source = SourceBatch {
        batch,
        positions: (1..=rows.len() as u64).collect(),
        raw_lines: Some(raw),
        rejects: Vec::new(),
        bytes: 0,
    };
    let mut validated = validator.validate(&source).map_err(|e| e.to_string())?;
    if let Some(mut guard) =
        KeyGuard::new(&validator, vec!["sample".into()]).map_err(|e| e.to_string())?
    {
        guard.admit(&mut validated, 0).map_err(|e| e.to_string())?;
        guard.commit_unit();
    }
    let mut quarantined = BTreeMap::new();
    for q in &validated.quarantined {
        quarantined
            .entry(q.position)
            .or_insert_with(|| q.rule_id.clone());
    }
    let stored = validated.good.num_rows() as u64;
    let ctx = SessionContext::new();
    let table = MemTable::try_new(validated.good.schema(), vec![vec![validated.good.clone()]])
        .map_err(|e| e.to_string())?;
    ctx.register_table("sample", Arc::new(table))
        .map_err(|e| e.to_string())?;
    let mut checks = audit(
        &AuditScope {
            ctx: &ctx,
            table: "sample",
            appended: None,
        },
        &validator.dataset_rules_without_keys(),
    )
    .await
    .map_err(|e| e.to_string())?;
    checks.extend(validator.run_checks(rows.len() as u64, &validated.rule_counts));
    let mut failures = Vec::new();
    if let Some(want) = expect.stored
        && want != stored
    {
        failures.push(format!("{stored} row(s) stored, expected {want}"));
    }
    for (row, rule) in &expect.quarantined {
        match quarantined.get(row) {
            Some(actual) if actual == rule => {}
            Some(actual) => failures.push(format!(
                "row {row} was quarantined for `{actual}`, expected `{rule}`"
            )),
            None => failures.push(format!(
                "row {row} was stored, expected it quarantined for `{rule}`"
            )),
        }
    }
    for (row, rule) in &quarantined {
        if !expect.quarantined.contains_key(row) {
            let reason = validated
                .quarantined
                .iter()
                .find(|q| q.position == *row)
                .map(|q| q.reason.clone())
                .unwrap_or_default();
            failures.push(format!(
                "row {row} was quarantined for `{rule}` ({reason}), expected it stored"
            ));
        }
    }
    for (id, verdict) in &expect.checks {
        let Some(check) = checks.iter().find(|c| &c.id == id) else {
            let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
            failures.push(format!(
                "no check `{id}` in the contract (its checks: {})",
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            ));
            continue;
        };
        let wanted = *verdict == CheckVerdict::Pass;
        if check.passed != wanted {
            failures.push(format!(
                "check `{id}` {} (measured {} {}, threshold {}), expected it to {}",
                if check.passed { "passed" } else { "failed" },
                check.value,
                check.unit,
                check.threshold,
                if wanted { "pass" } else { "fail" }
            ));
        }
    }
    Ok(ContractTestOutcome {
        stored,
        quarantined,
        checks,
        failures,
    })
}
