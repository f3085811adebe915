use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::json;
use weir_model::Project;
use weir_orchestrate::AssetGraph;
use weir_process::{ColumnLineage, column_lineage};
use weir_quality::{ParseOptions, Validator};

use crate::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LineageFormat {
    Json,
    Mermaid,
    Dot,
}

/// Table- and column-level lineage of the selected assets.
pub async fn lineage(
    root: &Path,
    selectors: &[String],
    format: LineageFormat,
) -> anyhow::Result<Outcome> {
    let Some((project, graph, selected)) =
        super::load_selection(root, selectors, format == LineageFormat::Json)
    else {
        return Ok(Outcome::BadInput);
    };
    let chosen: BTreeSet<&String> = selected.iter().collect();
    let edges: Vec<(&String, &String)> = selected
        .iter()
        .flat_map(|to| {
            graph
                .upstream
                .get(to)
                .into_iter()
                .flatten()
                .map(move |from| (from, to))
        })
        .filter(|(from, _)| chosen.contains(from))
        .collect();
    match format {
        LineageFormat::Mermaid => {
            println!("graph LR");
            for name in &selected {
                let kind = if project.asset(name).is_some_and(|a| a.model.is_some()) {
                    "model"
                } else {
                    "source"
                };
                println!("  {name}[\"{name}<br/>{kind}\"]");
            }
            for (from, to) in &edges {
                println!("  {from} --> {to}");
            }
        }
        LineageFormat::Dot => {
            println!("digraph weir {{\n  rankdir=LR;");
            for name in &selected {
                let shape = if project.asset(name).is_some_and(|a| a.model.is_some()) {
                    "box"
                } else {
                    "cylinder"
                };
                println!("  \"{name}\" [shape={shape}];");
            }
            for (from, to) in &edges {
                println!("  \"{from}\" -> \"{to}\";");
            }
            println!("}}");
        }
        LineageFormat::Json => {
            // Column lineage plans every model; the table-level graphs above do not need it.
            let columns = all_column_lineage(&project, &graph).await?;
            let mut memo = BTreeMap::new();
            let assets: Vec<serde_json::Value> = selected
                .iter()
                .filter_map(|name| project.asset(name))
                .map(|asset| {
                    let cols: Vec<serde_json::Value> = columns
                        .get(&asset.name)
                        .into_iter()
                        .flatten()
                        .map(|c| {
                            let origins = origins_of(&project, &columns, &asset.name, &c.column, &mut memo);
                            json!({
                                "name": c.column,
                                "transform": if c.direct { "direct" } else { "transformation" },
                                "inputs": c.inputs.iter().map(|(t, col)| json!({ "asset": t, "column": col })).collect::<Vec<_>>(),
                                "origins": origins.iter().map(|(t, col)| json!({ "asset": t, "column": col })).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    json!({
                        "name": asset.name,
                        "kind": if asset.model.is_some() { "model" } else { "source" },
                        "team": asset.team(),
                        "owners": asset.owners(),
                        "upstream": graph.upstream.get(&asset.name),
                        "downstream": graph.downstream.get(&asset.name),
                        "columns": cols,
                    })
                })
                .collect();
            let edges: Vec<serde_json::Value> = edges
                .iter()
                .map(|(f, t)| json!({ "from": f, "to": t }))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "assets": assets, "edges": edges }))?
            );
        }
    }
    Ok(Outcome::Ok)
}

/// Per asset, where each column comes from: models from their plans, sources from themselves.
pub async fn all_column_lineage(
    project: &Project,
    graph: &AssetGraph,
) -> anyhow::Result<BTreeMap<String, Vec<ColumnLineage>>> {
    let mut out = BTreeMap::new();
    for asset in &project.assets {
        let validator = Validator::new(&asset.name, &asset.contract, ParseOptions::default())?;
        let Some(model) = &asset.model else {
            let columns = validator
                .column_names()
                .into_iter()
                .map(|c| ColumnLineage {
                    inputs: BTreeSet::from([(asset.name.clone(), c.clone())]),
                    column: c,
                    direct: true,
                })
                .collect();
            out.insert(asset.name.clone(), columns);
            continue;
        };
        let mut upstream = Vec::new();
        for name in graph.upstream.get(&asset.name).into_iter().flatten() {
            if let Some(up) = project.asset(name) {
                upstream.push((
                    name.clone(),
                    Validator::new(name, &up.contract, ParseOptions::default())?.schema(),
                ));
            }
        }
        let lineage = column_lineage(&model.sql, &upstream)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", model.path.display(), e.message))?;
        out.insert(asset.name.clone(), lineage);
    }
    Ok(out)
}

/// The source-asset columns a column is ultimately computed from, through every model.
fn origins_of(
    project: &Project,
    columns: &BTreeMap<String, Vec<ColumnLineage>>,
    asset: &str,
    column: &str,
    memo: &mut BTreeMap<(String, String), BTreeSet<(String, String)>>,
) -> BTreeSet<(String, String)> {
    let key = (asset.to_string(), column.to_string());
    if let Some(found) = memo.get(&key) {
        return found.clone();
    }
    let is_model = project.asset(asset).is_some_and(|a| a.model.is_some());
    let result = if !is_model {
        BTreeSet::from([key.clone()])
    } else {
        let inputs = columns
            .get(asset)
            .and_then(|cols| cols.iter().find(|c| c.column == column))
            .map(|c| c.inputs.clone());
        let mut all = BTreeSet::new();
        for (table, col) in inputs.into_iter().flatten() {
            all.extend(origins_of(project, columns, &table, &col, memo));
        }
        all
    };
    memo.insert(key, result.clone());
    result
}
