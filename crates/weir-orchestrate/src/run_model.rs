//! A model run: the SQL on DataFusion over the upstream Delta tables, streamed through the
//! model's contract into staging.

use datafusion::common::ScalarValue;
use datafusion::prelude::{SessionContext, ident, lit};
use futures::StreamExt;
use weir_ingest::SourceBatch;
use weir_model::{Asset, Materialization, ModelDef, Project};
use weir_quality::{ParseOptions, Validator};
use weir_store::{LakeTable, register_delta};

use crate::dag::AssetGraph;
use crate::error::{OrchestrateError, Result};
use crate::progress::Progress;
use crate::report::AssetRunReport;
use crate::run_source::up_to_date;
use crate::runner::{RunOptions, table_paths};
use crate::staging::Staging;
use crate::state::{RunRecord, StateStore};

/// `commitInfo` key holding the upstream table versions a model's publish was computed from.
const UPSTREAM_KEY: &str = "weir.upstreamVersions";

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
    let validator = Validator::new(&asset.name, &asset.contract, ParseOptions::default())?;
    let ctx = SessionContext::new();
    let mut upstream_versions = serde_json::Map::new();
    for upstream in graph.upstream.get(&asset.name).into_iter().flatten() {
        let (path, _) = table_paths(project, upstream);
        let table = LakeTable::open(&path).await?.ok_or_else(|| {
            OrchestrateError::Config(format!(
                "upstream `{upstream}` has no table yet: run `weir run +{}` to build it first",
                asset.name
            ))
        })?;
        upstream_versions.insert(upstream.clone(), serde_json::json!(table.version()));
        register_delta(&ctx, upstream, &table).await?;
    }
    // The model's own definition counts too: a changed query or contract recomputes it.
    upstream_versions.insert(
        "__definition".into(),
        serde_json::json!(definition_fingerprint(model, asset)),
    );
    let upstream_versions = serde_json::Value::Object(upstream_versions);
    // Nothing upstream changed since the last publish: the model's table is already current.
    if !options.full_refresh
        && let Some(own) = LakeTable::open(&report.table_path).await?
        && own.last_commit_value(UPSTREAM_KEY).await?.as_ref() == Some(&upstream_versions)
    {
        return up_to_date(report).await;
    }
    let incremental = model.materialization != Materialization::Table && !options.full_refresh;
    let merging =
        model.materialization == Materialization::IncrementalMerge && !options.full_refresh;
    let mut df = ctx.sql(&model.sql).await.map_err(|e| sql_error(model, e))?;
    if incremental
        && let Some(watermark) = &model.watermark
        && let Some(last) = published_watermark(&report.table_path, watermark).await?
    {
        // Append reads what is newer than the watermark; merge recomputes the latest published
        // watermark value too, so late rows for it update the rows already there.
        let newer = if merging {
            ident(watermark).gt_eq(lit(last))
        } else {
            ident(watermark).gt(lit(last))
        };
        df = df.filter(newer).map_err(|e| sql_error(model, e))?;
    }
    let columns = validator.column_names();
    let produced: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if let Some(missing) = columns.iter().find(|c| !produced.contains(c)) {
        return Err(OrchestrateError::Config(format!(
            "{}: the query does not produce column `{missing}` that the contract requires (run `weir check`)",
            model.path.display()
        )));
    }
    let df = df
        .select_columns(&columns.iter().map(String::as_str).collect::<Vec<_>>())
        .map_err(|e| sql_error(model, e))?;
    let mut stream = df.execute_stream().await.map_err(|e| sql_error(model, e))?;
    let mut staging: Option<Staging> = None;
    let origin = format!("model:{}", asset.name);
    progress.asset_started(&asset.name, 0);
    let mut next_row = 1u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| sql_error(model, e))?;
        if batch.num_rows() == 0 {
            continue;
        }
        if staging.is_none() {
            let mut opened = Staging::open(asset, &validator, report, record, state).await?;
            opened
                .extra_metadata
                .insert(UPSTREAM_KEY.into(), upstream_versions.clone());
            staging = Some(opened);
        }
        let n = batch.num_rows() as u64;
        let source = SourceBatch {
            bytes: batch.get_array_memory_size() as u64,
            positions: (next_row..next_row + n).collect(),
            batch,
            raw_lines: None,
            rejects: Vec::new(),
        };
        next_row += n;
        let validated = validator.validate(&source)?;
        report.rows_in += n;
        report.rows_stored += validated.good.num_rows() as u64;
        report.rows_quarantined += validated.quarantined.len() as u64;
        report.bytes_in += source.bytes;
        if let Some(staging) = staging.as_mut() {
            staging.accept(&origin, validated, report).await?;
        }
    }
    let mut staging = match staging {
        Some(s) => s,
        // No rows: an incremental model with nothing new is up to date; a table model that
        // produces nothing is still rebuilt (to empty), since that is what its SQL says.
        None if incremental => return up_to_date(report).await,
        None => Staging::open(asset, &validator, report, record, state).await?,
    };
    staging
        .extra_metadata
        .insert(UPSTREAM_KEY.into(), upstream_versions);
    let replace = model.materialization == Materialization::Table || options.full_refresh;
    staging
        .finish(
            project,
            state,
            asset,
            &validator,
            replace,
            if merging { &model.unique_key } else { &[] },
            Vec::new(),
            report,
            record,
        )
        .await
}

/// The largest watermark value published so far, as a typed scalar.
async fn published_watermark(
    table_path: &std::path::Path,
    watermark: &str,
) -> Result<Option<ScalarValue>> {
    let Some(table) = LakeTable::open(table_path).await? else {
        return Ok(None);
    };
    let ctx = SessionContext::new();
    register_delta(&ctx, "published", &table).await?;
    let batches = ctx
        .sql(&format!("SELECT MAX(\"{watermark}\") FROM published"))
        .await
        .map_err(weir_store::StoreError::Query)?
        .collect()
        .await
        .map_err(weir_store::StoreError::Query)?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let value =
        ScalarValue::try_from_array(batch.column(0), 0).map_err(weir_store::StoreError::Query)?;
    Ok((!value.is_null()).then_some(value))
}

fn sql_error(model: &ModelDef, e: datafusion::error::DataFusionError) -> OrchestrateError {
    OrchestrateError::Config(format!("{}: {e}", model.path.display()))
}

/// A fingerprint of what the model computes: its SQL and its contract's version.
fn definition_fingerprint(model: &ModelDef, asset: &Asset) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    model.sql.hash(&mut hasher);
    asset.contract.version.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
