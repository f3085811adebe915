//! `weir diff`: two tables compared row by row on a key, in one full outer join on
//! DataFusion. Only the rows that differ leave the engine (streamed, never collected whole):
//! they are counted here, per column, with a few samples of each kind. Floats compare within
//! an absolute or relative tolerance, timestamps within a time limit; a column typed
//! differently on the two sides is read on B's side as A's type, and a value that does not
//! convert counts as a difference.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use serde::Serialize;

use crate::error::ChangeError;

/// The names A and B are registered under in the context.
pub const TABLE_A: &str = "weir_diff_a";
pub const TABLE_B: &str = "weir_diff_b";

#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub key: Vec<String>,
    /// Floats closer than this are equal.
    pub abs_tolerance: f64,
    /// Floats whose difference is at most this share of the larger are equal.
    pub rel_tolerance: f64,
    /// Timestamps closer than this many seconds are equal.
    pub time_tolerance_secs: f64,
    /// Samples kept of each kind of difference.
    pub samples: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValueSample {
    pub key: BTreeMap<String, String>,
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnDiff {
    pub column: String,
    pub mismatches: u64,
    pub samples: Vec<ValueSample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub key: Vec<String>,
    pub rows_a: u64,
    pub rows_b: u64,
    pub only_in_a: u64,
    pub only_in_b: u64,
    /// Rows on both sides with at least one column that differs beyond tolerance.
    pub changed: u64,
    pub identical: u64,
    pub columns: Vec<ColumnDiff>,
    /// Columns on one side only: not compared.
    pub only_in_a_columns: Vec<String>,
    pub only_in_b_columns: Vec<String>,
    pub samples_only_in_a: Vec<BTreeMap<String, String>>,
    pub samples_only_in_b: Vec<BTreeMap<String, String>>,
}

impl DiffReport {
    pub fn differs(&self) -> bool {
        self.only_in_a + self.only_in_b + self.changed > 0
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn query_err(e: datafusion::error::DataFusionError) -> ChangeError {
    ChangeError::Diff(e.strip_backtrace())
}

async fn scalar_u64(ctx: &SessionContext, sql: &str) -> Result<u64, ChangeError> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(query_err)?
        .collect()
        .await
        .map_err(query_err)?;
    let value = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| {
            arrow::compute::cast(b.column(0), &DataType::UInt64)
                .ok()
                .map(|c| c.as_primitive::<arrow::datatypes::UInt64Type>().value(0))
        })
        .unwrap_or(0);
    Ok(value)
}

fn is_float(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

fn is_numeric(t: &DataType) -> bool {
    is_float(t) || t.is_integer()
}

/// The SQL that is true when column `c` differs between `a` and `b`, beyond tolerance. Two
/// numeric types that differ compare as doubles, so neither side is rounded to the other's
/// scale; any other type on B's side is read as A's.
fn mismatch(c: &str, a_type: &DataType, b_type: &DataType, options: &DiffOptions) -> String {
    let (qa, qb) = (format!("a.{}", quote(c)), format!("b.{}", quote(c)));
    let both_numeric = is_numeric(a_type) && is_numeric(b_type);
    let (a_value, b_value, compared_type) = if a_type == b_type {
        (qa.clone(), qb.clone(), a_type.clone())
    } else if both_numeric {
        (
            format!("CAST({qa} AS DOUBLE)"),
            format!("CAST({qb} AS DOUBLE)"),
            DataType::Float64,
        )
    } else {
        (
            qa.clone(),
            format!("TRY_CAST({qb} AS {})", sql_type(a_type)),
            a_type.clone(),
        )
    };
    // A value that does not convert to A's type is a difference, not a match with NULL.
    let unconvertible = if a_type == b_type || both_numeric {
        "FALSE".to_string()
    } else {
        format!("({qb} IS NOT NULL AND {b_value} IS NULL)")
    };
    let tolerant = |distance: String, limit: String| {
        format!(
            "({unconvertible} OR ({a_value} IS NULL) <> ({b_value} IS NULL) OR ({a_value} IS NOT NULL AND {distance} > {limit}))"
        )
    };
    if is_float(&compared_type) && (options.abs_tolerance > 0.0 || options.rel_tolerance > 0.0) {
        let (x, y) = (
            format!("CAST({a_value} AS DOUBLE)"),
            format!("CAST({b_value} AS DOUBLE)"),
        );
        tolerant(
            format!("abs({x} - {y})"),
            format!(
                "greatest({:e}, {:e} * greatest(abs({x}), abs({y})))",
                options.abs_tolerance, options.rel_tolerance
            ),
        )
    } else if matches!(compared_type, DataType::Timestamp(..)) && options.time_tolerance_secs > 0.0
    {
        tolerant(
            format!(
                "abs(CAST(date_part('epoch', {a_value}) AS DOUBLE) - CAST(date_part('epoch', {b_value}) AS DOUBLE))"
            ),
            format!("{:e}", options.time_tolerance_secs),
        )
    } else {
        format!("({unconvertible} OR {a_value} IS DISTINCT FROM {b_value})")
    }
}

/// A's type in SQL, for reading B's column as it.
fn sql_type(t: &DataType) -> String {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(..) => "TIMESTAMP".into(),
        _ => "VARCHAR".into(),
    }
}

/// Compares the tables registered as [`TABLE_A`] and [`TABLE_B`] in `ctx`.
pub async fn diff_tables(
    ctx: &SessionContext,
    options: &DiffOptions,
) -> Result<DiffReport, ChangeError> {
    let schema_of = |name: &'static str| async move {
        ctx.table(name)
            .await
            .map(|t| t.schema().as_arrow().clone())
            .map_err(query_err)
    };
    let (schema_a, schema_b): (Schema, Schema) =
        (schema_of(TABLE_A).await?, schema_of(TABLE_B).await?);
    for (side, schema) in [("A", &schema_a), ("B", &schema_b)] {
        for k in &options.key {
            if schema.field_with_name(k).is_err() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(ChangeError::Diff(format!(
                    "the key column `{k}` is not in {side} (its columns: {})",
                    names.join(", ")
                )));
            }
        }
    }
    let key_list = options
        .key
        .iter()
        .map(|k| quote(k))
        .collect::<Vec<_>>()
        .join(", ");
    let started = std::time::Instant::now();
    let mut rows = [0u64; 2];
    for (i, table) in [TABLE_A, TABLE_B].into_iter().enumerate() {
        rows[i] = scalar_u64(ctx, &format!("SELECT COUNT(*) FROM {table}")).await?;
    }
    let compared: Vec<(String, DataType, DataType)> = schema_a
        .fields()
        .iter()
        .filter(|f| !options.key.contains(f.name()))
        .filter_map(|f| {
            let b = schema_b.field_with_name(f.name()).ok()?;
            Some((
                f.name().clone(),
                f.data_type().clone(),
                b.data_type().clone(),
            ))
        })
        .collect();
    let only_columns = |x: &Schema, y: &Schema| -> Vec<String> {
        x.fields()
            .iter()
            .filter(|f| y.field_with_name(f.name()).is_err())
            .map(|f| f.name().clone())
            .collect()
    };

    let mut select = Vec::new();
    for (i, k) in options.key.iter().enumerate() {
        let t = schema_a
            .field_with_name(k)
            .map(|f| sql_type(f.data_type()))
            .unwrap_or_else(|_| "VARCHAR".into());
        select.push(format!(
            "COALESCE(a.{q}, CAST(b.{q} AS {t})) AS k{i}",
            q = quote(k)
        ));
    }
    select.push("a.__weir_a IS NULL AS only_b".into());
    select.push("b.__weir_b IS NULL AS only_a".into());
    for (i, (c, ta, tb)) in compared.iter().enumerate() {
        select.push(format!(
            "COALESCE({}, FALSE) AS d{i}",
            mismatch(c, ta, tb, options)
        ));
        select.push(format!("a.{} AS a{i}", quote(c)));
        select.push(format!("b.{} AS b{i}", quote(c)));
    }
    let on = options
        .key
        .iter()
        .map(|k| format!("a.{q} = b.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let any_difference = std::iter::once("only_a OR only_b".to_string())
        .chain((0..compared.len()).map(|i| format!("d{i}")))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!(
        "SELECT * FROM (SELECT {} FROM (SELECT *, TRUE AS __weir_a FROM {TABLE_A}) a \
         FULL OUTER JOIN (SELECT *, TRUE AS __weir_b FROM {TABLE_B}) b ON {on}) WHERE {any_difference}",
        select.join(", ")
    );
    let df = ctx.sql(&sql).await.map_err(query_err)?;
    let task = std::sync::Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await.map_err(query_err)?;
    let mut stream =
        datafusion::physical_plan::execute_stream(plan.clone(), task).map_err(query_err)?;

    let mut report = DiffReport {
        key: options.key.clone(),
        rows_a: rows[0],
        rows_b: rows[1],
        only_in_a: 0,
        only_in_b: 0,
        changed: 0,
        identical: 0,
        columns: compared
            .iter()
            .map(|(c, _, _)| ColumnDiff {
                column: c.clone(),
                mismatches: 0,
                samples: Vec::new(),
            })
            .collect(),
        only_in_a_columns: only_columns(&schema_a, &schema_b),
        only_in_b_columns: only_columns(&schema_b, &schema_a),
        samples_only_in_a: Vec::new(),
        samples_only_in_b: Vec::new(),
    };
    let mut one_sided = OneSidedKeys::default();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(query_err)?;
        count_batch(&batch, options, &mut report, &mut one_sided)?;
    }
    // The key is unique on both sides exactly when the join's rows add up: a key with n rows
    // on one side and m on the other makes n × m joined rows, so every key on both sides has
    // one row on each only if matched + only in A = rows of A and matched + only in B = rows
    // of B; keys on one side only are checked as they stream past. This spares two
    // aggregations over both tables (half the time of a diff of 10 M rows).
    let joined = join_output_rows(&plan);
    let unique = joined.is_some_and(|joined| {
        let matched = joined.saturating_sub(report.only_in_a + report.only_in_b);
        matched + report.only_in_a == rows[0] && matched + report.only_in_b == rows[1]
    }) && !one_sided.repeated;
    if !unique {
        return Err(not_unique(ctx, options, &key_list, rows).await?);
    }
    report.identical = rows[0]
        .saturating_sub(report.only_in_a)
        .saturating_sub(report.changed);
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "diff: joined, differences counted"
    );
    Ok(report)
}

/// The keys of the rows on one side only, to find one that is there twice.
#[derive(Default)]
struct OneSidedKeys {
    a: std::collections::HashSet<Vec<String>>,
    b: std::collections::HashSet<Vec<String>>,
    repeated: bool,
}

/// The rows the plan's join produced (before the filter that keeps the differences).
fn join_output_rows(plan: &std::sync::Arc<dyn ExecutionPlan>) -> Option<u64> {
    if plan.name().contains("Join") {
        return plan.metrics()?.output_rows().map(|n| n as u64);
    }
    plan.children().into_iter().find_map(join_output_rows)
}

/// Why the key is not unique, counted exactly: the rows of each side that share a key.
async fn not_unique(
    ctx: &SessionContext,
    options: &DiffOptions,
    key_list: &str,
    rows: [u64; 2],
) -> Result<ChangeError, ChangeError> {
    for (i, table) in [TABLE_A, TABLE_B].into_iter().enumerate() {
        let distinct = scalar_u64(
            ctx,
            &format!("SELECT COUNT(*) FROM (SELECT {key_list} FROM {table} GROUP BY {key_list})"),
        )
        .await?;
        if distinct < rows[i] {
            return Ok(ChangeError::Diff(format!(
                "the key ({}) is not unique in {}: {} rows but {distinct} distinct keys; give the columns that identify a row with --key",
                options.key.join(", "),
                if i == 0 { "A" } else { "B" },
                rows[i]
            )));
        }
    }
    Ok(ChangeError::Diff(
        "internal error: the rows the diff joined do not add up to the rows of A and B".into(),
    ))
}

fn count_batch(
    batch: &RecordBatch,
    options: &DiffOptions,
    report: &mut DiffReport,
    one_sided: &mut OneSidedKeys,
) -> Result<(), ChangeError> {
    let format = FormatOptions::default().with_null("");
    let formatter = |name: &str| -> Result<ArrayFormatter<'_>, ChangeError> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| ChangeError::Diff(format!("the diff lost its column {name}")))?;
        ArrayFormatter::try_new(column.as_ref(), &format)
            .map_err(|e| ChangeError::Diff(e.to_string()))
    };
    let flag = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_boolean_opt().cloned())
    };
    let keys: Vec<ArrayFormatter> = (0..options.key.len())
        .map(|i| formatter(&format!("k{i}")))
        .collect::<Result<_, _>>()?;
    let (only_a, only_b) = (flag("only_a"), flag("only_b"));
    let columns = report.columns.len();
    let diffs: Vec<_> = (0..columns).map(|i| flag(&format!("d{i}"))).collect();
    let values: Vec<(ArrayFormatter, ArrayFormatter)> = (0..columns)
        .map(|i| Ok((formatter(&format!("a{i}"))?, formatter(&format!("b{i}"))?)))
        .collect::<Result<_, ChangeError>>()?;
    let a_nulls: Vec<_> = (0..columns)
        .map(|i| batch.column_by_name(&format!("a{i}")).cloned())
        .collect();
    let b_nulls: Vec<_> = (0..columns)
        .map(|i| batch.column_by_name(&format!("b{i}")).cloned())
        .collect();
    for row in 0..batch.num_rows() {
        let key = || -> BTreeMap<String, String> {
            options
                .key
                .iter()
                .zip(&keys)
                .map(|(k, f)| (k.clone(), f.value(row).to_string()))
                .collect()
        };
        let is = |f: &Option<arrow::array::BooleanArray>| {
            f.as_ref().is_some_and(|f| f.is_valid(row) && f.value(row))
        };
        let key_values =
            || -> Vec<String> { keys.iter().map(|f| f.value(row).to_string()).collect() };
        if is(&only_a) {
            report.only_in_a += 1;
            one_sided.repeated |= !one_sided.a.insert(key_values());
            if report.samples_only_in_a.len() < options.samples {
                report.samples_only_in_a.push(key());
            }
            continue;
        }
        if is(&only_b) {
            report.only_in_b += 1;
            one_sided.repeated |= !one_sided.b.insert(key_values());
            if report.samples_only_in_b.len() < options.samples {
                report.samples_only_in_b.push(key());
            }
            continue;
        }
        let mut changed = false;
        for (i, column) in report.columns.iter_mut().enumerate() {
            if !is(&diffs[i]) {
                continue;
            }
            changed = true;
            column.mismatches += 1;
            if column.samples.len() < options.samples {
                let shown = |array: &Option<arrow::array::ArrayRef>, f: &ArrayFormatter| {
                    array
                        .as_ref()
                        .filter(|a| a.is_valid(row))
                        .map(|_| f.value(row).to_string())
                };
                column.samples.push(ValueSample {
                    key: key(),
                    a: shown(&a_nulls[i], &values[i].0),
                    b: shown(&b_nulls[i], &values[i].1),
                });
            }
        }
        if changed {
            report.changed += 1;
        }
    }
    Ok(())
}
