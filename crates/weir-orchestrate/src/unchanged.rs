//! The no-op path of a model run: a model whose table is up to date is found so from the
//! heads of the Delta logs (which version each table is at, what the model's last commit
//! recorded), before its lease is taken, and its run writes nothing anywhere.
//!
//! A no-op run was the full path's fixed cost: a lease taken and given back (two durable
//! transactions), every table opened (its log replayed into a snapshot), the table and its
//! quarantine opened again for their versions, and the run's zero figures recorded (a third
//! transaction). Reading is safe without the lease: a writer that commits meanwhile makes a
//! newer version the next run compares with, and whatever a writer that died left (its
//! journal, a run still marked `running`) sends the run down the full path, whose recovery
//! needs the lease.

use std::collections::{BTreeMap, BTreeSet};

use weir_model::{Asset, ModelDef, Project};
use weir_store::{COMPACT, LakeTable, OPERATION_KEY};

use crate::dag::AssetGraph;
use crate::error::Result;
use crate::report::{AssetRunReport, RunStatus};
use crate::run_model::{INPUTS_KEY, Inputs, TableInput, current_inputs, model_validator};
use crate::runner::{RunOptions, empty_report, journal_path, table_paths};

/// The report of `model`'s run when its table is up to date as its logs' heads tell; `None`
/// when it is not, or when they cannot tell cheaply (a table without a readable head, a
/// compaction since the last publication, a contract that does not load): the run then takes
/// the full path, which decides.
///
/// `left_running` names the assets with a run still marked `running` when this run began.
pub(crate) async fn unchanged_model(
    project: &Project,
    graph: &AssetGraph,
    asset: &Asset,
    model: &ModelDef,
    left_running: &BTreeSet<String>,
    options: &RunOptions,
) -> Result<Option<AssetRunReport>> {
    if options.full_refresh || options.partition.is_some() {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    if left_running.contains(&asset.name) || journal_path(project, &asset.name).exists() {
        return Ok(None);
    }
    let Ok(validator) = model_validator(asset, model) else {
        return Ok(None);
    };
    let mut tables = BTreeMap::new();
    for name in graph.upstream.get(&asset.name).into_iter().flatten() {
        let (path, _) = table_paths(project, name);
        let Some(head) = LakeTable::head(&path).await? else {
            return Ok(None);
        };
        let input = TableInput {
            id: head.id,
            version: head.version,
        };
        tables.insert(name.clone(), input);
    }
    let mut report = empty_report(project, asset);
    let Some(own) = LakeTable::head(&report.table_path).await? else {
        return Ok(None);
    };
    // A compaction records no inputs: the full path looks past it.
    if own.commit_info.get(OPERATION_KEY) == Some(&serde_json::Value::from(COMPACT)) {
        return Ok(None);
    }
    let recorded: Option<Inputs> = own
        .commit_info
        .get(INPUTS_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let Ok(current) = current_inputs(asset, model, &validator, tables) else {
        return Ok(None);
    };
    if recorded.as_ref() != Some(&current) {
        return Ok(None);
    }
    report.status = RunStatus::UpToDate;
    report.table_version = Some(own.version);
    report.quarantine_version = LakeTable::latest_version(&report.quarantine_path).await?;
    report.duration = started.elapsed();
    Ok(Some(report))
}
