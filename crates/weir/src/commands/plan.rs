//! `weir plan` and `weir apply`: what a change to the project breaks, for whom, and what must
//! be rebuilt, before it ships; and the record of what shipped. Exit codes gate CI: 0 no
//! breaking change, 1 breaking changes, 2 an error.

use std::path::Path;

use serde_json::json;
use weir_change::{ChangePlan, plan};
use weir_model::ChangeClass;
use weir_orchestrate::StateStore;

use crate::Outcome;

/// The project, its graph, the state store and the plan against the last apply.
async fn make_plan(
    root: &Path,
    json: bool,
) -> anyhow::Result<
    Option<(
        weir_model::Project,
        weir_orchestrate::AssetGraph,
        StateStore,
        ChangePlan,
    )>,
> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(None);
    };
    let Some(graph) = super::graph(&project, json) else {
        return Ok(None);
    };
    let state = StateStore::connect(&project.state_url()).await?;
    let deployed = state.deployed_assets().await?;
    let plan = plan(&project, &graph, &deployed).await?;
    Ok(Some((project, graph, state, plan)))
}

pub async fn plan_command(root: &Path, json: bool) -> anyhow::Result<Outcome> {
    let Some((_, _, state, plan)) = make_plan(root, json).await? else {
        return Ok(Outcome::BadInput);
    };
    state.close().await;
    if json {
        crate::output::print_json(plan_json(&plan));
    } else {
        print_plan(&plan);
    }
    Ok(if plan.breaking {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}

pub async fn apply_command(
    root: &Path,
    allow_breaking: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some((project, graph, state, plan)) = make_plan(root, json).await? else {
        return Ok(Outcome::BadInput);
    };
    if plan.breaking && !allow_breaking {
        state.close().await;
        if json {
            let mut doc = plan_json(&plan);
            doc["applied"] = json!(false);
            crate::output::print_json(doc);
        } else {
            print_plan(&plan);
            eprintln!(
                "\nnot applied: the plan has breaking changes. Tell the owners above, then `weir apply --allow-breaking`; or keep the old contract and add the change as a new contract version beside it."
            );
        }
        return Ok(Outcome::DataFailed);
    }
    let apply_id = uuid::Uuid::now_v7().to_string();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let snapshot = weir_change::snapshot(&project, &graph, &apply_id, &at)?;
    state.record_deployment(&snapshot).await?;
    state.close().await;
    if json {
        let mut doc = plan_json(&plan);
        doc["applied"] = json!(true);
        doc["apply_id"] = json!(apply_id);
        doc["assets"] = json!(snapshot.len());
        crate::output::print_json(doc);
    } else {
        if !plan.changes.is_empty() {
            print_plan(&plan);
            println!();
        }
        println!(
            "applied: {} recorded as deployed ({apply_id}); `weir plan` now compares with it",
            crate::output::count(snapshot.len(), "asset")
        );
    }
    Ok(Outcome::Ok)
}

fn plan_json(plan: &ChangePlan) -> serde_json::Value {
    json!({
        "applied_at": plan.applied_at,
        "breaking": plan.breaking,
        "changes": plan.changes,
        "impact": plan.impact,
        "rebuild": plan.rebuild,
    })
}

fn label(class: ChangeClass) -> &'static str {
    match class {
        ChangeClass::Breaking => "BREAKING",
        ChangeClass::NonBreaking => "non-breaking",
        ChangeClass::Metadata => "metadata only",
    }
}

fn print_plan(plan: &ChangePlan) {
    let Some(applied_at) = &plan.applied_at else {
        println!(
            "nothing applied yet: `weir apply` records this project as deployed, and `weir plan` then shows what changes"
        );
        return;
    };
    if plan.changes.is_empty() {
        println!("no change since the apply of {applied_at}");
        return;
    }
    println!("changes since the apply of {applied_at}:");
    for change in &plan.changes {
        println!(
            "\n  {} ({}, {})",
            change.asset,
            change.status,
            label(change.class)
        );
        for c in &change.changes {
            println!("    - {}: {}", c.class.as_str(), c.what);
        }
    }
    if !plan.impact.is_empty() {
        println!("\ndownstream assets the breaking changes reach:");
        for i in &plan.impact {
            let columns = if i.whole_table {
                "every column".to_string()
            } else {
                i.columns.join(", ")
            };
            let owners = if i.owners.is_empty() {
                "no owner".to_string()
            } else {
                i.owners.join(", ")
            };
            println!(
                "  {} ({}; team {}, {owners}): reads {}",
                i.asset,
                columns,
                i.team.as_deref().unwrap_or("none"),
                i.reads.join(", ")
            );
            if let Some(reason) = &i.reason {
                println!("      {reason}");
            }
        }
    }
    if !plan.rebuild.is_empty() {
        println!("\nto rebuild: {}", plan.rebuild.join(", "));
    }
    println!(
        "\n{}",
        if plan.breaking {
            "breaking changes: exit 1"
        } else {
            "no breaking change"
        }
    );
}
