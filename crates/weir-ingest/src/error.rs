use std::path::PathBuf;

/// Problems that stop a whole unit from being read. Problems with single records are not
/// errors: they become [`crate::RejectedRecord`]s and end up quarantined.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An I/O failure: what was being done (`open`, `read`), the file, and the OS reason. The
    /// OS error is part of the message, not a separate cause, so it is printed once.
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid path pattern `{pattern}`: {message}")]
    Pattern { pattern: String, message: String },
    #[error("{path}: not a valid Parquet file: {message}")]
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
    /// A failure while reading `path`.
    pub(crate) fn io(path: &std::path::Path, error: std::io::Error) -> Self {
        IngestError::Io {
            action: "read",
            path: path.to_path_buf(),
            error,
        }
    }

    /// A failure to open `path` (missing, permission denied, ...).
    pub(crate) fn open(path: &std::path::Path, error: std::io::Error) -> Self {
        IngestError::Io {
            action: "open",
            path: path.to_path_buf(),
            error,
        }
    }

    /// A Parquet decoder error, without the prefixes the parquet crate repeats
    /// (`Parquet error: Parquet argument error: ...`).
    pub(crate) fn parquet(path: &std::path::Path, error: &dyn std::fmt::Display) -> Self {
        let mut message = error.to_string();
        loop {
            let trimmed = [
                "Parquet error: ",
                "Parquet argument error: ",
                "External: ",
                "Invalid Parquet file. ",
            ]
            .iter()
            .find_map(|p| message.strip_prefix(p).map(str::to_string));
            match trimmed {
                Some(rest) => message = rest,
                None => break,
            }
        }
        IngestError::Parquet {
            path: path.to_path_buf(),
            message,
        }
    }
}
