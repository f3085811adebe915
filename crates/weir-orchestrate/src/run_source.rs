//! A source run: new files → reading thread (decode + validate) → staging.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use weir_ingest::{FileUnit, SourceBatch, discover_files, open_unit};
use weir_model::{Asset, Project, SourceDef};
use weir_quality::{ParseOptions, Validated, Validator};
use weir_store::LakeTable;

use crate::error::{OrchestrateError, Result};
use crate::progress::Progress;
use crate::report::{AssetRunReport, RunStatus};
use crate::runner::RunOptions;
use crate::staging::Staging;
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
    let units = discover_files(&project.root, &source.path)?;
    if units.is_empty() {
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
    let crate::changed_files::Selection { pending, refused } =
        crate::changed_files::select(units, &ledger, source.format, options.full_refresh)?;
    if pending.is_empty() && !options.full_refresh {
        if !refused.is_empty() {
            return refuse(state, report, record, &refused, false).await;
        }
        return up_to_date(report).await;
    }
    let mut staging = Staging::open(asset, &validator, report, record, state).await?;
    progress.asset_started(&asset.name, pending.iter().map(|u| u.size).sum());
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
        })
        .collect();
    let (tx, rx) = mpsc::channel::<Result<Piece>>(4);
    let reader = {
        let source = source.clone();
        let pending = pending.clone();
        let columns = validator.column_names();
        let required = validator.required_column_names();
        std::thread::spawn(move || read_units(&pending, &source, &columns, &required, &tx))
    };
    // Decoding runs on the reader thread; validation of consecutive batches runs on the
    // blocking pool, several at once, and comes back in order for staging.
    let steps =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) })
            .map(|piece| {
                let validator = validator.clone();
                async move {
                    match piece? {
                        Piece::Opened { warnings } => Ok(Step::Opened { warnings }),
                        Piece::Read { file, batch } => {
                            let (records, bytes) = (batch.records(), batch.bytes);
                            let validated =
                                tokio::task::spawn_blocking(move || validator.validate(&batch))
                                    .await
                                    .map_err(|_| {
                                        OrchestrateError::Config(
                                    "internal error: a validation task stopped unexpectedly".into(),
                                )
                                    })??;
                            Ok(Step::Batch {
                                file,
                                validated,
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
    while let Some(step) = steps.next().await {
        match step {
            Err(e) => {
                failure = Some(e);
                break;
            }
            Ok(Step::Opened { warnings }) => report.warnings.extend(warnings),
            Ok(Step::Batch {
                file,
                validated,
                records,
                bytes,
            }) => {
                let entry = &mut files[file];
                entry.rows_in += records;
                entry.rows_stored += validated.good.num_rows() as u64;
                entry.rows_quarantined += validated.quarantined.len() as u64;
                report.bytes_in += bytes;
                progress.bytes_read(&asset.name, bytes);
                let origin = entry.path.clone();
                staging.accept(&origin, validated, report).await?;
            }
        }
    }
    drop(steps);
    let reader_died = reader.join().is_err();
    if let Some(e) = failure {
        return Err(e);
    }
    if reader_died {
        return Err(OrchestrateError::Config(
            "internal error: the reading thread stopped unexpectedly; nothing was published".into(),
        ));
    }
    report.files = files.iter().map(|f| f.path.clone()).collect();
    report.rows_in = files.iter().map(|f| f.rows_in).sum();
    report.rows_stored = files.iter().map(|f| f.rows_stored).sum();
    report.rows_quarantined = files.iter().map(|f| f.rows_quarantined).sum();
    staging
        .finish(
            project,
            state,
            asset,
            &validator,
            options.full_refresh,
            &[],
            files,
            report,
            record,
        )
        .await?;
    if !refused.is_empty() && report.status == RunStatus::Success {
        return refuse(state, report, record, &refused, true).await;
    }
    Ok(())
}

/// Files that changed in place were not read: the run says which, and does not end `success`
/// (the other files, if any, were published).
async fn refuse(
    state: &StateStore,
    report: &mut AssetRunReport,
    record: &mut RunRecord,
    refused: &[String],
    published: bool,
) -> Result<()> {
    if !published {
        up_to_date(report).await?;
    }
    report.status = if published {
        RunStatus::Partial
    } else {
        RunStatus::Error
    };
    let message = refused.join("; ");
    report.error = Some(message.clone());
    record.status = report.status.as_str().to_string();
    record.error = Some(message);
    record.ended_at = Some(crate::state::now());
    state.insert_run(record).await
}

/// Nothing new: report the published versions and write nothing.
pub(crate) async fn up_to_date(report: &mut AssetRunReport) -> Result<()> {
    report.status = RunStatus::UpToDate;
    if let Some(t) = LakeTable::open(&report.table_path).await? {
        report.table_version = t.version();
    }
    if let Some(t) = LakeTable::open(&report.quarantine_path).await? {
        report.quarantine_version = t.version();
    }
    Ok(())
}

/// Batches validated at once: enough to keep both cores busy while the writer encodes.
const VALIDATION_TASKS: usize = 3;

enum Piece {
    Opened { warnings: Vec<String> },
    Read { file: usize, batch: SourceBatch },
}

enum Step {
    Opened {
        warnings: Vec<String>,
    },
    Batch {
        file: usize,
        validated: Validated,
        records: u64,
        bytes: u64,
    },
}

/// The decoding side of the pipeline, on its own thread. Stops at the first unreadable unit.
fn read_units(
    pending: &[FileUnit],
    source: &SourceDef,
    columns: &[String],
    required: &[String],
    tx: &mpsc::Sender<Result<Piece>>,
) {
    for (idx, unit) in pending.iter().enumerate() {
        let reader = match open_unit(unit, source, columns, required) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e.into()));
                return;
            }
        };
        if tx
            .blocking_send(Ok(Piece::Opened {
                warnings: reader.warnings.clone(),
            }))
            .is_err()
        {
            return;
        }
        for batch in reader {
            let piece = batch
                .map(|batch| Piece::Read { file: idx, batch })
                .map_err(OrchestrateError::from);
            let stop = piece.is_err();
            if tx.blocking_send(piece).is_err() || stop {
                return;
            }
        }
    }
}
