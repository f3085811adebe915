//! For the tests of this crate and of the crates above it: a fresh, empty PostgreSQL database
//! per test on the server `scripts/test.sh` starts on loopback.

use sqlx::{Connection, Executor};

use crate::error::{OrchestrateError, Result};

/// The URL of the test PostgreSQL server (a database the test user may create databases from).
pub const POSTGRES_ENV: &str = "WEIR_TEST_POSTGRES";

/// Creates a new database on the test server and returns its URL. Fails, naming the variable,
/// when no server is given: the PostgreSQL half of a test is never skipped quietly.
pub async fn fresh_postgres_database() -> Result<String> {
    let admin = std::env::var(POSTGRES_ENV).map_err(|_| {
        OrchestrateError::Config(format!(
            "{POSTGRES_ENV} is not set: run the tests through ./scripts/test.sh, which starts a PostgreSQL server on loopback and sets it"
        ))
    })?;
    fresh_database_on(&admin).await
}

/// Creates a new database on the server at `admin` (a URL whose user may create databases)
/// and returns its URL. For tests that bring a server of their own, such as one that restarts
/// it: restarting the shared server would cut the connections of every test beside it.
pub async fn fresh_database_on(admin: &str) -> Result<String> {
    let name = format!("weir_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(admin)
        .await
        .map_err(|e| OrchestrateError::State(format!("connecting to {admin}: {e}")))?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .map_err(|e| OrchestrateError::State(format!("creating database {name}: {e}")))?;
    let _ = conn.close().await;
    let mut url =
        url::Url::parse(admin).map_err(|e| OrchestrateError::Config(format!("{admin}: {e}")))?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// A finished run of `orders` for tests that compute from run histories: `status`, started
/// at `started` and ended `seconds` later, with its row counts.
pub fn finished_run(
    status: &str,
    started: chrono::DateTime<chrono::Utc>,
    seconds: i64,
    rows_in: u64,
    quarantined: u64,
) -> crate::RunRecord {
    crate::RunRecord {
        id: format!("{status}-{}", started.timestamp_micros()),
        asset: "orders".into(),
        trigger: "cli".into(),
        status: status.into(),
        started_at: started.to_rfc3339(),
        ended_at: Some((started + chrono::Duration::seconds(seconds)).to_rfc3339()),
        rows_in,
        rows_stored: rows_in.saturating_sub(quarantined),
        rows_quarantined: quarantined,
        bytes_in: 0,
        table_version: None,
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
