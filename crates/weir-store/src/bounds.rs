//! The least and greatest value of a column over some data files, from their Parquet
//! statistics alone: what an incremental `merge` model whose key is the date of a timestamp
//! needs to know which days a batch of new rows can touch, without reading the rows.

use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef};
use datafusion::common::ScalarValue;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;

use crate::error::{Result, StoreError};

/// What the statistics of some data files say about one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnBounds {
    /// Every value lies in one of these `[min, max]` ranges (in the column's type), one per
    /// row group holding a value; NULLs may be there too. None at all: only NULLs (or no rows,
    /// or files that predate the column).
    Within(Vec<(ScalarValue, ScalarValue)>),
    /// A row group holding values has no statistics for the column: nothing is known.
    Unknown,
}

/// The bounds of `column` over `files` (absolute paths of Parquet data files).
pub async fn column_bounds(files: &[PathBuf], column: &str) -> Result<ColumnBounds> {
    let mut ranges = Vec::new();
    for path in files {
        match file_bounds(path, column).await? {
            ColumnBounds::Within(found) => ranges.extend(found),
            ColumnBounds::Unknown => return Ok(ColumnBounds::Unknown),
        }
    }
    Ok(ColumnBounds::Within(ranges))
}

async fn file_bounds(path: &Path, column: &str) -> Result<ColumnBounds> {
    let builder = crate::data_file::parquet_file(path).await?;
    if builder.schema().field_with_name(column).is_err() {
        // A file written before the column was added: every row reads it as NULL.
        return Ok(ColumnBounds::Within(Vec::new()));
    }
    let statistics = |e: parquet::errors::ParquetError| {
        StoreError::Other(format!(
            "{}: statistics of column {column}: {e}",
            path.display()
        ))
    };
    let converter =
        StatisticsConverter::try_new(column, builder.schema(), builder.parquet_schema())
            .map_err(statistics)?;
    let groups = builder.metadata().row_groups();
    let mins = converter.row_group_mins(groups).map_err(statistics)?;
    let maxes = converter.row_group_maxes(groups).map_err(statistics)?;
    let nulls = converter
        .row_group_null_counts(groups)
        .map_err(statistics)?;
    let mut ranges = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        let rows = u64::try_from(group.num_rows()).unwrap_or(0);
        let all_null = nulls.is_valid(i) && nulls.value(i) >= rows;
        if rows == 0 || all_null {
            continue;
        }
        if mins.is_null(i) || maxes.is_null(i) {
            return Ok(ColumnBounds::Unknown);
        }
        ranges.push((value(&mins, i)?, value(&maxes, i)?));
    }
    Ok(ColumnBounds::Within(ranges))
}

fn value(array: &ArrayRef, i: usize) -> Result<ScalarValue> {
    Ok(ScalarValue::try_from_array(array, i)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// Writes `values` of a UTC timestamp column `ts` in row groups of `group` rows.
    fn write(path: &Path, values: Vec<Option<i64>>, group: usize) {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int64, true),
        ]));
        let n = values.len() as i64;
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC")),
                Arc::new(Int64Array::from_iter_values(0..n)),
            ],
        )
        .expect("batch");
        let file = std::fs::File::create(path).expect("create");
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group))
            .build();
        let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }

    fn ts(v: i64) -> ScalarValue {
        ScalarValue::TimestampMicrosecond(Some(v), Some("UTC".into()))
    }

    #[tokio::test]
    async fn bounds_are_per_row_group_over_every_file_and_skip_nulls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (
            dir.path().join("a.parquet"),
            dir.path().join("b.parquet"),
            dir.path().join("c.parquet"),
        );
        write(&a, vec![Some(50), None, Some(10), Some(900), None, None], 2);
        write(&b, vec![Some(-5), Some(7)], 10);
        write(&c, vec![None, None], 10);
        let files = vec![a.clone(), b, c.clone()];
        // a.parquet's row groups: [50, NULL], [10, 900], [NULL, NULL].
        assert_eq!(
            column_bounds(&files, "ts").await.expect("bounds"),
            ColumnBounds::Within(vec![(ts(50), ts(50)), (ts(10), ts(900)), (ts(-5), ts(7))])
        );
        assert_eq!(
            column_bounds(std::slice::from_ref(&c), "ts")
                .await
                .expect("bounds"),
            ColumnBounds::Within(Vec::new())
        );
        assert_eq!(
            column_bounds(&[a], "absent").await.expect("bounds"),
            ColumnBounds::Within(Vec::new())
        );
    }

    #[tokio::test]
    async fn a_file_without_statistics_makes_the_bounds_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plain.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![3, 1, 2]))],
        )
        .expect("batch");
        let properties = WriterProperties::builder()
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
            .build();
        let file = std::fs::File::create(&path).expect("create");
        let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        assert_eq!(
            column_bounds(&[path], "n").await.expect("bounds"),
            ColumnBounds::Unknown
        );
    }
}
