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
