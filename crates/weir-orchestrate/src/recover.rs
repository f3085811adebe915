//! Finishing publications: after a normal run, and after a crash.
//!
//! A journal that completes is the normal path. A journal whose completion fails holds back
//! only its asset. A journal that is gone or unreadable is reconciled from the Delta logs: the
//! `txn` version of `weir:<asset>` in the asset's table and in its quarantine table says which
//! run each one holds. Every run commits its table with the same `txn` version as its
//! quarantine, so a quarantine ahead of the table is a publication stopped half-way: without
//! its journal it cannot be finished, so its quarantine commit is rolled back exactly.
//!
//! A publication of one table (a run that quarantined nothing, the usual case) writes no
//! journal: its one commit is atomic and carries everything the run's record needs (the run
//! record itself under [`RUN_KEY`], its ledger entries and its mode), and its run is recorded
//! `running` with its `txn` version before it, so a crash after the commit is reconciled from
//! the table's log exactly as a lost journal is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use weir_model::Project;
use weir_store::{LakeTable, Publication, StoreError};

use crate::error::{OrchestrateError, Result};
use crate::leases::AssetLease;
use crate::runner::{LedgerPayload, failpoint, journal_path, table_paths};
use crate::state::{RunRecord, StateStore, now};

pub(crate) struct PublishedVersions {
    pub table: Option<u64>,
    pub quarantine: Option<u64>,
    /// One phrase per table saying what this call found and did, for recovery messages.
    pub done: Vec<String>,
}

/// What recovery did before a run.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// One line per thing recovered, for the user.
    pub messages: Vec<String>,
    /// Assets whose pending publication could not be settled, with what was found and what to
    /// do. `run_assets` reports them as `error` and skips their downstream.
    pub held: BTreeMap<String, String>,
}

/// The commit metadata key of the run's record as the state store is to hold it once the
/// commit is in, without its list of input files (the ledger entries under
/// [`crate::ledger_sync::FILES_KEY`] name them): what recovery records for a run the table
/// holds when there is no journal to take it from.
pub(crate) const RUN_KEY: &str = "weir.run";

/// Commits what is not committed yet, records the run and its files, then drops the journal
/// (`None` for a publication of one table, which has none).
/// Every step is idempotent, so this is both the normal path and the recovery path.
pub(crate) async fn complete(
    state: &StateStore,
    publication: &Publication,
    journal: Option<&Path>,
) -> Result<PublishedVersions> {
    let payload: LedgerPayload =
        serde_json::from_value(publication.payload.clone()).map_err(|e| {
            OrchestrateError::Config(match journal {
                Some(journal) => format!("journal {}: {e}", journal.display()),
                None => format!("the publication of run {}: {e}", publication.run_id),
            })
        })?;
    let asset = payload.asset.clone();
    let asset = asset.as_str();
    let mut versions = PublishedVersions {
        table: None,
        quarantine: None,
        done: Vec::new(),
    };
    let last = publication.parts.len().saturating_sub(1);
    for (idx, part) in publication.parts.iter().enumerate() {
        let single = Publication {
            parts: vec![part.clone()],
            ..publication.clone()
        };
        let outcome = single.apply().await?;
        let first = outcome.first();
        let version = first.and_then(|o| o.version);
        let name = if idx == last {
            "the table"
        } else {
            "the quarantine table"
        };
        let shown = version.map_or("none".to_string(), |v| v.to_string());
        versions
            .done
            .push(if first.is_some_and(|o| o.already_published) {
                format!(
                    "{name} had committed it (version {shown}, txn {})",
                    publication.version
                )
            } else {
                format!("{name} had not: committed it as version {shown}")
            });
        if idx == last {
            versions.table = version;
        } else {
            versions.quarantine = version;
            failpoint("between_commits", asset);
        }
    }
    failpoint("published", asset);
    tracing::debug!(asset, "committed");

    let mut run = payload.run;
    run.table_version = versions.table;
    state
        .record_published(
            &payload.asset,
            &publication.run_id,
            publication.version,
            payload.replace,
            &payload.files,
            Some(&run),
        )
        .await?;
    failpoint("recorded", asset);
    if let Some(journal) = journal {
        weir_store::remove_journal(journal)?;
    }
    Ok(versions)
}

/// The journals in `.weir/journal`, sorted, each with its asset (the file's stem).
fn journals(project: &Project) -> Vec<(String, PathBuf)> {
    let dir = project.state_dir().join("journal");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_string_lossy().to_string();
            Some((stem, p))
        })
        .collect();
    found.sort();
    found
}

/// Completes every publication a killed process left behind, reconciles from the Delta logs
/// the runs whose journal is gone or unreadable, and marks the rest of its unfinished runs.
/// A problem with one asset holds back that asset only; only a state-store failure is an error.
///
/// Only assets whose lease this process can take are touched: a journal or a running run of
/// an asset another live process holds is that process's work in progress.
pub async fn recover_pending(project: &Project, state: &StateStore) -> Result<Recovery> {
    let mut candidates: BTreeSet<String> = journals(project).into_iter().map(|(a, _)| a).collect();
    candidates.extend(state.assets_running().await?);
    let mut leases = Vec::new();
    let mut owned = BTreeSet::new();
    for asset in candidates {
        if let Some(lease) = AssetLease::try_acquire(state, &asset).await? {
            leases.push(lease);
            owned.insert(asset);
        }
    }
    let recovery = recover_owned(project, state, &owned).await;
    for lease in leases {
        lease.release().await?;
    }
    recovery
}

/// [`recover_pending`] for one asset whose lease this process holds (before running it: a
/// process elsewhere may have died publishing it since the recovery at the start).
pub(crate) async fn recover_leased(
    project: &Project,
    state: &StateStore,
    asset: &str,
) -> Result<Recovery> {
    // The usual case, on every asset a run runs: no journal and no run left `running`.
    let pending = journal_path(project, asset).exists()
        || !state
            .runs_with_status(Some(asset), Some("running"), 1)
            .await?
            .is_empty();
    if !pending {
        return Ok(Recovery::default());
    }
    let owned = BTreeSet::from([asset.to_string()]);
    recover_owned(project, state, &owned).await
}

/// Recovery of the assets in `owned`, whose leases this process holds.
async fn recover_owned(
    project: &Project,
    state: &StateStore,
    owned: &BTreeSet<String>,
) -> Result<Recovery> {
    let mut recovery = Recovery::default();
    let mut held_runs: Vec<String> = Vec::new();
    let mut notes: BTreeMap<String, String> = BTreeMap::new();
    if owned.is_empty() {
        return Ok(recovery);
    }
    for (asset, journal) in journals(project) {
        if !owned.contains(&asset) {
            continue;
        }
        match weir_store::read_journal::<Publication>(&journal) {
            Ok(None) => {}
            Ok(Some(publication)) => match complete(state, &publication, Some(&journal)).await {
                Ok(done) => recovery.messages.push(format!(
                    "run {} of `{asset}` was interrupted while publishing; completed it from its journal: {}; recorded it",
                    publication.run_id,
                    done.done.join(", ")
                )),
                Err(e @ OrchestrateError::State(_)) => return Err(e),
                Err(e) => {
                    let found = describe_tables(project, &asset, publication.version).await;
                    recovery.held.insert(
                        asset.clone(),
                        format!(
                            "run {} of `{asset}` stopped while publishing and its journal {} cannot be completed: {e}; {found}; fix the cause and run again, or discard it with `weir recover --abandon {asset}`",
                            publication.run_id,
                            journal.display()
                        ),
                    );
                    held_runs.push(publication.run_id.clone());
                }
            },
            Err(StoreError::Journal { message, .. }) => {
                let kept = weir_store::move_journal_aside(&journal)?;
                notes.insert(
                    asset,
                    format!(
                        "its journal was unreadable ({message}) and is kept as {}",
                        kept.display()
                    ),
                );
            }
            Err(e) => {
                recovery.held.insert(
                    asset.clone(),
                    format!(
                        "the journal {} of `{asset}` cannot be read: {e}; fix the cause and run again, or discard it with `weir recover --abandon {asset}`",
                        journal.display()
                    ),
                );
            }
        }
    }

    let mut by_asset: BTreeMap<String, Vec<RunRecord>> = BTreeMap::new();
    for run in state.running_runs().await? {
        if !owned.contains(&run.asset) {
            continue;
        }
        if recovery.held.contains_key(&run.asset) {
            held_runs.push(run.id.clone());
        } else {
            by_asset.entry(run.asset.clone()).or_default().push(run);
        }
    }
    for asset in notes.keys() {
        by_asset.entry(asset.clone()).or_default();
    }
    for (asset, runs) in by_asset {
        let note = notes.get(&asset).map(String::as_str);
        match reconcile(project, state, &asset, &runs, note, "interrupted").await {
            Ok(lines) => recovery.messages.extend(lines),
            Err(e @ OrchestrateError::State(_)) => return Err(e),
            Err(e) => {
                held_runs.extend(runs.iter().map(|r| r.id.clone()));
                recovery.held.insert(
                    asset.clone(),
                    format!(
                        "`{asset}` has an unfinished run that cannot be reconciled from its Delta logs: {e}; fix the cause and run again, or `weir recover --abandon {asset}`"
                    ),
                );
            }
        }
    }
    let interrupted = state.mark_interrupted(owned, &held_runs).await?;
    if interrupted > 0 {
        recovery.messages.push(format!(
            "{interrupted} other interrupted run(s) published nothing"
        ));
    }
    Ok(recovery)
}

/// Discards the pending publication of `asset` (`weir recover --abandon`): the staged files it
/// names that are not committed are deleted, a quarantine commit made without its table
/// commit is rolled back, and the run is marked `abandoned`; the ledger is untouched, so the
/// run's files will be ingested again. A run its table already holds cannot be taken back: it
/// is recorded instead. Returns one line per thing done.
pub async fn abandon(project: &Project, state: &StateStore, asset: &str) -> Result<Vec<String>> {
    let journal = journal_path(project, asset);
    let mut lines = Vec::new();
    let mut note = None;
    match weir_store::read_journal::<Publication>(&journal) {
        Ok(None) => {}
        Ok(Some(publication)) => {
            let committed = publication.committed().await?;
            if committed.last().is_some_and(|(_, _, holds)| *holds) {
                let done = complete(state, &publication, Some(&journal)).await?;
                lines.push(format!(
                    "run {} of `{asset}` is already in its table ({}): it cannot be abandoned, so it was recorded",
                    publication.run_id,
                    done.done.join(", ")
                ));
            } else {
                let mut did = Vec::new();
                let last = publication.parts.len().saturating_sub(1);
                for (idx, (part, (path, version, holds))) in
                    publication.parts.iter().zip(&committed).enumerate()
                {
                    let name = if idx == last {
                        "the table"
                    } else {
                        "the quarantine table"
                    };
                    if *holds {
                        let mut table = LakeTable::open(path).await?.ok_or_else(|| {
                            OrchestrateError::Config(format!("table {} vanished", path.display()))
                        })?;
                        let rb = table
                            .rollback_txn(
                                &publication.app_id,
                                publication.version,
                                rollback_metadata(
                                    asset,
                                    &publication.run_id,
                                    publication.version,
                                    "abandoned",
                                ),
                            )
                            .await?;
                        did.push(format!(
                            "{name} had committed it (version {}): {}",
                            rb.commit.or(*version).unwrap_or_default(),
                            rolled_back(&rb)
                        ));
                    } else {
                        let staged = weir_store::discard_staged(path, &part.adds);
                        did.push(format!("{name} had not: deleted {staged} staged file(s)"));
                    }
                }
                state
                    .set_status(
                        &publication.run_id,
                        "abandoned",
                        "abandoned with `weir recover --abandon`; nothing of it is published",
                    )
                    .await?;
                weir_store::remove_journal(&journal)?;
                lines.push(format!(
                    "run {} of `{asset}`: abandoned its journal: {}; the ledger is untouched, so its input will be read again",
                    publication.run_id,
                    did.join(", ")
                ));
            }
        }
        Err(StoreError::Journal { message, .. }) => {
            let kept = weir_store::move_journal_aside(&journal)?;
            note = Some(format!(
                "its journal was unreadable ({message}) and is kept as {}",
                kept.display()
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let runs: Vec<RunRecord> = state
        .running_runs()
        .await?
        .into_iter()
        .filter(|r| r.asset == asset)
        .collect();
    if !runs.is_empty() || note.is_some() {
        lines.extend(reconcile(project, state, asset, &runs, note.as_deref(), "abandoned").await?);
    }
    if lines.is_empty() {
        lines.push(format!("nothing was pending for `{asset}`"));
    }
    Ok(lines)
}

fn rollback_metadata(
    asset: &str,
    run_id: &str,
    txn: i64,
    why: &str,
) -> BTreeMap<String, serde_json::Value> {
    let mut meta = BTreeMap::new();
    meta.insert("weir.asset".into(), serde_json::json!(asset));
    meta.insert(
        "weir.rollback".into(),
        serde_json::json!({ "runId": run_id, "txnVersion": txn, "reason": why }),
    );
    meta
}

fn rolled_back(rb: &weir_store::Rollback) -> String {
    match rb.rollback_version {
        Some(v) => {
            let restored = if rb.files_restored > 0 {
                format!(
                    " and restored the {} file(s) it had replaced",
                    rb.files_restored
                )
            } else {
                String::new()
            };
            format!(
                "rolled back its {} row(s) in {} file(s){restored} as version {v}",
                rb.rows_removed, rb.files_removed
            )
        }
        None => "it was already rolled back".into(),
    }
}

/// What each table of `asset` holds for `txn`, for a message.
async fn describe_tables(project: &Project, asset: &str, txn: i64) -> String {
    let app = format!("weir:{asset}");
    let (table, quarantine) = table_paths(project, asset);
    let mut parts = Vec::new();
    for (name, path) in [("the quarantine table", quarantine), ("the table", table)] {
        parts.push(match LakeTable::open(&path).await {
            Ok(Some(t)) => {
                let at = t.txn_version(&app).await.ok().flatten();
                let version = t.version().map_or("none".into(), |v| v.to_string());
                let txn_shown = at.map_or("none".into(), |v| v.to_string());
                if at.is_some_and(|a| a >= txn) {
                    format!("{name} had committed it (version {version}, txn {txn_shown})")
                } else {
                    format!("{name} had not (version {version}, txn {txn_shown})")
                }
            }
            Ok(None) => format!("{name} did not exist"),
            Err(e) => format!("{name} could not be read ({e})"),
        });
    }
    format!("for txn {txn}, {}", parts.join(", "))
}

/// Settles the unfinished runs of `asset` that have no usable journal, from what its two
/// Delta logs hold: a run its table holds is recorded (files and counts from its commit); a
/// run only its quarantine holds is rolled back; a run neither holds published nothing. The
/// runs not published end with `status` (`interrupted`, or `abandoned`).
async fn reconcile(
    project: &Project,
    state: &StateStore,
    asset: &str,
    runs: &[RunRecord],
    note: Option<&str>,
    status: &str,
) -> Result<Vec<String>> {
    let app = format!("weir:{asset}");
    let (table_path, quarantine_path) = table_paths(project, asset);
    let table = LakeTable::open(&table_path).await?;
    let mut quarantine = LakeTable::open(&quarantine_path).await?;
    let t = match &table {
        Some(t) => t.txn_version(&app).await?,
        None => None,
    };
    let q = match &quarantine {
        Some(q) => q.txn_version(&app).await?,
        None => None,
    };
    let is_source = project.asset(asset).is_some_and(|a| a.source.is_some());
    let again = if is_source {
        "its files will be ingested again"
    } else {
        "it will run again"
    };
    let show = |v: Option<i64>| v.map_or("none".to_string(), |v| v.to_string());
    let lead = match note {
        Some(n) => format!("`{asset}`: {n}"),
        None => format!("`{asset}`: no journal"),
    };
    let mut lines = Vec::new();
    let mut versions: BTreeMap<i64, Option<&RunRecord>> = BTreeMap::new();
    for run in runs {
        match run.txn_version {
            Some(v) => {
                versions.insert(v, Some(run));
            }
            None => {
                state
                    .set_status(
                        &run.id,
                        status,
                        "it stopped before opening its tables; nothing was published",
                    )
                    .await?;
                lines.push(format!(
                    "run {} of {lead}; it stopped before opening its tables: nothing was published; {again}",
                    run.id
                ));
            }
        }
    }
    if let Some(qv) = q
        && t.is_none_or(|t| t < qv)
    {
        versions.entry(qv).or_insert(None);
    }
    for (v, run) in versions {
        let table_commit = match (&table, t) {
            (Some(table), Some(t)) if t >= v => table.find_txn_commit(&app, v).await?,
            _ => None,
        };
        if let Some(commit) = table_commit {
            let run_id = run
                .map(|r| r.id.clone())
                .or_else(|| {
                    commit
                        .info
                        .get("weir.runId")
                        .and_then(|v| v.as_str().map(str::to_string))
                })
                .unwrap_or_else(|| "?".into());
            let files = crate::ledger_sync::files_of(
                commit.info.get(crate::ledger_sync::FILES_KEY),
                commit.version,
                &table_path,
            )?;
            let files = match files {
                Some(f) => f,
                None if !is_source => Vec::new(),
                None => {
                    return Err(OrchestrateError::Config(format!(
                        "run {run_id}: the table holds it (version {}, txn {v}) but its commit does not list the files it read, so they cannot be entered in the ledger",
                        commit.version
                    )));
                }
            };
            let replace =
                crate::ledger_sync::replaced(commit.info.get(crate::ledger_sync::REPLACE_KEY));
            let ended = run.map(|run| {
                let mut ended = match recorded_run(&commit.info, run, &files) {
                    Some(recorded) => recorded,
                    None => {
                        // A commit of an older weir: its counts only.
                        let count =
                            |k: &str| commit.info.get(k).and_then(|n| n.as_u64()).unwrap_or(0);
                        let mut run = run.clone();
                        run.status = "success".into();
                        run.ended_at = Some(now());
                        run.rows_in = count("weir.rowsIn");
                        run.rows_stored = count("weir.rowsStored");
                        run.rows_quarantined = count("weir.rowsQuarantined");
                        run.error = None;
                        run
                    }
                };
                ended.table_version = Some(commit.version);
                ended
            });
            state
                .record_published(asset, &run_id, v, replace, &files, ended.as_ref())
                .await?;
            lines.push(format!(
                "run {run_id} of {lead}; the table had committed version {} (txn {v}), the quarantine table is at txn {}: it was published; recorded it and its {} file(s) in the ledger",
                commit.version,
                show(q),
                files.len()
            ));
            continue;
        }
        let run_label = run.map(|r| r.id.clone()).unwrap_or_else(|| "?".into());
        if let (Some(quarantine), Some(qv)) = (quarantine.as_mut(), q)
            && qv >= v
        {
            let meta = rollback_metadata(asset, &run_label, v, "its table commit never happened");
            let rb = quarantine.rollback_txn(&app, v, meta).await?;
            if let Some(version) = rb.commit {
                let run_id = rb
                    .info
                    .get("weir.runId")
                    .and_then(|r| r.as_str())
                    .map(str::to_string)
                    .unwrap_or(run_label.clone());
                let files = rb
                    .info
                    .get(crate::ledger_sync::FILES_KEY)
                    .and_then(|f| f.as_array().map(Vec::len));
                let again_n = match files {
                    Some(n) if is_source => format!("its {n} file(s) will be ingested again"),
                    _ => again.to_string(),
                };
                let reason = format!(
                    "the quarantine table had committed version {version} (txn {v}), the table had not (txn {}): {}",
                    show(t),
                    rolled_back(&rb)
                );
                if let Some(run) = run {
                    state.set_status(&run.id, status, &reason).await?;
                }
                lines.push(format!("run {run_id} of {lead}; {reason}; {again_n}"));
                continue;
            }
        }
        let reason = format!(
            "neither table had committed txn {v} (the table is at txn {}, the quarantine table at txn {}): nothing was published",
            show(t),
            show(q)
        );
        if let Some(run) = run {
            state.set_status(&run.id, status, &reason).await?;
        }
        lines.push(format!("run {run_label} of {lead}; {reason}; {again}"));
    }
    if lines.is_empty()
        && let Some(n) = note
    {
        lines.push(format!(
            "`{asset}`: {n}; no run of it was left unfinished (the table is at txn {}, the quarantine table at txn {}): nothing to do",
            show(t),
            show(q)
        ));
    }
    Ok(lines)
}

/// The record a commit carries under [`RUN_KEY`] for `run` (the same run: a record of another
/// run id is not taken), with its input files from the commit's ledger entries.
fn recorded_run(
    info: &BTreeMap<String, serde_json::Value>,
    run: &RunRecord,
    files: &[crate::state::LedgerEntry],
) -> Option<RunRecord> {
    let mut recorded: RunRecord = serde_json::from_value(info.get(RUN_KEY)?.clone()).ok()?;
    if recorded.id != run.id {
        return None;
    }
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    recorded.files = serde_json::json!(paths).to_string();
    Some(recorded)
}
