//! What every run does once rows are validated, whatever produced them: stage good rows and
//! quarantined rows, audit the post-publish view, then journal and publish, or publish nothing.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;
use weir_model::Severity;
use weir_model::{Asset, Project};
use weir_quality::{AuditScope, CheckResult, CheckScope, Validated, Validator, audit};
use weir_store::{
    Add, LakeTable, Publication, PublicationPart, StagedWriter, register_post_publish_view,
};

use crate::error::{OrchestrateError, Result};
use crate::quarantine_rows::quarantine_batch;
use crate::report::{AssetRunReport, RunStatus};
use crate::runner::{LedgerPayload, checks_json, failpoint, journal_path};
use crate::state::{LedgerEntry, RunRecord, StateStore, now};

/// A run's open tables and staged writers.
pub(crate) struct Staging {
    pub table: LakeTable,
    pub quarantine: LakeTable,
    writer: StagedWriter,
    quarantine_writer: StagedWriter,
    pub app_id: String,
    pub txn_version: i64,
    rule_counts: BTreeMap<String, u64>,
    now_micros: i64,
    /// More `commitInfo` entries for the publishing commits (a model's upstream versions).
    pub extra_metadata: BTreeMap<String, serde_json::Value>,
    /// Quarantine files this publication rewrites (a replay marking rows `replayed_by`).
    pub quarantine_rewrite: Option<QuarantineRewrite>,
}

/// Staged copies of some quarantine files, and the files they replace, committed together.
pub(crate) struct QuarantineRewrite {
    pub adds: Vec<Add>,
    pub removes: Vec<String>,
}

impl Staging {
    /// Opens (creating if needed) the asset's table and quarantine table, picks this run's
    /// `txn` version and records the run as started.
    pub async fn open(
        asset: &Asset,
        validator: &Validator,
        report: &AssetRunReport,
        record: &mut RunRecord,
        state: &StateStore,
    ) -> Result<Staging> {
        let description = asset
            .contract
            .description
            .as_ref()
            .and_then(|d| d.purpose.as_deref());
        let table = LakeTable::open_or_create(
            &report.table_path,
            &asset.name,
            &validator.schema(),
            description,
        )
        .await?;
        let quarantine = weir_store::open_quarantine(
            &report.quarantine_path,
            &format!("{}_quarantine", asset.name),
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
        let writer = table.stage()?;
        let quarantine_writer = quarantine.stage()?;
        Ok(Staging {
            table,
            quarantine,
            writer,
            quarantine_writer,
            app_id,
            txn_version,
            rule_counts: BTreeMap::new(),
            now_micros: chrono::Utc::now().timestamp_micros(),
            extra_metadata: BTreeMap::new(),
            quarantine_rewrite: None,
        })
    }

    /// Stages one validated batch; `origin` names where its rows came from (a file, a model).
    pub async fn accept(
        &mut self,
        origin: &str,
        validated: Validated,
        report: &mut AssetRunReport,
    ) -> Result<()> {
        for (rule, n) in &validated.rule_counts {
            *self.rule_counts.entry(rule.clone()).or_default() += n;
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
                origin,
                &validated.quarantined,
                self.now_micros,
            )?;
            self.quarantine_writer.write(batch).await?;
        }
        self.writer.write(validated.good).await?;
        Ok(())
    }

    /// Audits, then publishes in one commit per table, or, if a blocking check failed,
    /// publishes nothing and records why. `replace` rebuilds the tables instead of appending;
    /// `merge_keys` merges the rows into the table on those keys instead of appending.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish(
        self,
        project: &Project,
        state: &StateStore,
        asset: &Asset,
        validator: &Validator,
        replace: bool,
        merge_keys: &[String],
        files: Vec<LedgerEntry>,
        report: &mut AssetRunReport,
        record: &mut RunRecord,
    ) -> Result<()> {
        if report.rows_in != report.rows_stored + report.rows_quarantined {
            return Err(OrchestrateError::Config(format!(
                "internal error: {} rows in but {} stored + {} quarantined; nothing was published",
                report.rows_in, report.rows_stored, report.rows_quarantined
            )));
        }
        let adds = self.writer.finish().await?;
        let quarantine_adds = self.quarantine_writer.finish().await?;
        failpoint("staged", &asset.name);

        let ctx = SessionContext::new();
        register_post_publish_view(&ctx, &asset.name, &self.table, &adds, replace, merge_keys)
            .await?;
        let mut checks = validator.run_checks(report.rows_in, &self.rule_counts);
        let mut duplicate_keys = None;
        if !merge_keys.is_empty() && !adds.is_empty() {
            let (check, sample) = duplicate_key_check(&ctx, &asset.name, merge_keys).await?;
            duplicate_keys = sample;
            checks.push(check);
        }
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
            weir_store::discard_staged(&self.table.path, &adds);
            if let Some(rewrite) = &self.quarantine_rewrite {
                weir_store::discard_staged(&self.quarantine.path, &rewrite.adds);
            }
            report.status = RunStatus::Failed;
            report.table_version = self.table.version();
            report.quarantine_version = self.quarantine.version();
            let kept = if quarantine_adds.is_empty() {
                String::new()
            } else {
                report.quarantine_version = Some(
                    keep_failed_rows(&self.quarantine, asset, &report.run_id, &quarantine_adds)
                        .await?,
                );
                format!(
                    "; its {} quarantined rows are kept with run_status = failed",
                    report.rows_quarantined
                )
            };
            let failed: Vec<&str> = report
                .checks
                .iter()
                .filter(|c| c.blocks())
                .map(|c| c.id.as_str())
                .collect();
            record.status = "failed".into();
            record.error = Some(format!(
                "blocking checks failed: {}{}; nothing was published{kept}",
                failed.join(", "),
                duplicate_keys
                    .map(|keys| format!(
                        " (the query gives more than one row for unique_key {keys})"
                    ))
                    .unwrap_or_default()
            ));
            report.error = record.error.clone();
            record.ended_at = Some(now());
            state.insert_run(record).await?;
            return Ok(());
        }

        let mut parts = Vec::new();
        let (rewritten, removes) = match self.quarantine_rewrite {
            Some(r) => (r.adds, r.removes),
            None => (Vec::new(), Vec::new()),
        };
        if !quarantine_adds.is_empty() || replace || !removes.is_empty() {
            let mut quarantine_adds = quarantine_adds;
            quarantine_adds.extend(rewritten);
            parts.push(PublicationPart {
                table_path: self.quarantine.path.clone(),
                adds: quarantine_adds,
                replace,
                merge_keys: Vec::new(),
                removes,
            });
        }
        parts.push(PublicationPart {
            table_path: self.table.path.clone(),
            adds,
            replace,
            merge_keys: merge_keys.to_vec(),
            removes: Vec::new(),
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
        commit_metadata.extend(self.extra_metadata.clone());
        let payload = LedgerPayload {
            asset: asset.name.clone(),
            replace,
            files,
            run: final_record,
        };
        let publication = Publication {
            run_id: report.run_id.clone(),
            app_id: self.app_id.clone(),
            version: self.txn_version,
            commit_metadata,
            parts,
            payload: serde_json::to_value(&payload)
                .map_err(|e| OrchestrateError::Config(e.to_string()))?,
        };
        let journal = journal_path(project, &asset.name);
        weir_store::write_journal(&journal, &publication)?;
        failpoint("journaled", &asset.name);
        let versions = crate::recover::complete(state, &publication, &journal).await?;
        report.quarantine_version = versions.quarantine.or(self.quarantine.version());
        report.table_version = versions.table;
        Ok(())
    }
}

/// A failed run publishes nothing, but its quarantined rows are kept for inspection: restaged
/// with `run_status = failed` and committed alone, under the `weir-failed:<asset>` txn sequence
/// (never `weir:<asset>`, which only successful publications advance). One atomic commit, so
/// no journal: a crash before it leaves nothing, and the run's files are read again anyway.
async fn keep_failed_rows(
    quarantine: &LakeTable,
    asset: &Asset,
    run_id: &str,
    staged: &[Add],
) -> Result<u64> {
    let adds = weir_store::restage_with_value(
        quarantine,
        staged,
        "run_status",
        weir_store::RUN_STATUS_FAILED,
    )
    .await?;
    let app_id = weir_store::failed_app_id(&asset.name);
    let version = quarantine.txn_version(&app_id).await?.unwrap_or(0) + 1;
    let mut commit_metadata = BTreeMap::new();
    commit_metadata.insert("weir.runId".into(), serde_json::json!(run_id));
    commit_metadata.insert("weir.asset".into(), serde_json::json!(asset.name));
    commit_metadata.insert(
        "weir.runStatus".into(),
        serde_json::json!(weir_store::RUN_STATUS_FAILED),
    );
    let publication = Publication {
        run_id: run_id.to_string(),
        app_id,
        version,
        commit_metadata,
        parts: vec![PublicationPart {
            table_path: quarantine.path.clone(),
            adds,
            replace: false,
            merge_keys: Vec::new(),
            removes: Vec::new(),
        }],
        payload: serde_json::Value::Null,
    };
    let outcome = publication.apply().await?;
    Ok(outcome
        .first()
        .and_then(|o| o.version)
        .or(quarantine.version())
        .unwrap_or_default())
}

/// A merge needs one row per `unique_key` value: two would make Delta's MERGE fail (or insert
/// both). Checked on the staged rows before anything is journalled, so a bad query fails its
/// own run, cleanly, with up to five of the keys named.
async fn duplicate_key_check(
    ctx: &SessionContext,
    asset: &str,
    keys: &[String],
) -> Result<(CheckResult, Option<String>)> {
    let quoted: Vec<String> = keys
        .iter()
        .map(|k| format!("\"{}\"", k.replace('"', "\"\"")))
        .collect();
    let sql = format!(
        "SELECT {cols}, COUNT(*) AS n FROM \"{asset}__staged\" GROUP BY {cols} HAVING COUNT(*) > 1 ORDER BY n DESC",
        cols = quoted.join(", ")
    );
    let query = |e| OrchestrateError::Store(Box::new(weir_store::StoreError::Query(e)));
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(query)?
        .collect()
        .await
        .map_err(query)?;
    let duplicated: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut sample = Vec::new();
    'rows: for batch in &batches {
        for row in 0..batch.num_rows() {
            if sample.len() == 5 {
                break 'rows;
            }
            let mut values = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                let value = arrow::util::display::array_value_to_string(batch.column(i), row)?;
                values.push(format!("{key}={value}"));
            }
            let n = arrow::util::display::array_value_to_string(batch.column(keys.len()), row)?;
            sample.push(format!("{} ({n} rows)", values.join(", ")));
        }
    }
    let check = CheckResult {
        id: "unique_key.duplicate".into(),
        metric: "duplicateValues".into(),
        column: Some(keys.join("+")),
        scope: CheckScope::Run,
        value: duplicated as f64,
        threshold: "mustBe 0".into(),
        unit: "rows",
        passed: duplicated == 0,
        severity: Severity::Error,
    };
    let sample = (duplicated > 0).then(|| {
        let more = if duplicated > sample.len() {
            format!(" and {} more", duplicated - sample.len())
        } else {
            String::new()
        };
        format!("{}{more}", sample.join("; "))
    });
    Ok((check, sample))
}
