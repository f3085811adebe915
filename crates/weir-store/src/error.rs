use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("delta table {path}: {source}")]
    Delta {
        path: PathBuf,
        source: deltalake::DeltaTableError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal {path}: {message}")]
    Journal { path: PathBuf, message: String },
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn delta(
        path: &std::path::Path,
    ) -> impl FnOnce(deltalake::DeltaTableError) -> StoreError + '_ {
        move |source| StoreError::Delta {
            path: path.to_path_buf(),
            source,
        }
    }
}
