//! The first rows of a file, with the types they look like: what `weir contract infer` and
//! `weir new source` profile to write a first contract.
//!
//! Types come from Arrow's own inference (CSV and NDJSON) or the file's schema (Parquet); a CSV
//! file's dialect is sniffed the way a source reads it. Only the sample is read.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use weir_model::{FileFormat, SourceOptions};

use crate::error::{IngestError, Result};
use crate::files::FileUnit;

/// The first rows of a file and the schema inferred for them.
#[derive(Debug, Clone)]
pub struct Sample {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    /// How the file was read, for the source definition (`None` for the defaults).
    pub delimiter: Option<u8>,
    /// Whether the columns are named by the file (always, except a CSV file without a
    /// header row, whose columns are numbered).
    pub header: bool,
    /// What was guessed about the file that a user may want to know.
    pub notes: Vec<String>,
}

/// The format a file's extension names, if any.
pub fn format_of(path: &Path) -> Option<FileFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" | "tsv" | "txt" => Some(FileFormat::Csv),
        "ndjson" | "jsonl" | "json" => Some(FileFormat::Ndjson),
        "parquet" | "pq" => Some(FileFormat::Parquet),
        _ => None,
    }
}

/// Reads up to `max_rows` rows of `path` as `format`.
pub fn sample_file(path: &Path, format: FileFormat, max_rows: usize) -> Result<Sample> {
    let open = || File::open(path).map_err(|e| IngestError::open(path, e));
    let arrow_err = |e: arrow::error::ArrowError| IngestError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut notes = Vec::new();
    let mut header = true;
    let (schema, batches, delimiter) = match format {
        FileFormat::Csv => {
            let size = open()?.metadata().map(|m| m.len()).unwrap_or(0);
            let unit = FileUnit {
                path: path.to_path_buf(),
                key: path.display().to_string(),
                size,
                content_hash: String::new(),
                start: 0,
                start_line: 1,
                stat: None,
            };
            let dialect =
                crate::sources::sniff::resolve(&unit, &SourceOptions::default(), &[], &mut notes)?;
            // The sample is the first `max_rows` well-formed records: a record whose field
            // count differs from the first's is left out (and counted), as a source run would
            // reject it, so one bad line does not stop the inference.
            header = dialect.header;
            let (clean, skipped) = well_formed_records(path, &dialect, max_rows)?;
            if skipped > 0 {
                notes.push(format!(
                    "{}: {skipped} malformed records in the sample were left out (their field count differs from the first record's)",
                    path.display()
                ));
            }
            let csv_format = arrow::csv::reader::Format::default()
                .with_header(dialect.header)
                .with_delimiter(dialect.delimiter)
                .with_quote(dialect.quote);
            let (schema, _) = csv_format
                .infer_schema(std::io::Cursor::new(&clean), Some(max_rows))
                .map_err(arrow_err)?;
            // Read as text, then cast to the inferred types: a value the type's pattern matched
            // but that does not parse (`2025-02-30`) becomes null and is counted, instead of
            // failing the whole sample.
            let text_schema = Arc::new(arrow::datatypes::Schema::new(
                schema
                    .fields()
                    .iter()
                    .map(|f| {
                        arrow::datatypes::Field::new(
                            f.name(),
                            arrow::datatypes::DataType::Utf8,
                            true,
                        )
                    })
                    .collect::<Vec<_>>(),
            ));
            let reader = arrow::csv::ReaderBuilder::new(text_schema)
                .with_format(csv_format)
                .build(std::io::Cursor::new(clean))
                .map_err(arrow_err)?;
            let schema = Arc::new(schema);
            let mut unparsed = vec![0usize; schema.fields().len()];
            let mut batches = Vec::new();
            for batch in take(reader, max_rows, arrow_err)? {
                let mut columns = Vec::with_capacity(batch.num_columns());
                for (i, field) in schema.fields().iter().enumerate() {
                    let text = batch.column(i);
                    let typed = arrow::compute::cast(text, field.data_type()).map_err(arrow_err)?;
                    unparsed[i] += typed.null_count() - text.null_count();
                    columns.push(typed);
                }
                batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)?);
            }
            for (field, n) in schema.fields().iter().zip(unparsed) {
                if n > 0 {
                    notes.push(format!(
                        "{}: {n} values of column `{}` look like but are not {} (a run would quarantine them as {}.type)",
                        path.display(),
                        field.name(),
                        field.data_type(),
                        field.name()
                    ));
                }
            }
            let delimiter =
                (dialect.delimiter != weir_model::DEFAULT_DELIMITER).then_some(dialect.delimiter);
            (schema, batches, delimiter)
        }
        FileFormat::Ndjson => {
            // The first `max_rows` lines that are JSON objects; others are left out and
            // counted, as a source run would reject them.
            let mut clean = Vec::new();
            let (mut kept, mut skipped) = (0, 0);
            for line in std::io::BufRead::lines(BufReader::new(open()?)) {
                let line = line.map_err(|e| IngestError::io(path, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
                    .is_err()
                {
                    skipped += 1;
                    continue;
                }
                clean.extend_from_slice(line.as_bytes());
                clean.push(b'\n');
                kept += 1;
                if kept >= max_rows {
                    break;
                }
            }
            if skipped > 0 {
                notes.push(format!(
                    "{}: {skipped} lines in the sample are not JSON objects and were left out",
                    path.display()
                ));
            }
            let (schema, _) = arrow::json::reader::infer_json_schema(
                &mut std::io::Cursor::new(&clean),
                Some(max_rows),
            )
            .map_err(arrow_err)?;
            let schema = Arc::new(schema);
            // A column seen as both text and numbers is text; its numbers read as text.
            let reader = arrow::json::ReaderBuilder::new(schema.clone())
                .with_coerce_primitive(true)
                .build(std::io::Cursor::new(clean))
                .map_err(arrow_err)?;
            (schema, take(reader, max_rows, arrow_err)?, None)
        }
        FileFormat::Parquet => {
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open()?)
                    .map_err(|e| IngestError::Decode {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })?;
            let schema = builder.schema().clone();
            let reader = builder
                .with_limit(max_rows)
                .build()
                .map_err(|e| IngestError::Decode {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
            (schema, take(reader, max_rows, arrow_err)?, None)
        }
    };
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    Ok(Sample {
        schema,
        batches,
        rows,
        delimiter,
        header,
        notes,
    })
}

/// The first `max_rows` records (plus the header) whose field count is the first record's,
/// written back as CSV with the same dialect; and how many were left out.
fn well_formed_records(
    path: &Path,
    dialect: &crate::sources::sniff::Dialect,
    max_rows: usize,
) -> Result<(Vec<u8>, usize)> {
    let file = File::open(path).map_err(|e| IngestError::open(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(dialect.delimiter)
        .quote(dialect.quote)
        .from_reader(BufReader::new(file));
    let mut writer = csv::WriterBuilder::new()
        .delimiter(dialect.delimiter)
        .quote(dialect.quote)
        .from_writer(Vec::new());
    let (mut width, mut kept, mut skipped) = (None, 0, 0);
    let limit = max_rows + usize::from(dialect.header);
    for record in reader.byte_records() {
        let Ok(record) = record else {
            skipped += 1;
            continue;
        };
        let width = *width.get_or_insert(record.len());
        if record.len() != width {
            skipped += 1;
            continue;
        }
        writer
            .write_byte_record(&record)
            .map_err(|e| IngestError::io(path, std::io::Error::other(e)))?;
        kept += 1;
        if kept >= limit {
            break;
        }
    }
    let clean = writer
        .into_inner()
        .map_err(|e| IngestError::io(path, std::io::Error::other(e.to_string())))?;
    Ok((clean, skipped))
}

fn take(
    reader: impl Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>>,
    max_rows: usize,
    err: impl Fn(arrow::error::ArrowError) -> IngestError,
) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(&err)?;
        let keep = batch.num_rows().min(max_rows - rows);
        rows += keep;
        batches.push(batch.slice(0, keep));
        if rows >= max_rows {
            break;
        }
    }
    Ok(batches)
}
