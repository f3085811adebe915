//! `weir replay ASSET`: publish the quarantined rows that pass the contract now.

use std::path::Path;

use serde_json::json;
use weir_model::did_you_mean;
use weir_orchestrate::{ReplayOptions, RunStatus, replay as replay_rows};

use crate::Outcome;

pub async fn replay(
    root: &Path,
    name: &str,
    options: &ReplayOptions,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    match project.asset(name) {
        None => {
            let names: Vec<String> = project.assets.iter().map(|a| a.name.clone()).collect();
            return Ok(crate::output::user_error(
                "unknown_asset",
                format!("unknown asset `{name}`{}", did_you_mean(name, names.iter())),
            ));
        }
        Some(a) if a.source.is_none() => {
            return Ok(crate::output::user_error(
                "usage",
                format!(
                    "`{name}` is a model: its rows are recomputed from its upstream tables by `weir run`, not replayed"
                ),
            ));
        }
        Some(_) => {}
    }
    let (state, recovery) = super::open_and_recover(&project, json).await?;
    if let Some(reason) = recovery.held.get(name) {
        state.close().await;
        crate::output::user_error(
            "held",
            format!("`{name}` is held back by recovery ({reason}); nothing was replayed"),
        );
        return Ok(Outcome::DataFailed);
    }
    let recovered = recovery.messages;
    let lease = weir_orchestrate::AssetLease::acquire(&state, name).await?;
    let report = replay_rows(&project, &state, name, options).await;
    lease.release().await?;
    let report = report?;
    state.close().await;
    let still: u64 = report.still_failing_by_rule.values().sum();
    if json {
        let checks: Vec<_> = report
            .checks
            .iter()
            .map(|c| {
                json!({
                    "id": c.id, "metric": c.metric, "column": c.column, "value": c.value,
                    "threshold": c.threshold, "unit": c.unit, "passed": c.passed,
                    "severity": c.severity.as_str(),
                })
            })
            .collect();
        let doc = json!({
            "asset": report.asset,
            "run_id": report.run_id,
            "status": report.status.as_str(),
            "considered": report.considered,
            "published": report.published,
            "still_failing": still,
            "still_failing_by_rule": report.still_failing_by_rule,
            "table_version": report.table_version,
            "quarantine_version": report.quarantine_version,
            "checks": checks,
            "error": report.error,
            "recovered": recovered,
        });
        crate::output::print_json(doc);
    } else {
        match report.status {
            RunStatus::Failed => println!(
                "replay of `{name}` failed: {}",
                report.error.as_deref().unwrap_or("a blocking check failed")
            ),
            RunStatus::Success => println!(
                "replayed `{name}`: {} of {} quarantined rows now pass and were published (table version {}, run {})",
                report.published,
                report.considered,
                report
                    .table_version
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                report.run_id
            ),
            _ => println!(
                "nothing to replay for `{name}`: {} quarantined rows considered, none passes the contract now",
                report.considered
            ),
        }
        if still > 0 {
            let rules: Vec<String> = report
                .still_failing_by_rule
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            println!(
                "{still} still fail and stay quarantined ({})",
                rules.join(", ")
            );
        }
    }
    Ok(if report.status == RunStatus::Failed {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}
