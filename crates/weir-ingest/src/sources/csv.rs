//! CSV: the `csv` crate streams byte records on the common path; a record that can only be the
//! product of an unbalanced quote sends the reader back to that record's first line, which is
//! rejected alone, and reading resumes on the line after it.
//!
//! A record is an unbalanced quote when its first physical line ends inside a quoted field and
//! the record then
//! - spans more than `max_quoted_bytes`, or
//! - runs to the end of the file with the quote still open, or
//! - does not split into the expected number of fields.
//!
//! The last rule catches a stray quote that happens to be closed by a later, legitimate quote:
//! the lines in between would otherwise vanish into one rejected record. A genuinely
//! multi-line record with a wrong field count is rejected line by line instead, which costs
//! nothing in correctness (it was a reject either way) but can count more rejects.
//!
//! The common path stays as fast as a plain `csv` reader: the only extra work per record is a
//! comparison of line numbers and offsets. Memory is bounded too: the file is read through
//! [`Bounded`], which stops a record that has run past [`MAX_RECORD_BYTES`] plus the buffer.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::SchemaRef;
use csv::{ByteRecord, Position, ReaderBuilder};
use weir_model::SourceOptions;

use super::sniff::{self, CANDIDATE_DELIMITERS, Dialect, show};
use super::{MAX_RECORD_BYTES, UnitReader, first_batch_unreadable, text_schema};
use crate::batch::{RAW_RECORD_LIMIT, RejectedRecord, SourceBatch, raw_bytes, raw_text};
use crate::error::{IngestError, Result};
use crate::files::FileUnit;

/// The `csv` reader's buffer, which is also how far ahead of a record it may have read.
const BUFFER_BYTES: usize = 1 << 20;

pub(super) fn open(
    unit: &FileUnit,
    options: &SourceOptions,
    columns: &[String],
    required: &[String],
) -> Result<UnitReader> {
    let mut warnings = Vec::new();
    if unit.size == 0 {
        warnings.push(format!("{}: file is empty (no rows)", unit.key));
        return Ok(UnitReader {
            warnings,
            batches: Box::new(std::iter::empty()),
        });
    }
    let dialect = sniff::resolve(unit, options, columns, &mut warnings)?;
    let Dialect {
        delimiter,
        quote,
        header,
    } = dialect;
    let file = File::open(&unit.path).map_err(|e| IngestError::open(&unit.path, e))?;
    let span_limit =
        (MAX_RECORD_BYTES.max(options.max_quoted_bytes as usize) + BUFFER_BYTES) as u64;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quote(quote)
        .buffer_capacity(BUFFER_BYTES)
        .from_reader(Bounded {
            file,
            pos: 0,
            limit: span_limit,
        });
    let mut record = ByteRecord::new();

    let (column_map, expected_fields, header_raw) = if header {
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
        let header_raw = raw_text(&join_field_bytes(&record, delimiter));
        let map: Vec<Option<usize>> = columns
            .iter()
            .map(|c| header.iter().position(|h| h == c))
            .collect();
        for (c, idx) in columns.iter().zip(&map) {
            if idx.is_some() {
                continue;
            }
            if required.contains(c) {
                return Err(IngestError::MissingColumn {
                    path: unit.path.clone(),
                    column: c.clone(),
                    hint: missing_column_hint(&header_raw, delimiter, c),
                });
            }
            warnings.push(format!(
                "{}: header has no column `{c}`; its values are read as null",
                unit.key
            ));
        }
        for h in &header {
            if !columns.contains(h) {
                warnings.push(format!(
                    "{}: column `{h}` is not in the contract and is not stored",
                    unit.key
                ));
            }
        }
        (map, header.len(), Some(header_raw))
    } else {
        ((0..columns.len()).map(Some).collect(), columns.len(), None)
    };

    if unit.start > 0 {
        // A file that grew: the header above was read from the top; now only the lines
        // appended since the last read.
        let mut resume = Position::new();
        resume
            .set_byte(unit.start)
            .set_line(unit.start_line)
            .set_record(1);
        reader
            .seek_raw(SeekFrom::Start(unit.start), resume)
            .map_err(|e| IngestError::Decode {
                path: unit.path.clone(),
                message: format!("cannot resume at byte {}: {e}", unit.start),
            })?;
    }
    let state = CsvState {
        reader,
        record,
        key: unit.key.clone(),
        path: unit.path.clone(),
        size: unit.size,
        schema: text_schema(columns),
        column_map,
        expected_fields,
        header_raw,
        null_values: options.null_values.clone(),
        batch_rows: options.batch_rows,
        max_quoted_bytes: options.max_quoted_bytes,
        span_limit,
        delimiter,
        quote,
        last_byte: 0,
        first_batch: true,
        done: false,
    };
    Ok(UnitReader {
        warnings,
        batches: Box::new(state),
    })
}

/// The file under the `csv` reader, refusing to hand out bytes past `limit`: a record that
/// never ends (an unbalanced quote in a huge file) stops with [`SpanExceeded`] instead of
/// growing in memory. The limit is moved before every record.
struct Bounded {
    file: File,
    /// Offset of the next byte `read` hands out.
    pos: u64,
    limit: u64,
}

#[derive(Debug)]
struct SpanExceeded;

impl std::fmt::Display for SpanExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record runs past the size limit")
    }
}

impl std::error::Error for SpanExceeded {}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.limit {
            return Err(io::Error::other(SpanExceeded));
        }
        let room = (self.limit - self.pos).min(buf.len() as u64) as usize;
        let n = self.file.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Bounded {
    fn seek(&mut self, from: SeekFrom) -> io::Result<u64> {
        self.pos = self.file.seek(from)?;
        Ok(self.pos)
    }
}

fn is_span_exceeded(e: &csv::Error) -> bool {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.get_ref().is_some_and(|inner| inner.is::<SpanExceeded>()),
        _ => false,
    }
}

struct CsvState {
    reader: csv::Reader<Bounded>,
    record: ByteRecord,
    key: String,
    path: PathBuf,
    size: u64,
    schema: SchemaRef,
    column_map: Vec<Option<usize>>,
    expected_fields: usize,
    /// The header line as read (fields joined with the delimiter), for hints.
    header_raw: Option<String>,
    null_values: Vec<String>,
    batch_rows: usize,
    max_quoted_bytes: u64,
    /// How far past a record's start the reader may read before the record is given up.
    span_limit: u64,
    delimiter: u8,
    quote: u8,
    last_byte: u64,
    first_batch: bool,
    done: bool,
}

/// Why a record looks like the product of an unbalanced quote.
#[derive(Debug, Clone, Copy)]
enum Suspect {
    /// The record spans lines and this many bytes, over `max_quoted_bytes`.
    Span(u64),
    /// The record ends at the end of the file inside a quoted field.
    Eof,
    /// The record spans lines and has this many fields, not the expected number.
    FieldCount(usize),
    /// The record ran past the reader's hard limit without ending.
    Runaway,
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
            let start = self.reader.position().clone();
            self.reader.get_mut().limit = start.byte().saturating_add(self.span_limit);
            let more = match self.reader.read_byte_record(&mut self.record) {
                Ok(more) => more,
                Err(e) if is_span_exceeded(&e) => {
                    if let Some(reject) = self.resync(&start, Suspect::Runaway)? {
                        rejects.push(reject);
                    }
                    continue;
                }
                Err(e) => {
                    return Err(IngestError::Decode {
                        path: self.path.clone(),
                        message: format!("{} (file `{}`)", e, self.key),
                    });
                }
            };
            if !more {
                self.done = true;
                break;
            }
            if let Some(suspect) = self.suspect(&start)?
                && let Some(reject) = self.resync(&start, suspect)?
            {
                rejects.push(reject);
                continue;
            }
            let line = start.line();
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
        if std::mem::take(&mut self.first_batch)
            && let Some(err) =
                first_batch_unreadable(&self.path, positions.len(), &rejects, |r| self.hint(r))
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

    /// Whether the record just read may be an unbalanced quote. Only records that span lines
    /// or end the file get past the first comparison.
    fn suspect(&self, start: &Position) -> Result<Option<Suspect>> {
        let end = self.reader.position();
        let multi_line = end.line() > start.line() + 1;
        let at_eof = end.byte() >= self.size;
        if !multi_line && !at_eof {
            return Ok(None);
        }
        let span = end.byte().saturating_sub(start.byte());
        if at_eof && self.ends_in_open_quote(start.byte(), end.byte())? {
            return Ok(Some(Suspect::Eof));
        }
        if multi_line && span > self.max_quoted_bytes {
            return Ok(Some(Suspect::Span(span)));
        }
        if multi_line && self.record.len() != self.expected_fields {
            return Ok(Some(Suspect::FieldCount(self.record.len())));
        }
        Ok(None)
    }

    /// Rejects the first physical line of the record starting at `start` and moves the reader
    /// to the line after it. `None` when that line closes its quotes after all (the record only
    /// looked multi-line because blank lines came before it): the record read stands.
    fn resync(&mut self, start: &Position, suspect: Suspect) -> Result<Option<RejectedRecord>> {
        let first = first_line(
            &self.path,
            start.byte(),
            start.line(),
            self.delimiter,
            self.quote,
        )
        .map_err(|e| IngestError::io(&self.path, e))?;
        let (rule, reason) = match suspect {
            Suspect::Span(_) | Suspect::FieldCount(_) if !first.open_quote => return Ok(None),
            Suspect::Runaway if !first.open_quote => (
                "decode.record_too_large",
                format!(
                    "line is {} bytes, over the {} MiB limit",
                    first.len,
                    MAX_RECORD_BYTES >> 20
                ),
            ),
            Suspect::Runaway => (
                UNBALANCED_QUOTE,
                format!(
                    "a quoted field opened on this line is not closed within {} MiB \
                     (unbalanced quote?)",
                    MAX_RECORD_BYTES >> 20
                ),
            ),
            Suspect::Span(span) => (
                UNBALANCED_QUOTE,
                format!(
                    "a quoted field opened on this line runs on for {span} bytes, over \
                     max_quoted_bytes = {} (unbalanced quote? raise options.max_quoted_bytes \
                     if the field is real)",
                    self.max_quoted_bytes
                ),
            ),
            Suspect::Eof => (
                UNBALANCED_QUOTE,
                "a quoted field opened on this line is never closed: it runs to the end of \
                 the file (unbalanced quote?)"
                    .to_string(),
            ),
            Suspect::FieldCount(found) => (
                UNBALANCED_QUOTE,
                format!(
                    "a quoted field opened on this line runs on across lines, and the record \
                     then has {found} fields, not {} (unbalanced quote?)",
                    self.expected_fields
                ),
            ),
        };
        let mut resume = Position::new();
        resume
            .set_byte(first.end)
            .set_line(first.line + 1)
            .set_record(start.record() + 1);
        self.reader
            .seek_raw(SeekFrom::Start(first.end), resume)
            .map_err(|e| IngestError::Decode {
                path: self.path.clone(),
                message: format!("cannot resume after line {}: {e}", first.line),
            })?;
        Ok(Some(RejectedRecord {
            position: first.line,
            raw: first.raw,
            raw_bytes: first.raw_bytes,
            rule,
            reason,
        }))
    }

    /// Whether the bytes `from..to` of the file end inside a quoted field. Only called for the
    /// last record of the file, which is at most the reader's span limit long.
    fn ends_in_open_quote(&self, from: u64, to: u64) -> Result<bool> {
        let io = |e| IngestError::io(&self.path, e);
        let mut file = File::open(&self.path).map_err(io)?;
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        let mut scanner = QuoteScanner::new(self.delimiter, self.quote);
        let mut reader = BufReader::with_capacity(64 * 1024, file.take(to - from));
        loop {
            let buf = reader.fill_buf().map_err(io)?;
            if buf.is_empty() {
                break;
            }
            scanner.feed(buf);
            let n = buf.len();
            reader.consume(n);
        }
        Ok(scanner.in_quotes())
    }

    /// A hint for a first batch rejected whole by `rule`, from its first reject.
    fn hint(&self, reject: &RejectedRecord) -> String {
        match reject.rule {
            "decode.field_count" => {
                let expected = |d: u8| match &self.header_raw {
                    Some(h) => h.split(d as char).count(),
                    None => self.expected_fields,
                };
                CANDIDATE_DELIMITERS
                    .into_iter()
                    .filter(|d| *d != self.delimiter)
                    .find(|d| {
                        let n = expected(*d);
                        n >= 2 && reject.raw.split(*d as char).count() == n
                    })
                    .map(|d| format!("; delimiter looks like {} (set options.delimiter)", show(d)))
                    .unwrap_or_default()
            }
            "decode.utf8" => "; the file does not look like UTF-8 (re-encode it as UTF-8)".into(),
            UNBALANCED_QUOTE => format!(
                "; the quote character is {} (set options.quote if the file uses another)",
                show(self.quote)
            ),
            _ => String::new(),
        }
    }

    /// Why this record cannot become a row, if it cannot.
    fn check_record(&self, line: u64) -> Option<RejectedRecord> {
        let record = &self.record;
        let size = record.as_slice().len();
        let reject = |rule: &'static str, reason: String| {
            Some(RejectedRecord {
                position: line,
                raw: self.raw(),
                raw_bytes: self.raw_bytes(),
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
            raw_bytes: self.raw_bytes(),
            rule: "decode.utf8",
            reason,
        }
    }

    fn raw(&self) -> String {
        raw_text(&join_field_bytes(&self.record, self.delimiter))
    }

    fn raw_bytes(&self) -> Option<Vec<u8>> {
        raw_bytes(&join_field_bytes(&self.record, self.delimiter))
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

/// The rule of a record rejected as an unbalanced quote.
const UNBALANCED_QUOTE: &str = "decode.unbalanced_quote";

/// The fields of a record joined with the delimiter: the line as read, minus its quotes.
fn join_field_bytes(record: &ByteRecord, delimiter: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, field) in record.iter().enumerate() {
        if i > 0 {
            bytes.push(delimiter);
        }
        bytes.extend_from_slice(field);
        if bytes.len() > RAW_RECORD_LIMIT {
            break;
        }
    }
    bytes
}

/// When the header, split with another delimiter, names the missing column.
fn missing_column_hint(header_raw: &str, delimiter: u8, column: &str) -> String {
    CANDIDATE_DELIMITERS
        .into_iter()
        .filter(|d| *d != delimiter)
        .find(|d| {
            header_raw
                .split(*d as char)
                .any(|h| h.trim().trim_start_matches('\u{feff}') == column)
        })
        .map(|d| format!("; delimiter looks like {} (set options.delimiter)", show(d)))
        .unwrap_or_default()
}

/// The first non-blank physical line at or after a record's start.
struct FirstLine {
    /// Its 1-based line number.
    line: u64,
    /// Its text without the line ending, cut at [`RAW_RECORD_LIMIT`] bytes.
    raw: String,
    /// Its exact bytes when they are not valid UTF-8.
    raw_bytes: Option<Vec<u8>>,
    /// Its length in bytes, without the line ending.
    len: u64,
    /// The offset just past its `\n` (or the end of the file).
    end: u64,
    /// Whether it ends inside a quoted field.
    open_quote: bool,
}

/// Reads the line starting at `offset` (line `line`), skipping the line ends the `csv` reader
/// leaves before a record (the `\n` of a CRLF, blank lines). Memory stays bounded however long
/// the line is.
fn first_line(
    path: &Path,
    offset: u64,
    mut line: u64,
    delimiter: u8,
    quote: u8,
) -> io::Result<FirstLine> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut pos = offset;
    // Skip line ends before the record.
    loop {
        let buf = reader.fill_buf()?;
        let skip = buf
            .iter()
            .take_while(|b| **b == b'\n' || **b == b'\r')
            .count();
        line += buf[..skip].iter().filter(|b| **b == b'\n').count() as u64;
        let whole = skip == buf.len() && !buf.is_empty();
        reader.consume(skip);
        pos += skip as u64;
        if !whole {
            break;
        }
    }
    let mut scanner = QuoteScanner::new(delimiter, quote);
    let mut kept = Vec::new();
    let mut len = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (chunk, newline) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        scanner.feed(chunk);
        let room = RAW_RECORD_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
        len += chunk.len() as u64;
        let used = chunk.len() + usize::from(newline);
        reader.consume(used);
        pos += used as u64;
        if newline {
            break;
        }
    }
    let content = if kept.last() == Some(&b'\r') && len as usize == kept.len() {
        len -= 1;
        &kept[..kept.len() - 1]
    } else {
        &kept[..]
    };
    let exact = raw_bytes(content);
    let mut raw = String::from_utf8_lossy(content).into_owned();
    if len > content.len() as u64 {
        raw.push_str(&format!("… [cut: line is {len} bytes]"));
    }
    Ok(FirstLine {
        line,
        raw,
        raw_bytes: exact,
        len,
        end: pos,
        open_quote: scanner.in_quotes(),
    })
}

/// Follows quoting the way the `csv` reader does (a doubled quote inside quotes is a literal
/// quote; a quote only opens a field at its start), to tell whether some text ends inside a
/// quoted field.
struct QuoteScanner {
    state: Scan,
    delimiter: u8,
    quote: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the field's end, or the first half of a doubled quote.
    QuoteInQuoted,
}

impl QuoteScanner {
    fn new(delimiter: u8, quote: u8) -> Self {
        QuoteScanner {
            state: Scan::FieldStart,
            delimiter,
            quote,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let ends_field = b == self.delimiter || b == b'\n' || b == b'\r';
            self.state = match self.state {
                Scan::FieldStart | Scan::Unquoted if ends_field => Scan::FieldStart,
                Scan::FieldStart if b == self.quote => Scan::Quoted,
                Scan::FieldStart | Scan::Unquoted => Scan::Unquoted,
                Scan::Quoted if b == self.quote => Scan::QuoteInQuoted,
                Scan::Quoted => Scan::Quoted,
                Scan::QuoteInQuoted if b == self.quote => Scan::Quoted,
                Scan::QuoteInQuoted if ends_field => Scan::FieldStart,
                Scan::QuoteInQuoted => Scan::Unquoted,
            };
        }
    }

    fn in_quotes(&self) -> bool {
        self.state == Scan::Quoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::discover_files;
    use arrow::array::Array;

    #[derive(Debug)]
    struct Outcome {
        warnings: Vec<String>,
        batches: Vec<SourceBatch>,
    }

    impl Outcome {
        fn rows(&self) -> usize {
            self.batches.iter().map(|b| b.batch.num_rows()).sum()
        }
        fn positions(&self) -> Vec<u64> {
            self.batches
                .iter()
                .flat_map(|b| b.positions.clone())
                .collect()
        }
        fn rejects(&self) -> Vec<&RejectedRecord> {
            self.batches.iter().flat_map(|b| &b.rejects).collect()
        }
        fn records(&self) -> u64 {
            self.batches.iter().map(SourceBatch::records).sum()
        }
        /// Column `col` of every row, in order.
        fn column(&self, col: usize) -> Vec<Option<String>> {
            self.batches
                .iter()
                .flat_map(|b| {
                    let a = b
                        .batch
                        .column(col)
                        .as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .expect("utf8")
                        .clone();
                    (0..a.len())
                        .map(move |i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                        .collect::<Vec<_>>()
                })
                .collect()
        }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn read_with(
        content: &[u8],
        options: &SourceOptions,
        columns: &[&str],
        required: &[&str],
    ) -> Result<Outcome> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x.csv"), content).expect("write");
        let unit = discover_files(dir.path(), "*.csv")
            .expect("files")
            .remove(0);
        let reader = open(&unit, options, &names(columns), &names(required))?;
        let warnings = reader.warnings.clone();
        let batches = reader.collect::<Result<Vec<_>>>()?;
        Ok(Outcome { warnings, batches })
    }

    fn read_csv(content: &[u8], columns: &[&str]) -> Outcome {
        read_with(content, &SourceOptions::default(), columns, &[]).expect("read")
    }

    fn comma() -> SourceOptions {
        SourceOptions {
            delimiter: Some(",".into()),
            quote: Some("\"".into()),
            header: Some(true),
            ..SourceOptions::default()
        }
    }

    /// `header` then `rows` rows `i,name{i},{i}` for i in 1..=rows, each line passed to `edit`.
    fn numbered(rows: usize, edit: impl Fn(usize, String) -> String) -> Vec<u8> {
        let mut text = String::from("id,name,amount\n");
        for i in 1..=rows {
            text.push_str(&edit(i, format!("{i},name{i},{i}")));
            text.push('\n');
        }
        text.into_bytes()
    }

    const COLUMNS: [&str; 3] = ["id", "name", "amount"];

    #[test]
    fn a_character_split_across_fields_is_rejected() {
        // "\xC3" and "\xA9" are the two bytes of "é": valid together, invalid as two fields.
        let read = read_csv(
            b"a,b,c\n1,\xC3\xA9,x\n2,\xC3,\xA9\n3,ok,y\n",
            &["a", "b", "c"],
        );
        let rejects = read.rejects();
        assert_eq!(read.rows(), 2);
        assert_eq!(rejects.len(), 1);
        assert_eq!((rejects[0].position, rejects[0].rule), (3, "decode.utf8"));
        assert!(
            rejects[0].reason.contains("field 2"),
            "{}",
            rejects[0].reason
        );
    }

    #[test]
    fn stray_quote_in_200k_rows_rejects_that_line_alone() {
        // Data row 10 is line 11: `10,"name10,10` opens a quote nothing closes.
        let content = numbered(200_000, |i, line| {
            if i == 10 {
                line.replacen(",", ",\"", 1)
            } else {
                line
            }
        });
        let read = read_with(&content, &comma(), &COLUMNS, &[]).expect("read");
        let rejects = read.rejects();
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].position, 11);
        assert_eq!(rejects[0].rule, "decode.unbalanced_quote");
        assert_eq!(rejects[0].raw, "10,\"name10,10");
        assert!(
            rejects[0].reason.contains("end of the file"),
            "{}",
            rejects[0].reason
        );
        assert_eq!(read.rows(), 199_999);
        assert_eq!(read.records(), 200_000);
        let positions = read.positions();
        assert_eq!(positions[..10], [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]);
        assert_eq!(positions.last(), Some(&200_001));
        assert_eq!(read.column(0)[9].as_deref(), Some("11"));
    }

    #[test]
    fn quote_running_to_eof_is_rejected_even_when_the_field_count_fits() {
        // The open quote is in the last field, so the swallowed text still makes 3 fields.
        let read = read_csv(b"id,name,amount\n1,a,1\n2,b,\"2\n3,c,3\n4,d,4\n", &COLUMNS);
        let rejects = read.rejects();
        assert_eq!(rejects.len(), 1);
        assert_eq!(
            (
                rejects[0].position,
                rejects[0].rule,
                rejects[0].raw.as_str()
            ),
            (3, "decode.unbalanced_quote", "2,b,\"2")
        );
        assert_eq!(read.positions(), [2, 4, 5]);
        assert_eq!(
            read.column(0),
            [Some("1"), Some("3"), Some("4")].map(|s| s.map(String::from))
        );
        // On the last line, without a final newline.
        let read = read_csv(b"id,name,amount\n1,a,1\n2,b,\"2", &COLUMNS);
        assert_eq!(read.positions(), [2]);
        assert_eq!(read.rejects()[0].position, 3);
        assert_eq!(read.records(), 2);
    }

    #[test]
    fn quote_closed_by_a_later_quote_is_caught_by_the_span_bound() {
        // Line 4 opens a quote that line 21's legitimate quote closes; the swallowed record
        // still splits into 3 fields, so only its span (over 64 bytes) gives it away.
        let content = numbered(30, |i, line| match i {
            3 => line.replacen(",", ",\"", 1),
            20 => "20,\"x\",20".to_string(),
            _ => line,
        });
        let options = SourceOptions {
            max_quoted_bytes: 64,
            ..comma()
        };
        let read = read_with(&content, &options, &COLUMNS, &[]).expect("read");
        let rejects = read.rejects();
        assert_eq!(rejects.len(), 1, "{rejects:?}");
        assert_eq!(
            (rejects[0].position, rejects[0].rule),
            (4, "decode.unbalanced_quote")
        );
        assert!(
            rejects[0].reason.contains("max_quoted_bytes = 64"),
            "{}",
            rejects[0].reason
        );
        assert_eq!(read.rows(), 29);
        assert_eq!(read.records(), 30);
        assert_eq!(read.column(1)[18].as_deref(), Some("x"));
    }

    #[test]
    fn quote_closed_later_with_a_wrong_field_count_resyncs_on_the_next_line() {
        // Under the bound, but the swallowed record has 2 fields: the lines in between are
        // read again one by one, and line 21 is then a field-count reject of its own.
        let content = numbered(30, |i, line| match i {
            3 => line.replacen(",", ",\"", 1),
            20 => "20,\"x\"".to_string(),
            _ => line,
        });
        let read = read_with(&content, &comma(), &COLUMNS, &[]).expect("read");
        let rejects: Vec<(u64, &str)> = read
            .rejects()
            .iter()
            .map(|r| (r.position, r.rule))
            .collect();
        assert_eq!(
            rejects,
            [(4, "decode.unbalanced_quote"), (21, "decode.field_count")]
        );
        assert_eq!(read.rows(), 28);
        assert_eq!(read.records(), 30);
    }

    #[test]
    fn multi_line_quoted_field_under_the_bound_is_one_record() {
        for content in [
            &b"id,name,amount\n1,\"line one\nline two, \"\"quoted\"\"\",1\n2,b,2\n"[..],
            &b"id,name,amount\r\n1,\"line one\r\nline two, \"\"quoted\"\"\",1\r\n2,b,2\r\n"[..],
        ] {
            let read = read_csv(content, &COLUMNS);
            assert!(read.rejects().is_empty(), "{:?}", read.rejects());
            assert_eq!(read.rows(), 2);
            let name = read.column(1)[0].clone().expect("value");
            assert!(name.starts_with("line one") && name.ends_with("line two, \"quoted\""));
            assert_eq!(read.column(0)[1].as_deref(), Some("2"));
        }
        // Without CRLF, positions are exact.
        let read = read_csv(b"id,name,amount\n1,\"a\nb\",1\n2,b,2\n", &COLUMNS);
        assert_eq!(read.positions(), [2, 4]);
    }

    #[test]
    fn runaway_quote_stops_at_the_record_limit_and_resyncs() {
        // Over 17 MiB after the stray quote: the reader gives the record up without holding it.
        let rows = 1_000_000;
        let content = numbered(rows, |i, line| {
            if i == 2 {
                line.replacen(",", ",\"", 1)
            } else {
                line
            }
        });
        assert!(content.len() > MAX_RECORD_BYTES + BUFFER_BYTES);
        let read = read_with(&content, &comma(), &COLUMNS, &[]).expect("read");
        let rejects = read.rejects();
        assert_eq!(rejects.len(), 1);
        assert_eq!(
            (rejects[0].position, rejects[0].rule),
            (3, "decode.unbalanced_quote")
        );
        assert!(
            rejects[0].reason.contains("16 MiB"),
            "{}",
            rejects[0].reason
        );
        assert_eq!(read.rows(), rows - 1);
    }

    #[test]
    fn a_single_line_past_the_record_limit_is_too_large() {
        let mut content = b"id,name,amount\n1,a,1\n2,".to_vec();
        content.resize(content.len() + MAX_RECORD_BYTES + BUFFER_BYTES + 10, b'x');
        content.extend_from_slice(b",2\n3,c,3\n");
        let read = read_with(&content, &comma(), &COLUMNS, &[]).expect("read");
        let rejects = read.rejects();
        assert_eq!(rejects.len(), 1);
        assert_eq!(
            (rejects[0].position, rejects[0].rule),
            (3, "decode.record_too_large")
        );
        assert!(rejects[0].raw.ends_with(" bytes]"), "raw is capped");
        assert!(rejects[0].raw.len() < RAW_RECORD_LIMIT + 100);
        assert_eq!(read.positions(), [2, 4]);
    }

    #[test]
    fn delimiter_and_quote_are_sniffed_and_reported() {
        let read = read_csv(b"id;name;amount\n1;'a;b';1,5\n2;b;2,5\n", &COLUMNS);
        assert!(
            read.warnings.contains(
                &"x.csv: detected delimiter ';' (set options.delimiter to override)".to_string()
            ),
            "{:?}",
            read.warnings
        );
        assert!(
            read.warnings
                .iter()
                .any(|w| w.contains("detected quote '\\''")),
            "{:?}",
            read.warnings
        );
        assert!(read.rejects().is_empty());
        assert_eq!(read.column(1)[0].as_deref(), Some("a;b"));
        assert_eq!(read.column(2)[1].as_deref(), Some("2,5"));
        // A tab-separated file without a header.
        let read = read_csv(b"1\ta\t3\n2\tb\t4\n", &COLUMNS);
        assert_eq!(read.positions(), [1, 2]);
        assert!(
            read.warnings
                .iter()
                .any(|w| w.contains("detected delimiter '\\t'"))
        );
        assert!(
            read.warnings
                .iter()
                .any(|w| w.contains("detected no header row"))
        );
        // A plain comma file reports nothing.
        let read = read_csv(b"id,name,amount\n1,a,1\n", &COLUMNS);
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    }

    #[test]
    fn explicit_dialect_wins_over_sniffing() {
        let options = SourceOptions {
            header: Some(false),
            ..comma()
        };
        // Sniffing would pick `;` and a header; the configuration says otherwise.
        let read = read_with(b"id;name;amount\n1;a;1\n", &options, &["whole"], &[]).expect("read");
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
        assert_eq!(read.column(0)[0].as_deref(), Some("id;name;amount"));
        assert_eq!(read.rows(), 2);
    }

    #[test]
    fn first_batch_rejected_whole_fails_the_file_with_a_delimiter_hint() {
        // Configured `,` on a `;` file whose decimals use commas: every row has 2 fields, the
        // header 1.
        let content = b"id;name;amount\n1;a;1,5\n2;b;2,5\n3;c;3,5\n";
        let err = read_with(content, &comma(), &COLUMNS, &[]).expect_err("unreadable");
        let text = err.to_string();
        assert!(
            matches!(
                err,
                IngestError::Unreadable {
                    count: 3,
                    rule: "decode.field_count",
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains("x.csv"), "{text}");
        assert!(
            text.ends_with("; delimiter looks like ';' (set options.delimiter)"),
            "{text}"
        );
        // One rejected record is not enough to judge the file.
        let read = read_with(b"id;name;amount\n1;a;1,5\n", &comma(), &COLUMNS, &[]).expect("read");
        assert_eq!(read.rejects().len(), 1);
        // Nor is a first batch with one good row.
        let read = read_with(
            b"id,name,amount\n1,a\n2,b,2\n3,c\n",
            &comma(),
            &COLUMNS,
            &[],
        )
        .expect("read");
        assert_eq!((read.rows(), read.rejects().len()), (1, 2));
    }

    #[test]
    fn missing_required_column_fails_the_file_and_optional_warns() {
        let content = b"id,name\n1,a\n";
        let err = read_with(content, &comma(), &COLUMNS, &["id", "amount"]).expect_err("missing");
        assert!(matches!(&err, IngestError::MissingColumn { column, .. } if column == "amount"));
        let text = err.to_string();
        assert!(
            text.contains("x.csv") && text.contains("`amount`"),
            "{text}"
        );
        let read = read_with(content, &comma(), &COLUMNS, &["id"]).expect("read");
        assert_eq!(
            read.warnings,
            ["x.csv: header has no column `amount`; its values are read as null"]
        );
        assert_eq!(read.column(2), [None]);
        // A wrong delimiter hides every column; the error says which delimiter would not.
        let err = read_with(b"id;name;amount\n1;a;1\n", &comma(), &COLUMNS, &["id"])
            .expect_err("missing");
        assert!(
            err.to_string()
                .ends_with("; delimiter looks like ';' (set options.delimiter)"),
            "{err}"
        );
    }

    #[test]
    fn empty_file_is_a_warning() {
        for options in [SourceOptions::default(), comma()] {
            let read = read_with(b"", &options, &COLUMNS, &["id"]).expect("read");
            assert_eq!(read.warnings, ["x.csv: file is empty (no rows)"]);
            assert_eq!(read.records(), 0);
        }
        let read = read_with(b"\n\n", &comma(), &COLUMNS, &["id"]).expect("read");
        assert_eq!(read.warnings, ["x.csv: file is empty (no header, no rows)"]);
    }

    #[test]
    fn quote_scanner_follows_csv_quoting() {
        let open = |text: &[u8]| {
            let mut s = QuoteScanner::new(b',', b'"');
            s.feed(text);
            s.in_quotes()
        };
        assert!(open(b"1,\"abc"));
        assert!(open(b"1,\"a\"\"b\n"));
        assert!(!open(b"1,\"a\"\"b\",2\n"));
        assert!(!open(b"1,a\"b,2"));
        assert!(!open(b"1,\"a\"b,\n"));
    }
}
