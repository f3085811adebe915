//! The state store: runs, the file ledger and the run queue, in SQLite (the default, a file
//! under `.weir/`) or PostgreSQL (many workers on many machines). Both go through sqlx's `Any`
//! driver with the same queries: plain SQL with `$n` placeholders, which both understand. The
//! few places the two differ (migrations, how a write transaction begins, row locks) are
//! decided by [`Backend`].

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Connection, Executor, Row};

use weir_ingest::{FileStat, FileUnit};

use crate::error::{OrchestrateError, Result};

#[derive(Clone)]
pub struct StateStore {
    pub(crate) pool: AnyPool,
    /// For lease renewals and runs' component figures, and on SQLite for taking and giving
    /// back asset leases: its commits are not waited on to reach the disk (see
    /// [`SQLITE_LEASE_PRAGMAS`], [`POSTGRES_LEASE_SETTING`] and [`Self::asset_lease_pool`]).
    pub(crate) lease_pool: AnyPool,
    backend: Backend,
    notices: Vec<String>,
}

/// Set on every SQLite connection: writers wait for each other up to 10 s, and FULL makes each
/// commit durable before it returns. The file itself is put in WAL mode once, when it is
/// opened (readers then work beside the one writer).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;";

/// Set on the connection that renews leases (and records runs' component figures): its
/// commits reach the write-ahead log but are not flushed to the disk one by one (the next
/// durable commit of any connection flushes them).
/// A renewal lost to a power cut costs nothing: every worker of the machine stopped with it,
/// and the lease only looks one renewal older (two thirds of it still to run). A process
/// killed any other way loses no commit.
const SQLITE_LEASE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;";

/// PostgreSQL's counterpart of [`SQLITE_LEASE_PRAGMAS`]: a renewal does not wait for the
/// server to flush its write-ahead log; a crash of the server can lose the last ones, never
/// make the database inconsistent.
const POSTGRES_LEASE_SETTING: &str = "SET synchronous_commit = off";

/// Which database holds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The type of a write transaction on the state store.
pub(crate) type WriteTx = sqlx::Transaction<'static, sqlx::Any>;

/// A file recorded as ingested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub path: String,
    pub content_hash: String,
    pub size_bytes: u64,
    /// Where this read of the file started: 0, or the size read before for a file that grew
    /// by appending (its commit then holds the rows of bytes `start..size_bytes`).
    #[serde(default)]
    pub start: u64,
    pub rows_in: u64,
    pub rows_stored: u64,
    pub rows_quarantined: u64,
    /// The file was rewritten in place and this read replaced every row it contributed before
    /// (`on_change = "replace"`): the path's earlier entries no longer describe the table.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaces: bool,
}

/// What a ledger was last known to agree with (see `ledger_sync.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerMark {
    pub table_id: String,
    pub txn_version: Option<i64>,
    pub files: i64,
}

/// A ledger entry as the lake records it: the file and the run that published it.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeLedgerEntry {
    pub entry: LedgerEntry,
    pub run_id: String,
    pub txn_version: i64,
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
    /// JSON array of the input files the run read.
    #[serde(default = "empty_list")]
    pub files: String,
    /// JSON object: quarantined rows by rule.
    #[serde(default = "empty_object")]
    pub quarantine_by_rule: String,
    /// JSON object: nulls per column in the rows the run stored, from the statistics of the
    /// data files it staged (what null-rate anomalies are judged on).
    #[serde(default = "empty_object")]
    pub null_counts: String,
}

fn empty_list() -> String {
    "[]".into()
}

fn empty_object() -> String {
    "{}".into()
}

impl RunRecord {
    /// A run that starts now, with nothing counted yet.
    pub fn start(id: &str, asset: &weir_model::Asset, trigger: &str) -> RunRecord {
        RunRecord {
            id: id.to_string(),
            asset: asset.name.clone(),
            trigger: trigger.to_string(),
            status: "running".into(),
            started_at: now(),
            ended_at: None,
            rows_in: 0,
            rows_stored: 0,
            rows_quarantined: 0,
            bytes_in: 0,
            table_version: None,
            txn_version: None,
            contract_version: Some(asset.contract.version.clone()),
            checks: "[]".into(),
            error: None,
            rejected_files: "[]".into(),
            files: "[]".into(),
            quarantine_by_rule: "{}".into(),
            null_counts: "{}".into(),
        }
    }
}

impl StateStore {
    /// Opens (creating if needed) the store at `url` (`sqlite://PATH` or
    /// `postgres://USER@HOST/DB`) and brings its schema up to date.
    ///
    /// A SQLite file that is not a database or is corrupt is moved aside (kept for inspection)
    /// and a new one is created: the lake is the record, so the file ledger is rebuilt from the
    /// Delta logs before any file is read, and only the run history is lost. What was done is
    /// in [`StateStore::notices`].
    pub async fn connect(url: &str) -> Result<StateStore> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (pool, lease_pool) = Self::open_postgres(url).await.map_err(|e| {
                OrchestrateError::State(format!(
                    "cannot open the state store at {}: {e}; check that the PostgreSQL server is up and the user may create tables in that database",
                    redact(url)
                ))
            })?;
            return Ok(StateStore {
                pool,
                lease_pool,
                backend: Backend::Postgres,
                notices: Vec::new(),
            });
        }
        let Some(path) = url.strip_prefix("sqlite://") else {
            return Err(OrchestrateError::Config(format!(
                "state store `{}` is not supported; use sqlite:PATH or postgres://USER@HOST/DATABASE",
                redact(url)
            )));
        };
        let path = Path::new(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| OrchestrateError::Io {
                path: parent.to_path_buf(),
                source: e,
            })?;
        }
        let store = |(pool, lease_pool), notices| StateStore {
            pool,
            lease_pool,
            backend: Backend::Sqlite,
            notices,
        };
        match Self::open_sqlite(url).await {
            Ok(pool) => Ok(store(pool, Vec::new())),
            Err(e) if is_corrupt(&e) && path.exists() => {
                let aside = path.with_extension(format!(
                    "db.corrupt-{}",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S")
                ));
                std::fs::rename(path, &aside).map_err(|source| OrchestrateError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                for suffix in ["-wal", "-shm"] {
                    let side = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
                    let _ = std::fs::remove_file(side);
                }
                let pool = Self::open_sqlite(url)
                    .await
                    .map_err(|e| state_file_error(path, &e))?;
                Ok(store(
                    pool,
                    vec![format!(
                        "the state store {} was not a readable SQLite database ({e}); it was moved to {} and a new one was created; file ledgers are rebuilt from the Delta logs, run history before now is in the old file",
                        path.display(),
                        aside.display()
                    )],
                ))
            }
            Err(e) => Err(state_file_error(path, &e)),
        }
    }

    /// The pool of a SQLite store and its lease pool (one connection).
    async fn open_sqlite(url: &str) -> std::result::Result<(AnyPool, AnyPool), sqlx::Error> {
        let path = Path::new(url.strip_prefix("sqlite://").unwrap_or(url));
        let url = format!("{url}?mode=rwc");
        // Processes starting together on a new file (a service and its workers) would each
        // switch it to WAL (which needs the file to themselves: SQLite answers "database is
        // locked" at once rather than wait) and find the schema missing and create it;
        // SQLite's migrator takes no lock of its own (PostgreSQL's takes an advisory lock).
        // A lock file beside the database makes them take turns.
        let _setting_up = migration_lock(path).await?;
        // One connection first: a file that is not a database fails here with SQLite's own
        // error (which `connect` recognises), where a pool would retry until its timeout.
        let mut probe = sqlx::AnyConnection::connect(&url).await?;
        probe
            .execute(format!("{SQLITE_PRAGMAS} PRAGMA journal_mode = WAL;").as_str())
            .await?;
        probe.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => e,
                other => sqlx::Error::Migrate(Box::new(other)),
            })?;
        // A file can open and still be garbage: read from it before trusting it.
        sqlx::query("SELECT COUNT(*) FROM file_ledger")
            .fetch_one(&pool)
            .await?;
        let lease_pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_LEASE_PRAGMAS).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok((pool, lease_pool))
    }

    /// The pool of a PostgreSQL store and its lease pool.
    async fn open_postgres(url: &str) -> std::result::Result<(AnyPool, AnyPool), sqlx::Error> {
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        // The migrator takes an advisory lock, so processes starting together migrate once.
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        let lease_pool = AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(POSTGRES_LEASE_SETTING).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok((pool, lease_pool))
    }

    /// Which database this store is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction that serialises with every other writer of the rows it reads.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), waiting for it up to the
    /// busy timeout: a deferred transaction that reads first and writes next cannot wait, and
    /// fails at once with "database is locked" when another process writes in between. On
    /// PostgreSQL the rows a write transaction reads are locked with [`Self::for_update`].
    ///
    /// The begin runs on its own task: a caller dropped while it waits (a run stopped by its
    /// timeout or a cancel) must not leave the connection inside a transaction that no guard
    /// will roll back, holding the write lock for good. The task finishes the begin, and the
    /// guard it returns rolls the transaction back when nobody takes it.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        self.begin_write_on(&self.pool).await
    }

    /// [`Self::begin_write`] on `pool`, one of this store's two.
    pub(crate) async fn begin_write_on(&self, pool: &AnyPool) -> Result<WriteTx> {
        let pool = pool.clone();
        let backend = self.backend;
        tokio::spawn(async move {
            match backend {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => pool.begin().await,
            }
        })
        .await
        .map_err(|e| OrchestrateError::State(format!("beginning a transaction: {e}")))?
        .map_err(state_err)
    }

    /// Where asset leases are taken and given back. On SQLite, the connection whose commits
    /// are not flushed one by one: every holder of a SQLite store's leases is a process of
    /// this machine, so a power cut that loses a lease's last commits has stopped every
    /// process that could hold it (a lost take leaves a lease free or its earlier holder's,
    /// gone; a lost give-back leaves one whose holder is gone), and a process killed any
    /// other way loses no commit. The write-ahead log keeps commits in order, so the run
    /// record's durable commit that follows a take flushes it too. That is two flushes fewer
    /// per run. On PostgreSQL, whose leases are held by processes of many machines and
    /// whose server can crash alone, they stay durable: a take the server lost while its
    /// holder lives could let a second writer in.
    pub(crate) fn asset_lease_pool(&self) -> &AnyPool {
        match self.backend {
            Backend::Sqlite => &self.lease_pool,
            Backend::Postgres => &self.pool,
        }
    }

    /// What a `SELECT` inside a write transaction appends to lock the rows it reads until the
    /// transaction ends: nothing on SQLite (the transaction holds the database's write lock),
    /// `FOR UPDATE` on PostgreSQL.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// [`Self::for_update`], passing over rows another transaction holds: for a worker that
    /// takes any one of many rows, so that workers do not queue behind each other.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// What names the claim order's index after `FROM run_queue` in a claim: SQLite's planner,
    /// knowing nothing of how many runs wait, prefers `run_queue_ready` and sorts every
    /// waiting run; PostgreSQL's chooses the index from its statistics. An `INDEXED BY` that
    /// cannot be honoured is an error, so the claim never falls back to sorting quietly.
    pub(crate) fn claim_order_index(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => " INDEXED BY run_queue_claimable",
            Backend::Postgres => "",
        }
    }

    /// What opening the store had to repair, for the user.
    pub fn notices(&self) -> &[String] {
        &self.notices
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
                start: 0,
                rows_in: r.get::<i64, _>("rows_in") as u64,
                rows_stored: r.get::<i64, _>("rows_stored") as u64,
                rows_quarantined: r.get::<i64, _>("rows_quarantined") as u64,
                replaces: false,
            })
            .collect())
    }

    /// Records a published run's files and, when given, the run's record, in one transaction
    /// (one durable commit, and never the files without the run's end or the reverse); with
    /// `replace`, the asset's earlier entries go first (a full refresh). Idempotent: recording
    /// the same run twice changes nothing.
    pub async fn record_published(
        &self,
        asset: &str,
        run_id: &str,
        txn_version: i64,
        replace: bool,
        files: &[LedgerEntry],
        run: Option<&RunRecord>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
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
            if f.replaces {
                sqlx::query(
                    "DELETE FROM file_ledger WHERE asset = $1 AND path = $2 AND txn_version < $3",
                )
                .bind(asset)
                .bind(&f.path)
                .bind(txn_version)
                .execute(&mut *tx)
                .await
                .map_err(state_err)?;
            }
            insert_ledger_entry(&mut tx, asset, f, run_id, txn_version, &now).await?;
        }
        // The mark follows the ledger, so the next run trusts it without reading the log.
        sqlx::query(
            "UPDATE ledger_marks SET txn_version = $2, files = (SELECT COUNT(*) FROM file_ledger WHERE asset = $1) WHERE asset = $1",
        )
        .bind(asset)
        .bind(txn_version)
        .execute(&mut *tx)
        .await
        .map_err(state_err)?;
        if let Some(run) = run {
            upsert_run(run).execute(&mut *tx).await.map_err(state_err)?;
        }
        tx.commit().await.map_err(state_err)
    }

    pub async fn insert_run(&self, run: &RunRecord) -> Result<()> {
        upsert_run(run)
            .execute(&self.pool)
            .await
            .map_err(state_err)?;
        Ok(())
    }

    /// Runs of `assets` left `running` by a process that died: with those assets' leases held,
    /// no live process owns them. Those in `except` (held back by recovery) are left alone.
    pub async fn mark_interrupted(
        &self,
        assets: &std::collections::BTreeSet<String>,
        except: &[String],
    ) -> Result<u64> {
        let mut marked = 0;
        for run in self.running_runs().await? {
            if except.contains(&run.id) || !assets.contains(&run.asset) {
                continue;
            }
            self.set_status(
                &run.id,
                "interrupted",
                "the process running it stopped before it finished; nothing it staged was published",
            )
            .await?;
            marked += 1;
        }
        Ok(marked)
    }

    /// The runs still marked `running`, oldest first.
    pub async fn running_runs(&self) -> Result<Vec<RunRecord>> {
        let mut runs = self
            .runs_with_status(None, Some("running"), u32::MAX)
            .await?;
        runs.reverse();
        Ok(runs)
    }

    /// Ends a run with `status` and `error` (the reason, for the user).
    pub async fn set_status(&self, id: &str, status: &str, error: &str) -> Result<()> {
        sqlx::query("UPDATE runs SET status = $1, ended_at = $2, error = $3 WHERE id = $4")
            .bind(status)
            .bind(now())
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(state_err)?;
        Ok(())
    }

    pub async fn runs(&self, asset: Option<&str>, limit: u32) -> Result<Vec<RunRecord>> {
        self.runs_with_status(asset, None, limit).await
    }

    /// Runs, newest first, of one asset and one status when given.
    pub async fn runs_with_status(
        &self,
        asset: Option<&str>,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE ($1 IS NULL OR asset = $1) AND ($2 IS NULL OR status = $2)
             ORDER BY started_at DESC, id DESC LIMIT $3",
        )
        .bind(asset)
        .bind(status)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(rows.iter().map(run_record).collect())
    }

    /// The assets with a run still marked `running`: being written by a live process, or
    /// left half done by one that died.
    pub async fn assets_running(&self) -> Result<std::collections::BTreeSet<String>> {
        let rows = sqlx::query("SELECT DISTINCT asset FROM runs WHERE status = 'running'")
            .fetch_all(&self.pool)
            .await
            .map_err(state_err)?;
        Ok(rows.iter().map(|r| r.get::<String, _>("asset")).collect())
    }

    /// The asset runs a run of `weir serve` made (their trigger is `serve:<queue id>`).
    pub async fn runs_by_trigger(&self, trigger: &str) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query("SELECT * FROM runs WHERE trigger = $1 ORDER BY started_at, id")
            .bind(trigger)
            .fetch_all(&self.pool)
            .await
            .map_err(state_err)?;
        Ok(rows.iter().map(run_record).collect())
    }

    /// The table, `txn` version and file count the ledger of `asset` last agreed with, and the
    /// ledger's file count now.
    pub async fn ledger_mark(&self, asset: &str) -> Result<(Option<LedgerMark>, i64)> {
        let mark =
            sqlx::query("SELECT table_id, txn_version, files FROM ledger_marks WHERE asset = $1")
                .bind(asset)
                .fetch_optional(&self.pool)
                .await
                .map_err(state_err)?
                .map(|r| LedgerMark {
                    table_id: r.get("table_id"),
                    txn_version: r.get("txn_version"),
                    files: r.get("files"),
                });
        let files: i64 = sqlx::query("SELECT COUNT(*) AS n FROM file_ledger WHERE asset = $1")
            .bind(asset)
            .fetch_one(&self.pool)
            .await
            .map_err(state_err)?
            .get("n");
        Ok((mark, files))
    }

    pub async fn set_ledger_mark(&self, asset: &str, mark: &LedgerMark) -> Result<()> {
        sqlx::query(
            "INSERT INTO ledger_marks (asset, table_id, txn_version, files) VALUES ($1, $2, $3, $4)
             ON CONFLICT (asset) DO UPDATE SET table_id = excluded.table_id, txn_version = excluded.txn_version, files = excluded.files",
        )
        .bind(asset)
        .bind(&mark.table_id)
        .bind(mark.txn_version)
        .bind(mark.files)
        .execute(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(())
    }

    /// Replaces the ledger of `asset` with `entries` (each with the run and `txn` version that
    /// published it), in one transaction: how the ledger is rebuilt from the lake.
    pub async fn replace_ledger(&self, asset: &str, entries: &[LakeLedgerEntry]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM file_ledger WHERE asset = $1")
            .bind(asset)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
        let now = now();
        for e in entries {
            insert_ledger_entry(&mut tx, asset, &e.entry, &e.run_id, e.txn_version, &now).await?;
        }
        tx.commit().await.map_err(state_err)
    }

    /// The cached content hashes, by absolute path, with the stat each was taken under.
    pub async fn file_hashes(&self) -> Result<HashMap<String, (FileStat, String)>> {
        let rows = sqlx::query(
            "SELECT path, size, mtime_ns, ctime_ns, inode, device, content_hash FROM file_hashes",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let stat = FileStat {
                    size: r.get::<i64, _>("size") as u64,
                    mtime_ns: r.get("mtime_ns"),
                    ctime_ns: r.get("ctime_ns"),
                    inode: r.get::<i64, _>("inode") as u64,
                    device: r.get::<i64, _>("device") as u64,
                };
                (r.get("path"), (stat, r.get("content_hash")))
            })
            .collect())
    }

    /// Caches the hashes of `units` that carry a settled stat (see `weir_ingest::FileStat`).
    pub async fn record_file_hashes(&self, units: &[FileUnit]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for unit in units {
            let Some(stat) = unit.stat else { continue };
            sqlx::query(
                "INSERT INTO file_hashes (path, size, mtime_ns, ctime_ns, inode, device, content_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
                   ctime_ns = excluded.ctime_ns, inode = excluded.inode, device = excluded.device,
                   content_hash = excluded.content_hash",
            )
            .bind(unit.path.display().to_string())
            .bind(stat.size as i64)
            .bind(stat.mtime_ns)
            .bind(stat.ctime_ns)
            .bind(stat.inode as i64)
            .bind(stat.device as i64)
            .bind(&unit.content_hash)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
        }
        tx.commit().await.map_err(state_err)
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.lease_pool.close().await;
    }
}

pub(crate) fn run_record(r: &AnyRow) -> RunRecord {
    RunRecord {
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
        files: r.get("files"),
        quarantine_by_rule: r.get("quarantine_by_rule"),
        null_counts: r.get("null_counts"),
    }
}

pub(crate) fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// How the state store writes an instant: RFC 3339 UTC with microseconds, so that instants
/// compare as text.
pub(crate) fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One file into the ledger; a file already there (same path and content) stays as it is.
async fn insert_ledger_entry(
    tx: &mut WriteTx,
    asset: &str,
    f: &LedgerEntry,
    run_id: &str,
    txn_version: i64,
    now: &str,
) -> Result<()> {
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
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(state_err)?;
    Ok(())
}

/// SQLite's "file is not a database" (26) and "database disk image is malformed" (11).
fn is_corrupt(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("26") | Some("11")),
        sqlx::Error::Migrate(m) => {
            matches!(m.as_ref(), sqlx::migrate::MigrateError::Execute(inner) if is_corrupt(inner))
        }
        _ => false,
    }
}

/// An exclusive lock on `<database>.migrate-lock`, waited for: held while the file is set up
/// (WAL mode, schema), released when dropped.
async fn migration_lock(database: &Path) -> std::result::Result<std::fs::File, sqlx::Error> {
    let path = std::path::PathBuf::from(format!("{}.migrate-lock", database.display()));
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
    .map_err(sqlx::Error::Io)
}

/// `url` without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

fn state_file_error(path: &Path, e: &sqlx::Error) -> OrchestrateError {
    OrchestrateError::State(format!(
        "cannot open the state store {}: {e}; check that the file is readable and writable, or move it away: weir rebuilds the file ledger from the Delta logs",
        path.display()
    ))
}

pub(crate) fn state_err(e: sqlx::Error) -> OrchestrateError {
    OrchestrateError::State(e.to_string())
}

/// The statement that records a run (or updates its record: same id).
fn upsert_run(run: &RunRecord) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(
        "INSERT INTO runs (id, asset, trigger, status, started_at, ended_at, rows_in, rows_stored, rows_quarantined, bytes_in, table_version, txn_version, contract_version, checks, error, rejected_files, files, quarantine_by_rule, null_counts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, rows_in = excluded.rows_in,
           rows_stored = excluded.rows_stored, rows_quarantined = excluded.rows_quarantined, bytes_in = excluded.bytes_in,
           table_version = excluded.table_version, txn_version = excluded.txn_version, checks = excluded.checks, error = excluded.error,
           rejected_files = excluded.rejected_files, files = excluded.files,
           quarantine_by_rule = excluded.quarantine_by_rule, null_counts = excluded.null_counts",
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
    .bind(&run.files)
    .bind(&run.quarantine_by_rule)
    .bind(&run.null_counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redact("postgres://weir:s3cret@db.internal:5432/weir"),
            "postgres://weir:***@db.internal:5432/weir"
        );
        assert_eq!(
            redact("postgres://weir@db.internal/weir"),
            "postgres://weir@db.internal/weir"
        );
        assert_eq!(redact("sqlite:///tmp/state.db"), "sqlite:///tmp/state.db");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn processes_opening_a_new_store_together_create_it_once() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("state.db").display());
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    let url = url.clone();
                    tokio::spawn(async move { StateStore::connect(&url).await.map(|_| ()) })
                })
                .collect();
            for open in opens {
                open.await.expect("task").expect("every open succeeds");
            }
        }
    }

    #[tokio::test]
    async fn an_unknown_scheme_says_which_are_supported() {
        let Err(e) = StateStore::connect("mysql://root:pw@localhost/weir").await else {
            panic!("mysql accepted");
        };
        let message = e.to_string();
        assert!(message.contains("postgres://"), "{message}");
        assert!(!message.contains("pw"), "{message}");
    }
}
