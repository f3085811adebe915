//! `[openlineage]` in weir.toml: where the OpenLineage run events of every asset run go, a
//! Marquez-compatible HTTP endpoint and/or a file of one event per line.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenLineageConfig {
    /// The base URL of an OpenLineage HTTP receiver (Marquez: `http://host:5000`).
    pub url: Option<String>,
    /// The path events are posted to under `url`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// A file, relative to the project, each event is appended to as one JSON line.
    pub file: Option<String>,
    /// The namespace of the project's jobs and datasets; the project's name by default.
    pub namespace: Option<String>,
}

fn default_endpoint() -> String {
    "api/v1/lineage".into()
}

impl OpenLineageConfig {
    /// Whether events go anywhere.
    pub fn enabled(&self) -> bool {
        self.url.is_some() || self.file.is_some()
    }
}
