use std::fs::File;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use weir_model::SourceOptions;

use super::UnitReader;
use crate::batch::SourceBatch;
use crate::error::{IngestError, Result};
use crate::files::FileUnit;

pub(super) fn open(
    unit: &FileUnit,
    options: &SourceOptions,
    columns: &[String],
    required: &[String],
) -> Result<UnitReader> {
    if unit.size == 0 {
        return Ok(UnitReader {
            warnings: vec![format!("{}: file is empty (no rows)", unit.key)],
            batches: Box::new(std::iter::empty()),
        });
    }
    let parquet_error = |e: parquet::errors::ParquetError| IngestError::parquet(&unit.path, &e);
    let file = File::open(&unit.path).map_err(|e| IngestError::open(&unit.path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let file_schema = builder.schema().clone();
    let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let mut warnings = Vec::new();
    let column_map: Vec<Option<usize>> = columns
        .iter()
        .map(|c| file_schema.index_of(c).ok())
        .collect();
    for (c, idx) in columns.iter().zip(&column_map) {
        if idx.is_none() {
            if required.contains(c) {
                return Err(IngestError::MissingColumn {
                    path: unit.path.clone(),
                    column: c.clone(),
                    hint: String::new(),
                });
            }
            warnings.push(format!(
                "{}: file has no column `{c}`; its values are read as null",
                unit.key
            ));
        }
    }
    for f in file_schema.fields() {
        if !columns.contains(f.name()) {
            warnings.push(format!(
                "{}: column `{}` is not in the contract and is not stored",
                unit.key,
                f.name()
            ));
        }
    }
    if total_rows == 0 {
        warnings.push(format!("{}: file has no rows", unit.key));
    }
    let fields: Vec<Field> = columns
        .iter()
        .zip(&column_map)
        .map(|(c, idx)| match idx {
            Some(i) => Field::new(c, file_schema.field(*i).data_type().clone(), true),
            None => Field::new(c, DataType::Utf8, true),
        })
        .collect();
    let reader = builder
        .with_batch_size(options.batch_rows)
        .build()
        .map_err(parquet_error)?;
    let state = ParquetState {
        reader,
        path: unit.path.clone(),
        schema: Arc::new(Schema::new(fields)),
        column_map,
        next_row: 1,
        total_rows,
        size: unit.size,
    };
    Ok(UnitReader {
        warnings,
        batches: Box::new(state),
    })
}

struct ParquetState {
    reader: ParquetRecordBatchReader,
    path: std::path::PathBuf,
    schema: Arc<Schema>,
    column_map: Vec<Option<usize>>,
    next_row: u64,
    total_rows: u64,
    size: u64,
}

impl Iterator for ParquetState {
    type Item = Result<SourceBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => {
                return Some(Err(IngestError::parquet(&self.path, &e)));
            }
        };
        let n = batch.num_rows();
        let columns: Vec<ArrayRef> = self
            .column_map
            .iter()
            .map(|idx| match idx {
                Some(i) => batch.column(*i).clone(),
                None => new_null_array(&DataType::Utf8, n),
            })
            .collect();
        let out = match RecordBatch::try_new(self.schema.clone(), columns) {
            Ok(b) => b,
            Err(e) => {
                return Some(Err(IngestError::Decode {
                    path: self.path.clone(),
                    message: e.to_string(),
                }));
            }
        };
        let positions = (self.next_row..self.next_row + n as u64).collect();
        self.next_row += n as u64;
        let bytes = (self.size * n as u64)
            .checked_div(self.total_rows)
            .unwrap_or(0);
        Some(Ok(SourceBatch {
            batch: out,
            positions,
            raw_lines: None,
            rejects: Vec::new(),
            bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::discover_files;
    use arrow::array::Int64Array;
    use parquet::arrow::ArrowWriter;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn unit_with(dir: &std::path::Path, write: impl FnOnce(File)) -> FileUnit {
        write(File::create(dir.join("x.parquet")).expect("create"));
        discover_files(dir, "*.parquet").expect("files").remove(0)
    }

    fn write_ids(file: File) {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef],
        )
        .expect("batch");
        let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }

    #[test]
    fn empty_parquet_file_is_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let unit = unit_with(dir.path(), |_| {});
        let reader = open(
            &unit,
            &SourceOptions::default(),
            &names(&["id"]),
            &names(&["id"]),
        )
        .expect("an empty file is no error");
        assert_eq!(reader.warnings, ["x.parquet: file is empty (no rows)"]);
        assert_eq!(reader.count(), 0);
    }

    #[test]
    fn missing_required_column_fails_and_optional_warns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let unit = unit_with(dir.path(), write_ids);
        let columns = names(&["id", "note"]);
        let err = open(
            &unit,
            &SourceOptions::default(),
            &columns,
            &names(&["note"]),
        )
        .err()
        .expect("missing");
        assert!(
            matches!(&err, IngestError::MissingColumn { column, .. } if column == "note"),
            "{err}"
        );
        assert!(err.to_string().contains("x.parquet"), "{err}");
        let reader = open(&unit, &SourceOptions::default(), &columns, &names(&["id"]))
            .expect("optional column");
        assert_eq!(
            reader.warnings,
            ["x.parquet: file has no column `note`; its values are read as null"]
        );
        let rows: usize = reader.map(|b| b.expect("batch").batch.num_rows()).sum();
        assert_eq!(rows, 3);
    }
}
