//! The deployed definition of every asset, as `weir apply` records it.

use std::collections::BTreeMap;
use std::path::Path;

use weir_model::Project;
use weir_orchestrate::{AssetGraph, DeployedAsset};
use xxhash_rust::xxh3::xxh3_128;

use crate::error::ChangeError;

fn read(path: &Path) -> Result<String, ChangeError> {
    std::fs::read_to_string(path).map_err(|source| ChangeError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn relative(project: &Project, path: &Path) -> String {
    path.strip_prefix(&project.root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn hash(parts: &[&str]) -> String {
    // Length-prefixed, so moving text from one part to the next changes the fingerprint.
    let mut text = String::new();
    for part in parts {
        text.push_str(&format!("{}:{part}", part.len()));
    }
    format!("{:032x}", xxh3_128(text.as_bytes()))
}

/// Every asset of `project`, in the graph's order, as it is on disk now.
pub fn snapshot(
    project: &Project,
    graph: &AssetGraph,
    apply_id: &str,
    applied_at: &str,
) -> Result<Vec<DeployedAsset>, ChangeError> {
    let mut fingerprints: BTreeMap<&str, String> = BTreeMap::new();
    let mut out = Vec::new();
    for name in &graph.order {
        let Some(asset) = project.asset(name) else {
            continue;
        };
        let contract_text = read(&asset.contract_path)?;
        let definition = match (&asset.model, &asset.source_path) {
            (Some(model), _) => Some((relative(project, &model.path), model.sql.clone())),
            (None, Some(path)) => Some((relative(project, path), read(path)?)),
            (None, None) => None,
        };
        let fingerprint = hash(&[
            &contract_text,
            definition
                .as_ref()
                .map(|d| d.1.as_str())
                .unwrap_or_default(),
        ]);
        let parents: Vec<String> = graph.upstream.get(name).cloned().unwrap_or_default();
        // A parent's own parents are in its entry: the chain covers every ancestor.
        let parent_prints: Vec<String> = parents
            .iter()
            .map(|p| fingerprints.get(p.as_str()).cloned().unwrap_or_default())
            .collect();
        let parent_refs: Vec<&str> = parent_prints.iter().map(String::as_str).collect();
        let parents_fingerprint = hash(&parent_refs);
        fingerprints.insert(name, hash(&[&fingerprint, &parents_fingerprint]));
        out.push(DeployedAsset {
            asset: name.clone(),
            kind: asset.kind().into(),
            contract_path: relative(project, &asset.contract_path),
            contract_text,
            definition_path: definition.as_ref().map(|d| d.0.clone()),
            definition_text: definition.map(|d| d.1),
            fingerprint,
            parents: serde_json::Value::from(parents).to_string(),
            parents_fingerprint,
            apply_id: apply_id.into(),
            applied_at: applied_at.into(),
        });
    }
    Ok(out)
}
