#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Contract(String),
    #[error("{0}")]
    Diff(String),
    #[error(transparent)]
    State(#[from] weir_orchestrate::OrchestrateError),
}
