use std::path::Path;

use weir_orchestrate::StateStore;

use crate::Outcome;
use crate::output::{run_record_json, runs_table};

pub async fn runs(
    root: &Path,
    asset: Option<&str>,
    status: Option<&str>,
    limit: u32,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let state = StateStore::connect(&project.state_url()).await?;
    let runs = state.runs_with_status(asset, status, limit).await?;
    state.close().await;
    if json {
        let list: Vec<_> = runs.iter().map(run_record_json).collect();
        crate::output::print_json(serde_json::json!({ "runs": list }));
        return Ok(Outcome::Ok);
    }
    let table = runs_table(&runs, true);
    if runs.is_empty() {
        println!("no runs yet: try `weir run`");
    } else {
        println!("{table}");
    }
    Ok(Outcome::Ok)
}
