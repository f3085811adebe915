use thiserror::Error;

#[derive(Debug, Error)]
pub enum ObserveError {
    #[error(transparent)]
    State(#[from] weir_orchestrate::OrchestrateError),
    #[error("{0}")]
    Invalid(String),
}
