//! A model run: the SQL on DataFusion over the upstream Delta tables, streamed through the
//! model's contract into staging.
//!
//! What a run computes is decided from the Delta logs, never from a watermark. Every publish of
//! a model records, in its commit, its [`Inputs`]: the id and version of each upstream table
//! it read and fingerprints of its definition and contract. The next run compares them with
//! the upstream tables now:
//!
//! - nothing changed: `up_to_date`;
//! - the definition changed: an incremental model is not run (old and new logic would be
//!   mixed in one table) until `--full-refresh`, unless the project says to rebuild;
//! - an upstream table was rebuilt (new table id) or rewritten (a `remove` in its log): the
//!   model is recomputed in full, and the run says why;
//! - upstream tables only had files appended: an `append` model appends its output over those
//!   files' rows (`ΔA⋈B ∪ A'⋈ΔB` over several tables), a `merge` model recomputes the keys
//!   those rows can affect over the whole upstream and merges them. Where the SQL does not
//!   allow that exactly (see `weir_process::analyze_plan`), the model is recomputed in full
//!   and the run says why.

use std::collections::BTreeMap;
use std::path::PathBuf;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, JoinType};
use datafusion::prelude::{DataFrame, SessionContext, col, ident, lit};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use weir_ingest::SourceBatch;
use weir_model::{
    Asset, ComponentKind, Materialization, ModelDef, OnDefinitionChange, PartitionKey, Project,
};
use weir_process::{KeyFunction, KeySource};
use weir_quality::{ParseOptions, Validator};
use weir_store::{ColumnBounds, LakeTable, TableChanges, register_delta, register_files};

use crate::dag::AssetGraph;
use crate::error::{OrchestrateError, Result};
use crate::progress::Progress;
use crate::report::{AssetRunReport, RunStatus};
use crate::run_source::up_to_date;
use crate::runner::{RunOptions, table_paths};
use crate::staging::{Finish, Staging};
use crate::state::{RunRecord, StateStore};

/// `commitInfo` key holding the [`Inputs`] a model's publish was computed from.
pub const INPUTS_KEY: &str = "weir.inputs";

/// What a model's table was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Inputs {
    pub tables: BTreeMap<String, TableInput>,
    /// Fingerprint of what decides the rows: SQL, materialization, key and column types.
    pub definition: String,
    /// Fingerprint of the whole contract: a new or tightened rule re-runs the audit.
    pub contract: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TableInput {
    /// The Delta table id: a table deleted and rebuilt is a different table.
    pub id: String,
    pub version: u64,
}

/// What this run computes.
enum Work {
    /// The whole query over the whole upstream, replacing the table.
    Full,
    /// The query over the rows appended upstream: `(table, version read last time, new files)`.
    Append(Vec<(String, u64, Vec<PathBuf>)>),
    /// The keys that the appended rows (same shape as `Append`) can affect, recomputed over
    /// the whole upstream and merged; with the column whose statistics bound them when the
    /// key is a date computed from a column of the only changed table.
    Merge(Vec<(String, u64, Vec<PathBuf>)>, Option<DateKey>),
    /// No new rows upstream but a changed contract or version: audit the table as it is and
    /// record the new inputs.
    AuditOnly,
    /// One partition of a partitioned model, replacing the rows stored for it before.
    Partition(PartitionKey),
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn materialize(
    project: &Project,
    state: &StateStore,
    graph: &AssetGraph,
    asset: &Asset,
    model: &ModelDef,
    options: &RunOptions,
    progress: &dyn Progress,
    report: &mut AssetRunReport,
    record: &mut RunRecord,
) -> Result<()> {
    let started = std::time::Instant::now();
    report.stages.enter(ComponentKind::Model);
    let merging = model.materialization == Materialization::IncrementalMerge;
    let validator = model_validator(asset, model)?;
    let partition = match (&options.partition, &model.partition) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(OrchestrateError::Config(format!(
                "`{}` is not a partitioned model (no `partition_by`)",
                asset.name
            )));
        }
        (Some(text), Some(partitioning)) => Some(
            PartitionKey::parse(partitioning.grain, text)
                .map_err(|e| OrchestrateError::Config(format!("`{}`: {e}", asset.name)))?,
        ),
    };
    let mut upstream: BTreeMap<String, LakeTable> = BTreeMap::new();
    for name in graph.upstream.get(&asset.name).into_iter().flatten() {
        let (path, _) = table_paths(project, name);
        let table = LakeTable::open(&path).await?.ok_or_else(|| {
            OrchestrateError::Config(format!(
                "upstream `{name}` has no table yet: run `weir run +{}` to build it first",
                asset.name
            ))
        })?;
        upstream.insert(name.clone(), table);
    }
    let mut tables = BTreeMap::new();
    for (name, table) in &upstream {
        tables.insert(
            name.clone(),
            TableInput {
                id: table.table_id()?,
                version: table.version().unwrap_or_default(),
            },
        );
    }
    let current = current_inputs(asset, model, &validator, tables)?;
    let own = LakeTable::open(&report.table_path).await?;
    let recorded: Option<Inputs> = match &own {
        Some(table) => table
            .last_commit_value(INPUTS_KEY)
            .await?
            .and_then(|v| serde_json::from_value(v).ok()),
        None => None,
    };
    let was_current = recorded.as_ref() == Some(&current);
    if !options.full_refresh && partition.is_none() && was_current {
        return up_to_date(report).await;
    }
    tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "tables opened, inputs compared");
    // Recomputing a merge model's affected keys filters on them; a key that is the date of
    // an upstream timestamp then prunes by that timestamp's statistics.
    let ctx = weir_process::pruning_session();
    for (name, table) in &upstream {
        register_delta(&ctx, name, table).await?;
    }
    let df = ctx.sql(&model.sql).await.map_err(|e| sql_error(model, e))?;
    // A table created by a run that then published nothing holds only its creation commit.
    let built = own
        .as_ref()
        .and_then(LakeTable::version)
        .is_some_and(|v| v > 0);
    let decided = match partition {
        Some(key) => Decision::Run(Work::Partition(key), None),
        None => {
            decide(
                project, asset, model, options, built, recorded, &current, &upstream, &df,
            )
            .await?
        }
    };
    let work = match decided {
        Decision::Run(work, why) => {
            if let Some(why) = why {
                report
                    .warnings
                    .push(format!("model `{}` recomputed in full: {why}", asset.name));
            }
            work
        }
        Decision::NeedsRefresh(message) => {
            report.status = RunStatus::NeedsRefresh;
            report.error = Some(message.clone());
            record.status = "needs_full_refresh".into();
            record.error = Some(message);
            record.ended_at = Some(crate::state::now());
            state.insert_run(record).await?;
            return Ok(());
        }
    };
    tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "planned and decided");
    progress.asset_started(&asset.name, 0);
    progress.phase(&asset.name, crate::progress::Phase::Computing);
    // Opening the tables, planning the query and deciding what to compute.
    report.stages.computing += started.elapsed();
    report.stages.enter(ComponentKind::Sink);
    let opening = std::time::Instant::now();
    let mut staging = Staging::open(asset, &validator, report, record, state).await?;
    report.stages.writing += opening.elapsed();
    report.stages.enter(ComponentKind::Model);
    tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "staging opened");
    // A partition run leaves the other partitions as they were computed: the table is what
    // the current inputs give only if it already was before (else the next run without a
    // partition recomputes it in full, since its last commit names no inputs).
    if partition.is_none() || (was_current && built) {
        staging.extra_metadata.insert(
            INPUTS_KEY.into(),
            serde_json::to_value(&current).map_err(|e| OrchestrateError::Config(e.to_string()))?,
        );
    } else if built {
        report.warnings.push(format!(
            "`{}`: only partition {} was recomputed, and the upstream tables or the definition changed since its other partitions were; the next `weir run {}` without --partition recomputes it in full",
            asset.name,
            partition.map(|k| k.to_string()).unwrap_or_default(),
            asset.name
        ));
    }
    if let Some(key) = partition {
        staging
            .extra_metadata
            .insert("weir.partition".into(), serde_json::json!(key.to_string()));
    }
    if model.partition.is_some() {
        staging.stage_per_origin();
    }
    let mut run = ModelStream {
        model,
        validator: &validator,
        origin: format!("model:{}", asset.name),
        next_row: 1,
        partition: model.partition.as_ref(),
        group: None,
    };
    let replace = matches!(work, Work::Full);
    let streamed = async {
        match work {
            Work::Full => {
                let df = match &model.partition {
                    Some(p) => crate::partition_rows::grouped(df, p)
                        .map_err(|e| partition_error(model, e))?,
                    None => df,
                };
                run.stream(df, &mut staging, report).await?;
            }
            Work::Partition(key) => {
                let Some(partitioning) = &model.partition else {
                    return Ok(());
                };
                let rebuild = format!("run `weir run {} --full-refresh` once", asset.name);
                let mut replaced = crate::report::ReplacedPartition {
                    partition: key.to_string(),
                    rows_removed: 0,
                    quarantined_removed: 0,
                };
                for origin in [Some(key), None].map(crate::partition_rows::origin) {
                    let (rows, quarantined) = staging.replace_origin(&origin, &rebuild).await?;
                    replaced.rows_removed += rows;
                    replaced.quarantined_removed += quarantined;
                }
                report.partition = Some(replaced);
                let df = crate::partition_rows::only(df, partitioning, key)
                    .and_then(|df| crate::partition_rows::grouped(df, partitioning))
                    .map_err(|e| partition_error(model, e))?;
                run.stream(df, &mut staging, report).await?;
            }
            Work::Append(changed) => {
                for ctx in delta_contexts(&upstream, &changed).await? {
                    let df = ctx.sql(&model.sql).await.map_err(|e| sql_error(model, e))?;
                    run.stream(df, &mut staging, report).await?;
                }
            }
            Work::Merge(changed, date_key) => {
                let finding = std::time::Instant::now();
                let days = match (&date_key, changed.as_slice()) {
                    (Some(key), [(_, _, files)]) => key.days(files).await?,
                    _ => None,
                };
                if let Some(days) = days {
                    tracing::debug!(asset = %asset.name, days = days.len(), "affected keys bounded by the new files' statistics");
                    let df = filter_by_keys(df, &model.unique_key, days.into_iter().map(|d| vec![d]).collect())
                        .map_err(|e| sql_error(model, e))?;
                    report.stages.computing += finding.elapsed();
                    run.stream(df, &mut staging, report).await?;
                    return Ok(());
                }
                let mut keys = Vec::new();
                for ctx in delta_contexts(&upstream, &changed).await? {
                    let key_columns: Vec<Expr> =
                        model.unique_key.iter().map(|k| ident(k.as_str())).collect();
                    let batches = ctx
                        .sql(&model.sql)
                        .await
                        .and_then(|df| df.select(key_columns))
                        .map_err(|e| sql_error(model, e))?
                        .collect()
                        .await
                        .map_err(|e| sql_error(model, e))?;
                    keys.extend(batches);
                }
                let df = restrict_to_keys(&ctx, df, &model.unique_key, keys)
                    .await
                    .map_err(|e| sql_error(model, e))?;
                report.stages.computing += finding.elapsed();
                tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "affected keys found");
                run.stream(df, &mut staging, report).await?;
            }
            Work::AuditOnly => {}
        }
        Ok::<(), OrchestrateError>(())
    }
    .await;
    if let Err(e) = streamed {
        staging.abandon().await;
        return Err(e);
    }
    tracing::debug!(asset = %asset.name, elapsed_ms = started.elapsed().as_millis() as u64, "rows computed and staged");
    staging
        .finish(
            project,
            state,
            asset,
            &validator,
            Finish {
                replace,
                merge_keys: if merging { &model.unique_key } else { &[] },
                keys_enforced: false,
                max_quarantined: None,
                progress,
            },
            Vec::new(),
            report,
            record,
        )
        .await
}

enum Decision {
    /// Run this work; the string says why an incremental model is recomputed in full.
    Run(Work, Option<String>),
    NeedsRefresh(String),
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    project: &Project,
    asset: &Asset,
    model: &ModelDef,
    options: &RunOptions,
    built: bool,
    recorded: Option<Inputs>,
    current: &Inputs,
    upstream: &BTreeMap<String, LakeTable>,
    df: &DataFrame,
) -> Result<Decision> {
    if options.full_refresh || model.materialization == Materialization::Table || !built {
        return Ok(Decision::Run(Work::Full, None));
    }
    let full = |why: String| Ok(Decision::Run(Work::Full, Some(why)));
    let definition_changed = recorded
        .as_ref()
        .is_none_or(|r| r.definition != current.definition);
    if definition_changed {
        return match project.config.project.on_definition_change {
            OnDefinitionChange::Rebuild => full(
                "its definition (SQL, settings or columns) changed and weir.toml says on_definition_change = \"rebuild\"".into(),
            ),
            OnDefinitionChange::Refuse => Ok(Decision::NeedsRefresh(format!(
                "the definition of incremental model `{name}` (its SQL, settings or columns) changed since its table was built, so new rows would be computed differently from the rows already there; nothing was run. Rebuild it with `weir run {name} --full-refresh`, or set on_definition_change = \"rebuild\" under [project] in weir.toml",
                name = asset.name
            ))),
        };
    }
    let Some(recorded) = recorded else {
        return full("its last commit does not say what it was computed from".into());
    };
    let mut changed = Vec::new();
    for (name, now) in &current.tables {
        let Some(before) = recorded.tables.get(name) else {
            return full(format!("upstream `{name}` was not read by the last run"));
        };
        if before.id != now.id {
            return full(format!(
                "upstream `{name}` was deleted and rebuilt since the last run (its Delta table id changed)"
            ));
        }
        if before.version == now.version {
            continue;
        }
        let Some(table) = upstream.get(name) else {
            continue;
        };
        match table.changes_since(before.version).await? {
            TableChanges::Rewritten(why) => return full(format!("upstream `{name}`: {why}")),
            TableChanges::Appended { files } if files.is_empty() => {}
            TableChanges::Appended { files } => {
                changed.push((name.clone(), before.version, files));
            }
        }
    }
    if changed.is_empty() {
        return Ok(Decision::Run(Work::AuditOnly, None));
    }
    let analysis = weir_process::analyze_plan(df.logical_plan(), &model.unique_key);
    match model.materialization {
        Materialization::IncrementalMerge => match analysis.merge_keys {
            Err(why) => full(format!(
                "weir cannot tell which `unique_key` values new upstream rows affect ({why})"
            )),
            Ok(source) => {
                let date_key = DateKey::of(&source, &changed);
                Ok(Decision::Run(Work::Merge(changed, date_key), None))
            }
        },
        _ => match analysis.append_blocker {
            Some(why) => full(format!(
                "an `append` model is exact only for SQL that distributes over new rows, and this query has {why}; declare it `strategy = merge` with a `unique_key`, or `materialized = table`"
            )),
            None => Ok(Decision::Run(Work::Append(changed), None)),
        },
    }
}

/// One query context per changed upstream table, for the product rule over appends: in the
/// `i`-th, changed table `i` holds only its new rows, the tables changed before it hold all
/// their rows, those changed after it the rows they had at the last run, and unchanged tables
/// are as they are. The union of a query over these contexts is exactly what the appended rows
/// add to a query that distributes over appends (`ΔA⋈B ∪ A'⋈ΔB`).
async fn delta_contexts(
    upstream: &BTreeMap<String, LakeTable>,
    changed: &[(String, u64, Vec<PathBuf>)],
) -> Result<Vec<SessionContext>> {
    let mut contexts = Vec::with_capacity(changed.len());
    for i in 0..changed.len() {
        let ctx = SessionContext::new();
        for (name, table) in upstream {
            match changed.iter().position(|(t, _, _)| t == name) {
                Some(j) if j == i => register_files(&ctx, name, table, &changed[j].2).await?,
                Some(j) if j > i => {
                    let old = LakeTable::open_at(&table.path, changed[j].1)
                        .await?
                        .ok_or_else(|| {
                            OrchestrateError::Config(format!(
                                "upstream `{name}` vanished while reading it"
                            ))
                        })?;
                    register_delta(&ctx, name, &old).await?;
                }
                _ => register_delta(&ctx, name, table).await?,
            }
        }
        contexts.push(ctx);
    }
    Ok(contexts)
}

/// Keeps the rows of the model's output whose key is among `keys` (batches of the key
/// columns, possibly repeated). A few keys become an IN list, which DataFusion pushes down
/// through projections and GROUP BY into the scan; many, a semi join.
async fn restrict_to_keys(
    ctx: &SessionContext,
    df: DataFrame,
    unique_key: &[String],
    keys: Vec<arrow::array::RecordBatch>,
) -> datafusion::error::Result<DataFrame> {
    let Some(first) = keys.first() else {
        return df.filter(lit(false));
    };
    let table = datafusion::datasource::MemTable::try_new(first.schema(), vec![keys])?;
    let distinct = ctx.read_table(std::sync::Arc::new(table))?.distinct()?;
    let batches = distinct.clone().collect().await?;
    let count: usize = batches.iter().map(|b| b.num_rows()).sum();
    if count <= IN_LIST_KEYS {
        let mut tuples: Vec<Vec<ScalarValue>> = Vec::with_capacity(count);
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let tuple = (0..batch.num_columns())
                    .map(|c| ScalarValue::try_from_array(batch.column(c), row))
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                // A NULL key is quarantined (`required`), never merged.
                if tuple.iter().all(|v| !v.is_null()) {
                    tuples.push(tuple);
                }
            }
        }
        return filter_by_keys(df, unique_key, tuples);
    }
    let aliases: Vec<String> = (0..unique_key.len())
        .map(|i| format!("__weir_k{i}"))
        .collect();
    let keys = distinct.select(
        unique_key
            .iter()
            .zip(&aliases)
            .map(|(k, a)| ident(k.as_str()).alias(a))
            .collect::<Vec<_>>(),
    )?;
    let on: Vec<Expr> = unique_key
        .iter()
        .zip(&aliases)
        .map(|(k, a)| ident(k.as_str()).eq(col(a.as_str())))
        .collect();
    df.join_on(keys, JoinType::LeftSemi, on)
}

/// Keeps the rows of the model's output whose key is one of `tuples` (values of the key
/// columns, in order, none NULL), as an IN list or a disjunction of equalities.
fn filter_by_keys(
    df: DataFrame,
    unique_key: &[String],
    tuples: Vec<Vec<ScalarValue>>,
) -> datafusion::error::Result<DataFrame> {
    if tuples.is_empty() {
        return df.filter(lit(false));
    }
    let predicate = if unique_key.len() == 1 {
        let values = tuples
            .into_iter()
            .filter_map(|t| t.into_iter().next())
            .map(lit)
            .collect();
        ident(unique_key[0].as_str()).in_list(values, false)
    } else {
        tuples
            .into_iter()
            .map(|t| {
                unique_key
                    .iter()
                    .zip(t)
                    .map(|(k, v)| ident(k.as_str()).eq(lit(v)))
                    .reduce(Expr::and)
                    .unwrap_or(lit(false))
            })
            .reduce(Expr::or)
            .unwrap_or(lit(false))
    };
    df.filter(predicate)
}

/// A `unique_key` of one date column computed from one column of the only upstream table
/// with new rows (`CAST(created_at AS DATE)`, or a date column itself): the days the new rows
/// can affect lie between the dates of that column's least and greatest values in each row
/// group of the new files, which their Parquet statistics give without reading a row. Listing
/// every day of those ranges may name days no new row has; recomputing such a day gives the
/// rows it has already (or none), so the merge stays exact.
struct DateKey {
    column: String,
    function: KeyFunction,
}

/// The most days the statistics may name for them to be recomputed as they are, rather than
/// narrowed by running the query over the new rows: every day named is recomputed over the
/// whole upstream, so a row group holding today's rows and one late row from last year must
/// not make a year of days. A week covers the usual lateness of a daily batch.
const LISTED_DAYS: usize = 7;

impl DateKey {
    fn of(source: &KeySource, changed: &[(String, u64, Vec<PathBuf>)]) -> Option<DateKey> {
        let ([(table, column)], [function], [(changed, _, _)]) = (
            source.columns.as_slice(),
            source.functions.as_slice(),
            changed,
        ) else {
            return None;
        };
        (table == changed && *function != KeyFunction::Other).then(|| DateKey {
            column: column.clone(),
            function: *function,
        })
    }

    /// The days the rows of `files` can have as key, `None` when the statistics do not tell
    /// (missing, or of another type) or name more than [`LISTED_DAYS`] days.
    async fn days(&self, files: &[PathBuf]) -> Result<Option<Vec<ScalarValue>>> {
        let ranges = match weir_store::column_bounds(files, &self.column).await? {
            ColumnBounds::Within(ranges) => ranges,
            ColumnBounds::Unknown => return Ok(None),
        };
        let mut days = std::collections::BTreeSet::new();
        for (min, max) in &ranges {
            let dated = match self.function {
                KeyFunction::Copy => min.data_type() == DataType::Date32,
                KeyFunction::Date => matches!(
                    min.data_type(),
                    DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
                ),
                KeyFunction::Other => false,
            };
            // The cast DataFusion evaluates for `CAST(column AS DATE)`.
            let day = |v: &ScalarValue| match v.cast_to(&DataType::Date32) {
                Ok(ScalarValue::Date32(Some(d))) => Some(d),
                _ => None,
            };
            let (true, Some(first), Some(last)) = (dated, day(min), day(max)) else {
                return Ok(None);
            };
            if i64::from(last) - i64::from(first) >= LISTED_DAYS as i64 {
                return Ok(None);
            }
            days.extend(first..=last);
            if days.len() > LISTED_DAYS {
                return Ok(None);
            }
        }
        Ok(Some(
            days.into_iter()
                .map(|d| ScalarValue::Date32(Some(d)))
                .collect(),
        ))
    }
}

/// Up to this many affected keys become an IN list (which DataFusion prunes with); beyond, a
/// semi join.
const IN_LIST_KEYS: usize = 10_000;

/// Streams query results through the contract into staging, numbering rows across queries.
/// For a partitioned model, each partition's rows (which arrive together) are staged as a
/// group of files of their own, tagged with the partition.
struct ModelStream<'a> {
    model: &'a ModelDef,
    validator: &'a Validator,
    origin: String,
    next_row: u64,
    partition: Option<&'a weir_model::Partitioning>,
    /// The partition whose group is open.
    group: Option<Option<PartitionKey>>,
}

impl ModelStream<'_> {
    async fn stream(
        &mut self,
        df: DataFrame,
        staging: &mut Staging,
        report: &mut AssetRunReport,
    ) -> Result<()> {
        let columns = self.validator.column_names();
        let produced: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if let Some(missing) = columns.iter().find(|c| !produced.contains(c)) {
            return Err(OrchestrateError::Config(format!(
                "{}: the query does not produce column `{missing}` that the contract requires (run `weir check`)",
                self.model.path.display()
            )));
        }
        let computing = std::time::Instant::now();
        let df = df
            .select_columns(&columns.iter().map(String::as_str).collect::<Vec<_>>())
            .map_err(|e| sql_error(self.model, e))?;
        // Executed from its physical plan, whose scans then tell what they read upstream.
        let task = std::sync::Arc::new(df.task_ctx());
        let plan = df
            .create_physical_plan()
            .await
            .map_err(|e| sql_error(self.model, e))?;
        let mut stream = datafusion::physical_plan::execute_stream(plan.clone(), task)
            .map_err(|e| sql_error(self.model, e))?;
        report.stages.computing += computing.elapsed();
        loop {
            let polling = std::time::Instant::now();
            let next = stream.next().await;
            report.stages.computing += polling.elapsed();
            let Some(batch) = next else {
                break;
            };
            let batch = batch.map_err(|e| sql_error(self.model, e))?;
            if batch.num_rows() == 0 {
                continue;
            }
            let Some(partitioning) = self.partition else {
                self.stage(batch, staging, report).await?;
                continue;
            };
            let keys = crate::partition_rows::keys(&batch, partitioning)
                .map_err(|e| partition_error(self.model, e))?;
            for (key, offset, len) in crate::partition_rows::runs(&keys) {
                if self.group != Some(key) {
                    if self.group.is_some() {
                        staging.commit_group(report).await?;
                    }
                    staging.begin_group(&crate::partition_rows::origin(key));
                    self.group = Some(key);
                }
                self.stage(batch.slice(offset, len), staging, report)
                    .await?;
            }
        }
        if self.group.take().is_some() {
            report.stages.enter(ComponentKind::Sink);
            let writing = std::time::Instant::now();
            staging.commit_group(report).await?;
            report.stages.writing += writing.elapsed();
            report.stages.enter(ComponentKind::Model);
        }
        let (rows, bytes) = scanned(&plan);
        report.stages.rows_scanned += rows;
        report.stages.bytes_scanned += bytes;
        Ok(())
    }

    async fn stage(
        &mut self,
        batch: arrow::array::RecordBatch,
        staging: &mut Staging,
        report: &mut AssetRunReport,
    ) -> Result<()> {
        {
            let n = batch.num_rows() as u64;
            let source = SourceBatch {
                bytes: batch.get_array_memory_size() as u64,
                positions: (self.next_row..self.next_row + n).collect(),
                batch,
                raw_lines: None,
                rejects: Vec::new(),
            };
            self.next_row += n;
            report.stages.enter(ComponentKind::Check);
            let validating = std::time::Instant::now();
            let validated = self.validator.validate(&source)?;
            report.stages.validating += validating.elapsed();
            report.rows_in += n;
            report.rows_stored += validated.good.num_rows() as u64;
            report.rows_quarantined += validated.quarantined.len() as u64;
            report.bytes_in += source.bytes;
            report.stages.enter(ComponentKind::Sink);
            let writing = std::time::Instant::now();
            staging.accept(&self.origin, validated, report).await?;
            report.stages.writing += writing.elapsed();
            report.stages.enter(ComponentKind::Model);
        }
        Ok(())
    }
}

/// Rows and bytes the plan's scans (its leaves) read, from their execution metrics.
fn scanned(plan: &std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> (u64, u64) {
    let children = plan.children();
    if children.is_empty() {
        let Some(metrics) = plan.metrics() else {
            return (0, 0);
        };
        // A filter pushed into a Parquet scan drops rows it read: they were scanned too.
        let pruned = metrics
            .sum_by_name("pushdown_rows_pruned")
            .map_or(0, |v| v.as_usize() as u64);
        let rows = metrics.output_rows().unwrap_or(0) as u64 + pruned;
        let bytes = metrics
            .sum_by_name("bytes_scanned")
            .map_or(0, |v| v.as_usize() as u64);
        return (rows, bytes);
    }
    children.into_iter().fold((0, 0), |(r, b), child| {
        let (cr, cb) = scanned(child);
        (r + cr, b + cb)
    })
}

fn partition_error(model: &ModelDef, e: String) -> OrchestrateError {
    OrchestrateError::Config(format!("{}: {e}", model.path.display()))
}

/// What `model` would be computed from now: `tables` (each upstream table's id and
/// version), its definition and its contract.
pub(crate) fn current_inputs(
    asset: &Asset,
    model: &ModelDef,
    validator: &Validator,
    tables: BTreeMap<String, TableInput>,
) -> Result<Inputs> {
    let contract_text = std::fs::read(&asset.contract_path).map_err(|e| OrchestrateError::Io {
        path: asset.contract_path.clone(),
        source: e,
    })?;
    Ok(Inputs {
        tables,
        definition: definition_fingerprint(model, validator),
        contract: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&contract_text)),
    })
}

/// The validator of a model's rows: its contract, with a merge model's key columns required
/// (a NULL key never matches on MERGE, so its row would be inserted again on every run; a
/// row without one is quarantined).
pub(crate) fn model_validator(asset: &Asset, model: &ModelDef) -> Result<Validator> {
    let mut contract = asset.contract.clone();
    if model.materialization == Materialization::IncrementalMerge {
        for object in &mut contract.schema {
            for property in &mut object.properties {
                if model.unique_key.contains(&property.name) {
                    property.required = true;
                }
            }
        }
    }
    Ok(Validator::new(
        &asset.name,
        &contract,
        ParseOptions::default(),
    )?)
}

/// A stable fingerprint (xxh3-128, the same on every platform and Rust release) of what
/// decides a model's rows: its SQL, materialization, key, and the contract's columns and types.
fn definition_fingerprint(model: &ModelDef, validator: &Validator) -> String {
    let mut text = String::new();
    text.push_str(&model.sql);
    text.push('\0');
    text.push_str(model.materialization.as_str());
    text.push('\0');
    text.push_str(&model.unique_key.join("+"));
    if let Some(p) = &model.partition {
        text.push_str(&format!("\0partition:{}:{}", p.column, p.grain.as_str()));
    }
    for field in validator.schema().fields() {
        text.push('\0');
        text.push_str(field.name());
        text.push(':');
        text.push_str(&field.data_type().to_string());
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

fn sql_error(model: &ModelDef, e: datafusion::error::DataFusionError) -> OrchestrateError {
    OrchestrateError::Config(format!("{}: {e}", model.path.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{RecordBatch, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// Microseconds since the epoch of a UTC date and hour.
    fn at(y: i32, m: u32, d: u32, h: u32) -> i64 {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|day| day.and_hms_opt(h, 0, 0))
            .expect("a date")
            .and_utc()
            .timestamp_micros()
    }

    fn day(y: i32, m: u32, d: u32) -> ScalarValue {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        let date = chrono::NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        ScalarValue::Date32(Some((date - epoch).num_days() as i32))
    }

    /// A data file of a UTC timestamp column `ts`, in row groups of two rows.
    fn file(dir: &std::path::Path, name: &str, values: Vec<Option<i64>>) -> PathBuf {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        )]));
        let column = TimestampMicrosecondArray::from(values).with_timezone("UTC");
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(column)]).expect("batch");
        let path = dir.join(name);
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let out = std::fs::File::create(&path).expect("create");
        let mut writer = ArrowWriter::try_new(out, schema, Some(properties)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        path
    }

    fn date_of_ts() -> DateKey {
        DateKey {
            column: "ts".into(),
            function: KeyFunction::Date,
        }
    }

    #[tokio::test]
    async fn the_days_new_rows_can_touch_come_from_each_row_groups_statistics() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Row groups [1 Mar 23:00, 3 Mar 01:00] and [10 Mar, NULL]: days 1-3 and 10.
        let new = file(
            dir.path(),
            "new.parquet",
            vec![
                Some(at(2024, 3, 1, 23)),
                Some(at(2024, 3, 3, 1)),
                Some(at(2024, 3, 10, 12)),
                None,
            ],
        );
        let days = date_of_ts().days(&[new]).await.expect("days");
        assert_eq!(
            days,
            Some(vec![
                day(2024, 3, 1),
                day(2024, 3, 2),
                day(2024, 3, 3),
                day(2024, 3, 10)
            ])
        );
        let nulls = file(dir.path(), "nulls.parquet", vec![None, None]);
        assert_eq!(
            date_of_ts().days(&[nulls]).await.expect("days"),
            Some(Vec::new())
        );
    }

    #[tokio::test]
    async fn a_late_row_from_long_ago_or_a_key_that_is_no_date_finds_the_keys_by_query() {
        let dir = tempfile::tempdir().expect("tempdir");
        let late = file(
            dir.path(),
            "late.parquet",
            vec![Some(at(2024, 3, 1, 0)), Some(at(2023, 3, 1, 0))],
        );
        assert_eq!(date_of_ts().days(&[late]).await.expect("days"), None);
        // Spread over row groups, more than a week of days in all.
        let spread = file(
            dir.path(),
            "spread.parquet",
            (1..=8).map(|d| Some(at(2024, 3, d * 3, 0))).collect(),
        );
        assert_eq!(date_of_ts().days(&[spread]).await.expect("days"), None);
        // A timestamp key copied as it is: its values are instants, not days.
        let copied = DateKey {
            column: "ts".into(),
            function: KeyFunction::Copy,
        };
        let one = file(dir.path(), "one.parquet", vec![Some(at(2024, 3, 1, 0))]);
        assert_eq!(copied.days(&[one]).await.expect("days"), None);
    }
}
