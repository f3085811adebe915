//! 1,000 trivial `table` models in a chain-and-fan DAG: thirteen chains of about 77 models
//! fanning out of one root, each model selecting its parent's one row. The first run builds
//! every table; the second finds each up to date. Per-model figures are the run's wall time
//! over the model count, through the same `run_assets` as `weir run`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use weir_orchestrate::{NoProgress, RunOptions, RunStatus, StateStore, run_assets};

use crate::serve::contract;

/// How many chains fan out of the root model.
const FAN: usize = 13;

pub(crate) fn name(i: usize) -> String {
    format!("m{i:04}")
}

pub(crate) fn write_project(dir: &Path, models: usize) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    for folder in ["models", "contracts"] {
        std::fs::create_dir_all(dir.join(folder))?;
    }
    std::fs::write(dir.join("weir.toml"), "[project]\nname = \"dag_bench\"\n")?;
    for i in 0..models {
        let sql = if i == 0 {
            "-- weir: materialized = table\nSELECT CAST(1 AS BIGINT) AS x\n".to_string()
        } else {
            let parent = i.saturating_sub(FAN);
            format!(
                "-- weir: materialized = table\nSELECT x FROM {}\n",
                name(parent)
            )
        };
        std::fs::write(dir.join(format!("models/{}.sql", name(i))), sql)?;
        std::fs::write(
            dir.join(format!("contracts/{}.odcs.yaml", name(i))),
            contract(&name(i), "x", false),
        )?;
    }
    Ok(())
}

/// The project at `root` and its graph; an error if it does not load cleanly.
pub(crate) fn load(
    root: &Path,
) -> anyhow::Result<(weir_model::Project, weir_orchestrate::AssetGraph)> {
    let (project, diagnostics) = weir_model::load_project(root);
    anyhow::ensure!(!diagnostics.has_errors(), "{diagnostics}");
    let project = project.context("project")?;
    let (graph, _) = weir_orchestrate::build_graph(&project);
    Ok((project, graph))
}

pub async fn dag(dir: &Path, models: usize, threads: Option<usize>) -> anyhow::Result<()> {
    let root = dir.join("dag-bench");
    write_project(&root, models)?;
    let started = Instant::now();
    let (project, graph) = load(&root)?;
    let loaded = started.elapsed().as_secs_f64();
    let state = StateStore::connect(&project.state_url()).await?;
    let threads = threads.unwrap_or(weir_orchestrate::DEFAULT_THREADS);
    for (label, expected) in [
        ("first run (every table built)", RunStatus::Success),
        ("no-op run (every table up to date)", RunStatus::UpToDate),
    ] {
        let options = RunOptions {
            full_refresh: false,
            trigger: "bench".into(),
            threads,
            partition: None,
        };
        let started = Instant::now();
        let reports = run_assets(
            &project,
            &state,
            &graph,
            &graph.order,
            &Default::default(),
            &options,
            std::sync::Arc::new(NoProgress),
        )
        .await?;
        let secs = started.elapsed().as_secs_f64();
        let wrong: Vec<String> = reports
            .iter()
            .filter(|r| r.status != expected)
            .map(|r| format!("{}: {} {:?}", r.asset, r.status.as_str(), r.error))
            .collect();
        anyhow::ensure!(
            reports.len() == models && wrong.is_empty(),
            "{} reports, unexpected: {:?}",
            reports.len(),
            wrong.first()
        );
        println!(
            "dag of {models} table models ({FAN} chains of depth {}, {threads} threads), {label}: {secs:.2}s = {:.2} ms per model (project loaded in {loaded:.2}s)",
            1 + (models - 1).div_ceil(FAN),
            secs * 1000.0 / models as f64
        );
    }
    state.close().await;
    Ok(())
}
