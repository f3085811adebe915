use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OrchestrateError {
    #[error("state store: {0}")]
    State(String),
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ingest(#[from] weir_ingest::IngestError),
    #[error(transparent)]
    Quality(Box<weir_quality::QualityError>),
    #[error(transparent)]
    Store(Box<weir_store::StoreError>),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

pub type Result<T, E = OrchestrateError> = std::result::Result<T, E>;

impl From<weir_quality::QualityError> for OrchestrateError {
    fn from(e: weir_quality::QualityError) -> Self {
        OrchestrateError::Quality(Box::new(e))
    }
}

impl From<weir_store::StoreError> for OrchestrateError {
    fn from(e: weir_store::StoreError) -> Self {
        OrchestrateError::Store(Box::new(e))
    }
}
