//! Aggregates of the state store for monitoring (`/metrics` of `weir serve`): computed from
//! the run history at each scrape, so they survive restarts and agree across processes.

use sqlx::Row;

use crate::error::Result;
use crate::state::{RunRecord, StateStore, run_record, state_err};

/// The runs of one asset that ended with one status, and what they counted.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTotals {
    pub asset: String,
    pub status: String,
    pub runs: u64,
    pub rows_in: u64,
    pub rows_stored: u64,
    pub rows_quarantined: u64,
    pub bytes_in: u64,
}

/// One ended run: its asset, when it started and ended, and its check results (JSON).
#[derive(Debug, Clone)]
pub struct EndedRun {
    pub asset: String,
    pub started_at: String,
    pub ended_at: String,
    pub checks: String,
}

fn count(row: &sqlx::any::AnyRow, column: &str) -> Result<u64> {
    let n: Option<i64> = row.try_get(column).map_err(state_err)?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// `(asset, at)` rows.
fn asset_instants(rows: &[sqlx::any::AnyRow]) -> Result<Vec<(String, String)>> {
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("asset").map_err(state_err)?,
                r.try_get("at").map_err(state_err)?,
            ))
        })
        .collect()
}

impl StateStore {
    /// Runs and their row and byte counts, by asset and status.
    pub async fn run_totals(&self) -> Result<Vec<RunTotals>> {
        let rows = sqlx::query(
            // PostgreSQL's SUM of BIGINT is NUMERIC: cast back, as SQLite's already is.
            "SELECT asset, status, COUNT(*) AS runs, CAST(SUM(rows_in) AS BIGINT) AS rows_in,
                    CAST(SUM(rows_stored) AS BIGINT) AS rows_stored,
                    CAST(SUM(rows_quarantined) AS BIGINT) AS rows_quarantined,
                    CAST(SUM(bytes_in) AS BIGINT) AS bytes_in
             FROM runs WHERE status <> 'running' GROUP BY asset, status ORDER BY asset, status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter()
            .map(|r| {
                Ok(RunTotals {
                    asset: r.try_get("asset").map_err(state_err)?,
                    status: r.try_get("status").map_err(state_err)?,
                    runs: count(r, "runs")?,
                    rows_in: count(r, "rows_in")?,
                    rows_stored: count(r, "rows_stored")?,
                    rows_quarantined: count(r, "rows_quarantined")?,
                    bytes_in: count(r, "bytes_in")?,
                })
            })
            .collect()
    }

    /// Every run that ended, oldest first.
    pub async fn ended_runs(&self) -> Result<Vec<EndedRun>> {
        let rows = sqlx::query(
            "SELECT asset, started_at, ended_at, checks FROM runs WHERE ended_at IS NOT NULL ORDER BY started_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter()
            .map(|r| {
                Ok(EndedRun {
                    asset: r.try_get("asset").map_err(state_err)?,
                    started_at: r.try_get("started_at").map_err(state_err)?,
                    ended_at: r.try_get("ended_at").map_err(state_err)?,
                    checks: r.try_get("checks").map_err(state_err)?,
                })
            })
            .collect()
    }

    /// When each asset last published (the end of its last `success` or `partial` run).
    pub async fn last_published(&self) -> Result<Vec<(String, String)>> {
        self.latest_by_asset(
            "ended_at",
            "status IN ('success', 'partial') AND ended_at IS NOT NULL",
        )
        .await
    }

    /// The runs that started or ended at or after `since` (RFC 3339), oldest first: what SLOs
    /// over a window are computed from.
    pub async fn runs_since(&self, since: &str) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE started_at >= $1 OR ended_at >= $1 ORDER BY started_at, id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(rows.iter().map(run_record).collect())
    }

    /// When each asset last published before `before` (RFC 3339): how fresh it was when a
    /// window opened.
    pub async fn last_published_before(&self, before: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT asset, MAX(ended_at) AS at FROM runs
             WHERE status IN ('success', 'partial') AND ended_at IS NOT NULL AND ended_at < $1
             GROUP BY asset",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        asset_instants(&rows)
    }

    /// Each asset's latest run (by start), one query for the whole project: what the
    /// dashboard's health grid is drawn from every few seconds.
    pub async fn last_runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT r.* FROM runs r
             JOIN (SELECT asset, MAX(started_at) AS at FROM runs GROUP BY asset) l
               ON l.asset = r.asset AND l.at = r.started_at
             ORDER BY r.asset, r.id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        let mut runs: Vec<RunRecord> = rows.iter().map(run_record).collect();
        // Two runs of one asset started in the same microsecond: keep one.
        runs.dedup_by(|a, b| a.asset == b.asset);
        Ok(runs)
    }

    /// When each asset's last run started.
    pub async fn last_run_starts(&self) -> Result<Vec<(String, String)>> {
        self.latest_by_asset("started_at", "1 = 1").await
    }

    /// The latest `column` (a timestamp) of each asset's runs matching `filter`.
    async fn latest_by_asset(&self, column: &str, filter: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(&format!(
            "SELECT asset, MAX({column}) AS at FROM runs WHERE {filter} GROUP BY asset"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        asset_instants(&rows)
    }

    /// Records that the executor `name` (a `weir serve` or `weir worker`) is alive now, and
    /// forgets executors not seen for a day (killed ones never remove their row).
    pub async fn worker_seen(&self, name: &str, role: &str) -> Result<()> {
        let at = crate::state::now();
        let day_ago = crate::state::timestamp(chrono::Utc::now() - chrono::Duration::days(1));
        sqlx::query("DELETE FROM workers WHERE seen_at < $1")
            .bind(&day_ago)
            .execute(&self.pool)
            .await
            .map_err(state_err)?;
        sqlx::query(
            "INSERT INTO workers (name, role, started_at, seen_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(name)
        .bind(role)
        .bind(&at)
        .execute(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(())
    }

    /// Forgets the executor `name` (it stopped cleanly).
    pub async fn worker_gone(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM workers WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(state_err)?;
        Ok(())
    }

    /// Executors seen since `since` (RFC 3339), by role.
    pub async fn live_workers(&self, since: &str) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query(
            "SELECT role, COUNT(*) AS n FROM workers WHERE seen_at >= $1 GROUP BY role ORDER BY role",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get("role").map_err(state_err)?, count(r, "n")?)))
            .collect()
    }

    /// Queued runs by status.
    pub async fn queue_depth(&self) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM run_queue GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(state_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get("status").map_err(state_err)?, count(r, "n")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RunRecord;

    fn run(id: &str, asset: &str, status: &str, rows: u64) -> RunRecord {
        RunRecord {
            id: id.into(),
            asset: asset.into(),
            trigger: "test".into(),
            status: status.into(),
            started_at: "2026-11-26T10:00:00.000000Z".into(),
            ended_at: Some("2026-11-26T10:00:02.500000Z".into()),
            rows_in: rows,
            rows_stored: rows - 1,
            rows_quarantined: 1,
            bytes_in: rows * 10,
            table_version: Some(1),
            txn_version: None,
            contract_version: None,
            checks: "[]".into(),
            error: None,
            rejected_files: "[]".into(),
            files: "[]".into(),
            quarantine_by_rule: "{}".into(),
            null_counts: "{}".into(),
        }
    }

    #[tokio::test]
    async fn totals_sum_by_asset_and_status_on_both_backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = format!("sqlite://{}", dir.path().join("state.db").display());
        let postgres = crate::testing::fresh_postgres_database()
            .await
            .expect("a PostgreSQL database for the test");
        for url in [sqlite, postgres] {
            let state = StateStore::connect(&url).await.expect("connect");
            state
                .insert_run(&run("a", "orders", "success", 10))
                .await
                .expect("run");
            state
                .insert_run(&run("b", "orders", "success", 5))
                .await
                .expect("run");
            state
                .insert_run(&run("c", "orders", "error", 3))
                .await
                .expect("run");
            let mut running = run("d", "orders", "running", 7);
            running.ended_at = None;
            state.insert_run(&running).await.expect("run");
            let totals = state.run_totals().await.expect("totals");
            let success = totals
                .iter()
                .find(|t| t.status == "success")
                .expect("success");
            assert_eq!(
                (
                    success.runs,
                    success.rows_in,
                    success.rows_stored,
                    success.rows_quarantined,
                    success.bytes_in
                ),
                (2, 15, 13, 2, 150),
                "{url}"
            );
            assert_eq!(
                totals.len(),
                2,
                "a running run is not counted yet: {totals:?}"
            );
            assert_eq!(state.ended_runs().await.expect("ended").len(), 3);
            let published = state.last_published().await.expect("published");
            assert_eq!(
                published,
                vec![(
                    "orders".to_string(),
                    "2026-11-26T10:00:02.500000Z".to_string()
                )]
            );
            sqlx::query("INSERT INTO workers (name, role, started_at, seen_at) VALUES ('dead', 'worker', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
                .execute(&state.pool)
                .await
                .expect("a process killed long ago");
            // Every run counts as the last one, whatever its status; all four started together.
            let starts = state.last_run_starts().await.expect("starts");
            assert_eq!(
                starts,
                vec![(
                    "orders".to_string(),
                    "2026-11-26T10:00:00.000000Z".to_string()
                )]
            );
            state.worker_seen("w1", "worker").await.expect("seen");
            state.worker_seen("w1", "worker").await.expect("seen again");
            let live = state
                .live_workers("2000-01-01T00:00:00Z")
                .await
                .expect("live");
            assert_eq!(live, vec![("worker".to_string(), 1)]);
            state.worker_gone("w1").await.expect("gone");
            assert!(
                state
                    .live_workers("2000-01-01T00:00:00Z")
                    .await
                    .expect("live")
                    .is_empty()
            );
            state.close().await;
        }
    }
}
