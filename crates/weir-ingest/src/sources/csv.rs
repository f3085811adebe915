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
            // One UTF-8 pass over the whole record; each stored field is then a slice of it,
            // which only needs its two ends to fall on character boundaries.
            let text = match std::str::from_utf8(self.record.as_slice()) {
                Ok(text) if self.fields_on_boundaries(text) => text,
                _ => {
                    rejects.push(self.utf8_reject(line));
                    continue;
                }
            };
            for (builder, idx) in builders.iter_mut().zip(&self.column_map) {
                match idx
                    .and_then(|i| self.record.range(i))
                    .and_then(|r| text.get(r))
                {
                    Some(value)
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
        None
    }

    /// Field boundaries can split a character even when the record as a whole is valid UTF-8
    /// (the delimiters between fields are not part of `as_slice`).
    fn fields_on_boundaries(&self, text: &str) -> bool {
        (0..self.record.len())
            .filter_map(|i| self.record.range(i))
            .all(|r| text.is_char_boundary(r.start) && text.is_char_boundary(r.end))
    }

    fn utf8_reject(&self, line: u64) -> RejectedRecord {
        let reason = match self
            .record
            .iter()
            .enumerate()
            .find_map(|(i, f)| std::str::from_utf8(f).err().map(|e| (i, e)))
        {
            Some((idx, err)) => format!("field {} is not valid UTF-8: {err}", idx + 1),
            None => "the record is not valid UTF-8".to_string(),
        };
        RejectedRecord {
            position: line,
            raw: self.raw(),
            rule: "decode.utf8",
            reason,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::discover_files;

    #[test]
    fn a_character_split_across_fields_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        // "\xC3" and "\xA9" are the two bytes of "é": valid together, invalid as two fields.
        std::fs::write(
            dir.path().join("x.csv"),
            b"a,b,c\n1,\xC3\xA9,x\n2,\xC3,\xA9\n3,ok,y\n",
        )
        .expect("write");
        let unit = discover_files(dir.path(), "*.csv")
            .expect("files")
            .remove(0);
        let options = SourceOptions::default();
        let columns = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let batches: Vec<SourceBatch> = open(&unit, &options, &columns)
            .expect("open")
            .map(|b| b.expect("batch"))
            .collect();
        let rows: usize = batches.iter().map(|b| b.batch.num_rows()).sum();
        let rejects: Vec<&RejectedRecord> = batches.iter().flat_map(|b| &b.rejects).collect();
        assert_eq!(rows, 2);
        assert_eq!(rejects.len(), 1);
        assert_eq!((rejects[0].position, rejects[0].rule), (3, "decode.utf8"));
        assert!(
            rejects[0].reason.contains("field 2"),
            "{}",
            rejects[0].reason
        );
    }
}
