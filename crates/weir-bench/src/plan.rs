//! `weir plan` on the 1,000-model chain-and-fan project of `dag.rs` with one model changed:
//! the project applied (its snapshot recorded in the state store), one model's expression
//! edited, then the plan timed from loading the project to the impact analysis, as the `weir
//! plan` command does it. Peak memory is the process's, which does nothing else.

use std::path::Path;
use std::time::Instant;

use weir_orchestrate::StateStore;

pub async fn plan(dir: &Path, models: usize) -> anyhow::Result<()> {
    let root = dir.join("plan-bench");
    crate::dag::write_project(&root, models)?;
    {
        let (project, graph) = crate::dag::load(&root)?;
        let snapshot = weir_change::snapshot(&project, &graph, "bench", "2026-11-27T00:00:00Z")?;
        let state = StateStore::connect(&project.state_url()).await?;
        state.record_deployment(&snapshot).await?;
        state.close().await;
    }
    // One model in the middle of a chain computes its column differently.
    let changed = crate::dag::name(models / 2);
    let path = root.join(format!("models/{changed}.sql"));
    let sql = std::fs::read_to_string(&path)?;
    std::fs::write(
        &path,
        sql.replace("SELECT x FROM", "SELECT x + 1 AS x FROM"),
    )?;

    let started = Instant::now();
    let (project, graph) = crate::dag::load(&root)?;
    let loaded = started.elapsed().as_secs_f64();
    let state = StateStore::connect(&project.state_url()).await?;
    let deployed = state.deployed_assets().await?;
    let plan = weir_change::plan(&project, &graph, &deployed).await?;
    let secs = started.elapsed().as_secs_f64();
    state.close().await;
    anyhow::ensure!(
        plan.changes.len() == 1 && plan.changes[0].asset == changed && plan.breaking,
        "the plan should find {changed} changed: {:?}",
        plan.changes
    );
    anyhow::ensure!(!plan.impact.is_empty(), "the change reaches its chain");
    println!(
        "plan of {models} models, one changed ({changed}, {} downstream reached): {secs:.3}s (project loaded in {loaded:.3}s), peak memory {:.0} MB",
        plan.impact.len(),
        crate::peak_rss_mb()
    );
    Ok(())
}
