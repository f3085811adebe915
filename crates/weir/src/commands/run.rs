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
}

pub async fn run(
    root: &Path,
    selectors: &[String],
    mode: Mode,
    threads: usize,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some((project, graph, selected)) = super::load_selection(root, selectors, json, true)
    else {
        return Ok(Outcome::BadInput);
    };
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
    let bars = Bars::new(json);
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
        &bars,
    )
    .await?;
    bars.clear();
    super::incidents::after_runs(&project, &graph, &state, &reports, &options).await;
    state.close().await;
    if json {
        crate::output::print_json(run_json(&reports, &recovery));
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
