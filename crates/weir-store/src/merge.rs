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

use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::kernels::boolean::not;
use arrow::compute::{filter, filter_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use deltalake::kernel::{Action, Add};
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use parquet::errors::ParquetError;

use crate::data_file::{conformed, parquet_file};
use crate::error::{Result, StoreError};
use crate::key_set::KeySet;
use crate::table::{LakeTable, StagedWriter, staged_paths};

/// The most data files a table may have for its merges to be rewritten here: the rewrite reads
/// the key columns of every file, where delta-rs's MERGE, which larger tables go through,
/// can skip files by their statistics.
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
///
/// Each file is read with the Parquet reader itself: its key columns once, and every column
/// again only when it holds a staged key. Through DataFusion the same work was four planned
/// queries, 8–9 ms for a 365-row file.
pub(crate) async fn rewrite_matched(
    table: &LakeTable,
    files: Vec<(String, Action)>,
    staged: &[Add],
    keys: &[String],
) -> Result<Rewrite> {
    let started = std::time::Instant::now();
    let mut metrics = MergeMetrics {
        num_target_files_scanned: files.len() as u64,
        ..MergeMetrics::default()
    };
    let staged_keys = StagedKeys::read(&staged_paths(&table.path, staged), keys).await?;
    metrics.num_source_rows = staged_keys.rows;
    // The staged keys found in the table, to count the staged rows that update rather than
    // insert; and the files holding them.
    let mut found = KeySet::new(staged_keys.set.types().to_vec())?;
    let mut matched = Vec::new();
    for (i, (path, _)) in files.iter().enumerate() {
        let path = table.path.join(path);
        let mut batches = open(&path, Some(keys)).await?;
        let mut holds = false;
        while let Some(batch) = next_batch(&mut batches, &path).await? {
            let Some(columns) = key_columns(&batch, keys) else {
                // A key column the file predates reads as NULL, which matches nothing.
                break;
            };
            let hit = staged_keys.set.contains(&columns)?;
            let count = hit.true_count();
            if count > 0 {
                holds = true;
                metrics.num_target_rows_updated += count as u64;
                let hits: Vec<ArrayRef> = columns
                    .iter()
                    .map(|c| filter(c, &hit))
                    .collect::<std::result::Result<_, _>>()?;
                found.insert(&hits)?;
            }
        }
        if holds {
            matched.push(i);
        }
    }
    let updating: usize = staged_keys
        .columns
        .iter()
        .map(|c| found.contains(c).map(|hit| hit.true_count()))
        .sum::<std::result::Result<usize, _>>()?;
    metrics.num_target_rows_inserted = metrics.num_source_rows.saturating_sub(updating as u64);
    let mut adds = Vec::new();
    if !matched.is_empty() {
        let mut writer = table.stage()?;
        let written = copy_unmatched(&mut writer, table, &files, &matched, &staged_keys.set, keys);
        if let Err(e) = Box::pin(written).await {
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

/// The keys of the staged rows: as a set, and column by column per batch (to count later
/// how many of them the table already holds).
struct StagedKeys {
    set: KeySet,
    columns: Vec<Vec<ArrayRef>>,
    rows: u64,
}

impl StagedKeys {
    async fn read(paths: &[PathBuf], keys: &[String]) -> Result<StagedKeys> {
        let mut set: Option<KeySet> = None;
        let mut columns = Vec::new();
        let mut rows = 0;
        for path in paths {
            let mut batches = open(path, Some(keys)).await?;
            let set = match &mut set {
                Some(set) => set,
                None => set.insert(KeySet::new(key_types(batches.schema(), keys, path)?)?),
            };
            while let Some(batch) = next_batch(&mut batches, path).await? {
                let key = key_columns(&batch, keys).ok_or_else(|| {
                    StoreError::Other(format!(
                        "{}: a staged file without the key column(s) {}",
                        path.display(),
                        keys.join(", ")
                    ))
                })?;
                rows += batch.num_rows() as u64;
                set.insert(&key)?;
                columns.push(key);
            }
        }
        let set = set.ok_or_else(|| StoreError::Other("a merge with no staged file".into()))?;
        Ok(StagedKeys { set, columns, rows })
    }
}

/// Writes the rows of the `matched` files that no staged key replaces, in the table's schema
/// (a file older than an added column reads it as NULL, a widened column is cast up).
async fn copy_unmatched(
    writer: &mut StagedWriter,
    table: &LakeTable,
    files: &[(String, Action)],
    matched: &[usize],
    staged: &KeySet,
    keys: &[String],
) -> Result<()> {
    let schema = writer.schema();
    for (path, _) in matched.iter().filter_map(|&i| files.get(i)) {
        let path = table.path.join(path);
        let mut batches = open(&path, None).await?;
        while let Some(batch) = next_batch(&mut batches, &path).await? {
            let kept = match key_columns(&batch, keys) {
                Some(columns) => {
                    let keep = not(&staged.contains(&columns)?)?;
                    filter_record_batch(&batch, &keep)?
                }
                None => batch,
            };
            writer.write(conformed(&kept, &schema, &path)?).await?;
        }
    }
    Ok(())
}

type Batches = ParquetRecordBatchStream<tokio::fs::File>;

/// A Parquet file's batches: of the `columns` named, or of all.
async fn open(path: &Path, columns: Option<&[String]>) -> Result<Batches> {
    let builder = parquet_file(path).await?.with_batch_size(BATCH_ROWS);
    let builder = match columns {
        Some(columns) => {
            // A column the file lacks is left out here and read as NULL by the caller.
            let roots: Vec<usize> = columns
                .iter()
                .filter_map(|c| builder.schema().index_of(c).ok())
                .collect();
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            builder.with_projection(mask)
        }
        None => builder,
    };
    builder.build().map_err(parquet_error(path))
}

async fn next_batch(batches: &mut Batches, path: &Path) -> Result<Option<RecordBatch>> {
    batches.try_next().await.map_err(parquet_error(path))
}

fn parquet_error(path: &Path) -> impl FnOnce(ParquetError) -> StoreError + '_ {
    move |e| StoreError::Other(format!("{}: {e}", path.display()))
}

/// The rows a batch is read in.
const BATCH_ROWS: usize = 8192;

/// The key columns of `batch` in key order; `None` when it lacks one.
fn key_columns(batch: &RecordBatch, keys: &[String]) -> Option<Vec<ArrayRef>> {
    keys.iter()
        .map(|k| batch.column_by_name(k).cloned())
        .collect()
}

/// The types of the key columns in a file's schema.
fn key_types(schema: &SchemaRef, keys: &[String], path: &Path) -> Result<Vec<DataType>> {
    keys.iter()
        .map(|k| {
            schema
                .field_with_name(k)
                .map(|f| f.data_type().clone())
                .map_err(|e| StoreError::Other(format!("{}: key column {k}: {e}", path.display())))
        })
        .collect()
}
