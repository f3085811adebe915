#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the project does not load, so there is nothing to serve:\n{0}")]
    Project(String),
    #[error(
        "cannot listen on {addr}: {source} (is another `weir serve` running? give another address with --addr)"
    )]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Orchestrate(#[from] weir_orchestrate::OrchestrateError),
}
