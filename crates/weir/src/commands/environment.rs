//! Environments (`weir run --env NAME`, `orders@dev`, `weir query --env NAME`): the project
//! seen with some tables taken from an isolated namespace under `.weir/envs/NAME/` and every
//! other table read from production, never copied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use weir_model::{Environment, Project, check_environment_name};
use weir_orchestrate::{AssetGraph, StateStore};

/// The assets environment `name` holds a table for.
pub(crate) fn tables_in(project: &Project, name: &str) -> BTreeSet<String> {
    let lake = project.environment_dir(name).join("lake");
    project
        .assets
        .iter()
        .filter(|a| lake.join(&a.name).join("_delta_log").is_dir())
        .map(|a| a.name.clone())
        .collect()
}

/// Whether environment `name` was ever built in this project.
pub(crate) fn exists(project: &Project, name: &str) -> bool {
    check_environment_name(name).is_ok() && project.environment_dir(name).is_dir()
}

/// Sets `project` to read environment `name`: the tables it holds come from it, the rest
/// from production. The error sentence when the name is invalid or no such environment was
/// built.
pub(crate) fn read(project: &mut Project, name: &str) -> Result<(), String> {
    check_environment_name(name)?;
    if !exists(project, name) {
        return Err(format!(
            "there is no environment `{name}` yet: build one with `weir run --env {name}`"
        ));
    }
    project.environment = Some(Environment {
        name: name.to_string(),
        assets: tables_in(project, name),
    });
    Ok(())
}

/// What `weir run --env NAME` builds, in run order: the named selection when there is one,
/// else what `weir plan` says must be rebuilt since the last `weir apply`; plus every table
/// the environment already holds (so what reads them is built from them, and they follow
/// later edits). The project is set to the environment. The error sentence when there is
/// nothing to compare with.
pub(crate) async fn prepare_build(
    project: &mut Project,
    graph: &AssetGraph,
    name: &str,
    selected: Option<&[String]>,
) -> anyhow::Result<Result<Vec<String>, String>> {
    if let Err(why) = check_environment_name(name) {
        return Ok(Err(why));
    }
    let wanted: BTreeSet<String> = match selected {
        Some(selected) => selected.iter().cloned().collect(),
        None => {
            // The plan compares with production's deployment record.
            let state = StateStore::connect(&project.production_state_url()).await?;
            let deployed = state.deployed_assets().await;
            state.close().await;
            let deployed = deployed?;
            if deployed.is_empty() {
                return Ok(Err(format!(
                    "nothing is applied yet, so there is no change to build in `{name}`: run `weir apply` on the version in production first, or name the assets to build (`weir run --env {name} orders+`)"
                )));
            }
            weir_change::plan(project, graph, &deployed)
                .await?
                .rebuild
                .into_iter()
                .collect()
        }
    };
    let mut assets = tables_in(project, name);
    assets.extend(wanted);
    let order: Vec<String> = graph
        .order
        .iter()
        .filter(|a| assets.contains(*a))
        .cloned()
        .collect();
    project.environment = Some(Environment {
        name: name.to_string(),
        assets,
    });
    Ok(Ok(order))
}

/// The tables a build in the environment reads from production: read by what it builds, not
/// held by it.
pub(crate) fn read_from_production(
    project: &Project,
    graph: &AssetGraph,
    built: &[String],
) -> Vec<String> {
    let Some(env) = &project.environment else {
        return Vec::new();
    };
    let mut upstream = BTreeSet::new();
    for name in built {
        upstream.extend(graph.upstream.get(name).into_iter().flatten().cloned());
    }
    upstream
        .into_iter()
        .filter(|a| !env.assets.contains(a))
        .collect()
}

/// `path` relative to the project root, for messages.
pub(crate) fn shown(project: &Project, path: &Path) -> String {
    weir_model::slash_path(path.strip_prefix(&project.root).unwrap_or(path))
}

/// The versions that readers going through weir read production's tables at while a
/// promotion is publishing (table name → version, `None`: not there yet); empty otherwise.
pub(crate) async fn reader_pins(
    project: &Project,
) -> anyhow::Result<BTreeMap<String, Option<u64>>> {
    let url = project.production_state_url();
    // A project never run has no SQLite store, so no promotion: reading it must not create one.
    if let Some(path) = url.strip_prefix("sqlite://")
        && !std::path::Path::new(path.split('?').next().unwrap_or(path)).exists()
    {
        return Ok(BTreeMap::new());
    }
    let state = StateStore::connect(&url).await?;
    let pins = state.promotion_pins().await;
    state.close().await;
    Ok(pins?)
}
