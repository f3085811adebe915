//! Merging staged rows into a table by key, as one commit that removes the data files holding
//! a staged key, adds them back without those rows, and adds the staged files as they are.
//!
//! This is what a Delta MERGE that updates every matched row and inserts the rest commits,
//! without delta-rs's MERGE machinery: that plans a full outer join over the whole table,
//! writes every row of the files it touches again, and copies the staged rows too. For the
//! handful of keys an incremental `merge` model recomputes it was most of the run (10–19 ms
//! of a 45–62 ms run). The matching is the same SQL equality as the audit's post-publish view
//! (`register_post_publish_view`): a staged row replaces the published rows whose every key
//! column equals its own, so a NULL key matches nothing. A table of more data files than
//! [`MAX_FILES`], or whose files cannot be read as they are ([`small_file_set`]), goes
//! through delta-rs's MERGE instead.

use deltalake::kernel::{Action, Add};
use futures::TryStreamExt;

use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::error::{Result, StoreError};
use crate::table::{LakeTable, keys_equal, quote, register_files, staged_paths};

/// The most data files a table may have for its merges to be rewritten here: each file is a
/// branch of the query that finds the files holding a staged key.
const MAX_FILES: usize = 64;

/// What merging staged rows into a table changes besides adding the staged files.
pub(crate) struct Rewrite {
    /// The data files that held a staged key.
    pub removes: Vec<Action>,
    /// Their rows without the ones a staged row replaces.
    pub adds: Vec<Add>,
    /// What the commit's `operationMetrics` say, under the names delta-rs's MERGE uses.
    pub metrics: MergeMetrics,
}

/// The counts a Delta MERGE commit reports (delta-rs's names), for readers of the log.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct MergeMetrics {
    pub num_source_rows: u64,
    pub num_target_rows_inserted: u64,
    pub num_target_rows_updated: u64,
    pub num_target_rows_deleted: u64,
    pub num_target_rows_copied: u64,
    pub num_output_rows: u64,
    pub num_target_files_scanned: u64,
    pub num_target_files_skipped_during_scan: u64,
    pub num_target_files_added: u64,
    pub num_target_files_removed: u64,
    pub execution_time_ms: u64,
}

/// The table's current data files, as paths relative to it with the `remove` action that
/// takes each out; `None` when there are more than [`MAX_FILES`], or when a data file read
/// as it is would not give the table's rows: column mapping (physical column names),
/// partition columns (values in the path) or a deletion vector (rows deleted beside the
/// file). weir writes none of these, but a table written by another tool may have them.
pub(crate) async fn small_file_set(table: &LakeTable) -> Result<Option<Vec<(String, Action)>>> {
    let snapshot = table
        .table
        .snapshot()
        .map_err(StoreError::delta(&table.path))?;
    let metadata = snapshot.metadata();
    let mapped = metadata
        .configuration()
        .get("delta.columnMapping.mode")
        .is_some_and(|mode| !mode.eq_ignore_ascii_case("none"));
    if mapped || !metadata.partition_columns().is_empty() {
        return Ok(None);
    }
    let files: Vec<(String, Action, bool)> = snapshot
        .snapshot()
        .file_views(table.table.log_store().as_ref(), None)
        .map_ok(|f| {
            (
                f.path().into_owned(),
                Action::Remove(f.remove_action(true)),
                f.deletion_vector_descriptor().is_some(),
            )
        })
        .try_collect()
        .await
        .map_err(StoreError::delta(&table.path))?;
    if files.len() > MAX_FILES || files.iter().any(|(_, _, deleted)| *deleted) {
        return Ok(None);
    }
    Ok(Some(
        files
            .into_iter()
            .map(|(path, remove, _)| (path, remove))
            .collect(),
    ))
}

/// Finds which of `files` hold a key of the `staged` rows and writes their other rows to new
/// staged files of the table (none are written when a file's every row is replaced).
pub(crate) async fn rewrite_matched(
    table: &LakeTable,
    files: Vec<(String, Action)>,
    staged: &[Add],
    keys: &[String],
) -> Result<Rewrite> {
    let started = std::time::Instant::now();
    let ctx = SessionContext::new();
    register_files(&ctx, "staged", table, &staged_paths(&table.path, staged)).await?;
    let schema = ctx.table("staged").await?.schema().as_arrow().clone();
    let mut metrics = MergeMetrics {
        num_target_files_scanned: files.len() as u64,
        ..MergeMetrics::default()
    };
    if files.is_empty() {
        let total = counts(&ctx, table, "SELECT COUNT(*) FROM staged").await?;
        metrics.num_source_rows = cell(&total, 0, 0);
        metrics.num_target_rows_inserted = metrics.num_source_rows;
        metrics.num_output_rows = metrics.num_source_rows;
        metrics.execution_time_ms = started.elapsed().as_millis() as u64;
        return Ok(Rewrite {
            removes: Vec::new(),
            adds: Vec::new(),
            metrics,
        });
    }
    for (i, (path, _)) in files.iter().enumerate() {
        let file = table.path.join(path).display().to_string();
        let df = ctx
            .read_parquet(file, ParquetReadOptions::default().schema(&schema))
            .await?;
        ctx.register_table(format!("f{i}"), df.into_view())?;
    }
    let matches = keys_equal(keys, "s", "t");
    let key_list = keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let every_file = (0..files.len())
        .map(|i| format!("SELECT {i} AS weir_file, {key_list} FROM f{i}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let target_keys = ctx.sql(&every_file).await?;
    ctx.register_table("target_keys", target_keys.into_view())?;
    let source = counts(
        &ctx,
        table,
        &format!(
            "SELECT (SELECT COUNT(*) FROM staged) AS staged_rows, \
             (SELECT COUNT(*) FROM staged s WHERE EXISTS (SELECT 1 FROM target_keys t WHERE {matches})) AS matched_rows"
        ),
    )
    .await?;
    metrics.num_source_rows = cell(&source, 0, 0);
    metrics.num_target_rows_inserted = cell(&source, 0, 0).saturating_sub(cell(&source, 0, 1));
    // Per file holding a staged key: its number and how many of its rows are replaced.
    let holding = counts(
        &ctx,
        table,
        &format!(
            "SELECT t.weir_file, COUNT(*) FROM target_keys t \
             WHERE EXISTS (SELECT 1 FROM staged s WHERE {matches}) GROUP BY t.weir_file ORDER BY t.weir_file"
        ),
    )
    .await?;
    metrics.num_target_rows_updated = (0..holding.len()).map(|r| cell(&holding, r, 1)).sum();
    let matched: Vec<usize> = (0..holding.len())
        .filter_map(|r| usize::try_from(cell(&holding, r, 0)).ok())
        .collect();
    let mut adds = Vec::new();
    if !matched.is_empty() {
        let kept = matched
            .iter()
            .map(|i| format!("SELECT * FROM f{i}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut rows = ctx
            .sql(&format!(
                "SELECT * FROM ({kept}) t WHERE NOT EXISTS (SELECT 1 FROM staged s WHERE {matches})"
            ))
            .await?
            .execute_stream()
            .await?;
        let mut writer = table.stage()?;
        let written = async {
            while let Some(batch) = rows.try_next().await? {
                writer.write(batch).await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        if let Err(e) = written {
            let _ = writer.discard().await;
            return Err(e);
        }
        metrics.num_target_rows_copied = writer.rows;
        adds = writer.finish().await?;
    }
    let mut files: Vec<Option<(String, Action)>> = files.into_iter().map(Some).collect();
    let removes: Vec<Action> = matched
        .into_iter()
        .filter_map(|i| files.get_mut(i).and_then(Option::take))
        .map(|(_, remove)| remove)
        .collect();
    metrics.num_output_rows = metrics.num_target_rows_copied + metrics.num_source_rows;
    metrics.num_target_files_removed = removes.len() as u64;
    metrics.num_target_files_added = (adds.len() + staged.len()) as u64;
    metrics.execution_time_ms = started.elapsed().as_millis() as u64;
    Ok(Rewrite {
        removes,
        adds,
        metrics,
    })
}

/// The rows of a query whose every column is a count or a number, as `u64`s.
async fn counts(ctx: &SessionContext, table: &LakeTable, sql: &str) -> Result<Vec<Vec<u64>>> {
    let mut rows = Vec::new();
    for batch in ctx.sql(sql).await?.collect().await? {
        let columns = batch
            .columns()
            .iter()
            .map(|c| {
                c.as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .ok_or_else(|| {
                        StoreError::Other(format!(
                            "table {}: a count of type {}",
                            table.path.display(),
                            c.data_type()
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|c| u64::try_from(c.value(row)).unwrap_or(0))
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// Column `column` of row `row`, 0 where there is none (a count over nothing).
fn cell(rows: &[Vec<u64>], row: usize, column: usize) -> u64 {
    rows.get(row)
        .and_then(|r| r.get(column))
        .copied()
        .unwrap_or(0)
}
