use std::path::Path;

use comfy_table::Table;
use weir_orchestrate::StateStore;

use crate::Outcome;
use crate::output::{new_table, run_record_json};

pub async fn runs(
    root: &Path,
    asset: Option<&str>,
    limit: u32,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json) else {
        return Ok(Outcome::BadInput);
    };
    let state = StateStore::connect(&project.state_url()).await?;
    let runs = state.runs(asset, limit).await?;
    state.close().await;
    if json {
        let list: Vec<_> = runs.iter().map(run_record_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "runs": list }))?
        );
        return Ok(Outcome::Ok);
    }
    let mut table: Table = new_table(&[
        "run",
        "asset",
        "status",
        "started",
        "rows in",
        "stored",
        "quarantined",
        "version",
        "error",
    ]);
    for r in &runs {
        table.add_row(vec![
            r.id.clone(),
            r.asset.clone(),
            r.status.clone(),
            r.started_at.clone(),
            r.rows_in.to_string(),
            r.rows_stored.to_string(),
            r.rows_quarantined.to_string(),
            r.table_version.map(|v| v.to_string()).unwrap_or_default(),
            r.error.clone().unwrap_or_default(),
        ]);
    }
    if runs.is_empty() {
        println!("no runs yet: try `weir run`");
    } else {
        println!("{table}");
    }
    Ok(Outcome::Ok)
}
