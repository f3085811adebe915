//! The lake is the record: every commit that ingests files names them in its `commitInfo`
//! (`weir.files`), so the file ledger in the state store is an index that can be rebuilt from
//! the Delta log at any time. Before a source run reads its ledger, the ledger is checked
//! against the lake (the asset table's `txn` version for `weir:<asset>` against the last one
//! the ledger holds) and rebuilt when they disagree: a state store that was deleted, emptied,
//! replaced by another project's or left behind by a lost journal never makes a file be read
//! twice, nor skipped.

use std::collections::{BTreeMap, BTreeSet};

use weir_store::LakeTable;

use crate::error::{OrchestrateError, Result};
use crate::state::{LakeLedgerEntry, LedgerEntry, LedgerMark, StateStore};

/// `commitInfo` key listing the files a commit consumed (`LedgerEntry` objects).
pub(crate) const FILES_KEY: &str = "weir.files";
/// `commitInfo` key saying the commit replaced the table (a full refresh).
pub(crate) const REPLACE_KEY: &str = "weir.replace";

/// The files a commit lists under [`FILES_KEY`]; `None` when it lists none (a commit written
/// before weir recorded them), an error when the list cannot be read.
pub(crate) fn files_of(
    value: Option<&serde_json::Value>,
    version: u64,
    table: &std::path::Path,
) -> Result<Option<Vec<LedgerEntry>>> {
    value
        .map(|v| {
            serde_json::from_value(v.clone()).map_err(|e| {
                OrchestrateError::Config(format!(
                    "version {version} of {}: `{FILES_KEY}` cannot be read: {e}",
                    table.display()
                ))
            })
        })
        .transpose()
}

/// Whether a commit says it replaced its table ([`REPLACE_KEY`]).
pub(crate) fn replaced(value: Option<&serde_json::Value>) -> bool {
    value.and_then(|r| r.as_bool()).unwrap_or(false)
}

/// What the lake says about an asset's ingested files.
pub enum LakeLedger {
    /// Replayed from every commit of the asset's table.
    Known(Vec<LakeLedgerEntry>),
    /// The table holds commits written before weir recorded files in the log (or its log was
    /// cleaned up): the lake cannot say, so the ledger is left as it is.
    Unknown(String),
}

/// Replays the commits of `table` that carry the asset's `txn`: files are added by each
/// commit, dropped by a replace (full refresh), and a path's earlier entries are dropped by an
/// entry that `replaces` them (a rewritten file under `on_change = "replace"`).
pub async fn ledger_from_lake(table: &LakeTable, asset: &str) -> Result<LakeLedger> {
    let app_id = format!("weir:{asset}");
    let commits = match table.commits().await {
        Ok(c) => c,
        Err(e) => return Ok(LakeLedger::Unknown(e.to_string())),
    };
    let mut ledger: BTreeMap<(String, String), LakeLedgerEntry> = BTreeMap::new();
    for commit in commits {
        let Some((app, txn_version)) = &commit.txn else {
            continue;
        };
        if *app != app_id {
            continue;
        }
        let Some(files) = files_of(commit.info.get(FILES_KEY), commit.version, &table.path)? else {
            return Ok(LakeLedger::Unknown(format!(
                "version {} of {} was written without the list of its files",
                commit.version,
                table.path.display()
            )));
        };
        if replaced(commit.info.get(REPLACE_KEY)) {
            ledger.clear();
        }
        let run_id = commit
            .info
            .get("weir.runId")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        for entry in files {
            if entry.replaces {
                ledger.retain(|(path, _), _| *path != entry.path);
            }
            ledger.insert(
                (entry.path.clone(), entry.content_hash.clone()),
                LakeLedgerEntry {
                    entry,
                    run_id: run_id.clone(),
                    txn_version: *txn_version,
                },
            );
        }
    }
    Ok(LakeLedger::Known(ledger.into_values().collect()))
}

/// How the ledger of one asset compares with the lake.
pub struct LedgerCheck {
    pub asset: String,
    /// Files the lake records that the ledger lacks (they would be read again: doubled rows).
    pub missing: Vec<String>,
    /// Files the ledger holds that the lake does not (they would be skipped: lost rows).
    pub extra: Vec<String>,
    /// The lake cannot say (legacy commits, cleaned-up log): why.
    pub unknown: Option<String>,
}

impl LedgerCheck {
    pub fn agrees(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Compares the ledger of `asset` with its table's log, and rebuilds it from the log when they
/// differ and `repair` is set.
pub async fn check_ledger(
    state: &StateStore,
    table_path: &std::path::Path,
    asset: &str,
    repair: bool,
) -> Result<LedgerCheck> {
    let ledger: BTreeSet<(String, String)> = state
        .ledger(asset)
        .await?
        .into_iter()
        .map(|e| (e.path, e.content_hash))
        .collect();
    let lake = match LakeTable::open(table_path).await? {
        Some(table) => ledger_from_lake(&table, asset).await?,
        None => LakeLedger::Known(Vec::new()),
    };
    let entries = match lake {
        LakeLedger::Known(entries) => entries,
        LakeLedger::Unknown(why) => {
            return Ok(LedgerCheck {
                asset: asset.to_string(),
                missing: Vec::new(),
                extra: Vec::new(),
                unknown: Some(why),
            });
        }
    };
    let recorded: BTreeSet<(String, String)> = entries
        .iter()
        .map(|e| (e.entry.path.clone(), e.entry.content_hash.clone()))
        .collect();
    let check = LedgerCheck {
        asset: asset.to_string(),
        missing: recorded
            .difference(&ledger)
            .map(|(p, _)| p.clone())
            .collect(),
        extra: ledger
            .difference(&recorded)
            .map(|(p, _)| p.clone())
            .collect(),
        unknown: None,
    };
    if repair && !check.agrees() {
        state.replace_ledger(asset, &entries).await?;
    }
    Ok(check)
}

/// Before a source run: unless the ledger is marked as agreeing with this very table (its
/// Delta id), at its current `txn` version, with as many files as it holds now, the ledger is
/// checked against the lake and rebuilt. Returns a sentence for the run's warnings when it was.
pub(crate) async fn sync_ledger(
    state: &StateStore,
    table_path: &std::path::Path,
    asset: &str,
) -> Result<Option<String>> {
    let Some(table) = LakeTable::open(table_path).await? else {
        // No table: nothing was published, so a ledger that lists files is wrong.
        if state.ledger_mark(asset).await?.1 == 0 {
            return Ok(None);
        }
        let check = check_ledger(state, table_path, asset, true).await?;
        return Ok(Some(format!(
            "the file ledger of `{asset}` listed {} file(s) but the asset has no table: it was cleared, so they will be read again",
            check.extra.len()
        )));
    };
    let current = LedgerMark {
        table_id: table.table_id()?,
        txn_version: table.txn_version(&format!("weir:{asset}")).await?,
        files: 0,
    };
    let (mark, files) = state.ledger_mark(asset).await?;
    if mark.as_ref().is_some_and(|m| {
        m.table_id == current.table_id && m.txn_version == current.txn_version && m.files == files
    }) {
        return Ok(None);
    }
    let check = check_ledger(state, table_path, asset, true).await?;
    if let Some(why) = check.unknown {
        return Ok(Some(format!(
            "the file ledger of `{asset}` could not be checked against its table, whose log cannot rebuild it ({why}); run `weir doctor` to inspect"
        )));
    }
    let (_, files) = state.ledger_mark(asset).await?;
    state
        .set_ledger_mark(asset, &LedgerMark { files, ..current })
        .await?;
    if check.agrees() {
        return Ok(None);
    }
    Ok(Some(format!(
        "the file ledger of `{asset}` disagreed with its Delta table ({} file(s) published but not in the ledger, {} in the ledger but not published); it was rebuilt from the Delta log, so no file is read twice or skipped",
        check.missing.len(),
        check.extra.len()
    )))
}
