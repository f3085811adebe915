//! One run of a source asset: read → validate → stage → audit → journal → publish → record.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use weir_ingest::{FileUnit, discover_files, open_unit};
use weir_model::{Asset, Project, SourceDef};
use weir_quality::{AuditScope, ParseOptions, Validated, Validator, audit};
use weir_store::{
    LakeTable, Publication, PublicationPart, QUARANTINE_DIR, quarantine_schema,
    register_post_publish_view,
};

use crate::error::{OrchestrateError, Result};
use crate::progress::Progress;
use crate::quarantine_rows::quarantine_batch;
use crate::report::{AssetRunReport, RunStatus};
use crate::state::{LedgerEntry, RunRecord, StateStore, now};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Rebuild every table from all files instead of ingesting only new ones.
    pub full_refresh: bool,
    /// What started the run (`cli`, `schedule`, ...), kept on the run record.
    pub trigger: String,
}

/// Where an asset's Delta table and its quarantine table live.
pub fn table_paths(project: &Project, asset: &str) -> (PathBuf, PathBuf) {
    let lake = project.lake_dir();
    (lake.join(asset), lake.join(QUARANTINE_DIR).join(asset))
}

/// What the journal carries for the state store: enough to finish a run after a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LedgerPayload {
    pub asset: String,
    pub replace: bool,
    pub files: Vec<LedgerEntry>,
    pub run: RunRecord,
}

pub(crate) fn journal_path(project: &Project, asset: &str) -> PathBuf {
    project
        .state_dir()
        .join("journal")
        .join(format!("{asset}.json"))
}

/// Runs the given assets in order. A failing asset does not stop the others; the state
/// store failing does.
pub async fn run_assets(
    project: &Project,
    state: &StateStore,
    assets: &[&Asset],
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<Vec<AssetRunReport>> {
    let mut reports = Vec::with_capacity(assets.len());
    for asset in assets {
        let Some(source) = &asset.source else {
            continue;
        };
        let report = run_source(project, state, asset, source, options, progress).await?;
        progress.asset_finished(&asset.name);
        reports.push(report);
    }
    Ok(reports)
}

async fn run_source(
    project: &Project,
    state: &StateStore,
    asset: &Asset,
    source: &SourceDef,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<AssetRunReport> {
    let (table_path, quarantine_path) = table_paths(project, &asset.name);
    let mut report = AssetRunReport {
        run_id: uuid::Uuid::now_v7().to_string(),
        asset: asset.name.clone(),
        status: RunStatus::Success,
        rows_in: 0,
        rows_stored: 0,
        rows_quarantined: 0,
        bytes_in: 0,
        files: Vec::new(),
        checks: Vec::new(),
        quarantine_by_rule: BTreeMap::new(),
        table_version: None,
        quarantine_version: None,
        table_path,
        quarantine_path,
        warnings: Vec::new(),
        error: None,
        duration: Default::default(),
    };
    let started = Instant::now();
    let started_at = now();
    let mut record = RunRecord {
        id: report.run_id.clone(),
        asset: asset.name.clone(),
        trigger: options.trigger.clone(),
        status: "running".into(),
        started_at: started_at.clone(),
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
    };
    let outcome = ingest(
        project,
        state,
        asset,
        source,
        options,
        progress,
        &mut report,
        &mut record,
    )
    .await;
    report.duration = started.elapsed();
    if let Err(e) = outcome {
        if matches!(e, OrchestrateError::State(_)) {
            return Err(e);
        }
        report.status = RunStatus::Error;
        report.error = Some(e.to_string());
        if record.txn_version.is_some() {
            record.status = "error".into();
            record.error = report.error.clone();
            record.ended_at = Some(now());
            state.insert_run(&record).await?;
        }
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn ingest(
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
    let seen: HashSet<(String, String)> = state
        .ledger(&asset.name)
        .await?
        .into_iter()
        .map(|e| (e.path, e.content_hash))
        .collect();
    let pending: Vec<FileUnit> = if options.full_refresh {
        units
    } else {
        units
            .into_iter()
            .filter(|u| !seen.contains(&(u.key.clone(), u.content_hash.clone())))
            .collect()
    };
    let description = asset
        .contract
        .description
        .as_ref()
        .and_then(|d| d.purpose.as_deref());
    if pending.is_empty() && !options.full_refresh {
        report.status = RunStatus::UpToDate;
        if let Some(t) = LakeTable::open(&report.table_path).await? {
            report.table_version = t.version();
        }
        if let Some(t) = LakeTable::open(&report.quarantine_path).await? {
            report.quarantine_version = t.version();
        }
        return Ok(());
    }
    let table = LakeTable::open_or_create(
        &report.table_path,
        &asset.name,
        &validator.schema(),
        description,
    )
    .await?;
    let quarantine = LakeTable::open_or_create(
        &report.quarantine_path,
        &format!("{}_quarantine", asset.name),
        &quarantine_schema(),
        None,
    )
    .await?;
    let app_id = format!("weir:{}", asset.name);
    let published = table
        .txn_version(&app_id)
        .await?
        .max(quarantine.txn_version(&app_id).await?)
        .unwrap_or(0);
    let txn_version = published + 1;
    record.txn_version = Some(txn_version);
    state.insert_run(record).await?;

    progress.asset_started(&asset.name, pending.iter().map(|u| u.size).sum());
    let mut writer = table.stage()?;
    let mut quarantine_writer = quarantine.stage()?;
    let mut files: Vec<LedgerEntry> = pending
        .iter()
        .map(|u| LedgerEntry {
            path: u.key.clone(),
            content_hash: u.content_hash.clone(),
            size_bytes: u.size,
            rows_in: 0,
            rows_stored: 0,
            rows_quarantined: 0,
        })
        .collect();
    let (tx, mut rx) = mpsc::channel::<Result<Piece>>(4);
    let reader = {
        let validator = validator.clone();
        let source = source.clone();
        let pending = pending.clone();
        std::thread::spawn(move || read_and_validate(&pending, &source, &validator, &tx))
    };
    let now_micros = chrono::Utc::now().timestamp_micros();
    let mut rule_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut failure = None;
    while let Some(piece) = rx.recv().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        match piece {
            Piece::Opened { warnings } => report.warnings.extend(warnings),
            Piece::Batch {
                file,
                validated,
                records,
                bytes,
            } => {
                let entry = &mut files[file];
                entry.rows_in += records;
                entry.rows_stored += validated.good.num_rows() as u64;
                entry.rows_quarantined += validated.quarantined.len() as u64;
                report.bytes_in += bytes;
                progress.bytes_read(&asset.name, bytes);
                for (rule, n) in &validated.rule_counts {
                    *rule_counts.entry(rule.clone()).or_default() += n;
                }
                for row in &validated.quarantined {
                    *report
                        .quarantine_by_rule
                        .entry(row.rule_id.clone())
                        .or_default() += 1;
                }
                if !validated.quarantined.is_empty() {
                    let batch = quarantine_batch(
                        &report.run_id,
                        &entry.path,
                        &validated.quarantined,
                        now_micros,
                    )?;
                    quarantine_writer.write(batch).await?;
                }
                writer.write(validated.good).await?;
            }
        }
    }
    drop(rx);
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
    if report.rows_in != report.rows_stored + report.rows_quarantined {
        return Err(OrchestrateError::Config(format!(
            "internal error: {} rows in but {} stored + {} quarantined; nothing was published",
            report.rows_in, report.rows_stored, report.rows_quarantined
        )));
    }
    let adds = writer.finish().await?;
    let quarantine_adds = quarantine_writer.finish().await?;
    failpoint("staged");

    let ctx = SessionContext::new();
    register_post_publish_view(&ctx, &asset.name, &table, &adds, options.full_refresh).await?;
    let mut checks = validator.run_checks(report.rows_in, &rule_counts);
    checks.extend(
        audit(
            &AuditScope {
                ctx: &ctx,
                table: &asset.name,
            },
            validator.dataset_rules(),
        )
        .await?,
    );
    report.checks = checks;
    record.rows_in = report.rows_in;
    record.rows_stored = report.rows_stored;
    record.rows_quarantined = report.rows_quarantined;
    record.bytes_in = report.bytes_in;
    record.checks = checks_json(&report.checks);
    if report.checks.iter().any(|c| c.blocks()) {
        weir_store::discard_staged(&table.path, &adds);
        weir_store::discard_staged(&quarantine.path, &quarantine_adds);
        report.status = RunStatus::Failed;
        report.table_version = table.version();
        report.quarantine_version = quarantine.version();
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.blocks())
            .map(|c| c.id.as_str())
            .collect();
        record.status = "failed".into();
        record.error = Some(format!(
            "blocking checks failed: {}; nothing was published",
            failed.join(", ")
        ));
        record.ended_at = Some(now());
        state.insert_run(record).await?;
        return Ok(());
    }

    let mut parts = Vec::new();
    if !quarantine_adds.is_empty() || options.full_refresh {
        parts.push(PublicationPart {
            table_path: quarantine.path.clone(),
            adds: quarantine_adds,
            replace: options.full_refresh,
        });
    }
    parts.push(PublicationPart {
        table_path: table.path.clone(),
        adds,
        replace: options.full_refresh,
    });
    let mut final_record = record.clone();
    final_record.status = "success".into();
    final_record.ended_at = Some(now());
    let mut commit_metadata = BTreeMap::new();
    commit_metadata.insert("weir.runId".into(), serde_json::json!(report.run_id));
    commit_metadata.insert("weir.asset".into(), serde_json::json!(asset.name));
    commit_metadata.insert(
        "weir.contractId".into(),
        serde_json::json!(asset.contract.id),
    );
    commit_metadata.insert(
        "weir.contractVersion".into(),
        serde_json::json!(asset.contract.version),
    );
    commit_metadata.insert("weir.rowsIn".into(), serde_json::json!(report.rows_in));
    commit_metadata.insert(
        "weir.rowsStored".into(),
        serde_json::json!(report.rows_stored),
    );
    commit_metadata.insert(
        "weir.rowsQuarantined".into(),
        serde_json::json!(report.rows_quarantined),
    );
    let payload = LedgerPayload {
        asset: asset.name.clone(),
        replace: options.full_refresh,
        files,
        run: final_record,
    };
    let publication = Publication {
        run_id: report.run_id.clone(),
        app_id,
        version: txn_version,
        commit_metadata,
        parts,
        payload: serde_json::to_value(&payload)
            .map_err(|e| OrchestrateError::Config(e.to_string()))?,
    };
    let journal = journal_path(project, &asset.name);
    weir_store::write_journal(&journal, &publication)?;
    failpoint("journaled");
    let versions = crate::recover::complete(state, &publication, &journal).await?;
    report.quarantine_version = versions.quarantine.or(quarantine.version());
    report.table_version = versions.table;
    Ok(())
}

enum Piece {
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

/// The reading side of the pipeline, on its own thread so decoding and validation overlap
/// with Parquet encoding on the other core. Stops at the first unreadable unit.
fn read_and_validate(
    pending: &[FileUnit],
    source: &SourceDef,
    validator: &Validator,
    tx: &mpsc::Sender<Result<Piece>>,
) {
    let columns = validator.column_names();
    for (idx, unit) in pending.iter().enumerate() {
        let reader = match open_unit(unit, source, &columns) {
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
            let piece = batch.map_err(OrchestrateError::from).and_then(|sb| {
                let validated = validator.validate(&sb)?;
                Ok(Piece::Batch {
                    file: idx,
                    validated,
                    records: sb.records(),
                    bytes: sb.bytes,
                })
            });
            let stop = piece.is_err();
            if tx.blocking_send(piece).is_err() || stop {
                return;
            }
        }
    }
}

fn checks_json(checks: &[weir_quality::CheckResult]) -> String {
    let list: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id, "metric": c.metric, "column": c.column, "value": c.value,
                "threshold": c.threshold, "unit": c.unit, "passed": c.passed, "severity": c.severity.as_str(),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// A test hook: with `WEIR_FAILPOINT=<name>`, the process announces the point on stderr and
/// waits there, so a crash test can SIGKILL it at exactly that instant.
pub(crate) fn failpoint(name: &str) {
    if std::env::var("WEIR_FAILPOINT").ok().as_deref() == Some(name) {
        eprintln!("weir-failpoint: {name}");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
