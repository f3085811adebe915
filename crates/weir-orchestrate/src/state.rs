//! The state store: runs and the file ledger, in SQLite through sqlx (the queries are plain
//! SQL with `$n` placeholders so a PostgreSQL backend can share them).

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{OrchestrateError, Result};

#[derive(Clone)]
pub struct StateStore {
    pool: SqlitePool,
}

/// A file recorded as ingested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub path: String,
    pub content_hash: String,
    pub size_bytes: u64,
    pub rows_in: u64,
    pub rows_stored: u64,
    pub rows_quarantined: u64,
}

/// A run as kept in the state store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub asset: String,
    pub trigger: String,
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub rows_in: u64,
    pub rows_stored: u64,
    pub rows_quarantined: u64,
    pub bytes_in: u64,
    pub table_version: Option<u64>,
    pub txn_version: Option<i64>,
    pub contract_version: Option<String>,
    /// JSON array of check results.
    pub checks: String,
    pub error: Option<String>,
    /// JSON array of `{path, reason}`: input files left out of the run whole.
    #[serde(default = "empty_list")]
    pub rejected_files: String,
}

fn empty_list() -> String {
    "[]".into()
}

impl StateStore {
    /// Opens (creating if needed) the store at `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<StateStore> {
        let Some(path) = url.strip_prefix("sqlite://") else {
            return Err(OrchestrateError::Config(format!(
                "state store `{url}` is not supported yet; use sqlite:<path> (PostgreSQL comes with the workers)"
            )));
        };
        if let Some(parent) = Path::new(path).parent() {
            std::fs::create_dir_all(parent).map_err(|e| OrchestrateError::Io {
                path: parent.to_path_buf(),
                source: e,
            })?;
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| OrchestrateError::State(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(state_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| OrchestrateError::State(e.to_string()))?;
        Ok(StateStore { pool })
    }

    pub async fn ledger(&self, asset: &str) -> Result<Vec<LedgerEntry>> {
        let rows = sqlx::query(
            "SELECT path, content_hash, size_bytes, rows_in, rows_stored, rows_quarantined FROM file_ledger WHERE asset = $1 ORDER BY path",
        )
        .bind(asset)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(rows
            .iter()
            .map(|r| LedgerEntry {
                path: r.get("path"),
                content_hash: r.get("content_hash"),
                size_bytes: r.get::<i64, _>("size_bytes") as u64,
                rows_in: r.get::<i64, _>("rows_in") as u64,
                rows_stored: r.get::<i64, _>("rows_stored") as u64,
                rows_quarantined: r.get::<i64, _>("rows_quarantined") as u64,
            })
            .collect())
    }

    /// Records a published run's files; with `replace`, the asset's earlier entries go first
    /// (a full refresh). Idempotent: recording the same run twice changes nothing.
    pub async fn record_files(
        &self,
        asset: &str,
        run_id: &str,
        txn_version: i64,
        replace: bool,
        files: &[LedgerEntry],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(state_err)?;
        if replace {
            sqlx::query("DELETE FROM file_ledger WHERE asset = $1 AND txn_version < $2")
                .bind(asset)
                .bind(txn_version)
                .execute(&mut *tx)
                .await
                .map_err(state_err)?;
        }
        let now = now();
        for f in files {
            sqlx::query(
                "INSERT INTO file_ledger (asset, path, content_hash, size_bytes, rows_in, rows_stored, rows_quarantined, run_id, txn_version, ingested_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (asset, path, content_hash) DO NOTHING",
            )
            .bind(asset)
            .bind(&f.path)
            .bind(&f.content_hash)
            .bind(f.size_bytes as i64)
            .bind(f.rows_in as i64)
            .bind(f.rows_stored as i64)
            .bind(f.rows_quarantined as i64)
            .bind(run_id)
            .bind(txn_version)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
        }
        tx.commit().await.map_err(state_err)
    }

    pub async fn insert_run(&self, run: &RunRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO runs (id, asset, trigger, status, started_at, ended_at, rows_in, rows_stored, rows_quarantined, bytes_in, table_version, txn_version, contract_version, checks, error, rejected_files)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, rows_in = excluded.rows_in,
               rows_stored = excluded.rows_stored, rows_quarantined = excluded.rows_quarantined, bytes_in = excluded.bytes_in,
               table_version = excluded.table_version, txn_version = excluded.txn_version, checks = excluded.checks, error = excluded.error,
               rejected_files = excluded.rejected_files",
        )
        .bind(&run.id)
        .bind(&run.asset)
        .bind(&run.trigger)
        .bind(&run.status)
        .bind(&run.started_at)
        .bind(&run.ended_at)
        .bind(run.rows_in as i64)
        .bind(run.rows_stored as i64)
        .bind(run.rows_quarantined as i64)
        .bind(run.bytes_in as i64)
        .bind(run.table_version.map(|v| v as i64))
        .bind(run.txn_version)
        .bind(&run.contract_version)
        .bind(&run.checks)
        .bind(&run.error)
        .bind(&run.rejected_files)
        .execute(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(())
    }

    /// Runs left `running` by a process that died: with the project lock held, no live
    /// process owns them.
    pub async fn mark_interrupted(&self) -> Result<u64> {
        let res = sqlx::query("UPDATE runs SET status = 'interrupted', ended_at = $1, error = 'the process running it stopped before it finished; nothing it staged was published' WHERE status = 'running'")
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(state_err)?;
        Ok(res.rows_affected())
    }

    pub async fn runs(&self, asset: Option<&str>, limit: u32) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE ($1 IS NULL OR asset = $1) ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(asset)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(rows
            .iter()
            .map(|r| RunRecord {
                id: r.get("id"),
                asset: r.get("asset"),
                trigger: r.get("trigger"),
                status: r.get("status"),
                started_at: r.get("started_at"),
                ended_at: r.get("ended_at"),
                rows_in: r.get::<i64, _>("rows_in") as u64,
                rows_stored: r.get::<i64, _>("rows_stored") as u64,
                rows_quarantined: r.get::<i64, _>("rows_quarantined") as u64,
                bytes_in: r.get::<i64, _>("bytes_in") as u64,
                table_version: r.get::<Option<i64>, _>("table_version").map(|v| v as u64),
                txn_version: r.get("txn_version"),
                contract_version: r.get("contract_version"),
                checks: r.get("checks"),
                error: r.get("error"),
                rejected_files: r.get("rejected_files"),
            })
            .collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn state_err(e: sqlx::Error) -> OrchestrateError {
    OrchestrateError::State(e.to_string())
}
