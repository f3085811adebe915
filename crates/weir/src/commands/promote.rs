//! `weir promote NAME`: the tables environment NAME built, published to production once
//! their checks passed; see `weir_orchestrate::promote` for how readers switch at once.

use std::path::Path;

use serde_json::json;
use weir_orchestrate::{PromotionReport, StateStore, promote};

use crate::Outcome;

pub async fn promote_command(root: &Path, name: &str, json: bool) -> anyhow::Result<Outcome> {
    let Some(mut project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let Some(graph) = super::graph(&project, json) else {
        return Ok(Outcome::BadInput);
    };
    if let Err(why) = super::environment::read(&mut project, name) {
        return Ok(crate::output::user_error("environment", why));
    }
    let env = project.environment.take();
    let Some(env) = env else {
        return Ok(crate::output::user_error(
            "environment",
            format!("no environment `{name}`"),
        ));
    };
    let env_state_url = project.environment_state_url(&env.name);
    let (state, recovery) = super::open_and_recover(&project, json).await?;
    let env_state = StateStore::connect(&env_state_url).await?;
    let outcome = promote(&project, &graph, &state, &env, &env_state).await;
    env_state.close().await;
    state.close().await;
    let report = match outcome? {
        Ok(report) => report,
        Err(why) => {
            if json {
                crate::output::print_json(json!({
                    "schema_version": 1,
                    "environment": name,
                    "promoted": false,
                    "reason": why,
                    "recovered": recovery.messages,
                }));
            } else {
                eprintln!("not promoted: {why}");
            }
            return Ok(Outcome::DataFailed);
        }
    };
    if json {
        crate::output::print_json(json!({
            "schema_version": 1,
            "environment": name,
            "promoted": true,
            "promotion": report.id,
            "tables": report.tables,
            "recovered": recovery.messages,
        }));
    } else {
        print_report(&report);
    }
    Ok(Outcome::Ok)
}

fn print_report(report: &PromotionReport) {
    println!(
        "promoted environment `{}` to production (promotion {}):",
        report.environment, report.id
    );
    let width = report
        .tables
        .iter()
        .map(|t| t.asset.len())
        .max()
        .unwrap_or(0);
    for t in &report.tables {
        let before = t
            .version_before
            .map_or("new table".to_string(), |v| format!("version {v}"));
        let after = t.version.map_or("?".to_string(), |v| v.to_string());
        println!(
            "  {:width$}  {before} → {after}   {} stored, {} quarantined",
            t.asset,
            crate::output::count(usize::try_from(t.rows).unwrap_or(usize::MAX), "row"),
            t.quarantined
        );
    }
    println!(
        "readers through weir (`weir query`, `weir diff`) switched to every promoted table at once; the environment's folder was removed. Record the definitions as deployed with `weir apply`."
    );
}
