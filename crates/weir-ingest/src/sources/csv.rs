use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::SchemaRef;
use csv::{ByteRecord, ReaderBuilder};
use weir_model::SourceOptions;

use super::{MAX_RECORD_BYTES, UnitReader, text_schema};
use crate::batch::{RejectedRecord, SourceBatch, raw_text};
use crate::error::{IngestError, Result};
use crate::files::FileUnit;

pub(super) fn open(
    unit: &FileUnit,
    options: &SourceOptions,
    columns: &[String],
) -> Result<UnitReader> {
    let file = File::open(&unit.path).map_err(|e| IngestError::io(&unit.path, e))?;
    let delimiter = options
        .delimiter
        .as_bytes()
        .first()
        .copied()
        .unwrap_or(b',');
    let quote = options.quote.as_bytes().first().copied().unwrap_or(b'"');
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quote(quote)
        .buffer_capacity(1 << 20)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    let mut warnings = Vec::new();
    let mut record = ByteRecord::new();

    let (column_map, expected_fields) = if options.header {
        let has_header = reader
            .read_byte_record(&mut record)
            .map_err(|e| decode_error(unit, &e))?;
        if !has_header {
            warnings.push(format!("{}: file is empty (no header, no rows)", unit.key));
            return Ok(UnitReader {
                warnings,
                batches: Box::new(std::iter::empty()),
            });
        }
        let header: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = String::from_utf8_lossy(f).trim().to_string();
                if i == 0 {
                    name.trim_start_matches('\u{feff}').to_string()
                } else {
                    name
                }
            })
            .collect();
        let map: Vec<Option<usize>> = columns
            .iter()
            .map(|c| header.iter().position(|h| h == c))
            .collect();
        for (c, idx) in columns.iter().zip(&map) {
            if idx.is_none() {
                warnings.push(format!(
                    "{}: header has no column `{c}`; its values are read as null",
                    unit.key
                ));
            }
        }
        for h in &header {
            if !columns.contains(h) {
                warnings.push(format!(
                    "{}: column `{h}` is not in the contract and is not stored",
                    unit.key
                ));
            }
        }
        (map, header.len())
    } else {
        ((0..columns.len()).map(Some).collect(), columns.len())
    };

    let state = CsvState {
        reader,
        record,
        key: unit.key.clone(),
        path: unit.path.clone(),
        schema: text_schema(columns),
        column_map,
        expected_fields,
        null_values: options.null_values.clone(),
        batch_rows: options.batch_rows,
        delimiter,
        last_byte: 0,
        done: false,
    };
    Ok(UnitReader {
        warnings,
        batches: Box::new(state),
    })
}

struct CsvState {
    reader: csv::Reader<BufReader<File>>,
    record: ByteRecord,
    key: String,
    path: std::path::PathBuf,
    schema: SchemaRef,
    column_map: Vec<Option<usize>>,
    expected_fields: usize,
    null_values: Vec<String>,
    batch_rows: usize,
    delimiter: u8,
    last_byte: u64,
    done: bool,
}

impl CsvState {
    fn read_batch(&mut self) -> Result<Option<SourceBatch>> {
        let mut builders: Vec<StringBuilder> = self
            .column_map
            .iter()
            .map(|_| StringBuilder::with_capacity(self.batch_rows, self.batch_rows * 8))
            .collect();
        let mut positions = Vec::with_capacity(self.batch_rows);
        let mut rejects = Vec::new();
        while positions.len() < self.batch_rows {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| IngestError::Decode {
                    path: self.path.clone(),
                    message: format!("{} (file `{}`)", e, self.key),
                })?;
            if !more {
                self.done = true;
                break;
            }
            let line = self.record.position().map(|p| p.line()).unwrap_or(0);
            if let Some(reject) = self.check_record(line) {
                rejects.push(reject);
                continue;
            }
            for (builder, idx) in builders.iter_mut().zip(&self.column_map) {
                match idx
                    .and_then(|i| self.record.get(i))
                    .map(std::str::from_utf8)
                {
                    Some(Ok(value))
                        if !value.is_empty() && !self.null_values.iter().any(|n| n == value) =>
                    {
                        builder.append_value(value)
                    }
                    _ => builder.append_null(),
                }
            }
            positions.push(line);
        }
        if positions.is_empty() && rejects.is_empty() {
            return Ok(None);
        }
        let columns: Vec<ArrayRef> = builders
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| {
            IngestError::Decode {
                path: self.path.clone(),
                message: e.to_string(),
            }
        })?;
        let byte = self.reader.position().byte();
        let bytes = byte.saturating_sub(self.last_byte);
        self.last_byte = byte;
        Ok(Some(SourceBatch {
            batch,
            positions,
            raw_lines: None,
            rejects,
            bytes,
        }))
    }

    /// Why this record cannot become a row, if it cannot.
    fn check_record(&self, line: u64) -> Option<RejectedRecord> {
        let record = &self.record;
        let size = record.as_slice().len();
        let reject = |rule: &'static str, reason: String| {
            Some(RejectedRecord {
                position: line,
                raw: self.raw(),
                rule,
                reason,
            })
        };
        if size > MAX_RECORD_BYTES {
            return reject(
                "decode.record_too_large",
                format!(
                    "record is {size} bytes, over the {} MiB limit",
                    MAX_RECORD_BYTES >> 20
                ),
            );
        }
        if record.len() != self.expected_fields {
            return reject(
                "decode.field_count",
                format!(
                    "expected {} fields, found {} (unbalanced quotes or a stray delimiter?)",
                    self.expected_fields,
                    record.len()
                ),
            );
        }
        if let Some((idx, err)) = record
            .iter()
            .enumerate()
            .find_map(|(i, f)| std::str::from_utf8(f).err().map(|e| (i, e)))
        {
            return reject(
                "decode.utf8",
                format!("field {} is not valid UTF-8: {err}", idx + 1),
            );
        }
        None
    }

    fn raw(&self) -> String {
        let mut bytes = Vec::new();
        for (i, field) in self.record.iter().enumerate() {
            if i > 0 {
                bytes.push(self.delimiter);
            }
            bytes.extend_from_slice(field);
            if bytes.len() > crate::batch::RAW_RECORD_LIMIT {
                break;
            }
        }
        raw_text(&bytes)
    }
}

impl Iterator for CsvState {
    type Item = Result<SourceBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let res = self.read_batch();
        if res.is_err() {
            self.done = true;
        }
        res.transpose()
    }
}

fn decode_error(unit: &FileUnit, e: &csv::Error) -> IngestError {
    IngestError::Decode {
        path: unit.path.clone(),
        message: format!("cannot read CSV header: {e}"),
    }
}
