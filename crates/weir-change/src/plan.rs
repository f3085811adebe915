//! `weir plan`: the working project against what `weir apply` recorded. Each changed asset's
//! changes are classified from its contract (`diff_contracts`) and, for a model, from the
//! logical plans of its old and new SQL (`diff_plans`); a breaking change is then followed
//! downstream through column lineage, so a model that does not read a changed column is left
//! out, and one that does is named with the columns it reaches and its owners.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::datatypes::SchemaRef;
use serde::Serialize;
use weir_model::{ChangeClass, Contract, Project, diff_contracts, parse_contract};
use weir_orchestrate::{AssetGraph, DeployedAsset};
use weir_process::{column_lineage, diff_plans};
use weir_quality::{ParseOptions, Validator};

use crate::error::ChangeError;
use crate::snapshot::snapshot;

/// One asset whose definition differs from the deployed one.
#[derive(Debug, Clone, Serialize)]
pub struct AssetChange {
    pub asset: String,
    /// `added`, `modified` or `removed`.
    pub status: &'static str,
    /// The most a change of it can break.
    pub class: ChangeClass,
    pub changes: Vec<weir_model::Change>,
    /// The columns a reader sees changed (removed, retyped, computed differently); empty with
    /// `whole_table` when every column is.
    pub changed_columns: Vec<String>,
    pub whole_table: bool,
    pub team: Option<String>,
    pub owners: Vec<String>,
}

/// A downstream asset a breaking change reaches.
#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub asset: String,
    pub team: Option<String>,
    pub owners: Vec<String>,
    /// Its columns the change reaches (all of them when `whole_table`).
    pub columns: Vec<String>,
    pub whole_table: bool,
    /// The changed upstream columns it reads, as `asset.column` (`asset.*` for a whole table).
    pub reads: Vec<String>,
    /// Why, when the lineage could not say column by column (its SQL no longer plans).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangePlan {
    /// When the compared deployment was applied; `None` when nothing was applied yet.
    pub applied_at: Option<String>,
    pub changes: Vec<AssetChange>,
    pub impact: Vec<Impact>,
    /// What to rebuild, upstream first: changed models and the models a breaking change reaches.
    pub rebuild: Vec<String>,
    pub breaking: bool,
}

/// Which columns of an asset a change reaches.
#[derive(Debug, Clone, Default)]
struct Reach {
    whole: bool,
    columns: BTreeSet<String>,
}

impl Reach {
    fn touches(&self, column: &str) -> bool {
        self.whole || self.columns.contains(column)
    }

    fn is_empty(&self) -> bool {
        !self.whole && self.columns.is_empty()
    }
}

fn schema_of(name: &str, contract: &Contract) -> Result<SchemaRef, ChangeError> {
    Validator::new(name, contract, ParseOptions::default())
        .map(|v| v.schema())
        .map_err(|e| ChangeError::Contract(format!("{name}: {e}")))
}

fn deployed_contract(d: &DeployedAsset) -> Result<Contract, ChangeError> {
    let (contract, diagnostics) = parse_contract(Path::new(&d.contract_path), &d.contract_text);
    contract.ok_or_else(|| {
        let errors: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        ChangeError::Contract(format!(
            "the deployed contract of {} ({}) does not parse: {}",
            d.asset,
            d.contract_path,
            errors.join("; ")
        ))
    })
}

/// Compares `project` with `deployed` (empty: nothing applied yet).
pub async fn plan(
    project: &Project,
    graph: &AssetGraph,
    deployed: &[DeployedAsset],
) -> Result<ChangePlan, ChangeError> {
    let now = snapshot(project, graph, "", "")?;
    let before: BTreeMap<&str, &DeployedAsset> =
        deployed.iter().map(|d| (d.asset.as_str(), d)).collect();
    // The schemas each asset has now and had when deployed (for planning old SQL). Only a
    // contract whose text changed is parsed again: the plan of a large project stays quick.
    let mut new_schemas: BTreeMap<String, SchemaRef> = BTreeMap::new();
    for asset in &project.assets {
        new_schemas.insert(asset.name.clone(), schema_of(&asset.name, &asset.contract)?);
    }
    let current_text: BTreeMap<&str, &str> = now
        .iter()
        .map(|a| (a.asset.as_str(), a.contract_text.as_str()))
        .collect();
    let mut old_schemas: BTreeMap<String, SchemaRef> = BTreeMap::new();
    for d in deployed {
        let unchanged = current_text.get(d.asset.as_str()) == Some(&d.contract_text.as_str());
        let schema = match new_schemas.get(&d.asset) {
            Some(same) if unchanged => same.clone(),
            _ => schema_of(&d.asset, &deployed_contract(d)?)?,
        };
        old_schemas.insert(d.asset.clone(), schema);
    }
    let upstream_of = |name: &str, schemas: &BTreeMap<String, SchemaRef>| {
        graph
            .upstream
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|u| Some((u.clone(), schemas.get(u)?.clone())))
            .collect::<Vec<_>>()
    };

    let mut changes = Vec::new();
    let mut reach: BTreeMap<String, Reach> = BTreeMap::new();
    for current in &now {
        let asset = project.asset(&current.asset);
        let team = asset.and_then(|a| a.team().map(str::to_string));
        let owners = asset.map(|a| a.owners()).unwrap_or_default();
        let Some(old) = before.get(current.asset.as_str()) else {
            if !deployed.is_empty() {
                changes.push(AssetChange {
                    asset: current.asset.clone(),
                    status: "added",
                    class: ChangeClass::NonBreaking,
                    changes: vec![weir_model::Change {
                        class: ChangeClass::NonBreaking,
                        column: None,
                        what: "new asset".into(),
                    }],
                    changed_columns: Vec::new(),
                    whole_table: false,
                    team,
                    owners,
                });
            }
            continue;
        };
        if old.fingerprint == current.fingerprint {
            continue;
        }
        let Some(asset) = asset else { continue };
        let mut found = Vec::new();
        let mut touched = Reach::default();
        if old.contract_text != current.contract_text {
            let contract_changes = diff_contracts(&deployed_contract(old)?, &asset.contract);
            if contract_changes.is_empty() {
                found.push(weir_model::Change {
                    class: ChangeClass::Metadata,
                    column: None,
                    what: "contract text changed, nothing weir enforces or describes (comments, layout, custom properties)".into(),
                });
            }
            for c in &contract_changes {
                if c.class == ChangeClass::Breaking {
                    match &c.column {
                        Some(column) => {
                            touched.columns.insert(column.clone());
                        }
                        None => touched.whole = true,
                    }
                }
            }
            found.extend(contract_changes);
        }
        if old.definition_text != current.definition_text {
            match (&asset.model, &old.definition_text) {
                (Some(model), Some(old_sql)) if old.kind == "model" => {
                    let diff = diff_plans(
                        old_sql,
                        &upstream_of(&asset.name, &old_schemas),
                        &model.sql,
                        &upstream_of(&asset.name, &new_schemas),
                    )
                    .await;
                    match diff {
                        Ok(diff) => {
                            for column in &diff.removed {
                                touched.columns.insert(column.clone());
                                found.push(breaking(
                                    column,
                                    format!("the SQL no longer produces `{column}`"),
                                ));
                            }
                            for column in &diff.changed {
                                touched.columns.insert(column.clone());
                                found.push(breaking(
                                    column,
                                    format!("`{column}` is computed differently (its expression, filter or join changed)"),
                                ));
                            }
                            for column in &diff.added {
                                found.push(weir_model::Change {
                                    class: ChangeClass::NonBreaking,
                                    column: Some(column.clone()),
                                    what: format!("the SQL adds column `{column}`"),
                                });
                            }
                            if diff.only_adds() && diff.added.is_empty() {
                                found.push(weir_model::Change {
                                    class: ChangeClass::Metadata,
                                    column: None,
                                    what: "SQL text changed, same logical plan".into(),
                                });
                            }
                        }
                        Err(e) => {
                            touched.whole = true;
                            found.push(weir_model::Change {
                                class: ChangeClass::Breaking,
                                column: None,
                                what: format!("the old and new SQL cannot be compared ({}): taken as changing every column", e.message),
                            });
                        }
                    }
                }
                _ => found.push(weir_model::Change {
                    class: ChangeClass::NonBreaking,
                    column: None,
                    what: format!(
                        "{} changed",
                        current
                            .definition_path
                            .as_deref()
                            .unwrap_or("its definition")
                    ),
                }),
            }
        }
        found.sort_by_key(|c| std::cmp::Reverse(c.class));
        let class = found
            .iter()
            .map(|c| c.class)
            .max()
            .unwrap_or(ChangeClass::Metadata);
        if !touched.is_empty() {
            reach.insert(current.asset.clone(), touched.clone());
        }
        changes.push(AssetChange {
            asset: current.asset.clone(),
            status: "modified",
            class,
            changes: found,
            changed_columns: touched.columns.iter().cloned().collect(),
            whole_table: touched.whole,
            team: asset.team().map(str::to_string),
            owners: asset.owners(),
        });
    }
    for d in deployed {
        if project.asset(&d.asset).is_none() {
            reach.insert(
                d.asset.clone(),
                Reach {
                    whole: true,
                    columns: BTreeSet::new(),
                },
            );
            changes.push(AssetChange {
                asset: d.asset.clone(),
                status: "removed",
                class: ChangeClass::Breaking,
                changes: vec![weir_model::Change {
                    class: ChangeClass::Breaking,
                    column: None,
                    what: "asset removed".into(),
                }],
                changed_columns: Vec::new(),
                whole_table: true,
                team: None,
                owners: Vec::new(),
            });
        }
    }

    let impact = follow_downstream(project, graph, &new_schemas, &mut reach).await;
    let changed: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.class > ChangeClass::Metadata && c.status != "removed")
        .map(|c| c.asset.as_str())
        .collect();
    let rebuild: Vec<String> = graph
        .order
        .iter()
        .filter(|name| {
            project.asset(name).is_some_and(|a| a.model.is_some())
                && (changed.contains(name.as_str()) || impact.iter().any(|i| &i.asset == *name))
        })
        .cloned()
        .collect();
    Ok(ChangePlan {
        applied_at: deployed.first().map(|d| d.applied_at.clone()),
        breaking: changes.iter().any(|c| c.class == ChangeClass::Breaking),
        changes,
        impact,
        rebuild,
    })
}

fn breaking(column: &str, what: String) -> weir_model::Change {
    weir_model::Change {
        class: ChangeClass::Breaking,
        column: Some(column.to_string()),
        what,
    }
}

/// Walks the models downstream of what a breaking change reaches, in topological order: a
/// model's output column is reached when its lineage (DIRECT or INDIRECT, including the
/// filters and joins that shape every row) reads a reached column upstream. A model whose SQL
/// no longer plans against the new upstream contracts (it reads a removed column) is reached
/// whole, with the planner's message as the reason.
async fn follow_downstream(
    project: &Project,
    graph: &AssetGraph,
    schemas: &BTreeMap<String, SchemaRef>,
    reach: &mut BTreeMap<String, Reach>,
) -> Vec<Impact> {
    let mut impact = Vec::new();
    for name in &graph.order {
        let Some(asset) = project.asset(name) else {
            continue;
        };
        let Some(model) = &asset.model else { continue };
        let parents: Vec<&String> = graph.upstream.get(name).into_iter().flatten().collect();
        if !parents.iter().any(|p| reach.contains_key(p.as_str())) {
            continue;
        }
        let upstream: Vec<(String, SchemaRef)> = parents
            .iter()
            .filter_map(|p| Some(((*p).clone(), schemas.get(p.as_str())?.clone())))
            .collect();
        let mut hit = Reach::default();
        let mut reads = BTreeSet::new();
        let mut reason = None;
        match column_lineage(&model.sql, &upstream).await {
            Err(e) => {
                hit.whole = true;
                // The planner's first line names the column; the rest lists every field.
                let first = e.message.lines().next().unwrap_or_default();
                reason = Some(format!("{}: {first}", model.path.display()));
                for p in &parents {
                    if reach.contains_key(p.as_str()) {
                        reads.insert(format!("{p}.*"));
                    }
                }
            }
            Ok(lineage) => {
                let reads_reached =
                    |table: &str, column: &str| reach.get(table).is_some_and(|r| r.touches(column));
                let mut dataset_hit = false;
                for edge in &lineage.dataset {
                    if reads_reached(&edge.table, &edge.column) {
                        dataset_hit = true;
                        reads.insert(format!("{}.{}", edge.table, edge.column));
                    }
                }
                if dataset_hit {
                    hit.whole = true;
                }
                for column in &lineage.columns {
                    let mut this = false;
                    for edge in &column.edges {
                        if reads_reached(&edge.table, &edge.column) {
                            this = true;
                            reads.insert(format!("{}.{}", edge.table, edge.column));
                        }
                    }
                    // Lineage that is not sure: any reached parent may be behind the column.
                    if column.unknown && parents.iter().any(|p| reach.contains_key(p.as_str())) {
                        this = true;
                    }
                    if this {
                        hit.columns.insert(column.column.clone());
                    }
                }
            }
        }
        if hit.is_empty() {
            continue;
        }
        // A model changed itself is listed among the changes; what reaches it from upstream
        // adds to what its own change reaches.
        if let Some(own) = reach.get_mut(name.as_str()) {
            own.whole |= hit.whole;
            own.columns.extend(hit.columns);
            continue;
        }
        impact.push(Impact {
            asset: name.clone(),
            team: asset.team().map(str::to_string),
            owners: asset.owners(),
            columns: hit.columns.iter().cloned().collect(),
            whole_table: hit.whole,
            reads: reads.into_iter().collect(),
            reason,
        });
        reach.insert(name.clone(), hit);
    }
    impact
}
