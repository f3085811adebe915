//! `weir doctor`: compares weir's state with the lake and repairs it from the Delta logs.

use std::path::Path;

use weir_orchestrate::{AssetLease, StateStore, check_ledger, table_paths};

use crate::Outcome;

pub async fn doctor(root: &Path, dry_run: bool, json: bool) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let state = StateStore::connect(&project.state_url()).await?;
    let mut findings = Vec::new();
    let mut problems = 0usize;
    for notice in state.notices() {
        findings
            .push(serde_json::json!({ "asset": null, "status": "repaired", "message": notice }));
    }
    for asset in project.assets.iter().filter(|a| a.source.is_some()) {
        let (table, _) = table_paths(&project, &asset.name);
        // The ledger is compared with a Delta log nobody is appending to.
        let lease = AssetLease::acquire(&state, &asset.name).await?;
        let check = check_ledger(&state, &table, &asset.name, !dry_run).await;
        lease.release().await?;
        let check = check?;
        let (status, message) = if let Some(why) = &check.unknown {
            problems += 1;
            (
                "unknown",
                format!("the lake cannot rebuild the ledger: {why}"),
            )
        } else if check.agrees() {
            (
                "ok",
                "the file ledger agrees with the Delta log".to_string(),
            )
        } else {
            let what = format!(
                "{} file(s) published but missing from the ledger (they would be read twice), {} in the ledger but not published (they would be skipped)",
                check.missing.len(),
                check.extra.len()
            );
            if dry_run {
                problems += 1;
                ("disagrees", what)
            } else {
                ("repaired", format!("{what}: rebuilt from the Delta log"))
            }
        };
        findings.push(serde_json::json!({
            "asset": asset.name,
            "status": status,
            "message": message,
            "missing_from_ledger": check.missing,
            "not_published": check.extra,
        }));
    }
    state.close().await;
    if json {
        crate::output::print_json(serde_json::json!({ "findings": findings }));
    } else {
        for f in &findings {
            let asset = f["asset"].as_str().unwrap_or("state store");
            println!(
                "{asset}: {} ({})",
                f["status"].as_str().unwrap_or_default(),
                f["message"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(if problems > 0 {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}
