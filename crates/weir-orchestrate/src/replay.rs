//! Replaying quarantined rows: validate them again against the current contract and publish
//! those that now pass, exactly once, through the same staging, journal and `txn` path as a
//! run. The publication also rewrites the quarantine files that hold them with `replayed_by`
//! set, so one atomic pair of commits both adds the rows and retires them from the quarantine.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use serde_json::Value;
use weir_ingest::SourceBatch;
use weir_model::{OnChange, Project};
use weir_quality::{CheckResult, ParseOptions, Validated, Validator};
use weir_store::{LakeTable, RUN_STATUS_PUBLISHED};

use crate::error::{OrchestrateError, Result};
use crate::report::RunStatus;
use crate::runner::{empty_report, table_paths};
use crate::staging::{Finish, QuarantineRewrite, Staging};
use crate::state::{RunRecord, StateStore};

/// Which quarantined rows to replay (all that are eligible when both are `None`).
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    pub run: Option<String>,
    pub rule: Option<String>,
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub run_id: String,
    pub asset: String,
    /// `success` (published), `up_to_date` (no row passes now: nothing written) or `failed`
    /// (a blocking table check failed: nothing published).
    pub status: RunStatus,
    /// Quarantined rows that matched the filters and were neither replayed already nor from a
    /// failed run.
    pub considered: u64,
    /// Rows that pass the current contract and were published to the asset's table.
    pub published: u64,
    /// Rows that still fail, by the first rule they break now; they stay quarantined as they are.
    pub still_failing_by_rule: BTreeMap<String, u64>,
    pub checks: Vec<CheckResult>,
    pub table_version: Option<u64>,
    pub quarantine_version: Option<u64>,
    pub error: Option<String>,
}

/// One quarantined row that may be replayed.
struct Candidate {
    file: String,
    row: usize,
    rule_id: String,
    /// The contract columns as text, or `None` when the raw record is not a JSON object (an
    /// undecodable record): it cannot pass, whatever the contract says.
    values: Option<Vec<Option<String>>>,
    raw: String,
}

pub async fn replay(
    project: &Project,
    state: &StateStore,
    asset_name: &str,
    options: &ReplayOptions,
) -> Result<ReplayReport> {
    let asset = project
        .asset(asset_name)
        .ok_or_else(|| OrchestrateError::Config(format!("unknown asset `{asset_name}`")))?;
    let Some(source) = &asset.source else {
        return Err(OrchestrateError::Config(format!(
            "`{asset_name}` is a model: its rows are recomputed from its upstream tables by `weir run`, not replayed"
        )));
    };
    let mut report = empty_report(project, asset);
    let mut out = ReplayReport {
        run_id: report.run_id.clone(),
        asset: asset.name.clone(),
        status: RunStatus::UpToDate,
        considered: 0,
        published: 0,
        still_failing_by_rule: BTreeMap::new(),
        checks: Vec::new(),
        table_version: None,
        quarantine_version: None,
        error: None,
    };
    let (table_path, quarantine_path) = table_paths(project, &asset.name);
    out.table_version = LakeTable::open(&table_path)
        .await?
        .and_then(|t| t.version());
    if LakeTable::open(&quarantine_path).await?.is_none() {
        return Ok(out);
    }
    let quarantine =
        weir_store::open_quarantine(&quarantine_path, &format!("{}_quarantine", asset.name))
            .await?;
    out.quarantine_version = quarantine.version();
    let validator = Validator::new(
        &asset.name,
        &asset.contract,
        ParseOptions {
            timestamp_format: source.options.timestamp_format.clone(),
            date_format: source.options.date_format.clone(),
        },
    )?;
    let columns = validator.column_names();
    let candidates =
        candidates(&quarantine, options, &columns, &source.options.null_values).await?;
    out.considered = candidates.len() as u64;

    // Rows that cannot be read as a record keep failing under their rule.
    let readable: Vec<&Candidate> = candidates.iter().filter(|c| c.values.is_some()).collect();
    for c in candidates.iter().filter(|c| c.values.is_none()) {
        *out.still_failing_by_rule
            .entry(c.rule_id.clone())
            .or_default() += 1;
    }
    let source_batch = source_batch(&readable, &columns)?;
    let validated = validator.validate(&source_batch)?;
    let failing: BTreeSet<u64> = validated.quarantined.iter().map(|q| q.position).collect();
    for q in &validated.quarantined {
        *out.still_failing_by_rule
            .entry(q.rule_id.clone())
            .or_default() += 1;
    }
    let passing: Vec<&Candidate> = readable
        .iter()
        .enumerate()
        .filter(|(i, _)| !failing.contains(&(*i as u64)))
        .map(|(_, c)| *c)
        .collect();
    out.published = passing.len() as u64;
    if passing.is_empty() {
        return Ok(out);
    }

    let mut record = RunRecord::start(&report.run_id, asset, "replay");
    let mut staging = Staging::open(asset, &validator, &report, &mut record, state).await?;
    report.rows_in = out.considered;
    report.rows_stored = out.published;
    report.rows_quarantined = out.considered - out.published;
    if source.on_change == OnChange::Replace {
        // Replayed rows join the data files of the source file they came from, so that a
        // later rewrite of that file replaces them too.
        staging.stage_per_origin();
        let origins: BTreeMap<String, String> = staging
            .quarantine
            .live_files()
            .await?
            .into_iter()
            .filter_map(|f| Some((f.path, f.origin?)))
            .collect();
        let mut groups: BTreeMap<Option<&String>, Vec<u32>> = BTreeMap::new();
        for (i, c) in passing.iter().enumerate() {
            groups
                .entry(origins.get(&c.file))
                .or_default()
                .push(i as u32);
        }
        for (origin, rows) in groups {
            let rows = arrow::array::UInt32Array::from(rows);
            let batch = arrow::compute::take_record_batch(&validated.good, &rows)?;
            let good = only_good(batch);
            match origin {
                Some(origin) => {
                    staging.begin_group(origin);
                    staging.accept(origin, good, &mut report).await?;
                    staging.commit_group(&mut report).await?;
                }
                None => staging.accept("replay", good, &mut report).await?,
            }
        }
    } else {
        staging
            .accept("replay", only_good(validated.good), &mut report)
            .await?;
    }
    report.quarantine_by_rule = out.still_failing_by_rule.clone();

    let mut marks: BTreeMap<String, BTreeMap<usize, String>> = BTreeMap::new();
    for c in &passing {
        marks
            .entry(c.file.clone())
            .or_default()
            .insert(c.row, report.run_id.clone());
    }
    let files: Vec<String> = marks.keys().cloned().collect();
    let quarantine = staging.quarantine.created().await?;
    let adds = weir_store::stage_with_values(quarantine, &files, "replayed_by", &marks).await?;
    staging.quarantine_rewrite = Some(QuarantineRewrite {
        adds,
        removes: files,
    });
    staging.extra_metadata.insert(
        "weir.replay".into(),
        serde_json::json!({ "considered": out.considered, "published": out.published }),
    );
    staging
        .finish(
            project,
            state,
            asset,
            &validator,
            Finish {
                replace: false,
                merge_keys: &[],
                // Replayed rows meet the table's key rules in the table-wide audit.
                keys_enforced: false,
                max_quarantined: None,
                progress: &crate::progress::NoProgress,
            },
            Vec::new(),
            &mut report,
            &mut record,
        )
        .await?;
    out.status = report.status;
    out.checks = report.checks;
    out.table_version = report.table_version;
    out.quarantine_version = report.quarantine_version;
    out.error = report.error;
    if out.status == RunStatus::Failed {
        out.published = 0;
    }
    Ok(out)
}

/// The quarantined rows eligible for a replay: not replayed yet, from a run that published (a
/// failed run's files are read again by the next run, so its rows are never replayed), and
/// matching the filters.
async fn candidates(
    quarantine: &LakeTable,
    options: &ReplayOptions,
    columns: &[String],
    null_values: &[String],
) -> Result<Vec<Candidate>> {
    let schema = weir_store::quarantine_schema();
    let mut out = Vec::new();
    for file in weir_store::data_files(quarantine).await? {
        let mut offset = 0usize;
        for batch in weir_store::read_data_file(&quarantine.path, &file, &schema)? {
            let text = |name: &str| -> Result<StringArray> {
                batch
                    .column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                    .cloned()
                    .ok_or_else(|| {
                        OrchestrateError::Config(format!("quarantine column {name} is missing"))
                    })
            };
            let (run_id, rule_id, raw, status, replayed) = (
                text("run_id")?,
                text("rule_id")?,
                text("raw_record")?,
                text("run_status")?,
                text("replayed_by")?,
            );
            let raw_bytes = batch.column_by_name("raw_bytes");
            for row in 0..batch.num_rows() {
                let eligible = replayed.is_null(row)
                    && (status.is_null(row) || status.value(row) == RUN_STATUS_PUBLISHED)
                    && options
                        .run
                        .as_deref()
                        .is_none_or(|r| run_id.value(row) == r)
                    && options
                        .rule
                        .as_deref()
                        .is_none_or(|r| rule_id.value(row) == r);
                if !eligible {
                    continue;
                }
                let undecodable = raw_bytes.is_some_and(|b| b.is_valid(row));
                let raw_text = raw.is_valid(row).then(|| raw.value(row).to_string());
                let values = raw_text
                    .as_deref()
                    .filter(|_| !undecodable)
                    .and_then(|t| record_values(t, columns, null_values));
                out.push(Candidate {
                    file: file.clone(),
                    row: offset + row,
                    rule_id: rule_id.value(row).to_string(),
                    values,
                    raw: raw_text.unwrap_or_default(),
                });
            }
            offset += batch.num_rows();
        }
    }
    Ok(out)
}

/// The contract columns of a raw record, read the way the NDJSON reader reads a line: strings
/// as they are (empty or a `null_values` entry is null), other JSON values as their JSON text.
/// Rows that passed, as a validated batch with nothing quarantined.
fn only_good(good: RecordBatch) -> Validated {
    Validated {
        good_positions: (1..=good.num_rows() as u64).collect(),
        good,
        quarantined: Vec::new(),
        rule_counts: BTreeMap::new(),
    }
}

fn record_values(
    raw: &str,
    columns: &[String],
    null_values: &[String],
) -> Option<Vec<Option<String>>> {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(raw) else {
        return None;
    };
    Some(
        columns
            .iter()
            .map(|c| match object.get(c) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() || null_values.contains(s) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            })
            .collect(),
    )
}

/// The candidates as a text batch for the validator; row `i` has position `i`, so the rows it
/// quarantines say which candidates still fail.
fn source_batch(candidates: &[&Candidate], columns: &[String]) -> Result<SourceBatch> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for idx in 0..columns.len() {
        let mut b = StringBuilder::new();
        for c in candidates {
            b.append_option(c.values.as_ref().and_then(|v| v[idx].as_deref()));
        }
        arrays.push(Arc::new(b.finish()));
    }
    let batch = RecordBatch::try_new_with_options(
        schema,
        arrays,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(candidates.len())),
    )?;
    Ok(SourceBatch {
        batch,
        positions: (0..candidates.len() as u64).collect(),
        raw_lines: Some(candidates.iter().map(|c| Some(c.raw.as_str())).collect()),
        rejects: Vec::new(),
        bytes: 0,
    })
}
