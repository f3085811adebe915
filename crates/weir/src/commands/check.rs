use std::path::Path;

use weir_model::{Diagnostic, Materialization, load_project};
use weir_orchestrate::build_graph;
use weir_quality::{ParseOptions, Validator};

use super::check_inputs;
use crate::Outcome;
use crate::output::diagnostics_json;

/// Parses everything, builds the asset graph, compiles every contract the way a run would and
/// plans every model against its upstream contracts, reporting every problem at once.
pub async fn check(root: &Path, deny_warnings: bool, json: bool) -> anyhow::Result<Outcome> {
    let (project, mut diagnostics) = load_project(root);
    if let Some(project) = &project {
        for asset in &project.assets {
            match Validator::new(&asset.name, &asset.contract, ParseOptions::default()) {
                Ok(validator) => {
                    check_inputs::sql_rules(asset, &validator, &mut diagnostics).await;
                }
                Err(e) => diagnostics.push(Diagnostic::error(&asset.contract_path, e.to_string())),
            }
            check_inputs::source_files(&project.root, asset, &mut diagnostics);
        }
        let (graph, found) = build_graph(project);
        let graph_ok = found.iter().all(|d| d.is_warning);
        diagnostics.0.extend(found);
        if graph_ok {
            for asset in &project.assets {
                let Some(model) = &asset.model else { continue };
                // A model reading an asset whose contract did not load cannot be planned; the
                // contract's error is the one diagnostic for it.
                if weir_process::table_references(&model.sql)
                    .is_ok_and(|t| t.iter().any(|t| project.broken_assets.contains(t)))
                {
                    continue;
                }
                let Ok(own) = Validator::new(&asset.name, &asset.contract, ParseOptions::default())
                else {
                    continue;
                };
                let mut upstream = Vec::new();
                for name in graph.upstream.get(&asset.name).into_iter().flatten() {
                    if let Some(up) = project.asset(name)
                        && let Ok(v) = Validator::new(name, &up.contract, ParseOptions::default())
                    {
                        upstream.push((name.clone(), v.schema()));
                    }
                }
                match weir_process::output_schema(&model.sql, &upstream).await {
                    Ok(output) => {
                        check_inputs::watermark(model, &output, &mut diagnostics);
                        for problem in weir_process::check_output_schema(&output, &own.schema()) {
                            let line = weir_process::find_word(&model.sql, &problem.column)
                                .map(|(l, _)| l);
                            let message = format!(
                                "{} (contract {})",
                                problem.message,
                                asset.contract_path.display()
                            );
                            let diagnostic = if problem.is_warning {
                                Diagnostic::warning(&model.path, message)
                            } else {
                                Diagnostic::error(&model.path, message)
                            };
                            diagnostics.push(diagnostic.field(problem.column).at(line, None));
                        }
                    }
                    Err(e) => diagnostics.push(
                        Diagnostic::error(&model.path, format!("SQL does not plan: {}", e.message))
                            .at(e.line, e.column),
                    ),
                }
                incremental_diagnostics(model, &upstream, &mut diagnostics).await;
            }
        }
    }
    let failed =
        diagnostics.has_errors() || (deny_warnings && diagnostics.warnings().next().is_some());
    if json {
        let assets: Vec<&str> = project
            .iter()
            .flat_map(|p| p.assets.iter().map(|a| a.name.as_str()))
            .collect();
        crate::output::print_json(serde_json::json!({
            "ok": !failed,
            "assets": assets,
            "diagnostics": diagnostics_json(&diagnostics),
        }));
    } else {
        for d in &diagnostics.0 {
            eprintln!("{d}");
        }
        let errors = crate::output::count(diagnostics.errors().count(), "error");
        let warnings = crate::output::count(diagnostics.warnings().count(), "warning");
        match &project {
            Some(p) if !failed => eprintln!(
                "ok: {}, {errors}, {warnings}",
                crate::output::count(p.assets.len(), "asset")
            ),
            _ => eprintln!("check failed: {errors}, {warnings}"),
        }
    }
    Ok(if failed {
        Outcome::BadInput
    } else {
        Outcome::Ok
    })
}

/// An incremental model whose SQL does not allow an exact increment still runs (recomputed in
/// full, saying why), so this is a warning; a `unique_key` the query does not produce is an
/// error.
async fn incremental_diagnostics(
    model: &weir_model::ModelDef,
    upstream: &[(String, arrow::datatypes::SchemaRef)],
    diagnostics: &mut weir_model::Diagnostics,
) {
    if model.materialization == Materialization::Table {
        return;
    }
    let Ok(analysis) =
        weir_process::analyze_incremental(&model.sql, upstream, &model.unique_key).await
    else {
        return;
    };
    match model.materialization {
        Materialization::IncrementalAppend => {
            if let Some(why) = analysis.append_blocker {
                diagnostics.push(
                    Diagnostic::warning(
                        &model.path,
                        format!(
                            "an `append` model is exact only for SQL that distributes over new rows (projections, filters, inner joins), and this query has {why}: every run will recompute it in full; declare it `strategy = merge` with a `unique_key`, or `materialized = table`"
                        ),
                    )
                    .field("strategy"),
                );
            }
        }
        Materialization::IncrementalMerge => {
            if let Err(why) = analysis.merge_keys {
                let missing = why.starts_with("the query does not produce the key column");
                let message = if missing {
                    format!("`unique_key`: {why}")
                } else {
                    format!(
                        "weir cannot tell which `unique_key` values new upstream rows affect ({why}): every run will recompute this model in full"
                    )
                };
                let diagnostic = if missing {
                    Diagnostic::error(&model.path, message)
                } else {
                    Diagnostic::warning(&model.path, message)
                };
                diagnostics.push(diagnostic.field("unique_key"));
            }
        }
        Materialization::Table => {}
    }
}
