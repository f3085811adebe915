//! The dataset-level audit: all library metrics of a table in one fused aggregate query over
//! the table as it will be after publishing, then each SQL rule on its own.

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use weir_model::{TableCounts, Unit};

use crate::check::{CheckResult, CheckScope};
use crate::error::{QualityError, Result};
use crate::rules::{DatasetRule, DatasetRuleKind};
use crate::validate::unit_name;

/// Where the audit reads: a query context in which `table` names the post-publish view
/// (published rows plus this run's staged rows).
pub struct AuditScope<'a> {
    pub ctx: &'a SessionContext,
    pub table: &'a str,
    /// When the view is an append (the published rows it keeps, then the staged rows): the
    /// counts of those published rows, from the files' statistics, and the name of the staged
    /// rows' table (`None`: nothing staged). Additive measures (row count, nulls) then scan
    /// only the staged rows, so the audit costs what the new rows cost.
    pub appended: Option<(&'a TableCounts, Option<&'a str>)>,
}

pub async fn audit(scope: &AuditScope<'_>, rules: &[DatasetRule]) -> Result<Vec<CheckResult>> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let table = quote(scope.table);
    let mut select = vec!["COUNT(*)".to_string()];
    // For each rule, the index of its measure in the fused query, or None for its own query.
    let mut slot = Vec::with_capacity(rules.len());
    for rule in rules {
        let expr = match &rule.kind {
            DatasetRuleKind::NullValues(c) => Some(format!(
                "SUM(CASE WHEN {} IS NULL THEN 1 ELSE 0 END)",
                quote(c)
            )),
            DatasetRuleKind::MissingValues(c, missing) => Some(missing_expr(c, missing)),
            DatasetRuleKind::DuplicateValues(cols) if cols.len() == 1 => {
                Some(format!("COUNT({0}) - COUNT(DISTINCT {0})", quote(&cols[0])))
            }
            DatasetRuleKind::RowCount => Some("COUNT(*)".to_string()),
            DatasetRuleKind::DuplicateValues(_) | DatasetRuleKind::Sql(_) => None,
        };
        slot.push(expr.map(|e| {
            select.push(e);
            select.len() - 1
        }));
    }
    let fused_sql = |from: &str| {
        format!(
            "SELECT {} FROM {from}",
            select
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{e} AS m{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    // What the published rows add to each fused measure, when the statistics know it.
    let published: Option<Vec<f64>> = scope.appended.and_then(|(counts, _)| {
        let mut base = vec![counts.rows as f64];
        for (rule, slot) in rules.iter().zip(&slot) {
            if slot.is_none() {
                continue;
            }
            base.push(match &rule.kind {
                DatasetRuleKind::RowCount => counts.rows as f64,
                DatasetRuleKind::NullValues(c) => counts.nulls_of(c)? as f64,
                _ => return None,
            });
        }
        Some(base)
    });
    let fused: Vec<Option<f64>> = match (published, scope.appended) {
        (Some(base), Some((_, staged))) => {
            let added = match staged {
                Some(staged) => {
                    query_row(scope.ctx, &fused_sql(&quote(staged)), "fused audit").await?
                }
                None => Vec::new(),
            };
            base.iter()
                .enumerate()
                .map(|(i, b)| Some(b + added.get(i).copied().flatten().unwrap_or(0.0)))
                .collect()
        }
        _ => query_row(scope.ctx, &fused_sql(&table), "fused audit").await?,
    };
    let total = fused.first().copied().flatten().unwrap_or(0.0);

    let mut results = Vec::with_capacity(rules.len());
    for (rule, slot) in rules.iter().zip(slot) {
        let raw = match (slot, &rule.kind) {
            (Some(i), _) => fused.get(i).copied().flatten().unwrap_or(0.0),
            (None, DatasetRuleKind::DuplicateValues(cols)) => {
                let keys = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
                let not_null = cols
                    .iter()
                    .map(|c| format!("{} IS NOT NULL", quote(c)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let sql = format!(
                    "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM {table} WHERE {not_null} GROUP BY {keys} HAVING COUNT(*) > 1)"
                );
                query_row(scope.ctx, &sql, &rule.id)
                    .await?
                    .first()
                    .copied()
                    .flatten()
                    .unwrap_or(0.0)
            }
            (None, DatasetRuleKind::Sql(query)) => {
                let sql = substitute(query, &table, rule.column.as_deref());
                query_row(scope.ctx, &sql, &rule.id)
                    .await?
                    .first()
                    .copied()
                    .flatten()
                    .ok_or_else(|| QualityError::EmptyResult {
                        rule: rule.id.clone(),
                    })?
            }
            (None, _) => 0.0,
        };
        let value = match rule.unit {
            Unit::Percent
                if !matches!(
                    rule.kind,
                    DatasetRuleKind::RowCount | DatasetRuleKind::Sql(_)
                ) =>
            {
                if total == 0.0 {
                    0.0
                } else {
                    raw * 100.0 / total
                }
            }
            _ => raw,
        };
        results.push(CheckResult {
            id: rule.id.clone(),
            metric: rule.kind.metric().to_string(),
            column: rule.column.clone(),
            scope: CheckScope::Table,
            value,
            threshold: rule.operator.to_string(),
            unit: unit_name(rule.unit),
            passed: rule.operator.holds(value),
            severity: rule.severity,
        });
    }
    Ok(results)
}

fn missing_expr(column: &str, missing: &[Option<String>]) -> String {
    let c = quote(column);
    let mut terms = Vec::new();
    if missing.iter().any(Option::is_none) {
        terms.push(format!("{c} IS NULL"));
    }
    let literals: Vec<String> = missing
        .iter()
        .flatten()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect();
    if !literals.is_empty() {
        terms.push(format!("CAST({c} AS VARCHAR) IN ({})", literals.join(", ")));
    }
    if terms.is_empty() {
        return "0".into();
    }
    format!("SUM(CASE WHEN {} THEN 1 ELSE 0 END)", terms.join(" OR "))
}

/// ODCS spells the placeholders `{object}`/`{property}`; its JSON schema's example uses
/// `${table}`/`${column}`. Both are accepted.
pub(crate) fn substitute(query: &str, table: &str, column: Option<&str>) -> String {
    // The `${...}` spellings first, so `{object}` does not eat the inside of `${object}`.
    let mut sql = query
        .replace("${table}", table)
        .replace("${object}", table)
        .replace("{object}", table)
        .replace("{table}", table);
    if let Some(c) = column {
        let c = quote(c);
        sql = sql
            .replace("${column}", &c)
            .replace("${property}", &c)
            .replace("{property}", &c)
            .replace("{column}", &c);
    }
    sql
}

pub(crate) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The first row of a query as numbers (booleans as 1/0); `None` for a null cell.
async fn query_row(ctx: &SessionContext, sql: &str, rule: &str) -> Result<Vec<Option<f64>>> {
    let audit_err = |source| QualityError::Audit {
        rule: rule.to_string(),
        source,
    };
    let batches = ctx
        .sql(sql)
        .await
        .map_err(audit_err)?
        .collect()
        .await
        .map_err(audit_err)?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(Vec::new());
    };
    let mut row = Vec::with_capacity(batch.num_columns());
    for column in batch.columns() {
        if column.is_null(0) {
            row.push(None);
            continue;
        }
        let value = if let Some(b) = column.as_boolean_opt() {
            Some(if b.value(0) { 1.0 } else { 0.0 })
        } else {
            arrow::compute::cast(column, &DataType::Float64)
                .ok()
                .and_then(|c| {
                    c.as_primitive_opt::<arrow::datatypes::Float64Type>()
                        .map(|a| a.value(0))
                })
        };
        row.push(value);
    }
    Ok(row)
}
