use std::path::Path;

use serde::Deserialize;

use crate::diagnostic::Diagnostic;

/// How one asset is ingested: `sources/<asset>.toml`.
///
/// Only files exist today; the `format` tag leaves room for `postgres`, `http`, `kafka` and
/// `push` sources, whose positions (cursor, offset) are checkpointed the same way file
/// ingestion records its files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    /// The asset this source feeds; defaults to the file's stem.
    pub asset: Option<String>,
    pub format: FileFormat,
    /// A path or glob relative to the project root, e.g. `data/orders/*.ndjson`.
    pub path: String,
    #[serde(default)]
    pub options: SourceOptions,
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The most rows one run may quarantine and still publish: a count (`1000`) or a share of
    /// the run's input rows (`"5%"`). Unset means the project's `max_quarantined`.
    pub max_quarantined: Option<QuarantineLimit>,
    /// What a file already ingested and then rewritten in place (not by appending lines) does.
    #[serde(default)]
    pub on_change: OnChange,
    /// A run of this asset taking longer is stopped (nothing it staged is published).
    pub timeout_secs: Option<u64>,
    /// The concurrency pool (`[pools]` in weir.toml) this asset's runs take a slot of.
    pub pool: Option<String>,
}

/// The policy for a source file rewritten in place after it was ingested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChange {
    /// The file is refused, named as a rejected file: reading it again would store its rows
    /// twice. The safe default.
    #[default]
    Refuse,
    /// The new content replaces the rows the file contributed before, in one atomic commit.
    /// Each file's rows are then kept in data files of their own, tagged with the file they
    /// came from, so those rows can be found and removed.
    Replace,
}

/// A bound on quarantined rows: a number of rows, or a percentage of the rows read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuarantineLimit {
    Rows(u64),
    Percent(f64),
}

impl Default for QuarantineLimit {
    /// Half the rows read: past that, the input is more likely wrong than dirty.
    fn default() -> Self {
        QuarantineLimit::Percent(50.0)
    }
}

impl QuarantineLimit {
    /// Whether `quarantined` rows out of `rows_in` exceed the limit.
    pub fn exceeded(&self, quarantined: u64, rows_in: u64) -> bool {
        match *self {
            QuarantineLimit::Rows(n) => quarantined > n,
            QuarantineLimit::Percent(p) => {
                rows_in > 0 && quarantined as f64 * 100.0 > p * rows_in as f64
            }
        }
    }
}

impl std::fmt::Display for QuarantineLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuarantineLimit::Rows(n) => write!(f, "{n} rows"),
            QuarantineLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl<'de> Deserialize<'de> for QuarantineLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Rows(u64),
            Text(String),
        }
        let wrong = || {
            serde::de::Error::custom(
                "`max_quarantined` must be a number of rows (e.g. 1000) or a percentage (e.g. \"5%\")",
            )
        };
        match Raw::deserialize(d).map_err(|_| wrong())? {
            Raw::Rows(n) => Ok(QuarantineLimit::Rows(n)),
            Raw::Text(t) => {
                let p: f64 = t
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse().ok())
                    .ok_or_else(wrong)?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(serde::de::Error::custom(
                        "`max_quarantined` as a percentage must be between 0% and 100%",
                    ));
                }
                Ok(QuarantineLimit::Percent(p))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Ndjson,
    Parquet,
}

impl FileFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Ndjson => "ndjson",
            FileFormat::Parquet => "parquet",
        }
    }
}

/// Decoding options; each applies to the formats named in its doc.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// CSV: one ASCII character. When unset, it is sniffed from the start of each file
    /// (`,` `;` tab `|`), falling back to [`DEFAULT_DELIMITER`].
    pub delimiter: Option<String>,
    /// CSV: whether the first line names the columns (columns are then matched by name).
    /// When unset, a first line naming a contract column is a header; a first line naming none,
    /// with as many fields as the contract has columns, is data. Otherwise `true`.
    pub header: Option<bool>,
    /// CSV: the quote character. When unset, sniffed (`"` or `'`), falling back to
    /// [`DEFAULT_QUOTE`].
    pub quote: Option<String>,
    /// CSV: the most bytes a record may span once a quoted field runs past the end of its line.
    /// A longer one, or one whose quote is never closed, is an unbalanced quote: its first line
    /// is rejected and reading resumes on the next line.
    #[serde(default = "default_max_quoted_bytes")]
    pub max_quoted_bytes: u64,
    /// CSV/NDJSON: chrono format for timestamps without a zone, read as UTC; RFC 3339 is always accepted.
    pub timestamp_format: Option<String>,
    /// CSV/NDJSON: chrono format for dates; `%Y-%m-%d` by default.
    pub date_format: Option<String>,
    /// CSV/NDJSON: strings read as null, besides the empty field.
    #[serde(default)]
    pub null_values: Vec<String>,
    /// Rows per Arrow record batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            delimiter: None,
            header: None,
            quote: None,
            max_quoted_bytes: default_max_quoted_bytes(),
            timestamp_format: None,
            date_format: None,
            null_values: Vec::new(),
            batch_rows: default_batch_rows(),
        }
    }
}

impl SourceOptions {
    /// The configured CSV delimiter, if any (validated to be one ASCII character).
    pub fn delimiter_byte(&self) -> Option<u8> {
        self.delimiter.as_deref().and_then(|d| d.bytes().next())
    }

    /// The configured CSV quote, if any (validated to be one ASCII character).
    pub fn quote_byte(&self) -> Option<u8> {
        self.quote.as_deref().and_then(|q| q.bytes().next())
    }
}

/// The CSV delimiter when none is configured and sniffing is inconclusive.
pub const DEFAULT_DELIMITER: u8 = b',';
/// The CSV quote when none is configured and sniffing is inconclusive.
pub const DEFAULT_QUOTE: u8 = b'"';
/// The largest record weir reads into a row; a longer one is quarantined, not loaded. It also
/// bounds `max_quoted_bytes`.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

fn default_max_quoted_bytes() -> u64 {
    1024 * 1024
}
fn default_batch_rows() -> usize {
    65_536
}

impl SourceDef {
    /// Options set for a format that ignores them (a `delimiter` for Parquet): warnings, since
    /// the run silently does without them.
    pub fn options_that_do_not_apply(&self, path: &Path, text: &str) -> Vec<Diagnostic> {
        let o = &self.options;
        let csv_only = [
            ("delimiter", o.delimiter.is_some()),
            ("header", o.header.is_some()),
            ("quote", o.quote.is_some()),
            (
                "max_quoted_bytes",
                o.max_quoted_bytes != default_max_quoted_bytes(),
            ),
        ];
        let text_only = [
            ("timestamp_format", o.timestamp_format.is_some()),
            ("date_format", o.date_format.is_some()),
            ("null_values", !o.null_values.is_empty()),
        ];
        let ignored: Vec<&str> = match self.format {
            FileFormat::Csv => Vec::new(),
            FileFormat::Ndjson => csv_only
                .iter()
                .filter(|(_, set)| *set)
                .map(|(k, _)| *k)
                .collect(),
            FileFormat::Parquet => csv_only
                .iter()
                .chain(text_only.iter())
                .filter(|(_, set)| *set)
                .map(|(k, _)| *k)
                .collect(),
        };
        ignored
            .into_iter()
            .map(|key| {
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with(key))
                    .map(|i| i + 1);
                Diagnostic::warning(
                    path,
                    format!(
                        "`{key}` does not apply to {} files; the run ignores it",
                        self.format.as_str()
                    ),
                )
                .field(format!("options.{key}"))
                .at(line, None)
            })
            .collect()
    }

    pub fn parse(path: &Path, text: &str) -> Result<SourceDef, Diagnostic> {
        let def: SourceDef = toml::from_str(text).map_err(|e| toml_diagnostic(path, text, &e))?;
        for (name, value) in [
            ("delimiter", &def.options.delimiter),
            ("quote", &def.options.quote),
        ] {
            let Some(value) = value else { continue };
            if value.len() != 1 || !value.is_ascii() {
                return Err(Diagnostic::error(
                    path,
                    format!("`{name}` must be one ASCII character, found {value:?}"),
                )
                .field(format!("options.{name}")));
            }
        }
        if def.options.batch_rows == 0 {
            return Err(Diagnostic::error(path, "`batch_rows` must be at least 1")
                .field("options.batch_rows"));
        }
        let quoted = def.options.max_quoted_bytes;
        if quoted == 0 || quoted > MAX_RECORD_BYTES as u64 {
            return Err(Diagnostic::error(
                path,
                format!(
                    "`max_quoted_bytes` must be between 1 and {MAX_RECORD_BYTES} (the record \
                     size limit, 16 MiB), found {quoted}"
                ),
            )
            .field("options.max_quoted_bytes"));
        }
        Ok(def)
    }
}

/// Turns a toml error into a diagnostic with a 1-based line and column.
pub(crate) fn toml_diagnostic(path: &Path, text: &str, err: &toml::de::Error) -> Diagnostic {
    let (line, column) = match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    Diagnostic::error(path, err.message().to_string()).at(line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &str) -> Result<SourceDef, Diagnostic> {
        let text = format!("format = \"csv\"\npath = \"data/*.csv\"\n[options]\n{options}");
        SourceDef::parse(Path::new("sources/x.toml"), &text)
    }

    #[test]
    fn unset_dialect_options_are_left_to_sniffing() {
        let def = parse("").expect("parses");
        assert_eq!(def.options.delimiter, None);
        assert_eq!(def.options.quote, None);
        assert_eq!(def.options.header, None);
        assert_eq!(def.options.max_quoted_bytes, 1_048_576);
        let def = parse("delimiter = \";\"\nheader = false\nquote = \"'\"").expect("parses");
        assert_eq!(def.options.delimiter_byte(), Some(b';'));
        assert_eq!(def.options.quote_byte(), Some(b'\''));
        assert_eq!(def.options.header, Some(false));
    }

    #[test]
    fn on_change_is_refuse_unless_set_to_replace() {
        let def = |extra: &str| {
            SourceDef::parse(
                Path::new("sources/x.toml"),
                &format!("format = \"csv\"\npath = \"d/*.csv\"\n{extra}"),
            )
        };
        assert_eq!(def("").expect("parses").on_change, OnChange::Refuse);
        assert_eq!(
            def("on_change = \"replace\"").expect("parses").on_change,
            OnChange::Replace
        );
        let err = def("on_change = \"overwrite\"").expect_err("unknown policy");
        assert_eq!(err.line, Some(3), "{err:?}");
        assert!(
            err.message.contains("expected `refuse` or `replace`"),
            "{err:?}"
        );
    }

    #[test]
    fn max_quarantined_is_rows_or_percent() {
        let def = |extra: &str| {
            SourceDef::parse(
                Path::new("sources/x.toml"),
                &format!("format = \"csv\"\npath = \"d/*.csv\"\n{extra}"),
            )
        };
        assert_eq!(def("").expect("parses").max_quarantined, None);
        assert_eq!(
            def("max_quarantined = 10").expect("parses").max_quarantined,
            Some(QuarantineLimit::Rows(10))
        );
        let pct = def("max_quarantined = \"2.5%\"")
            .expect("parses")
            .max_quarantined
            .expect("set");
        assert_eq!(pct, QuarantineLimit::Percent(2.5));
        assert!(!pct.exceeded(25, 1000) && pct.exceeded(26, 1000));
        assert!(QuarantineLimit::Rows(0).exceeded(1, 1));
        for bad in ["\"abc\"", "\"150%\"", "-1"] {
            let err = def(&format!("max_quarantined = {bad}")).expect_err(bad);
            assert!(format!("{err:?}").contains("max_quarantined"), "{err:?}");
        }
    }

    #[test]
    fn max_quoted_bytes_is_bounded() {
        assert_eq!(
            parse("max_quoted_bytes = 4096")
                .expect("parses")
                .options
                .max_quoted_bytes,
            4096
        );
        for bad in ["0", "16777217"] {
            let err = parse(&format!("max_quoted_bytes = {bad}")).expect_err("out of range");
            let text = format!("{err:?}");
            assert!(text.contains("max_quoted_bytes"), "{text}");
            assert!(text.contains("between 1 and 16777216"), "{text}");
        }
        assert!(parse("delimiter = \";;\"").is_err());
    }
}
