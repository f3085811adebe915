use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::json;
use weir_model::Project;
use weir_process::{Edge, EdgeKind, Lineage};

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
        super::load_selection(root, selectors, format == LineageFormat::Json, false)
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
        LineageFormat::Mermaid | LineageFormat::Dot => {
            // The diagrams tell a direct dependency (some column's value is read) from one that
            // only filters, joins, groups or orders. That needs column lineage; a model whose
            // SQL does not plan is still drawn, with plain edges.
            let columns = weir_observe::all_column_lineage(&project, &graph)
                .await
                .ok();
            let dependency = |from: &str, to: &str| {
                columns
                    .as_ref()
                    .and_then(|c| c.get(to))
                    .map(|l| dependency_kind(l, from))
            };
            let unknown = |name: &str| {
                columns
                    .as_ref()
                    .and_then(|c| c.get(name))
                    .is_some_and(|l| l.dataset_unknown || l.columns.iter().any(|c| c.unknown))
            };
            if format == LineageFormat::Mermaid {
                println!("graph LR");
                for name in &selected {
                    let kind = asset_kind(&project, name);
                    let note = if unknown(name) {
                        "<br/>lineage unknown"
                    } else {
                        ""
                    };
                    println!("  {name}[\"{name}<br/>{kind}{note}\"]");
                }
                for (from, to) in &edges {
                    match dependency(from, to) {
                        Some(Some(EdgeKind::Indirect)) => println!("  {from} -.->|indirect| {to}"),
                        _ => println!("  {from} --> {to}"),
                    }
                }
            } else {
                println!("digraph weir {{\n  rankdir=LR;");
                for name in &selected {
                    let shape = if asset_kind(&project, name) == "model" {
                        "box"
                    } else {
                        "cylinder"
                    };
                    let note = if unknown(name) {
                        "\\nlineage unknown"
                    } else {
                        ""
                    };
                    println!("  \"{name}\" [shape={shape}, label=\"{name}{note}\"];");
                }
                for (from, to) in &edges {
                    match dependency(from, to) {
                        Some(Some(EdgeKind::Indirect)) => {
                            println!("  \"{from}\" -> \"{to}\" [style=dashed, label=\"indirect\"];")
                        }
                        _ => println!("  \"{from}\" -> \"{to}\";"),
                    }
                }
                println!("}}");
            }
        }
        LineageFormat::Json => {
            // Column lineage plans every model; the table-level graphs above do not need it.
            let columns = weir_observe::all_column_lineage(&project, &graph).await?;
            let mut memo = BTreeMap::new();
            let assets: Vec<serde_json::Value> = selected
                .iter()
                .filter_map(|name| project.asset(name))
                .map(|asset| {
                    let lineage = columns.get(&asset.name);
                    let cols: Vec<serde_json::Value> = lineage
                        .into_iter()
                        .flat_map(|l| &l.columns)
                        .map(|c| {
                            let origins = origins_of(&project, &columns, &asset.name, &c.column, &mut memo);
                            let transform = if c.unknown {
                                "unknown"
                            } else if c.is_identity() {
                                "direct"
                            } else {
                                "transformation"
                            };
                            json!({
                                "name": c.column,
                                "transform": transform,
                                "unknown": c.unknown,
                                "inputs": c.direct().map(|e| json!({ "asset": e.table, "column": e.column })).collect::<Vec<_>>(),
                                "edges": c.edges.iter().map(edge_json).collect::<Vec<_>>(),
                                "origins": origins.iter().map(|(t, col)| json!({ "asset": t, "column": col })).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    let dataset: Vec<serde_json::Value> = lineage
                        .into_iter()
                        .flat_map(|l| &l.dataset)
                        .map(edge_json)
                        .collect();
                    json!({
                        "name": asset.name,
                        "kind": asset.kind(),
                        "team": asset.team(),
                        "owners": asset.owners(),
                        "upstream": graph.upstream.get(&asset.name),
                        "downstream": graph.downstream.get(&asset.name),
                        "columns": cols,
                        "dataset_edges": dataset,
                        "dataset_unknown": lineage.is_some_and(|l| l.dataset_unknown),
                    })
                })
                .collect();
            let edges: Vec<serde_json::Value> = edges
                .iter()
                .map(|(f, t)| json!({ "from": f, "to": t }))
                .collect();
            crate::output::print_json(json!({ "assets": assets, "edges": edges }));
        }
    }
    Ok(Outcome::Ok)
}

fn asset_kind(project: &Project, name: &str) -> &'static str {
    if project.asset(name).is_some_and(|a| a.model.is_some()) {
        "model"
    } else {
        "source"
    }
}

/// `{ "asset", "column", "type": "DIRECT"|"INDIRECT", "subtype": "IDENTITY"|... }`, the
/// transformation vocabulary of OpenLineage's column lineage facet.
fn edge_json(edge: &Edge) -> serde_json::Value {
    json!({
        "asset": edge.table,
        "column": edge.column,
        "type": edge.kind().as_str(),
        "subtype": edge.subtype.as_str(),
    })
}

/// How a model depends on `upstream`: `Direct` when some column's value is read from it,
/// `Indirect` when it only filters, joins, groups or orders; `None` when no known edge names it.
fn dependency_kind(lineage: &Lineage, upstream: &str) -> Option<EdgeKind> {
    let edges = lineage
        .columns
        .iter()
        .flat_map(|c| &c.edges)
        .chain(&lineage.dataset)
        .filter(|e| e.table == upstream);
    edges.map(|e| e.kind()).min()
}

/// The source-asset columns a column's value is ultimately computed from (its DIRECT edges),
/// through every model.
fn origins_of(
    project: &Project,
    columns: &BTreeMap<String, Lineage>,
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
        let inputs: Vec<(String, String)> = columns
            .get(asset)
            .and_then(|l| l.columns.iter().find(|c| c.column == column))
            .map(|c| {
                c.direct()
                    .map(|e| (e.table.clone(), e.column.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut all = BTreeSet::new();
        for (table, col) in inputs {
            all.extend(origins_of(project, columns, &table, &col, memo));
        }
        all
    };
    memo.insert(key, result.clone());
    result
}
