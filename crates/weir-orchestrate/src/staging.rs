//! What every run does once rows are validated, whatever produced them: stage good rows and
//! quarantined rows, audit the post-publish view, then journal and publish, or publish nothing.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{Column, JoinType, ScalarValue};
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::prelude::{Expr, SessionContext, ident, lit};
use futures::StreamExt;
use weir_model::{Asset, Project, QuarantineLimit, Severity};
use weir_quality::{
    AuditScope, CheckResult, CheckScope, DatasetRule, KeyGuard, Validated, Validator, audit,
};
use weir_store::{
    Add, LakeTable, Publication, PublicationPart, StagedWriter, origin_of, register_delta_without,
    register_files, register_post_publish_view, staged_paths, tag_origin,
};

use crate::error::{OrchestrateError, Result};
use crate::quarantine_rows::quarantine_batch;
use crate::report::{AssetRunReport, RejectedFile, ReplacedFile, RunStatus};
use crate::run_quarantine::RunQuarantine;
use crate::runner::{LedgerPayload, checks_json, failpoint, journal_path};
use crate::state::{LedgerEntry, RunRecord, StateStore, now};

/// A group (one input file) whose rows stay in memory up to this size; past it they are
/// staged in files of their own, deleted if the group fails.
const GROUP_MEMORY_BYTES: usize = 32 * 1024 * 1024;

/// A run's open tables and staged writers.
pub(crate) struct Staging {
    pub table: LakeTable,
    /// The quarantine table, created with the first row the asset quarantines.
    pub quarantine: RunQuarantine,
    schema: SchemaRef,
    /// `None` once finished early (after refusing keys the table already has).
    writer: Option<StagedWriter>,
    /// Opened with the run's first quarantined row.
    quarantine_writer: Option<StagedWriter>,
    /// Files staged outside the two writers: by groups that spilled, or by a rewrite.
    adds: Vec<Add>,
    quarantine_adds: Vec<Add>,
    /// The all-or-nothing group being staged, if any.
    group: Option<Group>,
    pub app_id: String,
    pub txn_version: i64,
    rule_counts: BTreeMap<String, u64>,
    now_micros: i64,
    /// More `commitInfo` entries for the publishing commits (a model's upstream versions).
    pub extra_metadata: BTreeMap<String, serde_json::Value>,
    /// Quarantine files this publication rewrites (a replay marking rows `replayed_by`).
    pub quarantine_rewrite: Option<QuarantineRewrite>,
    /// Each group's rows go to data files of their own, tagged with the group's origin (a
    /// source with `on_change = "replace"`), so a rewritten file's rows can be found later.
    per_origin: bool,
    /// By source file rewritten in place: the data files of the table and of the quarantine
    /// holding its earlier rows, which this publication removes (the new content replaces them).
    replacements: BTreeMap<String, Replacement>,
}

#[derive(Default)]
struct Replacement {
    data: Vec<String>,
    quarantine: Vec<String>,
}

/// Staged copies of some quarantine files, and the files they replace, committed together.
pub(crate) struct QuarantineRewrite {
    pub adds: Vec<Add>,
    pub removes: Vec<String>,
}

/// Rows staged all-or-nothing: kept in memory (and so in no file) until the group is
/// committed, or, past [`GROUP_MEMORY_BYTES`], in staged files of the group's own.
#[derive(Default)]
struct Group {
    good: Vec<RecordBatch>,
    quarantined: Vec<RecordBatch>,
    memory: usize,
    /// The group's own writers of good and of quarantined rows (opened with the first).
    spilled: Option<(StagedWriter, Option<StagedWriter>)>,
    rule_counts: BTreeMap<String, u64>,
    by_rule: BTreeMap<String, u64>,
    /// Where the rows came from (a source file), for the origin tag.
    origin: String,
}

/// How [`Staging::finish`] checks and publishes.
pub(crate) struct Finish<'a> {
    /// Rebuild the tables instead of appending.
    pub replace: bool,
    /// Merge the rows into the table on these keys instead of appending.
    pub merge_keys: &'a [String],
    /// `unique` and `primaryKey` were enforced row by row (a source run): their checks report
    /// the refused rows, and the audit does not measure them again on the table.
    pub keys_enforced: bool,
    /// The most rows the run may quarantine and still publish.
    pub max_quarantined: Option<QuarantineLimit>,
    /// Told when the audit and the commits start.
    pub progress: &'a dyn crate::progress::Progress,
}

impl Staging {
    /// Opens (creating if needed) the asset's table and its quarantine table if it has one,
    /// picks this run's `txn` version and records the run as started.
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
        let table = LakeTable::open_or_create_evolving(
            &report.table_path,
            &asset.name,
            &validator.schema(),
            description,
        )
        .await?;
        let quarantine = RunQuarantine::open(&report.quarantine_path, &asset.name).await?;
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
        Ok(Staging {
            table,
            quarantine,
            schema: validator.schema(),
            writer: Some(writer),
            quarantine_writer: None,
            adds: Vec::new(),
            quarantine_adds: Vec::new(),
            group: None,
            app_id,
            txn_version,
            rule_counts: BTreeMap::new(),
            now_micros: chrono::Utc::now().timestamp_micros(),
            extra_metadata: BTreeMap::new(),
            quarantine_rewrite: None,
            per_origin: false,
            replacements: BTreeMap::new(),
        })
    }

    /// Keeps each group's rows in data files of their own, tagged with its origin.
    pub fn stage_per_origin(&mut self) {
        self.per_origin = true;
    }

    /// Plans the replacement of the rows that each of `origins` (source files rewritten in
    /// place) contributed before: their data files, found by origin tag, are removed by the
    /// publishing commit. A file whose earlier stored rows are not all in tagged data files
    /// (ingested before `on_change = "replace"` was set) cannot be replaced exactly: it is
    /// returned as rejected, with the way out.
    pub async fn plan_replacements(
        &mut self,
        origins: &std::collections::BTreeSet<String>,
        ledger: &[LedgerEntry],
        report: &mut AssetRunReport,
    ) -> Result<Vec<RejectedFile>> {
        let mut refused = Vec::new();
        if origins.is_empty() {
            return Ok(refused);
        }
        let live = self.table.live_files().await?;
        let quarantined = self.quarantine.live_files().await?;
        for origin in origins {
            let of = |files: &[weir_store::LiveFile]| -> (Vec<String>, u64) {
                let mine: Vec<&weir_store::LiveFile> = files
                    .iter()
                    .filter(|f| f.origin.as_deref() == Some(origin.as_str()))
                    .collect();
                (
                    mine.iter().map(|f| f.path.clone()).collect(),
                    mine.iter().map(|f| f.rows.unwrap_or(0)).sum(),
                )
            };
            let (data, rows) = of(&live);
            let (bad, bad_rows) = of(&quarantined);
            let stored: u64 = ledger
                .iter()
                .filter(|e| e.path == *origin)
                .map(|e| e.rows_stored)
                .sum();
            if rows < stored {
                refused.push(RejectedFile {
                    path: origin.clone(),
                    reason: format!(
                        "{origin} changed since it was ingested, but only {rows} of the {stored} rows it stored are in data files tagged with it (the others were ingested before `on_change = \"replace\"` was set), so they cannot be replaced exactly; it is not read again: rebuild the table with `weir run --full-refresh`"
                    ),
                });
                continue;
            }
            self.replacements.insert(
                origin.clone(),
                Replacement {
                    data,
                    quarantine: bad,
                },
            );
            report.replaced_files.push(ReplacedFile {
                path: origin.clone(),
                rows_removed: rows,
                quarantined_removed: bad_rows,
            });
        }
        Ok(refused)
    }

    /// Plans the replacement of every row earlier runs stored or quarantined under `origin`
    /// (a partition, `partition:<key>`): the data and quarantine files tagged with it are
    /// removed by the publishing commit. Returns the rows and quarantined rows removed. Fails
    /// when a file of either table carries no origin at all (written before the model was
    /// partitioned): which of its rows belong to `origin` cannot be told from its tags.
    pub async fn replace_origin(&mut self, origin: &str, rebuild: &str) -> Result<(u64, u64)> {
        let live = self.table.live_files().await?;
        let quarantined = self.quarantine.live_files().await?;
        let untagged = live
            .iter()
            .chain(&quarantined)
            .filter(|f| f.origin.is_none())
            .count();
        if untagged > 0 {
            return Err(OrchestrateError::Config(format!(
                "{untagged} file(s) of the table or its quarantine were written before its rows were kept by partition, so a partition cannot be replaced exactly; {rebuild}"
            )));
        }
        let of = |files: &[weir_store::LiveFile]| -> (Vec<String>, u64) {
            let mine: Vec<&weir_store::LiveFile> = files
                .iter()
                .filter(|f| f.origin.as_deref() == Some(origin))
                .collect();
            (
                mine.iter().map(|f| f.path.clone()).collect(),
                mine.iter().map(|f| f.rows.unwrap_or(0)).sum(),
            )
        };
        let (data, rows) = of(&live);
        let (bad, bad_rows) = of(&quarantined);
        self.replacements.insert(
            origin.to_string(),
            Replacement {
                data,
                quarantine: bad,
            },
        );
        Ok((rows, bad_rows))
    }

    /// Gives up replacing a rewritten file (its new content could not be read): its earlier
    /// rows stay as they are.
    pub fn cancel_replacement(&mut self, origin: &str, report: &mut AssetRunReport) {
        self.replacements.remove(origin);
        report.replaced_files.retain(|f| f.path != origin);
    }

    /// The data files of the table this publication removes.
    fn removes(&self) -> Vec<String> {
        self.replacements
            .values()
            .flat_map(|r| r.data.iter().cloned())
            .collect()
    }

    /// Stages one validated batch; `origin` names where its rows came from (a file, a model).
    /// Inside a group (see [`Staging::begin_group`]) the rows wait for the group's fate.
    pub async fn accept(
        &mut self,
        origin: &str,
        validated: Validated,
        report: &mut AssetRunReport,
    ) -> Result<()> {
        let quarantined = if validated.quarantined.is_empty() {
            None
        } else {
            Some(quarantine_batch(
                &report.run_id,
                origin,
                &validated.quarantined,
                self.now_micros,
            )?)
        };
        let Some(group) = self.group.as_mut() else {
            for (rule, n) in &validated.rule_counts {
                *self.rule_counts.entry(rule.clone()).or_default() += n;
            }
            for row in &validated.quarantined {
                *report
                    .quarantine_by_rule
                    .entry(row.rule_id.clone())
                    .or_default() += 1;
            }
            if let Some(batch) = quarantined {
                write_opening(&mut self.quarantine_writer, &mut self.quarantine, batch).await?;
            }
            return self
                .writer_mut()?
                .write(validated.good)
                .await
                .map_err(Into::into);
        };
        for (rule, n) in &validated.rule_counts {
            *group.rule_counts.entry(rule.clone()).or_default() += n;
        }
        for row in &validated.quarantined {
            *group.by_rule.entry(row.rule_id.clone()).or_default() += 1;
        }
        if group.spilled.is_none() {
            group.memory += validated.good.get_array_memory_size();
            group.memory += quarantined
                .as_ref()
                .map_or(0, |b| b.get_array_memory_size());
            if group.memory > GROUP_MEMORY_BYTES {
                let mut good = self.table.stage()?;
                let mut bad = None;
                for batch in std::mem::take(&mut group.good) {
                    good.write(batch).await?;
                }
                for batch in std::mem::take(&mut group.quarantined) {
                    write_opening(&mut bad, &mut self.quarantine, batch).await?;
                }
                group.spilled = Some((good, bad));
            }
        }
        match group.spilled.as_mut() {
            Some((good, bad)) => {
                if let Some(batch) = quarantined {
                    write_opening(bad, &mut self.quarantine, batch).await?;
                }
                good.write(validated.good).await?;
            }
            None => {
                group.quarantined.extend(quarantined);
                if validated.good.num_rows() > 0 {
                    group.good.push(validated.good);
                }
            }
        }
        Ok(())
    }

    fn writer_mut(&mut self) -> Result<&mut StagedWriter> {
        self.writer.as_mut().ok_or_else(|| {
            OrchestrateError::Config("internal error: rows staged after the writer closed".into())
        })
    }

    /// Starts a group: the rows accepted until [`Staging::commit_group`] are published
    /// together or, after [`Staging::abort_group`], not at all.
    pub fn begin_group(&mut self, origin: &str) {
        self.group = Some(Group {
            origin: origin.to_string(),
            ..Group::default()
        });
    }

    /// The group's rows join the run's.
    pub async fn commit_group(&mut self, report: &mut AssetRunReport) -> Result<()> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        for (rule, n) in group.rule_counts {
            *self.rule_counts.entry(rule).or_default() += n;
        }
        for (rule, n) in group.by_rule {
            *report.quarantine_by_rule.entry(rule).or_default() += n;
        }
        let (mut good, mut bad) = match group.spilled {
            Some((good, bad)) => (good.finish().await?, finish_opened(bad).await?),
            None if self.per_origin => {
                let (mut good, mut bad) = (self.table.stage()?, None);
                for batch in group.quarantined {
                    write_opening(&mut bad, &mut self.quarantine, batch).await?;
                }
                for batch in group.good {
                    good.write(batch).await?;
                }
                (good.finish().await?, finish_opened(bad).await?)
            }
            None => {
                for batch in group.quarantined {
                    write_opening(&mut self.quarantine_writer, &mut self.quarantine, batch).await?;
                }
                for batch in group.good {
                    self.writer_mut()?.write(batch).await?;
                }
                return Ok(());
            }
        };
        if self.per_origin {
            tag_origin(&mut good, &group.origin);
            tag_origin(&mut bad, &group.origin);
        }
        self.adds.extend(good);
        self.quarantine_adds.extend(bad);
        Ok(())
    }

    /// The group's rows are dropped, with any file they were staged in.
    pub async fn abort_group(&mut self) -> Result<()> {
        if let Some(Group {
            spilled: Some((good, bad)),
            ..
        }) = self.group.take()
        {
            good.discard().await?;
            if let Some(bad) = bad {
                bad.discard().await?;
            }
        }
        Ok(())
    }

    /// Gives up the run: every staged file is deleted. Writers are flushed first, so none is
    /// dropped with a half-written file (whose background abort would panic in the store).
    pub async fn abandon(mut self) {
        let _ = self.abort_group().await;
        if let Some(writer) = self.writer.take() {
            let _ = writer.discard().await;
        }
        if let Some(writer) = self.quarantine_writer.take() {
            let _ = writer.discard().await;
        }
        weir_store::discard_staged(&self.table.path, &self.adds);
        weir_store::discard_staged(&self.quarantine.path, &self.quarantine_adds);
    }

    /// Refuses the staged rows whose key (`unique` column or `primaryKey`) the published table
    /// already has: they move to the quarantine as `<rule>.duplicate`. Returns how many rows
    /// each unit (by index) lost that way.
    ///
    /// It costs what the new rows cost, not what the table holds: the published table is read
    /// only between the smallest and largest key of the staged rows, a filter the Delta scan
    /// uses to skip every data file whose statistics fall outside, and only its key columns;
    /// the staged rows are rewritten only when some key collides.
    pub async fn refuse_published_keys(
        &mut self,
        guard: &KeyGuard,
        report: &mut AssetRunReport,
    ) -> Result<BTreeMap<usize, u64>> {
        let mut refused = BTreeMap::new();
        if self.table.version().unwrap_or(0) == 0 {
            return Ok(refused);
        }
        let started = std::time::Instant::now();
        if let Some(writer) = self.writer.take() {
            self.adds.extend(writer.finish().await?);
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "keys: staged writer closed"
        );
        let query = |e| OrchestrateError::Store(Box::new(weir_store::StoreError::Query(e)));
        for (k, rule) in guard.rules().enumerate() {
            if self.adds.is_empty() {
                break;
            }
            let ctx = SessionContext::new();
            // The rows of rewritten files being replaced are not in the table any more.
            register_delta_without(&ctx, "published", &self.table, &self.removes()).await?;
            register_files(
                &ctx,
                "staged",
                &self.table,
                &staged_paths(&self.table.path, &self.adds),
            )
            .await?;
            let staged = ctx.table("staged").await.map_err(query)?;
            let mut bounds = Vec::new();
            for c in &rule.columns {
                bounds.push(min(ident(c.as_str())));
                bounds.push(max(ident(c.as_str())));
            }
            let bounds = staged
                .clone()
                .aggregate(vec![], bounds)
                .map_err(query)?
                .collect()
                .await
                .map_err(query)?;
            let Some(bounds) = bounds.iter().find(|b| b.num_rows() > 0) else {
                continue;
            };
            let mut range: Option<Expr> = None;
            for (i, c) in rule.columns.iter().enumerate() {
                let lo = ScalarValue::try_from_array(bounds.column(2 * i), 0).map_err(query)?;
                let hi = ScalarValue::try_from_array(bounds.column(2 * i + 1), 0).map_err(query)?;
                let within = ident(c.as_str())
                    .gt_eq(lit(lo))
                    .and(ident(c.as_str()).lt_eq(lit(hi)));
                range = Some(match range {
                    Some(r) => r.and(within),
                    None => within,
                });
            }
            let Some(range) = range else { continue };
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "keys: bounds"
            );
            let keys: Vec<Expr> = rule.columns.iter().map(|c| ident(c.as_str())).collect();
            let published = ctx
                .table("published")
                .await
                .and_then(|t| t.filter(range))
                .and_then(|t| t.select(keys.clone()))
                .and_then(|t| t.alias("p"))
                .map_err(query)?;
            // Only the key columns of the staged rows: the keys the table already has.
            let on: Vec<Expr> = rule
                .columns
                .iter()
                .map(|c| {
                    Expr::Column(Column::new(Some("s"), c))
                        .eq(Expr::Column(Column::new(Some("p"), c)))
                })
                .collect();
            let colliding = staged
                .select(keys)
                .and_then(|t| t.alias("s"))
                .and_then(|t| t.join_on(published, JoinType::LeftSemi, on))
                .map_err(query)?
                .collect()
                .await
                .map_err(query)?;
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "keys: colliding keys found"
            );
            if colliding.iter().all(|b| b.num_rows() == 0) {
                continue;
            }
            let key_indices: Vec<usize> = rule
                .columns
                .iter()
                .map(|c| self.schema.index_of(c))
                .collect::<std::result::Result<_, _>>()?;
            let converter = arrow::row::RowConverter::new(
                key_indices
                    .iter()
                    .map(|i| arrow::row::SortField::new(self.schema.field(*i).data_type().clone()))
                    .collect(),
            )?;
            let mut taken: std::collections::HashSet<Box<[u8]>> = std::collections::HashSet::new();
            for batch in &colliding {
                let mut columns = Vec::with_capacity(key_indices.len());
                for (column, i) in batch.columns().iter().zip(&key_indices) {
                    columns.push(arrow::compute::cast(
                        column,
                        self.schema.field(*i).data_type(),
                    )?);
                }
                let rows = converter.convert_columns(&columns)?;
                taken.extend(rows.iter().map(|r| Box::<[u8]>::from(r.as_ref())));
            }
            // One pass over the staged rows, origin by origin (so files staged per origin stay
            // so): rows with a taken key go to the quarantine, the others to new staged files.
            let mut by_origin: BTreeMap<Option<String>, Vec<Add>> = BTreeMap::new();
            for add in std::mem::take(&mut self.adds) {
                by_origin
                    .entry(origin_of(&add).map(str::to_string))
                    .or_default()
                    .push(add);
            }
            let mut rewritten = Vec::new();
            for (i, (origin, adds)) in by_origin.iter().enumerate() {
                let name = format!("staged_{i}");
                register_files(
                    &ctx,
                    &name,
                    &self.table,
                    &staged_paths(&self.table.path, adds),
                )
                .await?;
                let mut rows = ctx
                    .table(name.as_str())
                    .await
                    .map_err(query)?
                    .execute_stream()
                    .await
                    .map_err(query)?;
                let mut writer = self.table.stage()?;
                while let Some(batch) = rows.next().await {
                    let batch = batch.map_err(query)?;
                    let mut columns = Vec::with_capacity(batch.num_columns());
                    for (column, field) in batch.columns().iter().zip(self.schema.fields()) {
                        columns.push(arrow::compute::cast(column, field.data_type())?);
                    }
                    let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
                    let keys: Vec<_> = key_indices
                        .iter()
                        .map(|i| batch.column(*i).clone())
                        .collect();
                    let converted = converter.convert_columns(&keys)?;
                    let keep: arrow::array::BooleanArray = converted
                        .iter()
                        .map(|r| Some(!taken.contains(r.as_ref())))
                        .collect();
                    let dropped = arrow::compute::not(&keep)?;
                    let hits = arrow::compute::filter_record_batch(&batch, &dropped)?;
                    if hits.num_rows() > 0 {
                        let mut by_unit: BTreeMap<usize, Vec<weir_quality::QuarantinedRow>> =
                            BTreeMap::new();
                        for (origin, row) in guard.refuse_published(k, &hits)? {
                            *report
                                .quarantine_by_rule
                                .entry(row.rule_id.clone())
                                .or_default() += 1;
                            by_unit.entry(origin.unit).or_default().push(row);
                        }
                        for (unit, rows) in by_unit {
                            *refused.entry(unit).or_default() += rows.len() as u64;
                            let name = guard.unit_name(unit).unwrap_or("this run");
                            let batch =
                                quarantine_batch(&report.run_id, name, &rows, self.now_micros)?;
                            write_opening(&mut self.quarantine_writer, &mut self.quarantine, batch)
                                .await?;
                        }
                    }
                    writer
                        .write(arrow::compute::filter_record_batch(&batch, &keep)?)
                        .await?;
                }
                let mut staged = writer.finish().await?;
                if let Some(origin) = origin {
                    tag_origin(&mut staged, origin);
                }
                rewritten.extend(staged);
            }
            for adds in by_origin.values() {
                weir_store::discard_staged(&self.table.path, adds);
            }
            self.adds = rewritten;
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "keys: staged rows rewritten"
            );
        }
        Ok(refused)
    }

    /// Audits, then publishes in one commit per table, or, if a blocking check failed,
    /// publishes nothing and records why. With rejected files in the report, what is
    /// published is recorded as `partial`.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish(
        self,
        project: &Project,
        state: &StateStore,
        asset: &Asset,
        validator: &Validator,
        how: Finish<'_>,
        files: Vec<LedgerEntry>,
        report: &mut AssetRunReport,
        record: &mut RunRecord,
    ) -> Result<()> {
        // The sink's time, but for the audit within, which is the check's.
        let started = std::time::Instant::now();
        let validating = report.stages.validating;
        report.stages.enter(weir_model::ComponentKind::Sink);
        let finished = self
            .publish(project, state, asset, validator, how, files, report, record)
            .await;
        let audit = report.stages.validating.saturating_sub(validating);
        report.stages.writing += started.elapsed().saturating_sub(audit);
        finished
    }

    #[allow(clippy::too_many_arguments)]
    async fn publish(
        mut self,
        project: &Project,
        state: &StateStore,
        asset: &Asset,
        validator: &Validator,
        how: Finish<'_>,
        files: Vec<LedgerEntry>,
        report: &mut AssetRunReport,
        record: &mut RunRecord,
    ) -> Result<()> {
        let Finish {
            replace,
            merge_keys,
            keys_enforced,
            max_quarantined,
            progress,
        } = how;
        progress.phase(&asset.name, crate::progress::Phase::Auditing);
        if report.rows_in != report.rows_stored + report.rows_quarantined {
            self.abandon().await;
            return Err(OrchestrateError::Config(format!(
                "internal error: {} rows in but {} stored + {} quarantined; nothing was published",
                report.rows_in, report.rows_stored, report.rows_quarantined
            )));
        }
        let data_removes = self.removes();
        let quarantine_removes: Vec<String> = self
            .replacements
            .values()
            .flat_map(|r| r.quarantine.iter().cloned())
            .collect();
        let started = std::time::Instant::now();
        let mut adds = std::mem::take(&mut self.adds);
        if let Some(writer) = self.writer.take() {
            adds.extend(writer.finish().await?);
        }
        let mut quarantine_adds = std::mem::take(&mut self.quarantine_adds);
        quarantine_adds.extend(finish_opened(self.quarantine_writer.take()).await?);
        let sizes = |adds: &[Add]| -> u64 {
            adds.iter()
                .map(|a| u64::try_from(a.size).unwrap_or(0))
                .sum()
        };
        report.stages.bytes_written = sizes(&adds);
        report.null_counts = weir_store::null_counts(&adds);
        report.stages.quarantine_bytes_written = sizes(&quarantine_adds);
        failpoint("staged", &asset.name);

        report.stages.enter(weir_model::ComponentKind::Check);
        let auditing = std::time::Instant::now();
        let mut checks = validator.run_checks(report.rows_in, &self.rule_counts);
        let dataset_rules: Vec<DatasetRule> = if keys_enforced {
            checks.extend(validator.key_checks(&report.quarantine_by_rule));
            validator.dataset_rules_without_keys()
        } else {
            validator.dataset_rules().to_vec()
        };
        let checks_keys = !merge_keys.is_empty() && !adds.is_empty();
        let mut limit_note = None;
        if let Some(limit) = max_quarantined {
            let exceeded = limit.exceeded(report.rows_quarantined, report.rows_in);
            let (value, unit) = match limit {
                QuarantineLimit::Rows(_) => (report.rows_quarantined as f64, "rows"),
                QuarantineLimit::Percent(_) if report.rows_in == 0 => (0.0, "percent"),
                QuarantineLimit::Percent(_) => (
                    report.rows_quarantined as f64 * 100.0 / report.rows_in as f64,
                    "percent",
                ),
            };
            let bound = match limit {
                QuarantineLimit::Rows(n) => n as f64,
                QuarantineLimit::Percent(p) => p,
            };
            if exceeded {
                limit_note = Some(format!(
                    "{} of {} rows quarantined = {:.1}%, more than max_quarantined = {limit}",
                    report.rows_quarantined,
                    report.rows_in,
                    report.rows_quarantined as f64 * 100.0 / report.rows_in.max(1) as f64,
                ));
            }
            checks.push(CheckResult {
                id: "max_quarantined".into(),
                metric: "quarantinedRows".into(),
                column: None,
                scope: CheckScope::Run,
                value,
                threshold: format!("mustBeLessOrEqualTo {bound}"),
                unit,
                passed: !exceeded,
                severity: Severity::Error,
            });
        }
        let mut duplicate_keys = None;
        // The table as it will be once published, for the key check and the dataset rules.
        // Without either (every rule of the contract is checked row by row while staging) no
        // query reads it, and it is not planned at all.
        if checks_keys || !dataset_rules.is_empty() {
            let ctx = SessionContext::new();
            register_post_publish_view(
                &ctx,
                &asset.name,
                &self.table,
                &adds,
                &data_removes,
                replace,
                merge_keys,
            )
            .await?;
            if checks_keys {
                let (check, sample) = duplicate_key_check(&ctx, &asset.name, merge_keys).await?;
                duplicate_keys = sample;
                checks.push(check);
            }
            // An append (or a replacement of some files' rows) keeps the published rows it
            // does not remove as they are: their counts come from the files' statistics.
            let published_counts = if replace || !merge_keys.is_empty() {
                None
            } else {
                self.table.counts(&data_removes).await?
            };
            let staged_name = format!("{}__staged", asset.name);
            checks.extend(
                audit(
                    &AuditScope {
                        ctx: &ctx,
                        table: &asset.name,
                        appended: published_counts
                            .as_ref()
                            .map(|c| (c, (!adds.is_empty()).then_some(staged_name.as_str()))),
                    },
                    &dataset_rules,
                )
                .await?,
            );
        }
        report.stages.validating += auditing.elapsed();
        report.stages.enter(weir_model::ComponentKind::Sink);
        tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "staged files closed, audit done");
        report.checks = checks;
        record.rows_in = report.rows_in;
        record.rows_stored = report.rows_stored;
        record.rows_quarantined = report.rows_quarantined;
        record.bytes_in = report.bytes_in;
        record.checks = checks_json(&report.checks);
        record.files = serde_json::Value::from(report.files.clone()).to_string();
        record.quarantine_by_rule = serde_json::json!(report.quarantine_by_rule).to_string();
        record.null_counts = serde_json::json!(report.null_counts).to_string();
        if report.checks.iter().any(|c| c.blocks()) {
            weir_store::discard_staged(&self.table.path, &adds);
            if let Some(rewrite) = &self.quarantine_rewrite {
                weir_store::discard_staged(&self.quarantine.path, &rewrite.adds);
            }
            report.status = RunStatus::Failed;
            report.replaced_files.clear();
            report.table_version = self.table.version();
            report.quarantine_version = self.quarantine.version();
            let kept = if quarantine_adds.is_empty() {
                String::new()
            } else {
                let run_id = report.run_id.clone();
                let quarantine = self.quarantine.created().await?;
                let version =
                    keep_failed_rows(quarantine, asset, &run_id, &quarantine_adds, report).await?;
                report.quarantine_version = Some(version);
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
                "blocking checks failed: {}{}{}; nothing was published{kept}{}",
                failed.join(", "),
                duplicate_keys
                    .map(|keys| format!(
                        " (the query gives more than one row for unique_key {keys})"
                    ))
                    .unwrap_or_default(),
                limit_note.map(|n| format!(" ({n})")).unwrap_or_default(),
                rejected_note(report)
                    .map(|n| format!("; also {n}"))
                    .unwrap_or_default()
            ));
            report.error = record.error.clone();
            record.ended_at = Some(now());
            state.insert_run(record).await?;
            return Ok(());
        }

        let mut parts = Vec::new();
        let (rewritten, mut removes) = match self.quarantine_rewrite {
            Some(r) => (r.adds, r.removes),
            None => (Vec::new(), Vec::new()),
        };
        removes.extend(quarantine_removes);
        // Replacing an empty quarantine table with nothing would change nothing but its
        // log: a commit (and every tenth a checkpoint) on each run of a model whose rows
        // all pass.
        let replaces_rows = replace && !self.quarantine.has_no_files().await?;
        if !quarantine_adds.is_empty() || replaces_rows || !removes.is_empty() {
            let mut quarantine_adds = quarantine_adds;
            quarantine_adds.extend(rewritten);
            parts.push(PublicationPart {
                table_path: self.quarantine.path.clone(),
                adds: quarantine_adds,
                replace,
                merge_keys: Vec::new(),
                removes,
                schema: None,
            });
        }
        parts.push(PublicationPart {
            table_path: self.table.path.clone(),
            adds,
            replace,
            merge_keys: merge_keys.to_vec(),
            removes: data_removes,
            schema: None,
        });
        let mut final_record = record.clone();
        final_record.status = "success".into();
        if let Some(note) = rejected_note(report) {
            final_record.status = "partial".into();
            final_record.error = Some(note);
        }
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
        // The ledger entries and the mode travel in the commits too, so a run whose table
        // commit is in but whose journal is lost can still be recorded from the Delta log.
        commit_metadata.insert(
            crate::ledger_sync::FILES_KEY.into(),
            serde_json::json!(files),
        );
        commit_metadata.insert(
            crate::ledger_sync::REPLACE_KEY.into(),
            serde_json::json!(replace),
        );
        if !report.replaced_files.is_empty() {
            commit_metadata.insert(
                "weir.replacedFiles".into(),
                serde_json::json!(report.replaced_files),
            );
        }
        commit_metadata.extend(self.extra_metadata.clone());
        let mut carried = final_record.clone();
        carried.files = String::new();
        commit_metadata.insert(
            crate::recover::RUN_KEY.into(),
            serde_json::to_value(&carried).map_err(|e| OrchestrateError::Config(e.to_string()))?,
        );
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
        // Everything the commits need is checked before the journal exists, so a journal that
        // cannot be completed is rare (a table removed or a file lost after this point).
        if let Err(e) = publication.validate().await {
            for part in &publication.parts {
                weir_store::discard_staged(&part.table_path, &part.adds);
            }
            return Err(e.into());
        }
        tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "publication validated");
        // Fencing: only the holder of the asset's lease may journal a publication. One that
        // stalled past its lease, while another process took the asset over, stops here.
        if let Err(e) = crate::leases::ensure_held(state, &asset.name).await {
            for part in &publication.parts {
                weir_store::discard_staged(&part.table_path, &part.adds);
            }
            return Err(e);
        }
        progress.phase(&asset.name, crate::progress::Phase::Publishing);
        // Two commits (the quarantine's, then the table's) need a journal, so that a crash
        // between them is completed rather than left half-way. One commit is atomic on its
        // own, and the run recorded `running` with its `txn` version is reconciled from the
        // table's log after a crash (`recover.rs`): no journal, no flush to wait for.
        let journal = match publication.parts.as_slice() {
            [_] => None,
            _ => {
                let journal = journal_path(project, &asset.name);
                weir_store::write_journal(&journal, &publication)?;
                Some(journal)
            }
        };
        failpoint("journaled", &asset.name);
        let versions = crate::recover::complete(state, &publication, journal.as_deref()).await?;
        tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "published and recorded");
        report.quarantine_version = versions.quarantine.or(self.quarantine.version());
        report.table_version = versions.table;
        if let Some(note) = rejected_note(report) {
            report.status = RunStatus::Partial;
            report.error = Some(note);
        }
        Ok(())
    }
}

/// The files a run left out, all of them, for the run's message; `None` when there are none.
pub(crate) fn rejected_note(report: &AssetRunReport) -> Option<String> {
    if report.rejected_files.is_empty() {
        return None;
    }
    let n = report.rejected_files.len();
    let list: Vec<String> = report
        .rejected_files
        .iter()
        .map(|f| {
            if f.reason.contains(&f.path) {
                f.reason.clone()
            } else {
                format!("{}: {}", f.path, f.reason)
            }
        })
        .collect();
    Some(format!(
        "{n} file{s} could not be read and {were} left out (retried on the next run): {}",
        list.join("; "),
        s = if n == 1 { "" } else { "s" },
        were = if n == 1 { "was" } else { "were" },
    ))
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
    report: &mut AssetRunReport,
) -> Result<u64> {
    let adds = weir_store::restage_with_value(
        quarantine,
        staged,
        "run_status",
        weir_store::RUN_STATUS_FAILED,
    )
    .await?;
    // The files kept are these, not the ones first staged.
    report.stages.quarantine_bytes_written = adds
        .iter()
        .map(|a| u64::try_from(a.size).unwrap_or(0))
        .sum();
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
            schema: None,
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

/// Writes quarantined rows, opening the writer (and creating the quarantine table, if the
/// asset has none yet) with the first batch.
async fn write_opening(
    writer: &mut Option<StagedWriter>,
    quarantine: &mut RunQuarantine,
    batch: RecordBatch,
) -> Result<()> {
    let opened = match writer.take() {
        Some(opened) => opened,
        None => quarantine.stage().await?,
    };
    Ok(writer.insert(opened).write(batch).await?)
}

/// The files a quarantine writer staged, if it was opened.
async fn finish_opened(writer: Option<StagedWriter>) -> Result<Vec<Add>> {
    match writer {
        Some(writer) => Ok(writer.finish().await?),
        None => Ok(Vec::new()),
    }
}
