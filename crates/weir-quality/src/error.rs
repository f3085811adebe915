#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error("contract for `{asset}`: {message}")]
    Contract { asset: String, message: String },
    #[error("audit query failed for rule `{rule}`: {source}")]
    Audit {
        rule: String,
        source: datafusion::error::DataFusionError,
    },
    #[error("audit query for rule `{rule}` returned no value")]
    EmptyResult { rule: String },
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

pub type Result<T, E = QualityError> = std::result::Result<T, E>;
