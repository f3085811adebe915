//! `weir slo`: every asset's service-level objectives, compliance over the SLO window, the
//! error budget left and its burn rates, then the same rolled up per team.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use weir_observe::SloStatus;

use crate::Outcome;

pub async fn slo(root: &Path, json: bool) -> anyhow::Result<Outcome> {
    let Some((project, state)) = super::incidents::open_state(root, json).await? else {
        return Ok(Outcome::BadInput);
    };
    let statuses = weir_observe::slo_statuses(&project, &state, chrono::Utc::now()).await?;
    state.close().await;
    let teams = roll_up(&statuses);
    if json {
        crate::output::print_json(json!({
            "window_days": project.config.slo.window_days,
            "slos": statuses,
            "teams": teams,
        }));
        return Ok(Outcome::Ok);
    }
    let mut table = crate::text_table::TextTable::new(&[
        "asset",
        "slo",
        "objective",
        "compliance",
        "budget left",
        "burn 1h",
        "burn 6h",
        "burn 3d",
        "alert",
    ]);
    for s in &statuses {
        table.add_row(vec![
            s.asset.clone(),
            s.slo.to_string(),
            percent(Some(s.objective)),
            percent(s.compliance),
            percent(s.budget_remaining),
            burn(s, "1h"),
            burn(s, "6h"),
            burn(s, "3d"),
            s.alert
                .as_ref()
                .map(|a| format!("{} ({} and {})", a.severity, a.long_window, a.short_window))
                .unwrap_or_default(),
        ]);
    }
    println!("{table}");
    println!();
    let mut by_team = crate::text_table::TextTable::new(&[
        "team",
        "slo",
        "assets",
        "compliance",
        "least budget left",
        "alerting",
    ]);
    for t in &teams {
        by_team.add_row(vec![
            t.team.clone(),
            t.slo.to_string(),
            t.assets.to_string(),
            percent(t.compliance),
            percent(t.least_budget_remaining),
            t.alerting.to_string(),
        ]);
    }
    println!("{by_team}");
    println!(
        "compliance and budgets over the last {} days; burn rates are those of a 30-day window's alerting windows, scaled",
        project.config.slo.window_days
    );
    Ok(Outcome::Ok)
}

/// One team's SLOs of one kind.
#[derive(Debug, serde::Serialize)]
struct TeamSlo {
    team: String,
    slo: &'static str,
    assets: usize,
    /// Good events (or time) over all its assets' events (or time): the mean of their
    /// compliance, since each asset's window is the same length.
    compliance: Option<f64>,
    least_budget_remaining: Option<f64>,
    alerting: usize,
}

fn roll_up(statuses: &[SloStatus]) -> Vec<TeamSlo> {
    let mut groups: BTreeMap<(String, &'static str), Vec<&SloStatus>> = BTreeMap::new();
    for s in statuses {
        let team = s.team.clone().unwrap_or_else(|| "(no team)".into());
        groups.entry((team, s.slo)).or_default().push(s);
    }
    groups
        .into_iter()
        .map(|((team, slo), members)| {
            let measured: Vec<f64> = members.iter().filter_map(|s| s.compliance).collect();
            TeamSlo {
                team,
                slo,
                assets: members.len(),
                compliance: (!measured.is_empty())
                    .then(|| measured.iter().sum::<f64>() / measured.len() as f64),
                least_budget_remaining: members
                    .iter()
                    .filter_map(|s| s.budget_remaining)
                    .min_by(f64::total_cmp),
                alerting: members.iter().filter(|s| s.alert.is_some()).count(),
            }
        })
        .collect()
}

fn percent(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{:.2} %", 100.0 * v),
        None => "-".into(),
    }
}

fn burn(s: &SloStatus, window: &str) -> String {
    match s.burn_rates.get(window) {
        Some(b) if b.is_finite() => format!("{b:.2}"),
        Some(_) => "∞".into(),
        None => "-".into(),
    }
}
