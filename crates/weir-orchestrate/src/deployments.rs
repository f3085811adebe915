//! What `weir apply` recorded as deployed, in the state store: per asset the texts that define
//! it and their fingerprints. `weir plan` compares the working project with it; an apply
//! replaces the whole record in one transaction, so a plan never sees half of two applies.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::state::{StateStore, state_err};

/// One asset as it was deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedAsset {
    pub asset: String,
    /// `source` or `model`.
    pub kind: String,
    /// Relative to the project root.
    pub contract_path: String,
    pub contract_text: String,
    /// The model's SQL file or the source's settings file, relative to the project root.
    pub definition_path: Option<String>,
    pub definition_text: Option<String>,
    /// xxh3-128 of the contract and definition texts.
    pub fingerprint: String,
    /// The assets it reads, as a JSON array.
    pub parents: String,
    /// xxh3-128 of the parents' fingerprints: a change upstream changes it.
    pub parents_fingerprint: String,
    pub apply_id: String,
    pub applied_at: String,
}

fn deployed_asset(row: &AnyRow) -> Result<DeployedAsset> {
    let text = |name: &str| -> Result<String> { row.try_get(name).map_err(state_err) };
    let maybe = |name: &str| -> Result<Option<String>> { row.try_get(name).map_err(state_err) };
    Ok(DeployedAsset {
        asset: text("asset")?,
        kind: text("kind")?,
        contract_path: text("contract_path")?,
        contract_text: text("contract_text")?,
        definition_path: maybe("definition_path")?,
        definition_text: maybe("definition_text")?,
        fingerprint: text("fingerprint")?,
        parents: text("parents")?,
        parents_fingerprint: text("parents_fingerprint")?,
        apply_id: text("apply_id")?,
        applied_at: text("applied_at")?,
    })
}

impl StateStore {
    /// Every asset of the last apply, by name; empty when nothing was applied yet.
    pub async fn deployed_assets(&self) -> Result<Vec<DeployedAsset>> {
        let rows = sqlx::query("SELECT * FROM deployed_assets ORDER BY asset")
            .fetch_all(&self.pool)
            .await
            .map_err(state_err)?;
        rows.iter().map(deployed_asset).collect()
    }

    /// Replaces the deployed record with `assets`, in one transaction.
    pub async fn record_deployment(&self, assets: &[DeployedAsset]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM deployed_assets")
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
        for a in assets {
            sqlx::query(
                "INSERT INTO deployed_assets (asset, kind, contract_path, contract_text,
                    definition_path, definition_text, fingerprint, parents, parents_fingerprint,
                    apply_id, applied_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&a.asset)
            .bind(&a.kind)
            .bind(&a.contract_path)
            .bind(&a.contract_text)
            .bind(&a.definition_path)
            .bind(&a.definition_text)
            .bind(&a.fingerprint)
            .bind(&a.parents)
            .bind(&a.parents_fingerprint)
            .bind(&a.apply_id)
            .bind(&a.applied_at)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
        }
        tx.commit().await.map_err(state_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(name: &str, apply: &str) -> DeployedAsset {
        DeployedAsset {
            asset: name.into(),
            kind: "model".into(),
            contract_path: format!("contracts/{name}.odcs.yaml"),
            contract_text: "kind: DataContract".into(),
            definition_path: Some(format!("models/{name}.sql")),
            definition_text: Some("SELECT 1 AS x".into()),
            fingerprint: "f".into(),
            parents: "[]".into(),
            parents_fingerprint: "p".into(),
            apply_id: apply.into(),
            applied_at: "2026-11-27T00:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn an_apply_replaces_the_whole_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let state = StateStore::connect(&url).await.expect("state");
        assert!(state.deployed_assets().await.expect("read").is_empty());
        state
            .record_deployment(&[asset("a", "1"), asset("b", "1")])
            .await
            .expect("first apply");
        state
            .record_deployment(&[asset("b", "2"), asset("c", "2")])
            .await
            .expect("second apply");
        let names: Vec<(String, String)> = state
            .deployed_assets()
            .await
            .expect("read")
            .into_iter()
            .map(|a| (a.asset, a.apply_id))
            .collect();
        assert_eq!(
            names,
            [("b".to_string(), "2".to_string()), ("c".into(), "2".into())]
        );
    }
}
