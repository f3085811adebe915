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
    /// CSV: one ASCII character.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// CSV: whether the first line names the columns (columns are then matched by name).
    #[serde(default = "default_true")]
    pub header: bool,
    /// CSV: the quote character.
    #[serde(default = "default_quote")]
    pub quote: String,
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
            delimiter: default_delimiter(),
            header: true,
            quote: default_quote(),
            timestamp_format: None,
            date_format: None,
            null_values: Vec::new(),
            batch_rows: default_batch_rows(),
        }
    }
}

fn default_delimiter() -> String {
    ",".into()
}
fn default_quote() -> String {
    "\"".into()
}
fn default_true() -> bool {
    true
}
fn default_batch_rows() -> usize {
    65_536
}

impl SourceDef {
    pub fn parse(path: &Path, text: &str) -> Result<SourceDef, Diagnostic> {
        let def: SourceDef = toml::from_str(text).map_err(|e| toml_diagnostic(path, text, &e))?;
        for (name, value) in [
            ("delimiter", &def.options.delimiter),
            ("quote", &def.options.quote),
        ] {
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
