use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Metadata, Protocol, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::TryStreamExt;

use crate::error::{Result, StoreError};

/// Files are rolled at this size so one run never holds more than a file's worth in flight.
const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;

/// A column chunk's dictionary may grow to this size before the column falls back to plain
/// encoding. Columns of a few thousand distinct values (countries, statuses, small integers)
/// keep their dictionary; a column of mostly distinct values (ids, emails, timestamps) gives
/// up after a few thousand values instead of interning the first megabyte of them. Measured
/// on the bench's 10 M rows: 8 % less time to write, 11 % larger files than the 1 MiB default.
const DICTIONARY_PAGE_BYTES: usize = 64 * 1024;

/// Rows per Parquet row group. A reader skips whole row groups by their statistics, so this
/// is the grain at which a filtered scan (the affected keys of an incremental `merge`, a
/// `weir query` over a time range) avoids decoding rows: with parquet's default of 1 Mi rows
/// a year of events ordered by time is 10 row groups of 37 days each, and recomputing three
/// days decoded a million rows. DuckDB uses 122,880.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Snappy, as delta-rs writes by default, with the smaller dictionary limit and row groups
/// above.
fn writer_properties() -> parquet::file::properties::WriterProperties {
    parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Every table weir creates is checkpointed every this many commits (Delta's default is 100).
/// Opening a table replays every JSON commit since its last checkpoint, and a run opens its
/// table several times: a model refreshed on every trigger made each next run slower until
/// its 100th commit (measured: a fifth of the CPU of 40 sequential `weir serve` runs of a
/// one-row model went to decoding the log's JSON). Ten keeps the replay short for the price
/// of one small checkpoint file per ten commits; older commits stay for the history (log
/// clean-up still waits for `delta.logRetentionDuration`).
const CHECKPOINT_INTERVAL: &str = "10";

/// How many of the newest commits [`LakeTable::txn_version`] reads itself before it asks
/// delta-rs to replay the log.
const RECENT_TXN_COMMITS: u64 = 10;

/// One Delta table of the lake.
pub struct LakeTable {
    pub path: PathBuf,
    pub table: DeltaTable,
}

/// The `add` tag naming the source file whose rows a data file holds. Sources whose files may
/// be rewritten in place (`on_change = "replace"`) keep each file's rows in data files of their
/// own, so the lake itself says which rows a rewritten file contributed: they are the files
/// tagged with its name, removed in the commit that adds the new content.
pub const ORIGIN_TAG: &str = "weir.origin";

/// Tags staged files with the source file their rows came from (see [`ORIGIN_TAG`]).
pub fn tag_origin(adds: &mut [Add], origin: &str) {
    for add in adds {
        add.tags
            .get_or_insert_with(Default::default)
            .insert(ORIGIN_TAG.to_string(), Some(origin.to_string()));
    }
}

/// The source file a data file's rows came from, if it was tagged with one.
pub fn origin_of(add: &Add) -> Option<&str> {
    add.tags.as_ref()?.get(ORIGIN_TAG)?.as_deref()
}

/// How many of the newest commits [`LakeTable::last_commit_value`] reads before the rest.
const RECENT_COMMITS: usize = 8;

/// One data file of the current version of a table.
#[derive(Debug, Clone)]
pub struct LiveFile {
    /// Relative to the table, decoded: what a `remove` names.
    pub path: String,
    /// The source file its rows came from ([`ORIGIN_TAG`]), if tagged.
    pub origin: Option<String>,
    /// Its row count, from the file's statistics.
    pub rows: Option<u64>,
    /// Its nulls per column, from the file's statistics (columns they do not cover are absent).
    pub nulls: std::collections::BTreeMap<String, u64>,
    /// Its size.
    pub bytes: u64,
}

impl LiveFile {
    /// Reads what the `add` action says of one data file.
    fn of(path: String, add: &Add) -> LiveFile {
        let stats = add
            .stats
            .as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        let stats = stats.as_ref();
        LiveFile {
            path,
            origin: origin_of(add).map(str::to_string),
            rows: stats.and_then(|s| s["numRecords"].as_u64()),
            bytes: u64::try_from(add.size).unwrap_or(0),
            nulls: stats
                .and_then(|s| s["nullCount"].as_object())
                .map(|o| {
                    o.iter()
                        .filter_map(|(c, n)| Some((c.clone(), n.as_u64()?)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Nulls per column over the data files `adds` add, from their statistics: what a run
/// stored, counted without reading a row.
pub fn null_counts(adds: &[Add]) -> std::collections::BTreeMap<String, u64> {
    let mut total = std::collections::BTreeMap::new();
    for add in adds {
        for (column, n) in LiveFile::of(add.path.clone(), add).nulls {
            *total.entry(column).or_default() += n;
        }
    }
    total
}

/// What `weir show` tells about a table.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub version: Option<u64>,
    pub num_files: usize,
    pub size_bytes: i64,
}

/// The table `name`'s columns as Delta's kernel types them.
fn kernel_schema(schema: &SchemaRef, name: &str) -> Result<StructType> {
    schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| StoreError::Other(format!("{name}: {e}")))
}

/// Creates a table at `url` with one commit (version 0: its protocol and metadata) and one
/// read of what was committed. delta-rs's `CreateBuilder` reads the location twice before
/// committing (to find whether a table is there) and loads the new table twice after it: a
/// model's first run creates two tables, and these reads were a large share of its time. `open`
/// has just found no table here, and a table created meanwhile (which the asset's lease
/// rules out) makes the commit fail rather than follow it: the version 0 file is written
/// only if absent, and no retry is allowed.
async fn create(
    path: &Path,
    url: url::Url,
    name: &str,
    schema: &SchemaRef,
    description: Option<&str>,
) -> Result<DeltaTable> {
    let struct_type = kernel_schema(schema, name)?;
    let invalid = |e: serde_json::Error| StoreError::Other(format!("{name}: {e}"));
    // The protocol and metadata actions, in the Delta protocol's own JSON (what the log
    // holds): the kernel offers no other stable way to build a metadata action.
    let protocol: Protocol = serde_json::from_value(serde_json::json!({
        "minReaderVersion": 1,
        "minWriterVersion": 2,
    }))
    .map_err(invalid)?;
    let metadata: Metadata = serde_json::from_value(serde_json::json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "name": name,
        "description": description,
        "format": { "provider": "parquet", "options": {} },
        "schemaString": serde_json::to_string(&struct_type).map_err(invalid)?,
        "partitionColumns": [],
        "configuration": { "delta.checkpointInterval": CHECKPOINT_INTERVAL },
        "createdTime": chrono::Utc::now().timestamp_millis(),
    }))
    .map_err(invalid)?;
    let mut table = DeltaTableBuilder::from_url(url.clone())
        .and_then(|builder| builder.build())
        .map_err(StoreError::delta(path))?;
    let operation = DeltaOperation::Create {
        mode: SaveMode::ErrorIfExists,
        location: url,
        protocol: protocol.clone(),
        metadata: metadata.clone(),
    };
    let finalized = CommitBuilder::from(LakeTable::commit_properties())
        .with_max_retries(0)
        .with_actions(vec![Action::Protocol(protocol), Action::Metadata(metadata)])
        .build(None, table.log_store(), operation)
        .await
        .map_err(|source| {
            if crate::head::commit_file(path, 0).exists() {
                StoreError::Other(format!(
                    "{}: another writer created a table here while weir was creating it; nothing was committed ({source})",
                    path.display()
                ))
            } else {
                StoreError::delta(path)(source)
            }
        })?;
    table.state = Some(finalized.snapshot);
    Ok(table)
}

pub(crate) fn table_url(path: &Path) -> Result<url::Url> {
    std::fs::create_dir_all(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let absolute = std::fs::canonicalize(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    url::Url::from_directory_path(&absolute).map_err(|()| {
        StoreError::Other(format!("{} is not a valid table location", path.display()))
    })
}

impl LakeTable {
    /// Opens the table at `path`, or `None` if no Delta table exists there yet. A table this
    /// process opened before is brought up to date from where it was (see `kept.rs`) rather
    /// than read again from its last checkpoint.
    pub async fn open(path: &Path) -> Result<Option<LakeTable>> {
        if !crate::head::log_dir(path).exists() {
            return Ok(None);
        }
        let url = table_url(path)?;
        let canonical = url
            .to_file_path()
            .map_err(|()| StoreError::Other(format!("{} is not a local path", path.display())))?;
        if let Some(mut table) = crate::kept::reusable(&canonical) {
            let kept_version = table.version();
            // Delta's commits are numbered without gaps: without the next one's file there
            // is no commit since, and one file lookup says so where delta-rs's update lists
            // the whole log (every commit of the retention period, on a busy table).
            if let Some(v) = kept_version
                && !crate::head::commit_file(&canonical, v + 1).exists()
            {
                return Ok(Some(LakeTable {
                    path: path.to_path_buf(),
                    table,
                }));
            }
            match table.update_incremental(None).await {
                Ok(()) => {
                    // Unchanged, the kept entry stands: no second read of the commit file.
                    if table.version() != kept_version {
                        crate::kept::keep(&canonical, &table);
                    }
                    return Ok(Some(LakeTable {
                        path: path.to_path_buf(),
                        table,
                    }));
                }
                // Whatever went wrong, a fresh open says it properly (or succeeds).
                Err(_) => crate::kept::forget(&canonical),
            }
        }
        match deltalake::open_table(url).await {
            Ok(table) => {
                crate::kept::keep(&canonical, &table);
                Ok(Some(LakeTable {
                    path: path.to_path_buf(),
                    table,
                }))
            }
            // A log folder without a first commit: a creation that was killed half-way.
            Err(deltalake::DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(StoreError::Delta {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    /// Opens the table, creating it with `schema` if it does not exist. An existing table
    /// whose columns differ from `schema` is an error: the contract changed under it.
    pub async fn open_or_create(
        path: &Path,
        name: &str,
        schema: &SchemaRef,
        description: Option<&str>,
    ) -> Result<LakeTable> {
        if let Some(existing) = LakeTable::open(path).await? {
            existing.check_schema(schema)?;
            return Ok(existing);
        }
        let url = table_url(path)?;
        let table = create(path, url.clone(), name, schema, description).await?;
        // Kept like an opened table: the run that created it opens it again to publish.
        if let Ok(canonical) = url.to_file_path() {
            crate::kept::keep(&canonical, &table);
        }
        Ok(LakeTable {
            path: path.to_path_buf(),
            table,
        })
    }

    /// Like [`LakeTable::open_or_create`], but an existing table that lacks some nullable
    /// columns of `schema`, and has every other column with its type, gets them in one
    /// metadata commit (Delta schema evolution: no data file is rewritten, old rows read them
    /// as null). They go after the table's columns, wherever `schema` has them:
    /// [`StagedWriter::write`] puts a batch's columns in the table's order. Any other
    /// difference (a column removed, retyped, or a new required one) is the same error.
    pub async fn open_or_create_evolving(
        path: &Path,
        name: &str,
        schema: &SchemaRef,
        description: Option<&str>,
    ) -> Result<LakeTable> {
        match LakeTable::open_evolving(path, name, schema).await? {
            Some(existing) => Ok(existing),
            None => LakeTable::open_or_create(path, name, schema, description).await,
        }
    }

    /// [`LakeTable::open_or_create_evolving`] of a table that exists, or `None` (and nothing
    /// created) if there is none at `path`.
    pub async fn open_evolving(
        path: &Path,
        name: &str,
        schema: &SchemaRef,
    ) -> Result<Option<LakeTable>> {
        let Some(mut existing) = LakeTable::open(path).await? else {
            return Ok(None);
        };
        let actual = existing.columns()?;
        let struct_type = kernel_schema(schema, name)?;
        let has = |column: &str| actual.iter().any(|(n, _)| n == column);
        let keeps_every_column = actual.iter().all(|(n, t)| {
            struct_type
                .fields()
                .any(|f| f.name() == n && &f.data_type().to_string() == t)
        });
        let added: Vec<_> = struct_type
            .fields()
            .filter(|f| !has(f.name()))
            .cloned()
            .collect();
        if keeps_every_column && !added.is_empty() && added.iter().all(|f| f.is_nullable()) {
            existing.table = existing
                .table
                .clone()
                .add_columns()
                .with_fields(added)
                .await
                .map_err(StoreError::delta(path))?;
        }
        existing.check_schema_by_name(schema)?;
        Ok(Some(existing))
    }

    fn columns(&self) -> Result<Vec<(String, String)>> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(StoreError::delta(&self.path))?;
        Ok(snapshot
            .schema()
            .fields()
            .map(|f| (f.name().to_string(), f.data_type().to_string()))
            .collect())
    }

    /// Like `check_schema`, with the columns in any order.
    fn check_schema_by_name(&self, expected: &SchemaRef) -> Result<()> {
        let mut actual = self.columns()?;
        let mut wanted = kernel_columns(expected)?;
        actual.sort();
        wanted.sort();
        if actual == wanted {
            return Ok(());
        }
        self.check_schema(expected)
    }

    fn check_schema(&self, expected: &SchemaRef) -> Result<()> {
        let actual = self.columns()?;
        let wanted = kernel_columns(expected)?;
        if actual != wanted {
            let show = |cols: &[(String, String)]| {
                cols.iter()
                    .map(|(n, t)| format!("{n}: {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(StoreError::Other(format!(
                "table {} has columns ({}) but the contract now says ({}): a change that is not only new optional columns is breaking (`weir plan` says who reads what). Rebuild it (`weir run --full-refresh` after removing the table directory), or keep this contract and publish the change as a new contract version beside it",
                self.path.display(),
                show(&actual),
                show(&wanted)
            )));
        }
        Ok(())
    }

    /// What every commit weir makes on this table starts from: no checkpoint and no log
    /// clean-up inside the commit. Both are written after it, beside the run, when due
    /// (`checkpoint.rs`): delta-rs would write the checkpoint of every tenth commit before the
    /// commit returns, and would list the whole log after every commit to delete the entries
    /// past their retention (thousands of files per commit on a table refreshed every few
    /// minutes). Delta cleans up when it writes a checkpoint, and so does weir.
    pub(crate) fn commit_properties() -> CommitProperties {
        CommitProperties::default()
            .with_create_checkpoint(false)
            .with_cleanup_expired_logs(Some(false))
    }

    /// Starts the checkpoint of the version just committed, if one is due.
    pub(crate) fn after_commit(&self) {
        crate::checkpoint::schedule_if_due(&self.path, &self.table);
    }

    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// Opens the table as it was at `version` (time travel), or `None` without a table.
    pub async fn open_at(path: &Path, version: u64) -> Result<Option<LakeTable>> {
        if !crate::head::log_dir(path).exists() {
            return Ok(None);
        }
        let url = table_url(path)?;
        let table = deltalake::open_table_with_version(url, version)
            .await
            .map_err(StoreError::delta(path))?;
        Ok(Some(LakeTable {
            path: path.to_path_buf(),
            table,
        }))
    }

    /// The table's identity: the id Delta gives it at creation. A table deleted and rebuilt
    /// gets a new one, so a version number alone never stands for the same data.
    pub fn table_id(&self) -> Result<String> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(StoreError::delta(&self.path))?;
        Ok(snapshot.metadata().id().to_string())
    }

    /// A value weir put in the `commitInfo` of the latest commit that published rows (e.g.
    /// `weir.upstreamVersions`): compactions are looked past.
    pub async fn last_commit_value(&self, key: &str) -> Result<Option<serde_json::Value>> {
        // Every model run asks this, so the newest commits are read one at a time from the
        // local log, newest first (the first usually answers), and the whole history only
        // when all of those are compactions (which change no row, so the value is the last
        // publication's) or one cannot be read.
        if let Some(found) = self.recent_commit_value(key) {
            return Ok(found);
        }
        self.history_commit_value(key).await
    }

    /// [`Self::last_commit_value`] through delta-rs's history: the newest commits first, then
    /// the whole log.
    async fn history_commit_value(&self, key: &str) -> Result<Option<serde_json::Value>> {
        for limit in [Some(RECENT_COMMITS), None] {
            let mut history = self.table.history(limit);
            let mut read = 0;
            while let Some(info) = history
                .try_next()
                .await
                .map_err(StoreError::delta(&self.path))?
            {
                read += 1;
                let compaction = info.info.get(crate::compact::OPERATION_KEY)
                    == Some(&serde_json::Value::from(crate::compact::COMPACT));
                if !compaction {
                    return Ok(info.info.get(key).cloned());
                }
            }
            if limit.is_some_and(|l| read < l) {
                break;
            }
        }
        Ok(None)
    }

    /// What [`Self::last_commit_value`] finds in the newest [`RECENT_COMMITS`] commit files at
    /// or before this snapshot's version: `Some(value)` from the newest that is not a
    /// compaction, `None` when all are compactions or one cannot be read or parsed.
    fn recent_commit_value(&self, key: &str) -> Option<Option<serde_json::Value>> {
        let newest = self.table.version()?;
        let oldest = newest.saturating_sub(RECENT_COMMITS as u64 - 1);
        for v in (oldest..=newest).rev() {
            let actions = crate::head::commit_actions(&self.path, v)?;
            let info = actions.into_iter().find_map(|a| match a {
                deltalake::kernel::Action::CommitInfo(info) => Some(info),
                _ => None,
            })?;
            let compaction = info.info.get(crate::compact::OPERATION_KEY)
                == Some(&serde_json::Value::from(crate::compact::COMPACT));
            if !compaction {
                return Some(info.info.get(key).cloned());
            }
        }
        None
    }

    /// Takes the table as this process's commit left it: `state` is the snapshot delta-rs
    /// built after the commit (the one before it plus the commit's actions). The table is
    /// kept so, and the run's next open of it reads nothing of the commit again.
    pub(crate) fn committed(&mut self, state: deltalake::table::state::DeltaTableState) {
        self.table.state = Some(state);
        // Kept under the path `open` looks it up by.
        if let Some(canonical) = table_url(&self.path)
            .ok()
            .and_then(|url| url.to_file_path().ok())
        {
            crate::kept::keep(&canonical, &self.table);
        }
        self.after_commit();
    }

    pub async fn refresh(&mut self) -> Result<()> {
        self.table
            .update_state()
            .await
            .map_err(StoreError::delta(&self.path))
    }

    /// The last `txn` version committed by `app_id`: how far this table has published.
    ///
    /// Delta keeps, per app id, the `txn` of the newest commit that carries one, so the
    /// newest commits are read first, one commit entry each (weir's own publications carry
    /// their `txn`, so the first one read usually answers). Only when none of the last
    /// [`RECENT_TXN_COMMITS`] has it, or one of them cannot be read, or the table lets
    /// transactions expire, does delta-rs replay the whole log for it (which every run did
    /// several times before: most of a small run's CPU).
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(StoreError::delta(&self.path))?;
        if snapshot
            .table_config()
            .set_transaction_retention_duration
            .is_none()
            && let Some(found) = self.txn_in_recent_commits(app_id)
        {
            return Ok(Some(found));
        }
        snapshot
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(StoreError::delta(&self.path))
    }

    /// The `txn` version of `app_id` in the newest commit at or before this snapshot's version
    /// that carries one, among the last [`RECENT_TXN_COMMITS`]; `None` when none of them
    /// does or one cannot be read (the caller then replays the log).
    fn txn_in_recent_commits(&self, app_id: &str) -> Option<i64> {
        let newest = self.table.version()?;
        let oldest = newest.saturating_sub(RECENT_TXN_COMMITS - 1);
        for v in (oldest..=newest).rev() {
            let actions = crate::head::commit_actions(&self.path, v)?;
            let found = actions.iter().find_map(|a| match a {
                deltalake::kernel::Action::Txn(t) if t.app_id == app_id => Some(t.version),
                _ => None,
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Every data file of the current version, with its origin tag and row count.
    pub async fn live_files(&self) -> Result<Vec<LiveFile>> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(StoreError::delta(&self.path))?;
        snapshot
            .snapshot()
            .file_views(self.table.log_store().as_ref(), None)
            .map_ok(|f| {
                #[allow(deprecated)] // the only public way to a file's tags
                let add = f.add_action();
                LiveFile::of(f.path().into_owned(), &add)
            })
            .try_collect()
            .await
            .map_err(StoreError::delta(&self.path))
    }

    /// Whether the current version has no data file at all.
    pub async fn has_no_files(&self) -> Result<bool> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(StoreError::delta(&self.path))?;
        let mut files = snapshot
            .snapshot()
            .file_views(self.table.log_store().as_ref(), None);
        let first = files
            .try_next()
            .await
            .map_err(StoreError::delta(&self.path))?;
        Ok(first.is_none())
    }

    /// The rows and per-column nulls of the current version without the files `excluding`,
    /// from the files' statistics; `None` when a file has no row count in its statistics (a
    /// writer that kept none), so the caller must count by scanning.
    pub async fn counts(&self, excluding: &[String]) -> Result<Option<weir_model::TableCounts>> {
        let excluded: std::collections::BTreeSet<&str> =
            excluding.iter().map(String::as_str).collect();
        let mut counts = weir_model::TableCounts::default();
        let mut first = true;
        for file in self.live_files().await? {
            if excluded.contains(file.path.as_str()) {
                continue;
            }
            let Some(rows) = file.rows else {
                return Ok(None);
            };
            counts.rows += rows;
            if first {
                counts.nulls = file.nulls;
                first = false;
            } else {
                counts.nulls.retain(|c, total| match file.nulls.get(c) {
                    Some(n) => {
                        *total += n;
                        true
                    }
                    None => false,
                });
            }
        }
        Ok(Some(counts))
    }

    pub async fn info(&self) -> Result<TableInfo> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(StoreError::delta(&self.path))?;
        let files: Vec<_> = snapshot
            .snapshot()
            .file_views(self.table.log_store().as_ref(), None)
            .try_collect()
            .await
            .map_err(StoreError::delta(&self.path))?;
        Ok(TableInfo {
            version: self.version(),
            num_files: files.len(),
            size_bytes: files.iter().map(|f| f.size()).sum(),
        })
    }

    /// A writer whose files are staged in the table directory but belong to no version.
    pub fn stage(&self) -> Result<StagedWriter> {
        let writer = RecordBatchWriter::for_table(&self.table)
            .map_err(StoreError::delta(&self.path))?
            .with_target_file_size(TARGET_FILE_BYTES)
            .with_writer_properties(writer_properties());
        Ok(StagedWriter {
            writer,
            path: self.path.clone(),
            rows: 0,
        })
    }
}

/// Streams batches into staged Parquet files; [`StagedWriter::finish`] returns the `add`
/// actions a commit must carry to make them visible.
pub struct StagedWriter {
    writer: RecordBatchWriter,
    path: PathBuf,
    pub rows: u64,
}

impl StagedWriter {
    /// The table's schema, which every written batch is given in.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.writer.arrow_schema()
    }

    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        let batch = in_table_order(batch, &self.writer.arrow_schema(), &self.path)?;
        self.writer
            .write(batch)
            .await
            .map_err(StoreError::delta(&self.path))
    }

    /// Abandons the staged rows: flushes what is buffered, so no half-written upload is left
    /// for a background task to abort, then deletes the files. No version names them.
    pub async fn discard(self) -> Result<()> {
        let path = self.path.clone();
        let adds = self.finish().await?;
        discard_staged(&path, &adds);
        Ok(())
    }

    pub async fn finish(mut self) -> Result<Vec<Add>> {
        if self.rows == 0 {
            self.writer.reset();
            return Ok(Vec::new());
        }
        self.writer
            .flush()
            .await
            .map_err(StoreError::delta(&self.path))
    }
}

/// Registers the published table under `name` in a query context.
pub async fn register_delta(ctx: &SessionContext, name: &str, table: &LakeTable) -> Result<()> {
    table
        .table
        .update_datafusion_session(&ctx.state())
        .map_err(StoreError::delta(&table.path))?;
    let provider = table
        .table
        .table_provider()
        .await
        .map_err(StoreError::Query)?;
    ctx.register_table(name, provider)?;
    Ok(())
}

/// The Arrow schema of a table registered in `ctx`: the one to read its data files with.
async fn registered_schema(ctx: &SessionContext, name: &str) -> Result<arrow::datatypes::Schema> {
    Ok(ctx.table(name).await?.schema().as_arrow().clone())
}

/// Registers under `name` a view of just these data files of `table` (absolute paths), read
/// with the table's schema: the rows some commits added, for incremental processing.
pub async fn register_files(
    ctx: &SessionContext,
    name: &str,
    table: &LakeTable,
    files: &[PathBuf],
) -> Result<()> {
    let published = format!("{name}__schema");
    register_delta(ctx, &published, table).await?;
    let schema = registered_schema(ctx, &published).await?;
    ctx.deregister_table(published.as_str())?;
    if files.is_empty() {
        let empty =
            datafusion::datasource::MemTable::try_new(std::sync::Arc::new(schema), vec![vec![]])?;
        ctx.register_table(name, std::sync::Arc::new(empty))?;
        return Ok(());
    }
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let df = ctx
        .read_parquet(paths, ParquetReadOptions::default().schema(&schema))
        .await?;
    ctx.register_table(name, df.into_view())?;
    Ok(())
}

/// Registers under `name` the published table without the data files `removes` (paths as
/// [`LiveFile::path`]): what a commit removing them leaves. With nothing to remove, it is the
/// Delta table itself, whose scan prunes files by their statistics.
pub async fn register_delta_without(
    ctx: &SessionContext,
    name: &str,
    table: &LakeTable,
    removes: &[String],
) -> Result<()> {
    if removes.is_empty() {
        return register_delta(ctx, name, table).await;
    }
    let removed: std::collections::BTreeSet<&str> = removes.iter().map(String::as_str).collect();
    let kept: Vec<PathBuf> = table
        .live_files()
        .await?
        .into_iter()
        .filter(|f| !removed.contains(f.path.as_str()))
        .map(|f| table.path.join(&f.path))
        .collect();
    register_files(ctx, name, table, &kept).await
}

/// Registers under `name` the table as it will be once `staged` is published (and the files
/// `removes` are removed): what readers see now plus the staged files. The audit runs against
/// this view.
pub async fn register_post_publish_view(
    ctx: &SessionContext,
    name: &str,
    table: &LakeTable,
    staged: &[Add],
    removes: &[String],
    replace: bool,
    merge_keys: &[String],
) -> Result<()> {
    let published = format!("{name}__published");
    let staged_name = format!("{name}__staged");
    register_delta_without(ctx, &published, table, removes).await?;
    let mut parts = Vec::new();
    let merging = !merge_keys.is_empty() && !staged.is_empty();
    if !replace && !merging {
        parts.push(format!("SELECT * FROM \"{published}\""));
    }
    if !staged.is_empty() {
        let paths: Vec<String> = staged
            .iter()
            .map(|add| {
                table
                    .path
                    .join(percent_decode(&add.path))
                    .display()
                    .to_string()
            })
            .collect();
        let schema = registered_schema(ctx, &published).await?;
        let options = ParquetReadOptions::default().schema(&schema);
        let df = ctx.read_parquet(paths, options).await?;
        ctx.register_table(staged_name.as_str(), df.into_view())?;
        if merging && !replace {
            // A merge keeps the published rows whose key the staged rows do not carry.
            let matches = keys_equal(merge_keys, "s", "p");
            parts.push(format!(
                "SELECT * FROM \"{published}\" p WHERE NOT EXISTS (SELECT 1 FROM \"{staged_name}\" s WHERE {matches})"
            ));
        }
        parts.push(format!("SELECT * FROM \"{staged_name}\""));
    }
    if parts.is_empty() {
        parts.push(format!("SELECT * FROM \"{published}\" WHERE false"));
    }
    let sql = format!(
        "CREATE OR REPLACE VIEW \"{name}\" AS {}",
        parts.join(" UNION ALL ")
    );
    ctx.sql(&sql).await?.collect().await?;
    Ok(())
}

/// Removes staged files of a run that will not publish. No version names them, so this is
/// tidiness, not correctness: a leftover file is invisible to every reader. Returns how many
/// files were deleted.
pub fn discard_staged(table_path: &Path, staged: &[Add]) -> usize {
    staged
        .iter()
        .filter(|add| std::fs::remove_file(table_path.join(percent_decode(&add.path))).is_ok())
        .count()
}

/// `batch` with its columns in the order of the table's `schema` (an evolved table has its
/// new columns last, wherever the contract lists them).
fn in_table_order(batch: RecordBatch, schema: &SchemaRef, path: &Path) -> Result<RecordBatch> {
    let batch = without_views(batch, schema, path)?;
    if batch.schema().fields().len() != schema.fields().len()
        || batch
            .schema()
            .fields()
            .iter()
            .zip(schema.fields())
            .all(|(a, b)| a.name() == b.name())
    {
        return Ok(batch);
    }
    let order = schema
        .fields()
        .iter()
        .map(|f| batch.schema().index_of(f.name()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Other(format!("{}: {e}", path.display())))?;
    batch
        .project(&order)
        .map_err(|e| StoreError::Other(format!("{}: {e}", path.display())))
}

/// `batch` with its string and binary views (how DataFusion reads Parquet) turned into the
/// plain strings and binaries of the table's same-named columns: a lossless change of
/// layout. Every other type is left to the writer, which refuses a mismatch rather than
/// casting it.
fn without_views(batch: RecordBatch, schema: &SchemaRef, path: &Path) -> Result<RecordBatch> {
    use arrow::datatypes::DataType;
    let plain = |from: &DataType, to: &DataType| {
        matches!(
            (from, to),
            (DataType::Utf8View, DataType::Utf8 | DataType::LargeUtf8)
                | (
                    DataType::BinaryView,
                    DataType::Binary | DataType::LargeBinary
                )
        )
    };
    let wanted: Vec<Option<arrow::datatypes::FieldRef>> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| {
            schema
                .field_with_name(f.name())
                .ok()
                .filter(|t| plain(f.data_type(), t.data_type()))
                .map(|t| {
                    std::sync::Arc::new(f.as_ref().clone().with_data_type(t.data_type().clone()))
                })
        })
        .collect();
    if wanted.iter().all(Option::is_none) {
        return Ok(batch);
    }
    let fail = |e: arrow::error::ArrowError| StoreError::Other(format!("{}: {e}", path.display()));
    let mut fields = Vec::with_capacity(wanted.len());
    let mut columns = Vec::with_capacity(wanted.len());
    for ((field, column), to) in batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .zip(wanted)
    {
        match to {
            Some(to) => {
                columns.push(arrow::compute::cast(column, to.data_type()).map_err(fail)?);
                fields.push(to);
            }
            None => {
                columns.push(column.clone());
                fields.push(field.clone());
            }
        }
    }
    RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )
    .map_err(fail)
}

/// The absolute paths of staged files, for [`register_files`].
pub fn staged_paths(table_path: &Path, staged: &[Add]) -> Vec<PathBuf> {
    staged
        .iter()
        .map(|add| table_path.join(percent_decode(&add.path)))
        .collect()
}

/// A SQL identifier, quoted.
pub(crate) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// `left.k = right.k AND ...` over the key columns: how a staged row matches a published
/// one, in the audit's view of a merge and in the merge itself (SQL equality, so a NULL key
/// matches nothing).
pub(crate) fn keys_equal(keys: &[String], left: &str, right: &str) -> String {
    keys.iter()
        .map(|k| format!("{left}.{q} = {right}.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Delta `add` paths are URI-encoded relative paths.
pub(crate) fn percent_decode(path: &str) -> String {
    url::Url::parse(&format!("file:///{path}"))
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .map(|p| p.to_string_lossy().trim_start_matches('/').to_string())
        .unwrap_or_else(|| path.to_string())
}

fn kernel_columns(schema: &SchemaRef) -> Result<Vec<(String, String)>> {
    let wanted: StructType = schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(wanted
        .fields()
        .map(|f| (f.name().to_string(), f.data_type().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::{Publication, PublicationPart};

    async fn publish(path: &Path, version: i64, adds: Vec<Add>, removes: Vec<String>) {
        publish_with(path, version, adds, removes, BTreeMap::new()).await;
    }

    async fn publish_with(
        path: &Path,
        version: i64,
        adds: Vec<Add>,
        removes: Vec<String>,
        commit_metadata: BTreeMap<String, serde_json::Value>,
    ) {
        publish_as("weir:t", path, version, adds, removes, commit_metadata).await;
    }

    async fn publish_as(
        app_id: &str,
        path: &Path,
        version: i64,
        adds: Vec<Add>,
        removes: Vec<String>,
        commit_metadata: BTreeMap<String, serde_json::Value>,
    ) {
        Publication {
            run_id: format!("r{version}"),
            app_id: app_id.into(),
            version,
            commit_metadata,
            parts: vec![PublicationPart {
                table_path: path.to_path_buf(),
                adds,
                replace: false,
                merge_keys: Vec::new(),
                removes,
                schema: None,
            }],
            payload: serde_json::Value::Null,
        }
        .apply()
        .await
        .expect("publish");
    }

    /// The tests' tables: one nullable integer column `a`.
    fn one_column() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]))
    }

    /// A new table `t` of [`one_column`] at `path`.
    async fn new_table(path: &Path) -> LakeTable {
        LakeTable::open_or_create(path, "t", &one_column(), None)
            .await
            .expect("create")
    }

    /// A created table is what delta-rs reads afresh: its name, description, columns and
    /// checkpoint interval, at version 0. A second creation at the same path fails and
    /// commits nothing (it would otherwise replace the first one's metadata as version 1).
    #[tokio::test(flavor = "multi_thread")]
    async fn a_table_is_created_once_with_its_metadata() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        let created = LakeTable::open_or_create(&path, "t", &one_column(), Some("why"))
            .await
            .expect("create");
        assert_eq!(created.version(), Some(0));
        let url = table_url(&path).expect("url");
        let fresh = deltalake::open_table(url.clone()).await.expect("open");
        let metadata = fresh.snapshot().expect("snapshot").metadata().clone();
        assert_eq!(metadata.name(), Some("t"));
        assert_eq!(metadata.description(), Some("why"));
        assert_eq!(
            metadata.configuration().get("delta.checkpointInterval"),
            Some(&CHECKPOINT_INTERVAL.to_string())
        );
        assert_eq!(
            created.columns().expect("columns"),
            vec![("a".to_string(), "long".to_string())]
        );
        let again = create(&path, url.clone(), "t", &one_column(), Some("other")).await;
        let Err(e) = again else {
            panic!("a second creation must fail");
        };
        assert!(
            e.to_string()
                .contains("another writer created a table here"),
            "{e}"
        );
        let reread = deltalake::open_table(url).await.expect("open");
        assert_eq!(reread.version(), Some(0));
        assert_eq!(
            reread
                .snapshot()
                .expect("snapshot")
                .metadata()
                .description(),
            Some("why")
        );
    }

    async fn stage(table: &LakeTable, values: Vec<i64>, origin: &str) -> Vec<Add> {
        let batch = RecordBatch::try_new(one_column(), vec![Arc::new(Int64Array::from(values))])
            .expect("batch");
        let mut writer = table.stage().expect("stage");
        writer.write(batch).await.expect("write");
        let mut adds = writer.finish().await.expect("finish");
        tag_origin(&mut adds, origin);
        adds
    }

    /// The value weir put in the last commit that published rows, read from the newest commit
    /// files, is the one delta-rs's history gives: in the newest commit, behind a few
    /// compactions, and behind more compactions than the newest commits read.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_last_published_commit_value_agrees_with_the_history() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        let table = new_table(&path).await;
        let mut version = 0;
        for (i, compactions) in [0usize, 2, 0, RECENT_COMMITS + 1, 1]
            .into_iter()
            .enumerate()
        {
            version += 1;
            let adds = stage(&table, vec![version], &format!("data/{i}.csv")).await;
            let value = BTreeMap::from([("weir.k".to_string(), serde_json::json!(i))]);
            publish_as("weir:a", &path, version, adds, Vec::new(), value).await;
            // A compaction's commit changes no row and says so: it is looked past.
            for _ in 0..compactions {
                version += 1;
                let compaction = BTreeMap::from([(
                    crate::compact::OPERATION_KEY.to_string(),
                    serde_json::json!(crate::compact::COMPACT),
                )]);
                publish_as("weir:a", &path, version, Vec::new(), Vec::new(), compaction).await;
            }
            let table = LakeTable::open(&path).await.expect("open").expect("table");
            let found = table.last_commit_value("weir.k").await.expect("value");
            assert_eq!(found, Some(serde_json::json!(i)), "publication {i}");
            let history = table.history_commit_value("weir.k").await.expect("history");
            assert_eq!(found, history, "publication {i}");
            assert_eq!(
                table.last_commit_value("weir.other").await.expect("value"),
                None
            );
        }
    }

    /// The `txn` read from the newest commits is the one delta-rs finds by replaying the log:
    /// in the newest commit, further back, past the commits read (and past a checkpoint), and
    /// for an app id that never committed.
    #[tokio::test(flavor = "multi_thread")]
    async fn txn_versions_from_recent_commits_agree_with_a_log_replay() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        let table = new_table(&path).await;
        let replayed = |table: &LakeTable, app: &str| {
            let app = app.to_string();
            let snapshot = table.table.snapshot().expect("snapshot").clone();
            let store = table.table.log_store();
            async move {
                snapshot
                    .transaction_version(store.as_ref(), app)
                    .await
                    .expect("replay")
            }
        };
        let mut expected: BTreeMap<&str, i64> = BTreeMap::new();
        // "weir:a" publishes at commits 1 and 2, "weir:b" at the 14 after: "weir:a"'s last
        // txn ends up past the commits read; "weir:b"'s is in the newest.
        for (i, app) in std::iter::repeat_n("weir:a", 2)
            .chain(std::iter::repeat_n("weir:b", 14))
            .enumerate()
        {
            let version = i as i64 + 5;
            let adds = stage(&table, vec![version], &format!("data/{i}.csv")).await;
            publish_as(app, &path, version, adds, Vec::new(), BTreeMap::new()).await;
            expected.insert(app, version);
            let table = LakeTable::open(&path).await.expect("open").expect("table");
            for app in ["weir:a", "weir:b", "weir:never"] {
                let fast = table.txn_version(app).await.expect("txn");
                assert_eq!(fast, replayed(&table, app).await, "{app} after commit {i}");
                assert_eq!(fast, expected.get(app).copied(), "{app} after commit {i}");
            }
        }
    }

    /// The live files and version of the table at `path` as a fresh open by delta-rs reads
    /// them, without anything this process kept: the oracle for a kept table.
    async fn as_read_afresh(path: &Path) -> (Option<u64>, Vec<String>) {
        let url = table_url(path).expect("url");
        let table = deltalake::open_table(url).await.expect("fresh open");
        let mut files: Vec<String> = table.get_file_uris().expect("files").collect();
        files.sort();
        (table.version(), files)
    }

    async fn as_opened(path: &Path) -> (Option<u64>, Vec<String>) {
        let table = LakeTable::open(path).await.expect("open").expect("table");
        let mut files: Vec<String> = table.table.get_file_uris().expect("files").collect();
        files.sort();
        (table.version(), files)
    }

    /// A table opened again is brought up to date from where this process kept it: it sees
    /// every commit made since, through any handle, across a checkpoint, as a fresh open does.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_kept_table_sees_every_commit_made_since() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        let table = new_table(&path).await;
        let canonical = table_url(&path).expect("url").to_file_path().expect("path");
        for i in 0..13i64 {
            let adds = stage(&table, vec![i], &format!("data/{i}.csv")).await;
            // Every third commit replaces the table, so kept file lists must drop files too.
            let removes = if i % 3 == 2 {
                LakeTable::open(&path)
                    .await
                    .expect("open")
                    .expect("table")
                    .live_files()
                    .await
                    .expect("files")
                    .into_iter()
                    .map(|f| f.path)
                    .collect()
            } else {
                Vec::new()
            };
            publish(&path, i + 1, adds, removes).await;
            assert_eq!(
                as_opened(&path).await,
                as_read_afresh(&path).await,
                "after commit {i}"
            );
            assert!(crate::kept::is_kept(&canonical));
        }
    }

    /// A table deleted and created again at the same path by another process, with as many
    /// commits as the kept one, more or fewer, is opened afresh: never the kept table's files,
    /// never its commits mixed in.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_table_created_again_at_the_same_path_is_not_taken_for_the_kept_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        for (round, commits) in [2i64, 2, 3, 1].into_iter().enumerate() {
            // Built elsewhere and moved into place, as another process's table would appear:
            // this process never opens it before it replaces the kept one.
            let elsewhere = tmp.path().join(format!("elsewhere-{round}"));
            let table = new_table(&elsewhere).await;
            for i in 0..commits {
                let adds = stage(&table, vec![i], &format!("data/{i}.csv")).await;
                publish(&elsewhere, i + 1, adds, Vec::new()).await;
            }
            let _ = std::fs::remove_dir_all(&path);
            std::fs::rename(&elsewhere, &path).expect("move into place");
            let opened = as_opened(&path).await;
            assert_eq!(opened, as_read_afresh(&path).await, "round {round}");
            assert_eq!(opened.1.len() as i64, commits, "round {round}");
        }
    }

    /// A table weir creates is checkpointed every [`CHECKPOINT_INTERVAL`] commits, so opening
    /// it never replays more than that many JSON commits; the checkpoint holds every live file.
    #[tokio::test(flavor = "multi_thread")]
    async fn tables_are_checkpointed_every_ten_commits() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        let table = new_table(&path).await;
        for version in 1..=10 {
            let adds = stage(&table, vec![version], &format!("data/{version}.csv")).await;
            publish(&path, version, adds, Vec::new()).await;
        }
        crate::finish_checkpoints().await;
        let log = path.join("_delta_log");
        // The tenth commit of the log, version 9, is checkpointed (after it, beside the run).
        assert!(
            log.join("00000000000000000009.checkpoint.parquet").exists(),
            "no checkpoint at version 9"
        );
        assert!(!log.join("00000000000000000008.checkpoint.parquet").exists());
        // Read from the checkpoint and the one commit after it, the table has all ten files.
        for v in 0..9 {
            std::fs::remove_file(log.join(format!("{v:020}.json"))).expect("rm");
        }
        let table = LakeTable::open(&path).await.expect("open").expect("table");
        assert_eq!(table.version(), Some(10));
        assert_eq!(table.live_files().await.expect("live").len(), 10);
    }

    /// A checkpoint that was due but never written (its process exited first) is written
    /// by the next commit, and the ones after follow the interval from there.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_checkpoint_missed_is_written_by_the_next_commit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        let table = new_table(&path).await;
        let log = path.join("_delta_log");
        let checkpoint = |v: u64| log.join(format!("{v:020}.checkpoint.parquet"));
        for version in 1..=9 {
            let adds = stage(&table, vec![version], &format!("data/{version}.csv")).await;
            publish(&path, version, adds, Vec::new()).await;
        }
        crate::finish_checkpoints().await;
        // As if the process had died before writing it.
        std::fs::remove_file(checkpoint(9)).expect("rm checkpoint");
        std::fs::remove_file(log.join("_last_checkpoint")).expect("rm _last_checkpoint");
        for version in 10..=20 {
            let adds = stage(&table, vec![version], &format!("data/{version}.csv")).await;
            publish(&path, version, adds, Vec::new()).await;
            crate::finish_checkpoints().await;
        }
        let written: Vec<u64> = (0..=20).filter(|v| checkpoint(*v).exists()).collect();
        assert_eq!(written, [10, 20]);
        for v in 0..10 {
            std::fs::remove_file(log.join(format!("{v:020}.json"))).expect("rm");
        }
        let table = LakeTable::open(&path).await.expect("open").expect("table");
        assert_eq!(table.version(), Some(20));
        assert_eq!(table.live_files().await.expect("live").len(), 20);
    }

    /// The origin tag is what a rewritten file's rows are found by: it must come back from the
    /// log, and from a checkpoint, exactly as written.
    #[tokio::test(flavor = "multi_thread")]
    async fn origin_tags_survive_commits_removals_and_checkpoints() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        let table = new_table(&path).await;
        let first = stage(&table, vec![1, 2, 3], "data/a.csv").await;
        let second = stage(&table, vec![4, 5], "data/b 1%.csv").await;
        publish(&path, 1, [first, second].concat(), Vec::new()).await;

        let table = LakeTable::open(&path).await.expect("open").expect("table");
        let mut live = table.live_files().await.expect("live");
        live.sort_by(|a, b| a.origin.cmp(&b.origin));
        let origins: Vec<_> = live.iter().map(|f| f.origin.as_deref()).collect();
        assert_eq!(origins, [Some("data/a.csv"), Some("data/b 1%.csv")]);
        assert_eq!(live[0].rows, Some(3));

        // Replace a.csv's rows: remove its file, add the new content's.
        let newer = stage(&table, vec![10], "data/a.csv").await;
        publish(&path, 2, newer, vec![live[0].path.clone()]).await;
        let mut table = LakeTable::open(&path).await.expect("open").expect("table");
        deltalake::checkpoints::create_checkpoint(&table.table, None)
            .await
            .expect("checkpoint");
        std::fs::remove_file(path.join("_delta_log/00000000000000000001.json")).expect("rm");
        table.refresh().await.expect("refresh");
        let table = LakeTable::open(&path)
            .await
            .expect("reopen")
            .expect("table");
        let mut live = table.live_files().await.expect("live");
        live.sort_by(|a, b| a.origin.cmp(&b.origin));
        let got: Vec<_> = live
            .iter()
            .map(|f| (f.origin.clone().unwrap_or_default(), f.rows))
            .collect();
        assert_eq!(
            got,
            [
                ("data/a.csv".to_string(), Some(1)),
                ("data/b 1%.csv".to_string(), Some(2))
            ]
        );

        // The audit's counts come from the same statistics, without some files if asked.
        let counts = table.counts(&[]).await.expect("counts").expect("stats");
        assert_eq!(counts.rows, 3);
        assert_eq!(counts.nulls_of("a"), Some(0));
        let without_a = table
            .counts(&[live[0].path.clone()])
            .await
            .expect("counts")
            .expect("stats");
        assert_eq!(without_a.rows, 2);
    }

    /// Null counts summed over files, as a scan would count them.
    #[tokio::test(flavor = "multi_thread")]
    async fn counts_sum_rows_and_nulls_from_file_statistics() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("n");
        let schema = one_column();
        let table = LakeTable::open_or_create(&path, "n", &schema, None)
            .await
            .expect("create");
        assert_eq!(
            table.counts(&[]).await.expect("counts").map(|c| c.rows),
            Some(0)
        );
        let mut adds = Vec::new();
        for values in [vec![Some(1), None, None], vec![None, Some(5)]] {
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))])
                    .expect("batch");
            let mut writer = table.stage().expect("stage");
            writer.write(batch).await.expect("write");
            adds.extend(writer.finish().await.expect("finish"));
        }
        publish(&path, 1, adds, Vec::new()).await;
        let table = LakeTable::open(&path).await.expect("open").expect("table");
        let counts = table.counts(&[]).await.expect("counts").expect("stats");
        assert_eq!((counts.rows, counts.nulls_of("a")), (5, Some(3)));
    }

    /// The head read from the log agrees with the opened table: its version, its id, and the
    /// keys weir put in its newest commit.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_head_is_what_the_opened_table_says() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t");
        assert_eq!(LakeTable::head(&path).await.expect("head"), None);
        let table = new_table(&path).await;
        let adds = stage(&table, vec![1], "data/a.csv").await;
        let inputs = serde_json::json!({"tables": {"orders": {"id": "x", "version": 3}}});
        let metadata = BTreeMap::from([("weir.inputs".to_string(), inputs.clone())]);
        publish_with(&path, 1, adds, Vec::new(), metadata).await;
        let table = LakeTable::open(&path).await.expect("open").expect("table");
        let head = LakeTable::head(&path).await.expect("head").expect("a head");
        assert_eq!(Some(head.version), table.version());
        assert_eq!(head.id, table.table_id().expect("id"));
        assert_eq!(head.commit_info.get("weir.inputs"), Some(&inputs));
        assert_eq!(
            LakeTable::latest_version(&path).await.expect("version"),
            table.version()
        );
    }
}
