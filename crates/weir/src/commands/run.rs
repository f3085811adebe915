use std::path::Path;

use weir_orchestrate::{ProjectLock, RunOptions, StateStore, recover_pending, run_assets};

use crate::Outcome;
use crate::output::{print_run_summary, run_json};
use crate::progress::Bars;

pub async fn run(
    root: &Path,
    selectors: &[String],
    full_refresh: bool,
    threads: usize,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some((project, graph, selected)) = super::load_selection(root, selectors, json) else {
        return Ok(Outcome::BadInput);
    };
    let _lock = ProjectLock::acquire(&project.state_dir())?;
    let state = StateStore::connect(&project.state_url()).await?;
    let mut recovery = recover_pending(&project, &state).await?;
    recovery
        .messages
        .splice(0..0, state.notices().iter().cloned());
    if !json {
        crate::output::print_recovery(&recovery);
    }
    let bars = Bars::new(json);
    let options = RunOptions {
        full_refresh,
        trigger: "cli".into(),
        threads,
    };
    let reports = run_assets(
        &project,
        &state,
        &graph,
        &selected,
        &recovery.held,
        &options,
        &bars,
    )
    .await?;
    bars.clear();
    state.close().await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&run_json(&reports, &recovery))?
        );
    } else {
        print_run_summary(&reports);
    }
    let failed = reports.iter().any(|r| r.status.is_failure());
    Ok(if failed {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}
