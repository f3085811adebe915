use std::path::PathBuf;

/// Problems that stop a whole unit from being read. Problems with single records are not
/// errors: they become [`crate::RejectedRecord`]s and end up quarantined.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid path pattern `{pattern}`: {message}")]
    Pattern { pattern: String, message: String },
    #[error("{path}: not a readable Parquet file: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Decode { path: PathBuf, message: String },
    /// Every record of the file's first batch was rejected by the same decode rule: the file
    /// is read with the wrong settings. `hint` is empty or starts with `"; "`.
    #[error(
        "{path}: all {count} records of the first batch were rejected by `{rule}`, so the \
         file is not read{hint}"
    )]
    Unreadable {
        path: PathBuf,
        count: usize,
        rule: &'static str,
        hint: String,
    },
    /// A column the contract requires is not in the file. `hint` is empty or starts with
    /// `"; "`.
    #[error("{path}: the file has no column `{column}`, which the contract requires{hint}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        hint: String,
    },
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

impl IngestError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
