//! The asset graph: sources and models, with edges inferred from the tables each model's SQL
//! reads. It orders runs, finds cycles and unknown tables, and resolves selectors.

use std::collections::{BTreeMap, BTreeSet};

use weir_model::{Diagnostic, Project, did_you_mean};
use weir_process::{SqlError, table_references};

#[derive(Debug, Clone, Default)]
pub struct AssetGraph {
    /// Every asset, upstream before downstream (ties by name).
    pub order: Vec<String>,
    pub upstream: BTreeMap<String, Vec<String>>,
    pub downstream: BTreeMap<String, Vec<String>>,
}

/// Builds the graph, reporting unparsable SQL, unknown tables (with file, line and a "did you
/// mean") and cycles. The graph is only usable when no diagnostic is an error.
pub fn build_graph(project: &Project) -> (AssetGraph, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let names: Vec<String> = project.assets.iter().map(|a| a.name.clone()).collect();
    let mut graph = AssetGraph::default();
    for asset in &project.assets {
        graph.upstream.entry(asset.name.clone()).or_default();
        graph.downstream.entry(asset.name.clone()).or_default();
    }
    for asset in &project.assets {
        let Some(model) = &asset.model else { continue };
        match table_references(&model.sql) {
            Ok(tables) => {
                for table in tables {
                    let known = names.contains(&table) && table != asset.name;
                    if !known && project.broken_assets.contains(&table) {
                        // Its contract's error is the one diagnostic for it.
                        continue;
                    }
                    if !known {
                        let (line, column) = weir_process::find_word(&model.sql, &table)
                            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
                        let message = if table == asset.name {
                            format!(
                                "model `{table}` reads its own table; an incremental model adds to its own table without reading it"
                            )
                        } else {
                            format!(
                                "unknown table `{table}`{}",
                                did_you_mean(&table, names.iter())
                            )
                        };
                        diagnostics.push(Diagnostic::error(&model.path, message).at(line, column));
                        continue;
                    }
                    graph
                        .upstream
                        .entry(asset.name.clone())
                        .or_default()
                        .push(table.clone());
                    graph
                        .downstream
                        .entry(table)
                        .or_default()
                        .push(asset.name.clone());
                }
            }
            Err(SqlError {
                line,
                column,
                message,
            }) => {
                diagnostics.push(
                    Diagnostic::error(&model.path, format!("SQL does not parse: {message}"))
                        .at(line, column),
                );
            }
        }
    }
    // Kahn's algorithm; what is left over sits on a cycle.
    let mut indegree: BTreeMap<&str, usize> = graph
        .upstream
        .iter()
        .map(|(k, v)| (k.as_str(), v.len()))
        .collect();
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| *k)
        .collect();
    while let Some(next) = ready.pop_first() {
        graph.order.push(next.to_string());
        for down in &graph.downstream[next] {
            if let Some(d) = indegree.get_mut(down.as_str()) {
                *d -= 1;
                if *d == 0 {
                    ready.insert(down.as_str());
                }
            }
        }
    }
    if graph.order.len() < graph.upstream.len() {
        let stuck: Vec<String> = graph
            .upstream
            .keys()
            .filter(|k| !graph.order.contains(k))
            .cloned()
            .collect();
        let cycle = find_cycle(&graph, &stuck);
        for name in &cycle[..cycle.len().saturating_sub(1)] {
            if let Some(model) = project.asset(name).and_then(|a| a.model.as_ref()) {
                diagnostics.push(Diagnostic::error(
                    &model.path,
                    format!("dependency cycle: {}", cycle.join(" → ")),
                ));
            }
        }
    }
    (graph, diagnostics)
}

fn find_cycle(graph: &AssetGraph, stuck: &[String]) -> Vec<String> {
    let Some(start) = stuck.first() else {
        return Vec::new();
    };
    let mut path = vec![start.clone()];
    let mut current = start.clone();
    loop {
        let Some(next) = graph.upstream[&current].iter().find(|u| stuck.contains(u)) else {
            return path;
        };
        if let Some(pos) = path.iter().position(|p| p == next) {
            let mut cycle: Vec<String> = path[pos..].iter().rev().cloned().collect();
            cycle.push(cycle[0].clone());
            return cycle;
        }
        path.push(next.clone());
        current = next.clone();
    }
}

impl AssetGraph {
    fn walk(&self, start: &str, edges: &BTreeMap<String, Vec<String>>, out: &mut BTreeSet<String>) {
        for next in edges.get(start).into_iter().flatten() {
            if out.insert(next.clone()) {
                self.walk(next, edges, out);
            }
        }
    }

    pub fn all_upstream(&self, asset: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.walk(asset, &self.upstream, &mut out);
        out
    }

    pub fn all_downstream(&self, asset: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.walk(asset, &self.downstream, &mut out);
        out
    }
}

/// Resolves selectors (`orders`, `orders+`, `+daily_revenue`, `team:finance`, `tag:NAME`) to
/// assets in run order. No selector means every asset.
pub fn select(
    project: &Project,
    graph: &AssetGraph,
    selectors: &[String],
) -> Result<Vec<String>, String> {
    if selectors.is_empty() {
        return Ok(graph.order.clone());
    }
    let names: Vec<String> = project.assets.iter().map(|a| a.name.clone()).collect();
    let mut chosen = BTreeSet::new();
    for selector in selectors {
        if let Some(team) = selector.strip_prefix("team:") {
            let found: Vec<String> = project
                .assets
                .iter()
                .filter(|a| a.team() == Some(team))
                .map(|a| a.name.clone())
                .collect();
            if found.is_empty() {
                return Err(format!("no asset is owned by team `{team}`"));
            }
            chosen.extend(found);
            continue;
        }
        if let Some(tag) = selector.strip_prefix("tag:") {
            let found: Vec<String> = project
                .assets
                .iter()
                .filter(|a| {
                    a.contract.tags.iter().flatten().any(|t| t == tag)
                        || a.model
                            .as_ref()
                            .is_some_and(|m| m.tags.iter().any(|t| t == tag))
                        || a.source
                            .as_ref()
                            .is_some_and(|s| s.tags.iter().any(|t| t == tag))
                })
                .map(|a| a.name.clone())
                .collect();
            if found.is_empty() {
                return Err(format!("no asset has tag `{tag}`"));
            }
            chosen.extend(found);
            continue;
        }
        let upstream = selector.starts_with('+');
        let downstream = selector.ends_with('+');
        let name = selector.trim_start_matches('+').trim_end_matches('+');
        if !names.iter().any(|n| n == name) {
            return Err(format!(
                "unknown asset `{name}`{}",
                did_you_mean(name, names.iter())
            ));
        }
        chosen.insert(name.to_string());
        if upstream {
            chosen.extend(graph.all_upstream(name));
        }
        if downstream {
            chosen.extend(graph.all_downstream(name));
        }
    }
    Ok(graph
        .order
        .iter()
        .filter(|n| chosen.contains(*n))
        .cloned()
        .collect())
}
