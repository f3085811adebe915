//! A source run: new files → reading thread (decode + validate) → staging.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use weir_ingest::{FileUnit, IngestError, SourceBatch, discover_files_cached, open_unit};
use weir_model::{Asset, ComponentKind, OnChange, Project, SourceDef};
use weir_quality::{KeyGuard, ParseOptions, Validated, Validator};
use weir_store::LakeTable;

use crate::error::{OrchestrateError, Result};
use crate::progress::Progress;
use crate::report::{AssetRunReport, RejectedFile, RunStatus};
use crate::runner::RunOptions;
use crate::staging::{Finish, Staging, rejected_note};
use crate::state::{LedgerEntry, RunRecord, StateStore};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn ingest(
    project: &Project,
    state: &StateStore,
    asset: &Asset,
    source: &SourceDef,
    options: &RunOptions,
    progress: &dyn Progress,
    report: &mut AssetRunReport,
    record: &mut RunRecord,
) -> Result<()> {
    let parse = ParseOptions {
        timestamp_format: source.options.timestamp_format.clone(),
        date_format: source.options.date_format.clone(),
    };
    let validator = Arc::new(Validator::new(&asset.name, &asset.contract, parse)?);
    let started = std::time::Instant::now();
    report.stages.enter(ComponentKind::Source);
    let found = discover(state, project, source, options.full_refresh).await?;
    let units = found.units;
    report.rejected_files = found
        .unreadable
        .iter()
        .map(|u| RejectedFile {
            path: u.key.clone(),
            reason: reason(project, &u.key, &u.error),
        })
        .collect();
    if units.is_empty() && report.rejected_files.is_empty() {
        report
            .warnings
            .push(format!("no file matches `{}`", source.path));
    }
    if let Some(message) =
        crate::ledger_sync::sync_ledger(state, &report.table_path, &asset.name).await?
    {
        report.warnings.push(message);
    }
    let ledger = state.ledger(&asset.name).await?;
    let crate::changed_files::Selection {
        mut pending,
        refused,
        replacing,
    } = crate::changed_files::select(
        units,
        &ledger,
        source.format,
        source.on_change,
        options.full_refresh,
    )?;
    report.rejected_files.extend(refused);
    if pending.is_empty() && !options.full_refresh {
        if report.rejected_files.is_empty() {
            return up_to_date(report).await;
        }
        return nothing_readable(report, record);
    }
    let mut staging = Staging::open(asset, &validator, report, record, state).await?;
    if source.on_change == OnChange::Replace {
        staging.stage_per_origin();
        let refused = match staging.plan_replacements(&replacing, &ledger, report).await {
            Ok(refused) => refused,
            Err(e) => {
                staging.abandon().await;
                return Err(e);
            }
        };
        pending.retain(|u| !refused.iter().any(|r| r.path == u.key));
        report.rejected_files.extend(refused);
        if pending.is_empty() {
            staging.abandon().await;
            return nothing_readable(report, record);
        }
    }
    progress.asset_started(&asset.name, pending.iter().map(|u| u.size).sum());
    let mut guard = KeyGuard::new(&validator, pending.iter().map(|u| u.key.clone()).collect())?;
    tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "files selected, tables opened");
    let read = read_all(
        project,
        asset,
        source,
        &pending,
        &validator,
        guard.as_mut(),
        &mut staging,
        progress,
        report,
    )
    .await;
    let mut files = match read {
        Ok(files) => files,
        Err(e) => {
            staging.abandon().await;
            return Err(e);
        }
    };
    for file in &mut files {
        file.replaces = replacing.contains(&file.path);
    }
    for rejected in &report.rejected_files.clone() {
        staging.cancel_replacement(&rejected.path, report);
    }
    if files.is_empty() && !report.rejected_files.is_empty() {
        staging.abandon().await;
        return nothing_readable(report, record);
    }
    if let Some(guard) = &guard
        && !options.full_refresh
    {
        tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "files read and staged");
        report.stages.enter(ComponentKind::Check);
        let checking = std::time::Instant::now();
        let refused = staging.refuse_published_keys(guard, report).await;
        report.stages.validating += checking.elapsed();
        let refused = match refused {
            Ok(refused) => refused,
            Err(e) => {
                staging.abandon().await;
                return Err(e);
            }
        };
        for (unit, n) in refused {
            if let Some(entry) = pending
                .get(unit)
                .and_then(|u| files.iter_mut().find(|f| f.path == u.key))
            {
                entry.rows_stored -= n.min(entry.rows_stored);
                entry.rows_quarantined += n;
            }
        }
    }
    report.files = files.iter().map(|f| f.path.clone()).collect();
    report.rows_in = files.iter().map(|f| f.rows_in).sum();
    report.rows_stored = files.iter().map(|f| f.rows_stored).sum();
    report.rows_quarantined = files.iter().map(|f| f.rows_quarantined).sum();
    record.rejected_files = rejected_json(&report.rejected_files);
    let max_quarantined = source
        .max_quarantined
        .unwrap_or(project.config.project.max_quarantined);
    staging
        .finish(
            project,
            state,
            asset,
            &validator,
            Finish {
                replace: options.full_refresh,
                merge_keys: &[],
                keys_enforced: true,
                max_quarantined: Some(max_quarantined),
                progress,
            },
            std::mem::take(&mut files),
            report,
            record,
        )
        .await
}

/// Expands the source's glob, taking each unchanged file's hash from the state store's cache
/// (keyed by its stat) instead of reading it, and caching the hashes it had to compute. A full
/// refresh reads every file anyway, so it hashes each again.
async fn discover(
    state: &StateStore,
    project: &Project,
    source: &SourceDef,
    full_refresh: bool,
) -> Result<weir_ingest::Discovered> {
    let cache = if full_refresh {
        Default::default()
    } else {
        state.file_hashes().await?
    };
    let known = |path: &std::path::Path| cache.get(&path.display().to_string());
    let found = discover_files_cached(&project.root, &source.path, &|path, stat| {
        known(path)
            .filter(|(at, _)| at == stat)
            .map(|(_, hash)| hash.clone())
    })?;
    let fresh: Vec<FileUnit> = found
        .units
        .iter()
        .filter(|u| {
            u.stat.is_some_and(|stat| {
                known(&u.path).is_none_or(|(at, hash)| *at != stat || *hash != u.content_hash)
            })
        })
        .cloned()
        .collect();
    state.record_file_hashes(&fresh).await?;
    Ok(found)
}

/// Every new file was rejected: an error naming all of them; nothing is published.
fn nothing_readable(report: &mut AssetRunReport, record: &mut RunRecord) -> Result<()> {
    record.rejected_files = rejected_json(&report.rejected_files);
    let note = rejected_note(report).unwrap_or_default();
    Err(OrchestrateError::Config(format!(
        "{note}; nothing was published"
    )))
}

fn rejected_json(files: &[RejectedFile]) -> String {
    serde_json::to_string(files).unwrap_or_else(|_| "[]".into())
}

/// What went wrong with a file, for the user: paths relative to the project, and without the
/// file's own path in front (the report names it).
fn reason(project: &Project, key: &str, error: &weir_ingest::IngestError) -> String {
    let root = format!("{}/", project.root.display());
    let text = error.to_string().replace(&root, "");
    text.strip_prefix(&format!("{key}: "))
        .map(str::to_string)
        .unwrap_or(text)
}

/// Reads, validates and stages every pending file, each all-or-nothing: a file that fails
/// (cannot be opened, decoded, or lacks a required column) is added to the report's rejected
/// files and none of its rows stay staged. Returns the ledger entries of the accepted files.
#[allow(clippy::too_many_arguments)]
async fn read_all(
    project: &Project,
    asset: &Asset,
    source: &SourceDef,
    pending: &[FileUnit],
    validator: &Arc<Validator>,
    mut guard: Option<&mut KeyGuard>,
    staging: &mut Staging,
    progress: &dyn Progress,
    report: &mut AssetRunReport,
) -> Result<Vec<LedgerEntry>> {
    let mut files: Vec<LedgerEntry> = pending
        .iter()
        .map(|u| LedgerEntry {
            path: u.key.clone(),
            content_hash: u.content_hash.clone(),
            size_bytes: u.size,
            start: u.start,
            rows_in: 0,
            rows_stored: 0,
            rows_quarantined: 0,
            replaces: false,
        })
        .collect();
    let mut accepted = vec![false; pending.len()];
    let mut bytes_read = vec![0u64; pending.len()];
    let (tx, rx) = mpsc::channel::<Piece>(4);
    let reader = {
        let source = source.clone();
        let pending = pending.to_vec();
        let columns = validator.column_names();
        let required = validator.required_column_names();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            read_units(&pending, &source, &columns, &required, &tx);
            started.elapsed()
        })
    };
    // Decoding runs on the reader thread; validation of consecutive batches runs on the
    // blocking pool, several at once, and comes back in order for staging.
    let steps =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) })
            .map(|piece| {
                let validator = validator.clone();
                async move {
                    match piece {
                        Piece::Opened { file, warnings } => Ok(Step::Opened { file, warnings }),
                        Piece::Done { file } => Ok(Step::Done { file }),
                        Piece::Failed { file, error } => Ok(Step::Failed { file, error }),
                        Piece::Read { file, batch } => {
                            let (records, bytes) = (batch.records(), batch.bytes);
                            let (validated, validating) = tokio::task::spawn_blocking(move || {
                                let started = std::time::Instant::now();
                                (validator.validate(&batch), started.elapsed())
                            })
                            .await
                            .map_err(|_| {
                                OrchestrateError::Config(
                                    "internal error: a validation task stopped unexpectedly".into(),
                                )
                            })?;
                            Ok(Step::Batch {
                                file,
                                validated: validated?,
                                validating,
                                records,
                                bytes,
                            })
                        }
                    }
                }
            })
            .buffered(VALIDATION_TASKS);
    let mut steps = Box::pin(steps);
    let mut failure = None;
    let mut warnings: Vec<String> = Vec::new();
    while let Some(step) = steps.next().await {
        // Time spent handing rows to the staging writers is the sink's.
        let mut writing = std::time::Instant::now();
        let outcome = match step {
            Err(e) => {
                report.stages.enter(ComponentKind::Check);
                Err(e)
            }
            Ok(Step::Opened { file, warnings: w }) => {
                staging.begin_group(&pending[file].key);
                warnings = w;
                files[file].rows_in = 0;
                Ok(())
            }
            Ok(Step::Batch {
                file,
                mut validated,
                validating,
                records,
                bytes,
            }) => {
                report.stages.enter(ComponentKind::Check);
                let admitting = std::time::Instant::now();
                let admitted = match guard.as_deref_mut() {
                    Some(g) => g
                        .admit(&mut validated, file)
                        .map_err(OrchestrateError::from),
                    None => Ok(()),
                };
                report.stages.validating += validating + admitting.elapsed();
                report.stages.enter(ComponentKind::Sink);
                writing = std::time::Instant::now();
                match admitted {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let entry = &mut files[file];
                        entry.rows_in += records;
                        entry.rows_stored += validated.good.num_rows() as u64;
                        entry.rows_quarantined += validated.quarantined.len() as u64;
                        bytes_read[file] += bytes;
                        progress.read(&asset.name, bytes, records);
                        let origin = entry.path.clone();
                        staging.accept(&origin, validated, report).await
                    }
                }
            }
            Ok(Step::Done { file }) => {
                accepted[file] = true;
                report.warnings.append(&mut warnings);
                if let Some(g) = guard.as_deref_mut() {
                    g.commit_unit();
                }
                staging.commit_group(report).await
            }
            Ok(Step::Failed { file, error }) => {
                warnings.clear();
                if let Some(g) = guard.as_deref_mut() {
                    g.abort_unit();
                }
                report.rejected_files.push(RejectedFile {
                    path: pending[file].key.clone(),
                    reason: reason(project, &pending[file].key, &error),
                });
                staging.abort_group().await
            }
        };
        report.stages.writing += writing.elapsed();
        if let Err(e) = outcome {
            failure = Some(e);
            break;
        }
    }
    drop(steps);
    let read = reader.join();
    let reader_died = read.is_err();
    report.stages.reading += read.unwrap_or_default();
    if let Some(e) = failure {
        return Err(e);
    }
    if reader_died {
        report.stages.enter(ComponentKind::Source);
        return Err(OrchestrateError::Config(
            "internal error: the reading thread stopped unexpectedly; nothing was published".into(),
        ));
    }
    report.rejected_files.sort_by(|a, b| a.path.cmp(&b.path));
    report.bytes_in = bytes_read
        .iter()
        .zip(&accepted)
        .filter(|(_, a)| **a)
        .map(|(b, _)| b)
        .sum();
    Ok(files
        .into_iter()
        .zip(accepted)
        .filter(|(_, a)| *a)
        .map(|(f, _)| f)
        .collect())
}

/// Nothing new: report the published versions and write nothing.
pub(crate) async fn up_to_date(report: &mut AssetRunReport) -> Result<()> {
    report.status = RunStatus::UpToDate;
    report.table_version = LakeTable::latest_version(&report.table_path).await?;
    report.quarantine_version = LakeTable::latest_version(&report.quarantine_path).await?;
    Ok(())
}

/// Batches validated at once: enough to keep both cores busy while the writer encodes.
const VALIDATION_TASKS: usize = 3;

enum Piece {
    Opened {
        file: usize,
        warnings: Vec<String>,
    },
    Read {
        file: usize,
        batch: SourceBatch,
    },
    /// Every batch of the file was sent.
    Done {
        file: usize,
    },
    /// The file cannot be read (from the start, or part-way): none of it may be published.
    Failed {
        file: usize,
        error: IngestError,
    },
}

enum Step {
    Opened {
        file: usize,
        warnings: Vec<String>,
    },
    Batch {
        file: usize,
        validated: Validated,
        /// Time the validation task took, on the blocking pool.
        validating: std::time::Duration,
        records: u64,
        bytes: u64,
    },
    Done {
        file: usize,
    },
    Failed {
        file: usize,
        error: IngestError,
    },
}

/// The decoding side of the pipeline, on its own thread. A file that fails is reported and
/// the next one is read; it stops only when the receiving side has gone.
fn read_units(
    pending: &[FileUnit],
    source: &SourceDef,
    columns: &[String],
    required: &[String],
    tx: &mpsc::Sender<Piece>,
) {
    for (file, unit) in pending.iter().enumerate() {
        let reader = match open_unit(unit, source, columns, required) {
            Ok(r) => r,
            Err(error) => {
                if tx.blocking_send(Piece::Failed { file, error }).is_err() {
                    return;
                }
                continue;
            }
        };
        if tx
            .blocking_send(Piece::Opened {
                file,
                warnings: reader.warnings.clone(),
            })
            .is_err()
        {
            return;
        }
        let mut end = Piece::Done { file };
        for batch in reader {
            match batch {
                Ok(batch) => {
                    if tx.blocking_send(Piece::Read { file, batch }).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    end = Piece::Failed { file, error };
                    break;
                }
            }
        }
        if tx.blocking_send(end).is_err() {
            return;
        }
    }
}
