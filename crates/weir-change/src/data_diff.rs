//! `weir diff`: two tables compared row by row on a key, on DataFusion. First one full outer
//! join of each side's key and a 64-bit hash of its other columns ([`crate::row_hash`]): it
//! finds the rows on one side only, proves the key unique, and leaves only the keys whose
//! hashes differ, so the join holds 16 bytes a row instead of whole rows; B's side reads
//! every column to hash it, so it keeps B's rows of those keys on the way. Those rows alone
//! are then joined in full with A's (read again) and compared column by column. A column
//! typed differently on the two sides (read on B's side as A's type) or of a type without a
//! value hash makes the whole diff one full join of whole rows instead. Only the rows that
//! differ leave the engine (streamed, never collected whole): they are counted here, per
//! column, with a few samples of each kind. Floats compare within an absolute or relative
//! tolerance, timestamps within a time limit, and a value that does not convert counts as a
//! difference.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use serde::Serialize;

use crate::error::ChangeError;
use crate::{key_set, row_hash};

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
    diff(ctx, options, true, CARRY_BYTES)
        .await
        .map(|(report, _)| report)
}

/// [`diff_tables`], comparing rows by hash first only when `by_hash` allows it, keeping up
/// to `carry_bytes` of B's rows from that pass; also says whether rows were compared by hash.
async fn diff(
    ctx: &SessionContext,
    options: &DiffOptions,
    by_hash: bool,
    carry_bytes: usize,
) -> Result<(DiffReport, bool), ChangeError> {
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
    let query = DiffQuery {
        options,
        keys: key_select(&schema_a, options),
        on: options
            .key
            .iter()
            .map(|k| format!("a.{q} = b.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND "),
        key_list: &key_list,
        compared: &compared,
    };
    // Rows compare by a hash of their columns first when every column can be hashed and has
    // one type on both sides (a column read as the other side's type must be compared value
    // by value); only the rows whose hashes differ are then compared in full.
    let hashed = by_hash
        && compared
            .iter()
            .all(|(_, a, b)| a == b && row_hash::hashable(a));
    let joined = if hashed {
        let pass_one = collecting_left(ctx).await?;
        let (joined, candidates, carried) = query
            .by_hash(&pass_one, carry_bytes, &mut report, &mut one_sided)
            .await?;
        let count: usize = candidates.iter().map(RecordBatch::num_rows).sum();
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            candidates = count,
            "diff: rows compared by hash"
        );
        // Past half the rows, restricting the join to the candidates costs more than it
        // spares.
        if count as u64 > rows[0] / 2 {
            query
                .in_full(
                    ctx,
                    Join::Changed(None),
                    TABLE_B,
                    &mut report,
                    &mut one_sided,
                )
                .await?;
        } else if count > 0 {
            // The candidates' keys filter each side's scan: with Parquet filter pushdown the
            // reader decodes the key columns of every row but the other columns only of the
            // rows it keeps. Keys typed alike on both sides are looked up as they are.
            let typed_alike = options.key.iter().all(|k| {
                schema_a.field_with_name(k).ok().map(|f| f.data_type())
                    == schema_b.field_with_name(k).ok().map(|f| f.data_type())
            });
            let scoped = late_materializing(ctx).await?;
            let join = if typed_alike {
                scoped.register_udf(key_set::in_keys_udf(&candidates).map_err(query_err)?);
                Join::Changed(Some(Restrict::KeySet))
            } else {
                register_rows(&scoped, CHANGED_KEYS, candidates)?;
                Join::Changed(Some(Restrict::Table(CHANGED_KEYS)))
            };
            // B's rows whose hashes differ came out of the first pass: only A is read again.
            let b_table = match carried {
                Some(rows) => {
                    register_rows(&scoped, CARRIED_B, rows)?;
                    CARRIED_B
                }
                None => TABLE_B,
            };
            query
                .in_full(&scoped, join, b_table, &mut report, &mut one_sided)
                .await?;
        }
        joined
    } else {
        query
            .in_full(ctx, Join::All, TABLE_B, &mut report, &mut one_sided)
            .await?
    };
    // The key is unique on both sides exactly when the join's rows add up: a key with n rows
    // on one side and m on the other makes n × m joined rows, so every key on both sides has
    // one row on each only if matched + only in A = rows of A and matched + only in B = rows
    // of B; keys on one side only are checked as they stream past. This spares two
    // aggregations over both tables (half the time of a diff of 10 M rows).
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
    Ok((report, hashed))
}

/// The context of the first pass: `ctx`'s tables and settings, with the row hash, and every
/// hash join built whole from one side (A's keys and hashes) and probed by the other's
/// partitions as they are read. Partitioning both sides by key instead would move each of
/// B's rows between threads, and B's rows carry their columns in this pass.
async fn collecting_left(ctx: &SessionContext) -> Result<SessionContext, ChangeError> {
    let mut config = ctx.copied_config();
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.hash_join_single_partition_threshold = usize::MAX;
    optimizer.hash_join_single_partition_threshold_rows = usize::MAX;
    let scoped = SessionContext::new_with_config_rt(config, ctx.runtime_env());
    for name in [TABLE_A, TABLE_B] {
        let provider = ctx.table_provider(name).await.map_err(query_err)?;
        scoped.register_table(name, provider).map_err(query_err)?;
    }
    scoped.register_udf(row_hash::row_hash_udf());
    Ok(scoped)
}

/// Registers `batches` (at least one, all of one schema) in `ctx` as the table `name`.
fn register_rows(
    ctx: &SessionContext,
    name: &str,
    batches: Vec<RecordBatch>,
) -> Result<(), ChangeError> {
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .ok_or_else(|| ChangeError::Diff(format!("no rows to register as {name}")))?;
    let rows =
        datafusion::datasource::MemTable::try_new(schema, vec![batches]).map_err(query_err)?;
    ctx.register_table(name, std::sync::Arc::new(rows))
        .map_err(query_err)?;
    Ok(())
}

/// B's rows whose hashes differ, kept from the first pass, are registered under this name.
const CARRIED_B: &str = "weir_diff_carried_b";

/// B's rows whose hashes differ are kept from the first pass up to this much memory; past it
/// they are dropped and read again from B, as A's are.
const CARRY_BYTES: usize = 256 << 20;

/// A context holding A and B, the Parquet files among them read with filter pushdown: the
/// reader decodes the columns a filter needs first, then the other columns only of the rows
/// it keeps, skipping the rest (not decoding and masking them: the rows a diff reads back are
/// few and scattered). A Parquet table's read options are fixed when it is registered, so it
/// is registered again here, with the same files and schema; any other table as it is.
async fn late_materializing(ctx: &SessionContext) -> Result<SessionContext, ChangeError> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{ListingTable, ListingTableConfig};
    // The same runtime: its object stores, memory pool and spill directory.
    let scoped = SessionContext::new_with_config_rt(ctx.copied_config(), ctx.runtime_env());
    for name in [TABLE_A, TABLE_B] {
        let provider = ctx.table_provider(name).await.map_err(query_err)?;
        let listing = provider.downcast_ref::<ListingTable>();
        let rebuilt = match listing.and_then(|l| {
            let format = l.options().format.downcast_ref::<ParquetFormat>()?;
            l.options()
                .table_partition_cols
                .is_empty()
                .then_some((l, format))
        }) {
            Some((listing, format)) => {
                let mut parquet = format.options().clone();
                parquet.global.pushdown_filters = true;
                parquet.global.force_filter_selections = true;
                let mut options = listing.options().clone();
                options.format =
                    std::sync::Arc::new(ParquetFormat::default().with_options(parquet));
                let config =
                    ListingTableConfig::new_with_multi_paths(listing.table_paths().clone())
                        .with_listing_options(options)
                        .with_schema(provider.schema());
                std::sync::Arc::new(ListingTable::try_new(config).map_err(query_err)?)
                    as std::sync::Arc<dyn datafusion::catalog::TableProvider>
            }
            None => provider,
        };
        scoped.register_table(name, rebuilt).map_err(query_err)?;
    }
    Ok(scoped)
}

/// The table the keys of the rows whose hashes differ are registered under.
const CHANGED_KEYS: &str = "weir_diff_changed_keys";

/// What a full comparison joins.
#[derive(Clone, Copy)]
enum Join<'a> {
    /// Every row of both sides, in a full outer join: rows on one side only are counted too.
    All,
    /// The rows on both sides, only those whose keys are among the candidates when given
    /// (rows on one side only were counted by the hash join).
    Changed(Option<Restrict<'a>>),
}

/// Where the keys that restrict a full comparison are.
#[derive(Clone, Copy)]
enum Restrict<'a> {
    /// In the function [`key_set::IN_KEYS`] registered in the context.
    KeySet,
    /// In the named table, in columns `k0`, `k1`, ...
    Table(&'a str),
}

/// The parts of the queries a diff runs.
struct DiffQuery<'a> {
    options: &'a DiffOptions,
    /// The key columns of the output, `k0`, `k1`, ..., in A's types.
    keys: Vec<String>,
    /// The join condition on the key.
    on: String,
    key_list: &'a str,
    /// The columns on both sides, with their types in A and B.
    compared: &'a [(String, DataType, DataType)],
}

impl DiffQuery<'_> {
    /// Joins the key and a hash of the other columns of each side, counts the rows on one
    /// side only and returns the rows the join produced, with the keys on both sides whose
    /// hashes differ and, while they fit in `carry_bytes`, B's rows of those keys (its key
    /// and compared columns, under their own names): B's side of the join reads every column
    /// to hash it anyway.
    async fn by_hash(
        &self,
        ctx: &SessionContext,
        carry_bytes: usize,
        report: &mut DiffReport,
        one_sided: &mut OneSidedKeys,
    ) -> Result<(Option<u64>, Vec<RecordBatch>, Option<Vec<RecordBatch>>), ChangeError> {
        let compared: Vec<String> = self.compared.iter().map(|(c, _, _)| quote(c)).collect();
        let hash = if compared.is_empty() {
            "0".to_string()
        } else {
            format!("{}({})", row_hash::ROW_HASH, compared.join(", "))
        };
        let key_names: Vec<String> = self.options.key.iter().map(|k| quote(k)).collect();
        // B's side also carries its key and compared columns, as __weir_c0, __weir_c1, ...
        let carried: Vec<String> = key_names.iter().chain(&compared).cloned().collect();
        let sql = format!(
            "SELECT {}, a.__weir_h IS NULL AS only_b, b.__weir_h IS NULL AS only_a, {} \
             FROM (SELECT {}, {hash} AS __weir_h FROM {TABLE_A}) a \
             FULL OUTER JOIN (SELECT {}, {hash} AS __weir_h FROM {TABLE_B}) b ON {} \
             WHERE a.__weir_h IS NULL OR b.__weir_h IS NULL OR a.__weir_h <> b.__weir_h",
            self.keys.join(", "),
            carried
                .iter()
                .enumerate()
                .map(|(i, c)| format!("b.{c} AS __weir_c{i}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.key_list,
            carried.join(", "),
            self.on
        );
        let (plan, mut stream) = execute(ctx, &sql).await?;
        let key_columns: Vec<usize> = (0..self.options.key.len()).collect();
        let first_carried = key_columns.len() + 2;
        let carried_columns: Vec<usize> = (first_carried..first_carried + carried.len()).collect();
        let names: Vec<&String> = self
            .options
            .key
            .iter()
            .chain(self.compared.iter().map(|(c, _, _)| c))
            .collect();
        let mut changed = Vec::new();
        let (mut b_rows, mut carried_bytes) = (Some(Vec::new()), 0usize);
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(query_err)?;
            count_batch(&batch, self.options, report, one_sided, false)?;
            let (Some(only_a), Some(only_b)) = (
                batch
                    .column_by_name("only_a")
                    .and_then(|c| c.as_boolean_opt()),
                batch
                    .column_by_name("only_b")
                    .and_then(|c| c.as_boolean_opt()),
            ) else {
                return Err(ChangeError::Diff("the diff lost its side flags".into()));
            };
            let both = arrow::compute::not(&arrow::compute::or(only_a, only_b).map_err(arrow_err)?)
                .map_err(arrow_err)?;
            if both.true_count() == 0 {
                continue;
            }
            let keys = batch.project(&key_columns).map_err(arrow_err)?;
            changed.push(arrow::compute::filter_record_batch(&keys, &both).map_err(arrow_err)?);
            if let Some(kept) = &mut b_rows {
                let rows = batch.project(&carried_columns).map_err(arrow_err)?;
                let rows = arrow::compute::filter_record_batch(&rows, &both).map_err(arrow_err)?;
                let rows = compacted(rows, &names)?;
                carried_bytes += rows.get_array_memory_size();
                if carried_bytes > carry_bytes {
                    b_rows = None;
                } else {
                    kept.push(rows);
                }
            }
        }
        Ok((
            join_output_rows(&plan),
            changed,
            b_rows.filter(|rows| !rows.is_empty()),
        ))
    }

    /// Compares rows column by column, with the tolerances, and counts what differs. Returns
    /// the rows the join produced.
    async fn in_full(
        &self,
        ctx: &SessionContext,
        join: Join<'_>,
        b_table: &str,
        report: &mut DiffReport,
        one_sided: &mut OneSidedKeys,
    ) -> Result<Option<u64>, ChangeError> {
        let mut select = self.keys.clone();
        select.push("a.__weir_a IS NULL AS only_b".into());
        select.push("b.__weir_b IS NULL AS only_a".into());
        for (i, (c, ta, tb)) in self.compared.iter().enumerate() {
            select.push(format!(
                "COALESCE({}, FALSE) AS d{i}",
                mismatch(c, ta, tb, self.options)
            ));
            select.push(format!("a.{} AS a{i}", quote(c)));
            select.push(format!("b.{} AS b{i}", quote(c)));
        }
        let any_difference = std::iter::once("only_a OR only_b".to_string())
            .chain((0..self.compared.len()).map(|i| format!("d{i}")))
            .collect::<Vec<_>>()
            .join(" OR ");
        let side = |table: &str, flag: &str| match join {
            // Rows kept from the first pass: exactly those of the changed keys.
            _ if table == CARRIED_B => format!("(SELECT *, TRUE AS {flag} FROM {table})"),
            Join::Changed(Some(Restrict::KeySet)) => {
                let key = self
                    .options
                    .key
                    .iter()
                    .map(|k| quote(k))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "(SELECT *, TRUE AS {flag} FROM {table} WHERE {}({key}))",
                    key_set::IN_KEYS
                )
            }
            Join::Changed(Some(Restrict::Table(keys))) => {
                let on = self
                    .options
                    .key
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("c.k{i} = {table}.{}", quote(k)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                format!(
                    "(SELECT *, TRUE AS {flag} FROM {table} WHERE EXISTS (SELECT 1 FROM {keys} c WHERE {on}))"
                )
            }
            _ => format!("(SELECT *, TRUE AS {flag} FROM {table})"),
        };
        let kind = match join {
            Join::All => "FULL OUTER",
            Join::Changed(_) => "INNER",
        };
        let sql = format!(
            "SELECT * FROM (SELECT {} FROM {} a {kind} JOIN {} b ON {}) WHERE {any_difference}",
            select.join(", "),
            side(TABLE_A, "__weir_a"),
            side(b_table, "__weir_b"),
            self.on
        );
        let (plan, mut stream) = execute(ctx, &sql).await?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(query_err)?;
            count_batch(&batch, self.options, report, one_sided, true)?;
        }
        Ok(join_output_rows(&plan))
    }
}

/// Rows kept from a batch, under the names of B's columns, with string and binary views
/// copied out of the buffers they share with the rows dropped (so that keeping 1 % of the
/// rows keeps 1 % of the bytes).
fn compacted(rows: RecordBatch, names: &[&String]) -> Result<RecordBatch, ChangeError> {
    let columns: Vec<arrow::array::ArrayRef> = rows
        .columns()
        .iter()
        .map(|c| -> arrow::array::ArrayRef {
            if let Some(strings) = c.as_string_view_opt() {
                std::sync::Arc::new(strings.gc())
            } else if let Some(bytes) = c.as_binary_view_opt() {
                std::sync::Arc::new(bytes.gc())
            } else {
                c.clone()
            }
        })
        .collect();
    let fields: Vec<arrow::datatypes::Field> = names
        .iter()
        .zip(&columns)
        .map(|(name, c)| arrow::datatypes::Field::new(name.as_str(), c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns).map_err(arrow_err)
}

/// The key columns of a diff's output, named `k0`, `k1`, ..., from whichever side has them,
/// in A's types.
fn key_select(schema_a: &Schema, options: &DiffOptions) -> Vec<String> {
    options
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let t = schema_a
                .field_with_name(k)
                .map(|f| sql_type(f.data_type()))
                .unwrap_or_else(|_| "VARCHAR".into());
            format!("COALESCE(a.{q}, CAST(b.{q} AS {t})) AS k{i}", q = quote(k))
        })
        .collect()
}

async fn execute(
    ctx: &SessionContext,
    sql: &str,
) -> Result<
    (
        std::sync::Arc<dyn ExecutionPlan>,
        datafusion::physical_plan::SendableRecordBatchStream,
    ),
    ChangeError,
> {
    let df = ctx.sql(sql).await.map_err(query_err)?;
    let task = std::sync::Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await.map_err(query_err)?;
    let stream =
        datafusion::physical_plan::execute_stream(plan.clone(), task).map_err(query_err)?;
    Ok((plan, stream))
}

fn arrow_err(e: arrow::error::ArrowError) -> ChangeError {
    ChangeError::Diff(e.to_string())
}

/// The keys of the rows on one side only, to find one that is there twice.
#[derive(Default)]
struct OneSidedKeys {
    a: std::collections::HashSet<Vec<String>>,
    b: std::collections::HashSet<Vec<String>>,
    repeated: bool,
}

/// The rows the plan's join produced (before the filter that keeps the differences). Logs the
/// executed plan with its metrics at trace level, to see where a slow diff's time went.
fn join_output_rows(plan: &std::sync::Arc<dyn ExecutionPlan>) -> Option<u64> {
    tracing::trace!(
        "diff: executed plan\n{}",
        datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(plan.as_ref())
            .indent(true)
    );
    join_rows(plan)
}

fn join_rows(plan: &std::sync::Arc<dyn ExecutionPlan>) -> Option<u64> {
    if plan.name().contains("Join") {
        return plan.metrics()?.output_rows().map(|n| n as u64);
    }
    plan.children().into_iter().find_map(join_rows)
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
    compare_values: bool,
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
    let columns = if compare_values {
        report.columns.len()
    } else {
        0
    };
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
        if !compare_values {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use datafusion::datasource::MemTable;
    use datafusion::execution::FunctionRegistry;

    use super::*;

    type Row = (i64, Option<f64>, Option<String>);

    fn table(rows: &[Row], status_type: DataType) -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("amount", DataType::Float64, true),
            Field::new("status", status_type.clone(), true),
        ]));
        let status: ArrayRef = Arc::new(StringArray::from(
            rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        ));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            arrow::compute::cast(&status, &status_type).expect("cast"),
        ];
        // Several batches, so rows meet across batch boundaries.
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        let batches = (0..batch.num_rows())
            .step_by(300)
            .map(|at| batch.slice(at, 300.min(batch.num_rows() - at)))
            .collect();
        Arc::new(MemTable::try_new(schema, vec![batches]).expect("table"))
    }

    fn options() -> DiffOptions {
        DiffOptions {
            key: vec!["id".into()],
            abs_tolerance: 0.01,
            rel_tolerance: 0.0,
            time_tolerance_secs: 0.0,
            samples: 3,
        }
    }

    /// The counts of a diff of `a` and `b`, by hash and in full; by hash both with B's rows
    /// kept from the first pass and with none kept (read again), which must agree.
    async fn both_ways(a: &[Row], b: &[Row], b_status: DataType) -> [DiffReport; 2] {
        let mut reports = Vec::new();
        for (by_hash, carry_bytes) in [(true, CARRY_BYTES), (true, 0), (false, CARRY_BYTES)] {
            let ctx = SessionContext::new();
            ctx.register_table(TABLE_A, table(a, DataType::Utf8))
                .expect("A");
            ctx.register_table(TABLE_B, table(b, b_status.clone()))
                .expect("B");
            let (report, hashed) = diff(&ctx, &options(), by_hash, carry_bytes)
                .await
                .expect("diff");
            reports.push(report);
            assert_eq!(hashed, by_hash && b_status == DataType::Utf8);
            // The passes run in contexts of their own: the caller's is left as it was.
            assert!(ctx.udf(row_hash::ROW_HASH).is_err());
        }
        let read_again = reports.remove(1);
        assert_eq!(counts(&reports[0]), counts(&read_again));
        [reports.remove(0), reports.remove(0)]
    }

    fn counts(r: &DiffReport) -> (u64, u64, u64, u64, Vec<u64>) {
        (
            r.only_in_a,
            r.only_in_b,
            r.changed,
            r.identical,
            r.columns.iter().map(|c| c.mismatches).collect(),
        )
    }

    fn rows(n: i64) -> Vec<Row> {
        (0..n)
            .map(|i| {
                let amount = (i % 7 != 0).then_some(i as f64 * 1.5);
                let status = (i % 5 != 0).then(|| format!("s{}", i % 3));
                (i, amount, status)
            })
            .collect()
    }

    #[tokio::test]
    async fn comparing_by_hash_counts_what_comparing_in_full_counts() {
        let a = rows(2_000);
        let mut b = a.clone();
        for i in (0..2_000).step_by(97) {
            b[i].1 = b[i].1.map(|x| x + 1.0); // changed
        }
        for i in (1..2_000).step_by(89) {
            b[i].1 = b[i].1.map(|x| x + 0.001); // within the tolerance
        }
        b[3].2 = None; // a value becomes NULL
        b[5].2 = Some("s2".into()); // NULL becomes a value
        b[10].2 = Some(String::new()); // NULL becomes the empty string
        b[14].1 = Some(0.0); // NULL becomes a value
        b.retain(|r| r.0 != 1_500 && r.0 != 1_501);
        b.push((5_000, None, None));
        let [hashed, full] = both_ways(&a, &b, DataType::Utf8).await;
        assert_eq!(counts(&hashed), counts(&full));
        let changed_amounts = (0..2_000).step_by(97).filter(|i| i % 7 != 0).count() as u64 + 1;
        assert_eq!(hashed.only_in_a, 2);
        assert_eq!(hashed.only_in_b, 1);
        assert_eq!(hashed.columns[0].mismatches, changed_amounts);
        assert_eq!(hashed.columns[1].mismatches, 3);
        assert_eq!(hashed.changed, changed_amounts + 3);
        assert_eq!(hashed.identical, 2_000 - 2 - hashed.changed);

        // More than half the rows differ: compared in full without a list of keys.
        let mut all = a.clone();
        for row in &mut all {
            row.1 = Some(row.1.unwrap_or(0.0) + 1.0);
        }
        let [hashed, full] = both_ways(&a, &all, DataType::Utf8).await;
        assert_eq!(counts(&hashed), counts(&full));
        assert_eq!(hashed.changed, 2_000);

        // A column typed differently on the two sides is compared in full, value by value.
        let [hashed, full] = both_ways(&a, &b, DataType::LargeUtf8).await;
        assert_eq!(counts(&hashed), counts(&full));
        assert_eq!(hashed.changed, changed_amounts + 3);

        // Identical tables: nothing to compare in full.
        let [hashed, _] = both_ways(&a, &a, DataType::Utf8).await;
        assert_eq!((hashed.changed, hashed.identical), (0, 2_000));
    }

    #[tokio::test]
    async fn a_repeated_key_is_refused_by_hash_too() {
        let a = rows(100);
        let mut b = a.clone();
        b.push(b[7].clone());
        let ctx = SessionContext::new();
        ctx.register_table(TABLE_A, table(&a, DataType::Utf8))
            .expect("A");
        ctx.register_table(TABLE_B, table(&b, DataType::Utf8))
            .expect("B");
        let error = diff(&ctx, &options(), true, CARRY_BYTES)
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("not unique in B"), "{error}");
    }
}
