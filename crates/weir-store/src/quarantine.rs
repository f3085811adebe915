//! The quarantine table: its columns, and rewriting some of its files (a failed run's rows,
//! rows a replay published).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::Add;

use crate::data_file::conformed;
use crate::error::{Result, StoreError};
use crate::table::{LakeTable, percent_decode};

/// Quarantine tables live under `<lake>/_quarantine/<asset>`.
pub const QUARANTINE_DIR: &str = "_quarantine";

/// `run_status` of rows whose run published: they count as that run's quarantined rows.
pub const RUN_STATUS_PUBLISHED: &str = "published";
/// `run_status` of rows whose run failed a blocking check: the run published nothing, its files
/// will be read again, so these rows are kept for inspection only and counted nowhere else.
pub const RUN_STATUS_FAILED: &str = "failed";

/// The Delta application id of the commits that keep a failed run's quarantined rows. It is
/// not `weir:<asset>`: that sequence only ever advances with a successful publication.
pub fn failed_app_id(asset: &str) -> String {
    format!("weir-failed:{asset}")
}

/// One row per record set aside: which run, which rule, why, where it came from, and the
/// record itself, so it can be fixed and replayed. The last three columns came later and are
/// nullable, so older tables are evolved to this schema by adding them.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("rule_id", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("position", DataType::Int64, false),
        Field::new("raw_record", DataType::Utf8, true),
        Field::new(
            "quarantined_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("run_status", DataType::Utf8, true),
        Field::new("replayed_by", DataType::Utf8, true),
        Field::new("raw_bytes", DataType::Binary, true),
    ]))
}

/// Opens (creating or evolving if needed) the quarantine table at `path`.
pub async fn open_quarantine(path: &Path, name: &str) -> Result<LakeTable> {
    LakeTable::open_or_create_evolving(path, name, &quarantine_schema(), None).await
}

/// Opens (evolving if needed) the quarantine table at `path` if there is one: it is created
/// with the first row an asset quarantines, so an asset that never quarantined a row has none.
pub async fn open_quarantine_if_any(path: &Path, name: &str) -> Result<Option<LakeTable>> {
    LakeTable::open_evolving(path, name, &quarantine_schema()).await
}

/// The rows of one data file of a table, in file order, in `schema` (missing nullable columns
/// come back null: files written before the table gained them).
/// `file` is relative to the table, as [`data_files`] gives it.
pub fn read_data_file(
    table_path: &Path,
    file: &str,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    let path = table_path.join(file);
    let file = std::fs::File::open(&path).map_err(|source| StoreError::Io {
        path: path.clone(),
        source,
    })?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| StoreError::Other(format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        out.push(conformed(&batch, schema, &path)?);
    }
    Ok(out)
}

/// The data files the table's current version holds, relative to the table (decoded).
pub async fn data_files(table: &LakeTable) -> Result<Vec<String>> {
    Ok(table
        .live_files()
        .await?
        .into_iter()
        .map(|f| f.path)
        .collect())
}

/// Stages a copy of each of `files` with the string column `column` set on some rows:
/// `values[file][row]` (rows of the file, from 0) gets the value. Returns the staged files'
/// `add` actions; the originals are untouched (a commit must remove them). Each file is copied
/// on its own and keeps its origin tag, so rows of different source files are never mixed.
pub async fn stage_with_values(
    table: &LakeTable,
    files: &[String],
    column: &str,
    values: &BTreeMap<String, BTreeMap<usize, String>>,
) -> Result<Vec<Add>> {
    let schema = quarantine_schema();
    let idx = schema
        .index_of(column)
        .map_err(|e| StoreError::Other(e.to_string()))?;
    let origins: BTreeMap<String, String> = table
        .live_files()
        .await?
        .into_iter()
        .filter_map(|f| Some((f.path, f.origin?)))
        .collect();
    let mut adds = Vec::new();
    for file in files {
        let set = values.get(file);
        let mut offset = 0usize;
        let mut writer = table.stage()?;
        for batch in read_data_file(&table.path, file, &schema)? {
            let n = batch.num_rows();
            let old = batch
                .column(idx)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| StoreError::Other(format!("column {column} is not a string")))?;
            let new: StringArray = (0..n)
                .map(|row| {
                    set.and_then(|s| s.get(&(offset + row)))
                        .map(String::as_str)
                        .or_else(|| old.is_valid(row).then(|| old.value(row)))
                })
                .collect();
            let mut columns = batch.columns().to_vec();
            columns[idx] = Arc::new(new);
            writer
                .write(RecordBatch::try_new(schema.clone(), columns)?)
                .await?;
            offset += n;
        }
        let mut staged = writer.finish().await?;
        if let Some(origin) = origins.get(file) {
            crate::table::tag_origin(&mut staged, origin);
        }
        adds.extend(staged);
    }
    Ok(adds)
}

/// Stages a copy of the staged `files` with every row's `column` set to `value`, then drops
/// the originals: e.g. a failed run's rows, marked `run_status = failed`.
pub async fn restage_with_value(
    table: &LakeTable,
    files: &[Add],
    column: &str,
    value: &str,
) -> Result<Vec<Add>> {
    let schema = quarantine_schema();
    let idx = schema
        .index_of(column)
        .map_err(|e| StoreError::Other(e.to_string()))?;
    let mut writer = table.stage()?;
    for add in files {
        for batch in read_data_file(&table.path, &percent_decode(&add.path), &schema)? {
            let mut columns = batch.columns().to_vec();
            columns[idx] = Arc::new(StringArray::from(vec![value; batch.num_rows()]));
            writer
                .write(RecordBatch::try_new(schema.clone(), columns)?)
                .await?;
        }
    }
    let adds = writer.finish().await?;
    crate::table::discard_staged(&table.path, files);
    Ok(adds)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, TimestampMicrosecondArray};

    use super::*;

    /// A quarantine table written before `run_status`, `replayed_by` and `raw_bytes` existed is
    /// evolved by adding them; its old rows read them as null.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_old_quarantine_table_gains_the_new_columns() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("q");
        let new = quarantine_schema();
        let old = Arc::new(Schema::new(new.fields()[..7].to_vec()));
        let table = LakeTable::open_or_create(&path, "q", &old, None)
            .await
            .expect("create");
        let batch = RecordBatch::try_new(
            old.clone(),
            vec![
                Arc::new(StringArray::from(vec!["r1"])),
                Arc::new(StringArray::from(vec!["a.type"])),
                Arc::new(StringArray::from(vec!["why"])),
                Arc::new(StringArray::from(vec!["f.csv"])),
                Arc::new(Int64Array::from(vec![3])),
                Arc::new(StringArray::from(vec![Some("{\"a\":\"x\"}")])),
                Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC")),
            ],
        )
        .expect("batch");
        let mut writer = table.stage().expect("stage");
        writer.write(batch).await.expect("write");
        let adds = writer.finish().await.expect("finish");
        let publication = crate::Publication {
            run_id: "r1".into(),
            app_id: "weir:q".into(),
            version: 1,
            commit_metadata: BTreeMap::new(),
            parts: vec![crate::PublicationPart {
                table_path: path.clone(),
                adds,
                replace: false,
                merge_keys: Vec::new(),
                removes: Vec::new(),
                schema: None,
            }],
            payload: serde_json::Value::Null,
        };
        publication.apply().await.expect("publish");

        let evolved = open_quarantine(&path, "q").await.expect("evolve");
        assert_eq!(evolved.version(), Some(2), "one metadata commit");
        assert_eq!(evolved.txn_version("weir:q").await.expect("txn"), Some(1));
        let files = data_files(&evolved).await.expect("files");
        let batches = read_data_file(&path, &files[0], &new).expect("read");
        assert_eq!(batches[0].num_columns(), 10);
        assert!(
            batches[0]
                .column_by_name("run_status")
                .expect("col")
                .is_null(0)
        );
        // Opening again changes nothing.
        let again = open_quarantine(&path, "q").await.expect("open");
        assert_eq!(again.version(), Some(2));
    }
}
