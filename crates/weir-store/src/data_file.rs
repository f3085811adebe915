//! Reading the lake's Parquet data files directly, without a query engine: a file's footer
//! (schema, statistics), and its rows given the table's current schema. A table's schema
//! can evolve after a file was written (a column added, a type widened), so every direct
//! reader conforms what a file holds to the schema of now, strictly: a value that does not
//! convert is an error, never a NULL that silently loses it.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use parquet::arrow::ParquetRecordBatchStreamBuilder;

use crate::error::{Result, StoreError};

/// A local Parquet data file, its footer read: its schema, statistics, and a reader to build.
pub(crate) async fn parquet_file(
    path: &Path,
) -> Result<ParquetRecordBatchStreamBuilder<tokio::fs::File>> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    ParquetRecordBatchStreamBuilder::new(file)
        .await
        .map_err(|e| StoreError::Other(format!("{}: {e}", path.display())))
}

/// `array` as `to`, an error when a value does not convert.
pub(crate) fn cast_strictly(
    array: &ArrayRef,
    to: &DataType,
) -> std::result::Result<ArrayRef, ArrowError> {
    if array.data_type() == to {
        return Ok(Arc::clone(array));
    }
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(array, to, &strict)
}

/// `batch`, read from the data file at `path`, in the table's `schema`: columns in its
/// order, a column the file predates as NULLs, a column of another type cast strictly.
pub(crate) fn conformed(
    batch: &RecordBatch,
    schema: &SchemaRef,
    path: &Path,
) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
            Some(c) => cast_strictly(c, field.data_type()).map_err(|e| {
                StoreError::Other(format!("{}: column {}: {e}", path.display(), field.name()))
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)
        .map_err(|e| StoreError::Other(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Int64Type, Schema};

    use super::*;

    fn table_schema(id: DataType) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", id, false),
            Field::new("added", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn a_file_is_read_in_the_tables_schema_and_a_value_that_does_not_convert_is_an_error() {
        let path = Path::new("part-0.parquet");
        let old = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false)]));
        let batch =
            RecordBatch::try_new(old, vec![Arc::new(Int32Array::from(vec![1, 2]))]).expect("batch");
        // A widened column cast up, a column the file predates as NULLs.
        let read = conformed(&batch, &table_schema(DataType::Int64), path).expect("conformed");
        assert_eq!(
            read.column(0).as_primitive::<Int64Type>(),
            &Int64Array::from(vec![1, 2])
        );
        assert_eq!(read.column(1).null_count(), 2);

        // A value that does not fit the table's type is refused, naming the file and column.
        let wide = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(wide, vec![Arc::new(Int64Array::from(vec![1, 1 << 40]))])
            .expect("batch");
        let error = conformed(&batch, &table_schema(DataType::Int32), path)
            .expect_err("narrowed")
            .to_string();
        assert!(error.contains("part-0.parquet: column id"), "{error}");

        let text = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(text, vec![Arc::new(StringArray::from(vec!["7", "x"]))])
            .expect("batch");
        assert!(conformed(&batch, &table_schema(DataType::Int64), path).is_err());
    }
}
