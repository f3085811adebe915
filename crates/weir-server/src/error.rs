#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the project does not load, so there is nothing to serve:\n{0}")]
    Project(String),
    #[error("cannot listen on {addr}: {source}{}", listen_hint(source))]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    /// A request that cannot be carried out as asked (an unknown asset, a bad range).
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Orchestrate(#[from] weir_orchestrate::OrchestrateError),
}

fn listen_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (is another `weir serve` running? give another address with --addr)"
        }
        std::io::ErrorKind::InvalidInput => " (give HOST:PORT, such as 127.0.0.1:7420)",
        _ => "",
    }
}
