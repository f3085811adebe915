use std::path::Path;

use weir_model::did_you_mean;
use weir_orchestrate::{
    ProjectLock, RunOptions, RunStatus, StateStore, recover_pending, run_assets,
};

use crate::Outcome;
use crate::output::{print_run_summary, run_json};
use crate::progress::Bars;

pub async fn run(
    root: &Path,
    selected: &[String],
    full_refresh: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json) else {
        return Ok(Outcome::BadInput);
    };
    let mut assets = Vec::new();
    for name in selected {
        match project.asset(name) {
            Some(a) => assets.push(a),
            None => {
                let names: Vec<String> = project.assets.iter().map(|a| a.name.clone()).collect();
                eprintln!(
                    "error: unknown asset `{name}`{}",
                    did_you_mean(name, names.iter())
                );
                return Ok(Outcome::BadInput);
            }
        }
    }
    if selected.is_empty() {
        assets = project.assets.iter().collect();
    }
    let _lock = ProjectLock::acquire(&project.state_dir())?;
    let state = StateStore::connect(&project.state_url()).await?;
    let recovered = recover_pending(&project, &state).await?;
    if !json {
        for line in &recovered {
            eprintln!("recovered: {line}");
        }
    }
    let bars = Bars::new(json);
    let options = RunOptions {
        full_refresh,
        trigger: "cli".into(),
    };
    let reports = run_assets(&project, &state, &assets, &options, &bars).await?;
    bars.clear();
    state.close().await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&run_json(&reports, &recovered))?
        );
    } else {
        print_run_summary(&reports);
    }
    let failed = reports
        .iter()
        .any(|r| matches!(r.status, RunStatus::Failed | RunStatus::Error));
    Ok(if failed {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}
