use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::SchemaRef;
use serde_json::{Map, Value};
use weir_model::SourceOptions;

use super::{MAX_RECORD_BYTES, UnitReader, first_batch_unreadable, text_schema};
use crate::batch::{RejectedRecord, SourceBatch, raw_bytes, raw_text};
use crate::error::{IngestError, Result};
use crate::files::FileUnit;

pub(super) fn open(
    unit: &FileUnit,
    options: &SourceOptions,
    columns: &[String],
) -> Result<UnitReader> {
    let mut file = File::open(&unit.path).map_err(|e| IngestError::open(&unit.path, e))?;
    if unit.start > 0 {
        // A file that grew: only the lines appended since the last read.
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(unit.start))
            .map_err(|e| IngestError::io(&unit.path, e))?;
    }
    let mut warnings = Vec::new();
    if unit.size == 0 {
        warnings.push(format!("{}: file is empty (no rows)", unit.key));
    }
    let state = NdjsonState {
        reader: BufReader::with_capacity(1 << 20, file),
        path: unit.path.clone(),
        schema: text_schema(columns),
        columns: columns.to_vec(),
        null_values: options.null_values.clone(),
        batch_rows: options.batch_rows,
        line: unit.start_line.saturating_sub(1),
        buf: Vec::new(),
        first_batch: true,
        done: false,
    };
    Ok(UnitReader {
        warnings,
        batches: Box::new(state),
    })
}

struct NdjsonState {
    reader: BufReader<File>,
    path: std::path::PathBuf,
    schema: SchemaRef,
    columns: Vec<String>,
    null_values: Vec<String>,
    batch_rows: usize,
    line: u64,
    buf: Vec<u8>,
    first_batch: bool,
    done: bool,
}

enum Line {
    Eof,
    /// The line was longer than the limit; its first bytes are in `buf`, the rest was skipped.
    TooLong(usize),
    Read(usize),
}

impl NdjsonState {
    /// Reads one line into `buf` without ever holding more than the record limit in memory.
    fn read_line(&mut self) -> Result<Line> {
        self.buf.clear();
        let limit = (MAX_RECORD_BYTES + 1) as u64;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| IngestError::io(&self.path, e))?;
        if n == 0 {
            return Ok(Line::Eof);
        }
        if self.buf.last() == Some(&b'\n') || n < limit as usize {
            return Ok(Line::Read(n));
        }
        // Over the limit: skip to the end of the line, counting what is skipped.
        let mut total = n;
        let mut skip = Vec::new();
        loop {
            skip.clear();
            let m = (&mut self.reader)
                .take(1 << 20)
                .read_until(b'\n', &mut skip)
                .map_err(|e| IngestError::io(&self.path, e))?;
            total += m;
            if m == 0 || skip.last() == Some(&b'\n') {
                break;
            }
        }
        Ok(Line::TooLong(total))
    }

    fn read_batch(&mut self) -> Result<Option<SourceBatch>> {
        let mut builders: Vec<StringBuilder> =
            self.columns.iter().map(|_| StringBuilder::new()).collect();
        let mut raw = StringBuilder::new();
        let mut positions = Vec::with_capacity(self.batch_rows);
        let mut rejects = Vec::new();
        let mut bytes = 0u64;
        while positions.len() < self.batch_rows {
            let read = self.read_line()?;
            let n = match read {
                Line::Eof => {
                    self.done = true;
                    break;
                }
                Line::TooLong(total) => {
                    self.line += 1;
                    bytes += total as u64;
                    rejects.push(RejectedRecord {
                        position: self.line,
                        raw: raw_text(&self.buf),
                        raw_bytes: raw_bytes(&self.buf),
                        rule: "decode.record_too_large",
                        reason: format!(
                            "line is {total} bytes, over the {} MiB limit",
                            MAX_RECORD_BYTES >> 20
                        ),
                    });
                    continue;
                }
                Line::Read(n) => n,
            };
            self.line += 1;
            bytes += n as u64;
            let text = trim_line(&self.buf);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let object: Map<String, Value> = match serde_json::from_slice::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(other) => {
                    rejects.push(self.reject(
                        text,
                        "decode.json",
                        format!("expected a JSON object, found {}", kind(&other)),
                    ));
                    continue;
                }
                Err(e) => {
                    let rule = if std::str::from_utf8(text).is_err() {
                        "decode.utf8"
                    } else {
                        "decode.json"
                    };
                    rejects.push(self.reject(text, rule, format!("invalid JSON: {e}")));
                    continue;
                }
            };
            for (builder, column) in builders.iter_mut().zip(&self.columns) {
                match object.get(column) {
                    None | Some(Value::Null) => builder.append_null(),
                    Some(Value::String(s)) if s.is_empty() || self.null_values.contains(s) => {
                        builder.append_null()
                    }
                    Some(Value::String(s)) => builder.append_value(s),
                    Some(other) => builder.append_value(other.to_string()),
                }
            }
            raw.append_value(String::from_utf8_lossy(text));
            positions.push(self.line);
        }
        if std::mem::take(&mut self.first_batch)
            && let Some(err) =
                first_batch_unreadable(&self.path, positions.len(), &rejects, |r| match r.rule {
                    "decode.json" => "; is the file NDJSON (one JSON object per line)?".into(),
                    "decode.utf8" => {
                        "; the file does not look like UTF-8 (re-encode it as UTF-8)".into()
                    }
                    _ => String::new(),
                })
        {
            return Err(err);
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
        Ok(Some(SourceBatch {
            batch,
            positions,
            raw_lines: Some(raw.finish()),
            rejects,
            bytes,
        }))
    }

    fn reject(&self, text: &[u8], rule: &'static str, reason: String) -> RejectedRecord {
        RejectedRecord {
            position: self.line,
            raw: raw_text(text),
            raw_bytes: raw_bytes(text),
            rule,
            reason,
        }
    }
}

impl Iterator for NdjsonState {
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

fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && (buf[end - 1] == b'\n' || buf[end - 1] == b'\r') {
        end -= 1;
    }
    &buf[..end]
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::discover_files;

    fn read(content: &[u8]) -> Result<(Vec<String>, Vec<SourceBatch>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x.ndjson"), content).expect("write");
        let unit = discover_files(dir.path(), "*.ndjson")
            .expect("files")
            .remove(0);
        let reader = open(&unit, &SourceOptions::default(), &["id".to_string()])?;
        let warnings = reader.warnings.clone();
        Ok((warnings, reader.collect::<Result<Vec<_>>>()?))
    }

    #[test]
    fn a_file_that_is_not_ndjson_fails() {
        let err = read(b"id,name\n1,a\n2,b\n").expect_err("unreadable");
        assert!(
            matches!(
                err,
                IngestError::Unreadable {
                    count: 3,
                    rule: "decode.json",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("is the file NDJSON"), "{err}");
        // Bad lines among good ones are only rejects.
        let (_, batches) = read(b"{\"id\":1}\nnot json\nnot json\n").expect("read");
        assert_eq!(batches[0].rejects.len(), 2);
        assert_eq!(batches[0].batch.num_rows(), 1);
    }

    #[test]
    fn empty_ndjson_file_is_a_warning() {
        let (warnings, batches) = read(b"").expect("read");
        assert_eq!(warnings, ["x.ndjson: file is empty (no rows)"]);
        assert!(batches.is_empty());
    }
}
