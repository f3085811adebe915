//! `weir diff` across two systems: a table weir reads (Delta, Parquet, CSV: registered in a
//! DataFusion context) against a PostgreSQL table, moving only what differs.
//!
//! The data-diff method, with segments cut by row-count quantiles instead of key values: the
//! local side is read once, in key order, into an index of (key, row hash) — keys and 64-bit
//! hashes only, never the rows. Its key range is cut into segments of equal row counts; for
//! each, PostgreSQL returns the count and the sum of the same row hashes (computed in
//! PostgreSQL, one `GROUP BY` query per parent segment). A segment whose count and sum agree
//! holds the same rows; one that differs is cut again, until it is small enough to fetch, and
//! the fetched rows are compared exactly by the one-join diff ([`crate::diff_tables`]), with
//! its tolerances. Both sides hash the same canonical text of a row: `v` + the value's text,
//! or `n` for NULL, joined by U+001F; numbers at a common scale, timestamps in UTC to the
//! microsecond. A canonical text that differs for equal values only costs a fetch, never a
//! wrong answer: equality is always decided on the fetched rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use md5::{Digest, Md5};
use serde::Serialize;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use crate::data_diff::{DiffOptions, DiffReport, TABLE_A, TABLE_B, diff_tables};
use crate::error::ChangeError;

/// Segments a differing segment is cut into.
const FAN_OUT: usize = 32;
/// A differing segment with at most this many rows on each side is fetched whole.
const LEAF_ROWS: u64 = 512;
/// Leaf ranges per fetching query.
const RANGES_PER_FETCH: usize = 64;
/// Joins the values of a key of several columns in the local index.
const KEY_SEPARATOR: char = '\u{1f}';
/// Decimal places numbers are compared at when one side is a float.
const FLOAT_SCALE: i8 = 10;

/// A PostgreSQL table named on the command line: `postgres://USER@HOST/DB#SCHEMA.TABLE`.
#[derive(Debug, Clone)]
pub struct PostgresTable {
    /// The connection URL, without the table.
    pub url: String,
    pub schema: String,
    pub table: String,
}

impl PostgresTable {
    /// Reads `postgres://...#[schema.]table`; the error sentence when it is not one.
    pub fn parse(spec: &str) -> Result<PostgresTable, String> {
        let (url, table) = spec.split_once('#').ok_or_else(|| {
            "a PostgreSQL side names its table after `#`: postgres://USER@HOST:PORT/DATABASE#SCHEMA.TABLE (the password from PGPASSWORD or the URL)".to_string()
        })?;
        let (schema, table) = table.split_once('.').unwrap_or(("public", table));
        if table.is_empty() || schema.is_empty() {
            return Err(format!("`{spec}`: the table after `#` is empty"));
        }
        Ok(PostgresTable {
            url: url.to_string(),
            schema: schema.to_string(),
            table: table.to_string(),
        })
    }

    fn qualified(&self) -> String {
        format!("{}.{}", pg_quote(&self.schema), pg_quote(&self.table))
    }
}

/// What crossed the network from PostgreSQL.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Transfer {
    /// Rows of the PostgreSQL table.
    pub remote_rows: u64,
    /// Queries sent.
    pub queries: u64,
    /// Segments whose checksums were compared.
    pub segments_compared: u64,
    /// Rows fetched whole, from segments that differ.
    pub rows_fetched: u64,
    /// Bytes of the values received (checksums, counts and fetched rows, as text).
    pub bytes_fetched: u64,
}

/// Which side of the diff PostgreSQL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteSide {
    A,
    B,
}

/// How one compared column reads canonically on each side.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    local_type: DataType,
    /// The SQL giving the canonical text in PostgreSQL.
    remote_text: String,
    /// The Arrow type fetched rows are read as.
    fetched_type: DataType,
    /// Decimal places, for numbers.
    scale: Option<i8>,
    /// Its PostgreSQL type, which key bounds are cast to (so an index on it serves).
    remote_type: String,
}

/// One segment: local index positions and the key bounds that select the same rows in
/// PostgreSQL (`None`: unbounded).
#[derive(Debug, Clone)]
struct Segment {
    rows: Range<usize>,
    low: Option<usize>,
    high: Option<usize>,
}

struct LocalIndex {
    /// Canonical key texts (the values of a key of several columns joined by
    /// [`KEY_SEPARATOR`]), in key order.
    keys: Vec<Box<str>>,
    hashes: Vec<u64>,
    /// Rows whose key has a NULL: they match nothing.
    null_keys: u64,
}

/// Diffs the table registered as `local` with `remote`, with PostgreSQL as side `side`.
pub async fn diff_with_postgres(
    ctx: &SessionContext,
    local: &str,
    remote: &PostgresTable,
    side: RemoteSide,
    options: &DiffOptions,
) -> Result<(DiffReport, Transfer), ChangeError> {
    let mut conn = PgConnection::connect(&remote.url)
        .await
        .map_err(|e| ChangeError::Diff(format!("connecting to PostgreSQL: {e}")))?;
    let mut transfer = Transfer::default();
    for set in ["SET TIME ZONE 'UTC'", "SET DateStyle = 'ISO, YMD'"] {
        sqlx::query(set)
            .execute(&mut conn)
            .await
            .map_err(|e| pg_err(remote, e))?;
    }
    let local_schema = ctx
        .table(local)
        .await
        .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?
        .schema()
        .as_arrow()
        .clone();
    let remote_columns = remote_columns(&mut conn, remote, &mut transfer).await?;
    for k in &options.key {
        if local_schema.field_with_name(k).is_err() || !remote_columns.contains_key(k) {
            return Err(ChangeError::Diff(format!(
                "key column `{k}` is not on both sides"
            )));
        }
    }
    let mut columns = Vec::new();
    let mut only_local = Vec::new();
    for field in local_schema.fields() {
        match remote_columns.get(field.name()) {
            Some(pg_type) => columns.push(column(field.name(), field.data_type(), pg_type)),
            None => only_local.push(field.name().clone()),
        }
    }
    let only_remote: Vec<String> = remote_columns
        .keys()
        .filter(|c| local_schema.field_with_name(c).is_err())
        .cloned()
        .collect();
    let key_columns: Vec<&Column> = options
        .key
        .iter()
        .filter_map(|k| columns.iter().find(|c| &c.name == k))
        .collect();
    for k in &key_columns {
        if k.scale.is_some() || !is_exact_key(&k.local_type) {
            return Err(ChangeError::Diff(format!(
                "key column `{}` is {}: a key compared across two systems must be an integer, a string, a date or a timestamp, which order the same in both",
                k.name, k.local_type
            )));
        }
    }
    let index = local_index(ctx, local, &columns, &options.key).await?;
    let remote_null_keys =
        remote_null_key_rows(&mut conn, remote, &options.key, &mut transfer).await?;

    // Bisection: compare segments' checksums, cut the ones that differ.
    let mut leaves: Vec<Segment> = Vec::new();
    let mut pending = vec![Segment {
        rows: 0..index.keys.len(),
        low: None,
        high: None,
    }];
    let mut identical_rows = 0u64;
    let mut first = true;
    while let Some(parent) = pending.pop() {
        let children = split(&parent);
        let remote_sums = remote_checksums(
            &mut conn,
            remote,
            &columns,
            &options.key,
            &index,
            &parent,
            &children,
            &mut transfer,
        )
        .await?;
        if first {
            transfer.remote_rows =
                remote_sums.iter().map(|(n, _)| n).sum::<u64>() + remote_null_keys;
            first = false;
        }
        for (child, (remote_count, remote_sum)) in children.into_iter().zip(remote_sums) {
            transfer.segments_compared += 1;
            let local_count = child.rows.len() as u64;
            let local_sum: u128 = index.hashes[child.rows.clone()]
                .iter()
                .map(|h| u128::from(*h))
                .sum();
            if local_count == remote_count && local_sum == remote_sum {
                identical_rows += local_count;
            } else if (local_count <= LEAF_ROWS && remote_count <= LEAF_ROWS)
                || child.rows.len() < 2
            {
                leaves.push(child);
            } else {
                pending.push(child);
            }
        }
    }

    // The rows of the differing segments, from both sides, compared exactly.
    let leaf_ctx = SessionContext::new();
    let local_rows = local_leaf_rows(ctx, local, &columns, &options.key, &index, &leaves).await?;
    let remote_rows = remote_leaf_rows(
        &mut conn,
        remote,
        &columns,
        &options.key,
        &index,
        &leaves,
        &mut transfer,
    )
    .await?;
    let _ = conn.close().await;
    let (a, b) = match side {
        RemoteSide::A => (remote_rows, local_rows),
        RemoteSide::B => (local_rows, remote_rows),
    };
    for (name, batch) in [(TABLE_A, a), (TABLE_B, b)] {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])
            .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?;
        leaf_ctx
            .register_table(name, Arc::new(table))
            .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?;
    }
    let mut report = diff_tables(&leaf_ctx, options).await?;
    // The leaves' report, widened to the whole tables.
    let local_rows_total = index.keys.len() as u64 + index.null_keys;
    let remote_rows_total = transfer.remote_rows;
    let (null_a, null_b) = match side {
        RemoteSide::A => (remote_null_keys, index.null_keys),
        RemoteSide::B => (index.null_keys, remote_null_keys),
    };
    report.only_in_a += null_a;
    report.only_in_b += null_b;
    report.identical += identical_rows;
    (report.rows_a, report.rows_b) = match side {
        RemoteSide::A => (remote_rows_total, local_rows_total),
        RemoteSide::B => (local_rows_total, remote_rows_total),
    };
    (report.only_in_a_columns, report.only_in_b_columns) = match side {
        RemoteSide::A => (only_remote, only_local),
        RemoteSide::B => (only_local, only_remote),
    };
    Ok((report, transfer))
}

fn pg_quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn df_quote(name: &str) -> String {
    pg_quote(name)
}

fn pg_err(remote: &PostgresTable, e: sqlx::Error) -> ChangeError {
    ChangeError::Diff(format!("PostgreSQL table {}: {e}", remote.qualified()))
}

/// Column name → PostgreSQL type (`numeric(12,2)`, `timestamp with time zone`, ...).
async fn remote_columns(
    conn: &mut PgConnection,
    remote: &PostgresTable,
    transfer: &mut Transfer,
) -> Result<BTreeMap<String, String>, ChangeError> {
    transfer.queries += 1;
    let rows = sqlx::query(
        "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_attribute a
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
    )
    .bind(remote.qualified())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| pg_err(remote, e))?;
    if rows.is_empty() {
        return Err(ChangeError::Diff(format!(
            "PostgreSQL has no table {} (or it has no columns)",
            remote.qualified()
        )));
    }
    let mut out = BTreeMap::new();
    for row in rows {
        let name: String = row.try_get("name").map_err(|e| pg_err(remote, e))?;
        let pg_type: String = row.try_get("type").map_err(|e| pg_err(remote, e))?;
        transfer.bytes_fetched += (name.len() + pg_type.len()) as u64;
        out.insert(name, pg_type);
    }
    Ok(out)
}

fn is_exact_key(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Date32
                | DataType::Timestamp(..)
                | DataType::Boolean
        )
}

/// The scale of a PostgreSQL `numeric(p,s)`; `None` for other types or an unconstrained one.
fn numeric_scale(pg_type: &str) -> Option<i8> {
    let inner = pg_type.strip_prefix("numeric(")?.strip_suffix(')')?;
    inner.split(',').nth(1)?.trim().parse().ok()
}

fn column(name: &str, local: &DataType, pg_type: &str) -> Column {
    let quoted = pg_quote(name);
    let pg_number =
        pg_type.starts_with("numeric") || pg_type == "real" || pg_type == "double precision";
    let local_number = matches!(
        local,
        DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    );
    if pg_number || local_number {
        let local_float = matches!(
            local,
            DataType::Float16 | DataType::Float32 | DataType::Float64
        );
        let remote_float =
            pg_type == "real" || pg_type == "double precision" || pg_type == "numeric";
        let scale = if local_float || remote_float {
            FLOAT_SCALE
        } else {
            let local_scale = match local {
                DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => *s,
                _ => 0,
            };
            local_scale.max(numeric_scale(pg_type).unwrap_or(0)).max(0)
        };
        return Column {
            name: name.to_string(),
            local_type: local.clone(),
            remote_text: format!("round({quoted}::numeric, {scale})::text"),
            fetched_type: DataType::Decimal128(38, scale),
            scale: Some(scale),
            remote_type: pg_type.to_string(),
        };
    }
    let remote_text = if pg_type.starts_with("timestamp") {
        format!("to_char({quoted}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')")
    } else {
        format!("{quoted}::text")
    };
    Column {
        name: name.to_string(),
        local_type: local.clone(),
        remote_text,
        fetched_type: local.clone(),
        scale: None,
        remote_type: pg_type.to_string(),
    }
}

/// One column of a batch as the array whose display is its canonical text: numbers at the
/// column's scale, timestamps as UTC microseconds.
fn canonical_array(array: &ArrayRef, column: &Column) -> Result<ArrayRef, ChangeError> {
    let to = match (column.scale, array.data_type()) {
        (Some(scale), _) => DataType::Decimal128(38, scale),
        (None, DataType::Timestamp(..)) => DataType::Timestamp(TimeUnit::Microsecond, None),
        _ => return Ok(array.clone()),
    };
    arrow::compute::cast(array, &to)
        .map_err(|e| ChangeError::Diff(format!("column `{}` as {to}: {e}", column.name)))
}

/// How canonical values print.
fn format_options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_date_format(Some("%Y-%m-%d"))
        .with_timestamp_format(Some("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// The 60-bit row hash PostgreSQL computes as `('x' || substr(md5(text), 1, 15))::bit(60)::bigint`.
fn row_hash(text: &str) -> u64 {
    let digest = Md5::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) >> 4
}

/// The SQL of the canonical row text in PostgreSQL.
fn remote_row_text(columns: &[Column]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| format!("COALESCE('v' || {}, 'n')", c.remote_text))
        .collect();
    format!("concat_ws(chr(31), {})", parts.join(", "))
}

/// Reads the local table once in key order: each row's canonical key and row hash.
async fn local_index(
    ctx: &SessionContext,
    local: &str,
    columns: &[Column],
    key: &[String],
) -> Result<LocalIndex, ChangeError> {
    let select: Vec<String> = columns.iter().map(|c| df_quote(&c.name)).collect();
    let order: Vec<String> = key.iter().map(|k| df_quote(k)).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        select.join(", "),
        df_quote(local),
        order.join(", ")
    );
    let mut stream = ctx
        .sql(&sql)
        .await
        .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?
        .execute_stream()
        .await
        .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?;
    let key_positions: Vec<usize> = key
        .iter()
        .filter_map(|k| columns.iter().position(|c| &c.name == k))
        .collect();
    let mut index = LocalIndex {
        keys: Vec::new(),
        hashes: Vec::new(),
        null_keys: 0,
    };
    let options = format_options();
    let (mut text, mut row_key) = (String::new(), String::new());
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| ChangeError::Diff(e.strip_backtrace()))?;
        let arrays: Vec<ArrayRef> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| canonical_array(batch.column(i), c))
            .collect::<Result<_, _>>()?;
        let formatters: Vec<ArrayFormatter> = arrays
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| ChangeError::Diff(e.to_string()))?;
        for row in 0..batch.num_rows() {
            if key_positions.iter().any(|&i| arrays[i].is_null(row)) {
                index.null_keys += 1;
                continue;
            }
            row_key.clear();
            for (n, &i) in key_positions.iter().enumerate() {
                if n > 0 {
                    row_key.push(KEY_SEPARATOR);
                }
                let start = row_key.len();
                let _ = write!(row_key, "{}", formatters[i].value(row));
                if key_positions.len() > 1 && row_key[start..].contains(KEY_SEPARATOR) {
                    return Err(ChangeError::Diff(format!(
                        "a value of key column `{}` holds the character U+001F, which a key of several columns cannot be compared across systems with",
                        columns[i].name
                    )));
                }
            }
            if index.keys.last().is_some_and(|last| **last == *row_key) {
                return Err(ChangeError::Diff(format!(
                    "the key ({}) is not unique on the local side: ({}) repeats",
                    key.join(", "),
                    row_key.replace(KEY_SEPARATOR, ", ")
                )));
            }
            text.clear();
            for (i, formatter) in formatters.iter().enumerate() {
                if i > 0 {
                    text.push('\u{1f}');
                }
                if arrays[i].is_null(row) {
                    text.push('n');
                } else {
                    text.push('v');
                    let _ = write!(text, "{}", formatter.value(row));
                }
            }
            index.hashes.push(row_hash(&text));
            index.keys.push(row_key.as_str().into());
        }
    }
    Ok(index)
}

/// Cuts a segment into up to [`FAN_OUT`] of equal row counts; the first keeps the parent's
/// low bound and the last its high bound, so rows only PostgreSQL has are in some child.
fn split(parent: &Segment) -> Vec<Segment> {
    let n = parent.rows.len();
    let parts = FAN_OUT.min(n.max(1));
    let mut children = Vec::with_capacity(parts);
    let mut start = parent.rows.start;
    for i in 1..=parts {
        let end = parent.rows.start + n * i / parts;
        if end == start && i < parts {
            continue;
        }
        children.push(Segment {
            rows: start..end,
            low: if start == parent.rows.start {
                parent.low
            } else {
                Some(start)
            },
            high: if i == parts { parent.high } else { Some(end) },
        });
        start = end;
    }
    children
}

/// The PostgreSQL condition `key >= keys[at]` (`>=`) or `key < keys[at]` (`<`), as a
/// lexicographic comparison of the key tuple; strings compare byte-wise (`COLLATE "C"`), as
/// they sort locally.
fn bound(
    columns: &[Column],
    key: &[String],
    index: &LocalIndex,
    at: usize,
    op: &str,
    params: &mut Vec<String>,
) -> String {
    let lhs: Vec<String> = key
        .iter()
        .map(|k| {
            let c = columns.iter().find(|c| &c.name == k);
            let quoted = pg_quote(k);
            match c.map(|c| &c.local_type) {
                Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                    format!("{quoted}::text COLLATE \"C\"")
                }
                _ => quoted,
            }
        })
        .collect();
    let rhs: Vec<String> = key
        .iter()
        .zip(index.keys[at].split(KEY_SEPARATOR))
        .map(|(k, v)| {
            params.push(v.to_string());
            let c = columns.iter().find(|c| &c.name == k);
            let cast = match c {
                Some(c)
                    if matches!(
                        c.local_type,
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    ) =>
                {
                    "::text COLLATE \"C\"".to_string()
                }
                Some(c) => format!("::{}", c.remote_type),
                None => String::new(),
            };
            format!("${}{cast}", params.len())
        })
        .collect();
    format!("({}) {op} ({})", lhs.join(", "), rhs.join(", "))
}

fn range_condition(
    columns: &[Column],
    key: &[String],
    index: &LocalIndex,
    segment: &Segment,
    params: &mut Vec<String>,
) -> String {
    let mut parts = Vec::new();
    if let Some(low) = segment.low {
        parts.push(bound(columns, key, index, low, ">=", params));
    }
    if let Some(high) = segment.high {
        parts.push(bound(columns, key, index, high, "<", params));
    }
    // Rows with a NULL key match nothing (counted apart).
    for k in key {
        parts.push(format!("{} IS NOT NULL", pg_quote(k)));
    }
    parts.join(" AND ")
}

/// Count and hash sum of each child of `parent` in PostgreSQL, in one query.
#[allow(clippy::too_many_arguments)]
async fn remote_checksums(
    conn: &mut PgConnection,
    remote: &PostgresTable,
    columns: &[Column],
    key: &[String],
    index: &LocalIndex,
    parent: &Segment,
    children: &[Segment],
    transfer: &mut Transfer,
) -> Result<Vec<(u64, u128)>, ChangeError> {
    let mut params = Vec::new();
    let condition = range_condition(columns, key, index, parent, &mut params);
    let mut case = String::from("CASE");
    for (i, child) in children
        .iter()
        .enumerate()
        .take(children.len().saturating_sub(1))
    {
        let Some(high) = child.high else { continue };
        let _ = write!(
            case,
            " WHEN {} THEN {i}",
            bound(columns, key, index, high, "<", &mut params)
        );
    }
    let _ = write!(case, " ELSE {} END", children.len().saturating_sub(1));
    let sql = format!(
        "SELECT segment, count(*)::bigint AS n, sum(h)::text AS s FROM (
           SELECT {case} AS segment,
                  ('x' || substr(md5({row}), 1, 15))::bit(60)::bigint AS h
           FROM {table} WHERE {condition}) t
         GROUP BY segment",
        row = remote_row_text(columns),
        table = remote.qualified(),
    );
    let rows = fetch(conn, remote, &sql, &params, transfer).await?;
    let mut sums = vec![(0u64, 0u128); children.len()];
    for row in rows {
        let segment: i32 = row.try_get("segment").map_err(|e| pg_err(remote, e))?;
        let n: i64 = row.try_get("n").map_err(|e| pg_err(remote, e))?;
        let s: Option<String> = row.try_get("s").map_err(|e| pg_err(remote, e))?;
        transfer.bytes_fetched += 4 + 8 + s.as_ref().map_or(0, |s| s.len() as u64);
        let s: u128 = s.as_deref().unwrap_or("0").parse().map_err(|e| {
            ChangeError::Diff(format!(
                "PostgreSQL returned a checksum that is not a number: {e}"
            ))
        })?;
        if let Some(slot) = usize::try_from(segment).ok().and_then(|i| sums.get_mut(i)) {
            *slot = (u64::try_from(n).unwrap_or(0), s);
        }
    }
    Ok(sums)
}

/// Runs one query with text parameters, counting it.
async fn fetch(
    conn: &mut PgConnection,
    remote: &PostgresTable,
    sql: &str,
    params: &[String],
    transfer: &mut Transfer,
) -> Result<Vec<sqlx::postgres::PgRow>, ChangeError> {
    let mut query = sqlx::query(sql);
    for p in params {
        query = query.bind(p);
    }
    transfer.queries += 1;
    query
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| pg_err(remote, e))
}

async fn remote_null_key_rows(
    conn: &mut PgConnection,
    remote: &PostgresTable,
    key: &[String],
    transfer: &mut Transfer,
) -> Result<u64, ChangeError> {
    let any_null: Vec<String> = key
        .iter()
        .map(|k| format!("{} IS NULL", pg_quote(k)))
        .collect();
    let sql = format!(
        "SELECT count(*)::bigint AS n FROM {} WHERE {}",
        remote.qualified(),
        any_null.join(" OR ")
    );
    transfer.queries += 1;
    transfer.bytes_fetched += 8;
    let n: i64 = sqlx::query(&sql)
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(|e| pg_err(remote, e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The local rows of the leaf segments: their keys joined back to the table.
async fn local_leaf_rows(
    ctx: &SessionContext,
    local: &str,
    columns: &[Column],
    key: &[String],
    index: &LocalIndex,
    leaves: &[Segment],
) -> Result<RecordBatch, ChangeError> {
    let key_columns: Vec<&Column> = key
        .iter()
        .filter_map(|k| columns.iter().find(|c| &c.name == k))
        .collect();
    let positions: Vec<usize> = leaves.iter().flat_map(|s| s.rows.clone()).collect();
    let mut arrays = Vec::with_capacity(key_columns.len());
    for (i, c) in key_columns.iter().enumerate() {
        let texts: StringArray = positions
            .iter()
            .map(|&p| index.keys[p].split(KEY_SEPARATOR).nth(i))
            .collect();
        let array = arrow::compute::cast(&(Arc::new(texts) as ArrayRef), &c.local_type)
            .map_err(|e| ChangeError::Diff(format!("key `{}`: {e}", c.name)))?;
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(
        key_columns
            .iter()
            .map(|c| Field::new(format!("weir_key_{}", c.name), c.local_type.clone(), true))
            .collect::<Vec<_>>(),
    ));
    let keys = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| ChangeError::Diff(e.to_string()))?;
    let keys_ctx = ctx.clone();
    let table = MemTable::try_new(schema, vec![vec![keys]])
        .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?;
    let name = "weir_diff_leaf_keys";
    let _ = keys_ctx.deregister_table(name);
    keys_ctx
        .register_table(name, Arc::new(table))
        .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?;
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("t.{}", df_quote(&c.name)))
        .collect();
    let on: Vec<String> = key
        .iter()
        .map(|k| {
            format!(
                "t.{} = k.{}",
                df_quote(k),
                df_quote(&format!("weir_key_{k}"))
            )
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {} t JOIN {name} k ON {}",
        select.join(", "),
        df_quote(local),
        on.join(" AND ")
    );
    let df = keys_ctx
        .sql(&sql)
        .await
        .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?;
    let schema = df.schema().as_arrow().clone();
    let batches = df
        .collect()
        .await
        .map_err(|e| ChangeError::Diff(e.strip_backtrace()))?;
    let _ = keys_ctx.deregister_table(name);
    arrow::compute::concat_batches(&Arc::new(schema), &batches)
        .map_err(|e| ChangeError::Diff(e.to_string()))
}

/// The PostgreSQL rows of the leaf segments, as canonical texts read into Arrow.
async fn remote_leaf_rows(
    conn: &mut PgConnection,
    remote: &PostgresTable,
    columns: &[Column],
    key: &[String],
    index: &LocalIndex,
    leaves: &[Segment],
    transfer: &mut Transfer,
) -> Result<RecordBatch, ChangeError> {
    let mut texts: Vec<Vec<Option<String>>> = vec![Vec::new(); columns.len()];
    let select: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS c{i}", c.remote_text))
        .collect();
    for chunk in leaves.chunks(RANGES_PER_FETCH) {
        let mut params = Vec::new();
        let conditions: Vec<String> = chunk
            .iter()
            .map(|s| format!("({})", range_condition(columns, key, index, s, &mut params)))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            select.join(", "),
            remote.qualified(),
            conditions.join(" OR ")
        );
        let rows = fetch(conn, remote, &sql, &params, transfer).await?;
        transfer.rows_fetched += rows.len() as u64;
        for row in rows {
            for (i, column) in texts.iter_mut().enumerate() {
                let value: Option<String> = row.try_get(i).map_err(|e| pg_err(remote, e))?;
                transfer.bytes_fetched += value.as_ref().map_or(1, |v| v.len() as u64 + 1);
                column.push(value);
            }
        }
    }
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    for (column, values) in columns.iter().zip(texts) {
        let strings: ArrayRef = Arc::new(StringArray::from(values));
        let array = arrow::compute::cast(&strings, &column.fetched_type).map_err(|e| {
            ChangeError::Diff(format!(
                "PostgreSQL column `{}` read as {}: {e}",
                column.name, column.fetched_type
            ))
        })?;
        fields.push(Field::new(&column.name, column.fetched_type.clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| ChangeError::Diff(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_hash_is_postgres_md5_prefix_of_60_bits() {
        // md5('abc') = 900150983cd24fb0d6963f7d28e17f72; its first 15 hex digits as bits.
        assert_eq!(row_hash("abc"), 0x900150983cd24fb);
    }

    #[test]
    fn segments_cover_the_parent_with_equal_counts() {
        let parent = Segment {
            rows: 0..100,
            low: None,
            high: None,
        };
        let children = split(&parent);
        assert_eq!(children.len(), FAN_OUT);
        assert_eq!(children[0].low, None);
        assert_eq!(children.last().map(|c| c.high), Some(None));
        let covered: usize = children.iter().map(|c| c.rows.len()).sum();
        assert_eq!(covered, 100);
        for pair in children.windows(2) {
            assert_eq!(pair[0].rows.end, pair[1].rows.start);
            assert_eq!(pair[0].high, Some(pair[1].rows.start));
        }
        let small = split(&Segment {
            rows: 10..13,
            low: Some(10),
            high: Some(13),
        });
        assert_eq!(small.len(), 3);
        assert_eq!((small[0].low, small[2].high), (Some(10), Some(13)));
    }

    #[test]
    fn a_postgres_spec_names_its_table_after_the_hash() {
        let t = PostgresTable::parse("postgres://u@h/db#sales.orders").expect("parses");
        assert_eq!(
            (t.url.as_str(), t.schema.as_str(), t.table.as_str()),
            ("postgres://u@h/db", "sales", "orders")
        );
        let t = PostgresTable::parse("postgres://u@h/db#orders").expect("parses");
        assert_eq!(t.schema, "public");
        assert!(PostgresTable::parse("postgres://u@h/db").is_err());
    }
}
