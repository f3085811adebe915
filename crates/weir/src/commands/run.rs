use std::path::Path;

use weir_orchestrate::{RunOptions, run_assets};

use crate::Outcome;
use crate::output::{print_run_summary, run_json};
use crate::progress::Bars;

/// What `weir run` recomputes.
#[derive(Debug, Clone, Default)]
pub struct Mode {
    pub full_refresh: bool,
    /// Only this partition of the selected (partitioned) models.
    pub partition: Option<String>,
    /// Build into this environment instead of production.
    pub env: Option<String>,
}

pub async fn run(
    root: &Path,
    selectors: &[String],
    mode: Mode,
    threads: usize,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some((mut project, graph, mut selected)) =
        super::load_selection(root, selectors, json, true)
    else {
        return Ok(Outcome::BadInput);
    };
    let mut from_production = Vec::new();
    if let Some(env) = &mode.env {
        let named = (!selectors.is_empty()).then_some(selected.as_slice());
        selected = match super::environment::prepare_build(&mut project, &graph, env, named).await?
        {
            Ok(order) => order,
            Err(why) => return Ok(crate::output::user_error("environment", why)),
        };
        from_production = super::environment::read_from_production(&project, &graph, &selected);
        if selected.is_empty() {
            if json {
                crate::output::print_json(serde_json::json!({
                    "schema_version": 1, "runs": [], "recovered": [], "held": [],
                    "environment": { "name": env, "built": [], "from_production": [] },
                }));
            } else {
                println!(
                    "nothing changed since the last `weir apply`: environment `{env}` has nothing to build"
                );
            }
            return Ok(Outcome::Ok);
        }
    }
    if let Some(partition) = &mode.partition
        && let Err(why) =
            weir_orchestrate::check_partition_selection(&project, &selected, partition)
    {
        return Ok(crate::output::user_error(
            "selection",
            format!("--partition {partition}: {why}"),
        ));
    }
    let (state, recovery) = super::open_and_recover(&project, json).await?;
    let bars = std::sync::Arc::new(Bars::new(json));
    let options = RunOptions {
        full_refresh: mode.full_refresh,
        trigger: "cli".into(),
        threads,
        partition: mode.partition,
    };
    let reports = run_assets(
        &project,
        &state,
        &graph,
        &selected,
        &recovery.held,
        &options,
        bars.clone(),
    )
    .await?;
    bars.clear();
    // An environment's runs open no incident and page nobody: production is what owners answer for.
    if project.environment.is_none() {
        super::incidents::after_runs(&project, &graph, &state, &reports, &options).await;
    }
    let shadows = match weir_change::compare_shadows(&project, &state, &reports).await {
        Ok(shadows) => shadows,
        Err(e) => {
            eprintln!("warning: the runs were recorded, but comparing shadow assets failed: {e}");
            Vec::new()
        }
    };
    state.close().await;
    if json {
        let mut doc = run_json(&reports, &recovery);
        if !shadows.is_empty() {
            doc["shadows"] = serde_json::json!(shadows);
        }
        if let Some(env) = &project.environment {
            doc["environment"] = serde_json::json!({
                "name": env.name,
                "built": selected,
                "from_production": from_production,
            });
        }
        crate::output::print_json(doc);
    } else {
        print_run_summary(&reports);
        for c in &shadows {
            println!("{}", super::shadow::describe(c));
        }
        if let Some(env) = &project.environment {
            println!(
                "\nenvironment `{}` ({}): built {}; read from production: {}. Production was not written.",
                env.name,
                super::environment::shown(&project, &project.environment_dir(&env.name)),
                selected.join(", "),
                if from_production.is_empty() {
                    "nothing".to_string()
                } else {
                    from_production.join(", ")
                }
            );
            if let Some(first) = selected.first() {
                println!(
                    "compare with production: weir diff {first}@{} {first} --key COLUMNS",
                    env.name
                );
            }
        }
    }
    let failed = reports.iter().any(|r| r.status.is_failure());
    Ok(if failed {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}
