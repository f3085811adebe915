//! The agreement of shadow assets with the assets they shadow, over time (table
//! `shadow_comparisons`): what `weir shadow` shows and `/metrics` exports, so a migration
//! proves its consistency before the cut-over.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::state::{StateStore, state_err};

/// One comparison of a shadow with its primary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowComparison {
    /// The shadow asset.
    pub asset: String,
    pub shadow_of: String,
    /// The shadow's run after which it was compared.
    pub run_id: Option<String>,
    pub compared_at: String,
    /// False when the two were computed from different upstream versions, so not compared.
    pub compared: bool,
    pub rows_primary: u64,
    pub rows_shadow: u64,
    pub identical: u64,
    pub changed: u64,
    pub only_in_primary: u64,
    pub only_in_shadow: u64,
    /// Identical rows over all rows compared (1 when both are empty); `None` when not compared.
    pub agreement: Option<f64>,
    pub note: Option<String>,
}

/// A count column, which both stores hand back as an `i64`.
pub(crate) fn count(row: &AnyRow, name: &str) -> Result<u64> {
    let n: i64 = row.try_get(name).map_err(state_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn comparison(row: &AnyRow) -> Result<ShadowComparison> {
    let compared: i64 = row.try_get("compared").map_err(state_err)?;
    Ok(ShadowComparison {
        asset: row.try_get("asset").map_err(state_err)?,
        shadow_of: row.try_get("shadow_of").map_err(state_err)?,
        run_id: row.try_get("run_id").map_err(state_err)?,
        compared_at: row.try_get("compared_at").map_err(state_err)?,
        compared: compared != 0,
        rows_primary: count(row, "rows_primary")?,
        rows_shadow: count(row, "rows_shadow")?,
        identical: count(row, "identical")?,
        changed: count(row, "changed")?,
        only_in_primary: count(row, "only_in_primary")?,
        only_in_shadow: count(row, "only_in_shadow")?,
        agreement: row.try_get("agreement").map_err(state_err)?,
        note: row.try_get("note").map_err(state_err)?,
    })
}

impl StateStore {
    pub async fn record_shadow_comparison(&self, c: &ShadowComparison) -> Result<()> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO shadow_comparisons (asset, shadow_of, run_id, compared_at, compared,
                rows_primary, rows_shadow, identical, changed, only_in_primary, only_in_shadow,
                agreement, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&c.asset)
        .bind(&c.shadow_of)
        .bind(&c.run_id)
        .bind(&c.compared_at)
        .bind(i64::from(c.compared))
        .bind(n(c.rows_primary))
        .bind(n(c.rows_shadow))
        .bind(n(c.identical))
        .bind(n(c.changed))
        .bind(n(c.only_in_primary))
        .bind(n(c.only_in_shadow))
        .bind(c.agreement)
        .bind(&c.note)
        .execute(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(())
    }

    /// The comparisons of `asset` (every shadow when `None`), oldest first.
    pub async fn shadow_comparisons(&self, asset: Option<&str>) -> Result<Vec<ShadowComparison>> {
        let rows =
            match asset {
                Some(asset) => sqlx::query(
                    "SELECT * FROM shadow_comparisons WHERE asset = $1 ORDER BY compared_at, id",
                )
                .bind(asset)
                .fetch_all(&self.pool)
                .await,
                None => {
                    sqlx::query("SELECT * FROM shadow_comparisons ORDER BY asset, compared_at, id")
                        .fetch_all(&self.pool)
                        .await
                }
            }
            .map_err(state_err)?;
        rows.iter().map(comparison).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn comparisons_are_kept_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let state = StateStore::connect(&url).await.expect("state");
        let mut c = ShadowComparison {
            asset: "v2".into(),
            shadow_of: "v1".into(),
            run_id: Some("r1".into()),
            compared_at: "2026-11-27T00:00:00Z".into(),
            compared: true,
            rows_primary: 10,
            rows_shadow: 10,
            identical: 9,
            changed: 1,
            only_in_primary: 0,
            only_in_shadow: 0,
            agreement: Some(0.9),
            note: None,
        };
        state.record_shadow_comparison(&c).await.expect("first");
        c.compared_at = "2026-11-28T00:00:00Z".into();
        c.compared = false;
        c.agreement = None;
        c.note = Some("inputs differ".into());
        state.record_shadow_comparison(&c).await.expect("second");
        let all = state.shadow_comparisons(Some("v2")).await.expect("read");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].agreement, Some(0.9));
        assert_eq!(all[1], c);
        assert!(
            state
                .shadow_comparisons(Some("other"))
                .await
                .expect("read")
                .is_empty()
        );
    }
}
