//! Guessing a CSV file's dialect from its first bytes, for whatever the source leaves unset.
//!
//! Explicit configuration always wins; a guess that is not clear-cut falls back to the
//! defaults (`,`, `"`, a header row), so sniffing never makes a file harder to read than it
//! was without it.

use std::fs::File;
use std::io::Read;

use csv::{ByteRecord, ReaderBuilder};
use weir_model::{DEFAULT_DELIMITER, DEFAULT_QUOTE, SourceOptions};

use crate::error::{IngestError, Result};
use crate::files::FileUnit;

/// How much of a file the sniffer reads.
pub(crate) const SAMPLE_BYTES: usize = 64 * 1024;
/// The delimiters the sniffer chooses among, in order of preference on a tie.
pub(crate) const CANDIDATE_DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
const CANDIDATE_QUOTES: [u8; 2] = [b'"', b'\''];
/// Share of the sample's records that must have the same field count for a delimiter to be
/// "consistent".
const CONSISTENT_SHARE: f64 = 0.9;

/// The delimiter, quote and header setting a CSV file is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
}

/// The configured dialect, with what is unset guessed from the first [`SAMPLE_BYTES`] of the
/// file. A guess that departs from the default is reported in `warnings`.
pub(crate) fn resolve(
    unit: &FileUnit,
    options: &SourceOptions,
    columns: &[String],
    warnings: &mut Vec<String>,
) -> Result<Dialect> {
    let (delimiter, quote, header) = (
        options.delimiter_byte(),
        options.quote_byte(),
        options.header,
    );
    if let (Some(delimiter), Some(quote), Some(header)) = (delimiter, quote, header) {
        return Ok(Dialect {
            delimiter,
            quote,
            header,
        });
    }
    let sample = read_sample(unit)?;
    let quote = quote.unwrap_or_else(|| {
        let found = sniff_quote(&sample);
        if found != DEFAULT_QUOTE {
            warnings.push(format!(
                "{}: detected quote {} (set options.quote to override)",
                unit.key,
                show(found)
            ));
        }
        found
    });
    let delimiter = delimiter.unwrap_or_else(|| {
        let found = sniff_delimiter(&sample, quote, columns).unwrap_or(DEFAULT_DELIMITER);
        if found != DEFAULT_DELIMITER {
            warnings.push(format!(
                "{}: detected delimiter {} (set options.delimiter to override)",
                unit.key,
                show(found)
            ));
        }
        found
    });
    let header = header.unwrap_or_else(|| {
        let found = sniff_header(&sample, delimiter, quote, columns).unwrap_or(true);
        if !found {
            warnings.push(format!(
                "{}: detected no header row: the first line names no contract column, so \
                 columns are read in contract order (set options.header to override)",
                unit.key
            ));
        }
        found
    });
    Ok(Dialect {
        delimiter,
        quote,
        header,
    })
}

/// A byte as the user would write it in `sources/*.toml`, quoted: `';'`, `'\t'`.
pub(crate) fn show(byte: u8) -> String {
    format!("'{}'", (byte as char).escape_default())
}

/// The first [`SAMPLE_BYTES`] of the file, cut after its last complete line when the file is
/// longer (a record cut in half would spoil the field counts).
fn read_sample(unit: &FileUnit) -> Result<Vec<u8>> {
    let file = File::open(&unit.path).map_err(|e| IngestError::open(&unit.path, e))?;
    let mut sample = Vec::with_capacity(SAMPLE_BYTES.min(unit.size as usize));
    file.take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)
        .map_err(|e| IngestError::io(&unit.path, e))?;
    if (sample.len() as u64) < unit.size
        && let Some(end) = sample.iter().rposition(|b| *b == b'\n')
    {
        sample.truncate(end + 1);
    }
    Ok(sample)
}

/// `'` only when the sample quotes fields with it and never with `"`.
fn sniff_quote(sample: &[u8]) -> u8 {
    let quoted_fields = |quote: u8| {
        let is_boundary = |b: Option<&u8>| {
            b.is_none_or(|b| *b == b'\n' || *b == b'\r' || CANDIDATE_DELIMITERS.contains(b))
        };
        let opening = (0..sample.len())
            .filter(|&i| sample[i] == quote && is_boundary(i.checked_sub(1).map(|j| &sample[j])))
            .count();
        let closing = (0..sample.len())
            .filter(|&i| sample[i] == quote && is_boundary(sample.get(i + 1)))
            .count();
        opening.min(closing)
    };
    match CANDIDATE_QUOTES.map(quoted_fields) {
        [0, single] if single > 0 => b'\'',
        _ => DEFAULT_QUOTE,
    }
}

/// Splits the sample into records with one delimiter.
fn records(sample: &[u8], delimiter: u8, quote: u8) -> Vec<ByteRecord> {
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quote(quote)
        .from_reader(sample);
    let mut out = Vec::new();
    let mut record = ByteRecord::new();
    while let Ok(true) = reader.read_byte_record(&mut record) {
        out.push(record.clone());
    }
    out
}

fn field_name(field: &[u8], first: bool) -> String {
    let name = String::from_utf8_lossy(field).trim().to_string();
    if first {
        name.trim_start_matches('\u{feff}').to_string()
    } else {
        name
    }
}

/// How many fields of the first record name a contract column, ignoring case.
fn header_matches(record: &ByteRecord, columns: &[String]) -> usize {
    record
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            let name = field_name(f, *i == 0);
            columns.iter().any(|c| c.eq_ignore_ascii_case(&name))
        })
        .count()
}

/// The delimiter whose first record names the most contract columns; failing that, the one
/// that splits the sample's records into a consistent number (at least 2) of fields,
/// preferring the contract's column count, then more fields. `None` when no candidate does.
fn sniff_delimiter(sample: &[u8], quote: u8, columns: &[String]) -> Option<u8> {
    let mut best: Option<((usize, bool, bool, usize), u8)> = None;
    for delimiter in CANDIDATE_DELIMITERS {
        let records = records(sample, delimiter, quote);
        let Some(first) = records.first() else {
            continue;
        };
        let matches = header_matches(first, columns);
        let mut counts = std::collections::BTreeMap::<usize, usize>::new();
        for r in &records {
            *counts.entry(r.len()).or_default() += 1;
        }
        let (mode, share) = counts
            .iter()
            .max_by_key(|(count, n)| (**n, **count))
            .map(|(count, n)| (*count, *n as f64 / records.len() as f64))
            .unwrap_or((0, 0.0));
        let consistent = mode >= 2 && share >= CONSISTENT_SHARE;
        if matches == 0 && !consistent {
            continue;
        }
        let score = (matches, consistent, mode == columns.len(), mode);
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, delimiter));
        }
    }
    best.map(|(_, d)| d)
}

/// `Some(true)` when the first record names a contract column (ignoring case); `Some(false)`
/// when it names none, has one field per contract column and looks like the records after it
/// (no column is numeric below a non-numeric first value); `None` otherwise.
fn sniff_header(sample: &[u8], delimiter: u8, quote: u8, columns: &[String]) -> Option<bool> {
    let records = records(sample, delimiter, quote);
    let first = records.first()?;
    if header_matches(first, columns) > 0 {
        return Some(true);
    }
    if first.len() != columns.len() {
        return None;
    }
    let numeric = |f: &[u8]| {
        std::str::from_utf8(f)
            .ok()
            .is_some_and(|s| s.trim().parse::<f64>().is_ok())
    };
    let rest = &records[1..];
    let header_like = (0..first.len()).any(|i| {
        let below: Vec<&[u8]> = rest.iter().filter_map(|r| r.get(i)).collect();
        !below.is_empty()
            && below.iter().all(|f| numeric(f))
            && first.get(i).is_some_and(|f| !numeric(f))
    });
    if header_like { None } else { Some(false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn delimiter_is_found_by_header_names_then_by_consistent_field_counts() {
        let columns = cols(&["id", "name", "amount"]);
        let semi = b"id;name;amount\n1;a;1,5\n2;b;2,5\n";
        assert_eq!(sniff_delimiter(semi, b'"', &columns), Some(b';'));
        let tabs = b"1\tx\t3\n2\ty\t4\n";
        assert_eq!(sniff_delimiter(tabs, b'"', &columns), Some(b'\t'));
        let pipes = b"ID|NAME|AMOUNT\n1|\"a|b\"|3\n";
        assert_eq!(sniff_delimiter(pipes, b'"', &columns), Some(b'|'));
        assert_eq!(sniff_delimiter(b"justtext\nmore\n", b'"', &columns), None);
    }

    #[test]
    fn quote_is_single_only_when_fields_use_it_and_never_double() {
        assert_eq!(sniff_quote(b"a,b\n'x,y',2\n"), b'\'');
        assert_eq!(sniff_quote(b"a,b\nO'Brien,2\n"), b'"');
        assert_eq!(sniff_quote(b"a,b\n\"x\",'y'\n"), b'"');
    }

    #[test]
    fn header_is_detected_from_contract_names_and_data_from_its_shape() {
        let columns = cols(&["id", "name"]);
        assert_eq!(
            sniff_header(b"ID,Name\n1,a\n", b',', b'"', &columns),
            Some(true)
        );
        assert_eq!(
            sniff_header(b"1,a\n2,b\n", b',', b'"', &columns),
            Some(false)
        );
        // Names the contract does not know, above numbers: a header all the same.
        assert_eq!(
            sniff_header(b"key,label\n1,a\n", b',', b'"', &columns),
            None
        );
        // A different field count: cannot be read positionally, keep the default.
        assert_eq!(sniff_header(b"1,a,x\n", b',', b'"', &columns), None);
    }
}
