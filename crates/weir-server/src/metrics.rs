//! `GET /metrics`: the Prometheus text exposition (format 0.0.4) of the project's runs, checks,
//! freshness, queue and workers, computed from the state store at each scrape: the figures
//! survive restarts and agree whichever process is scraped. Names follow Prometheus's
//! conventions (`weir_` prefix, base units, `_total` counters); `promtool check metrics`
//! passes on them (tested).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use weir_model::Project;
use weir_orchestrate::{OrchestrateError, StateStore};

/// The upper bounds of the run duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The content type of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One metric family: its help and type lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(self.out, "{name}{labels} {value}");
    }
}

/// The exposition for `project` (its assets and their contracts' latency SLAs) and `state`.
pub(crate) async fn render(
    project: &Project,
    state: &StateStore,
) -> Result<String, OrchestrateError> {
    let now = Utc::now();
    let mut out = String::new();

    let totals = state.run_totals().await?;
    let mut f = Family::new(
        &mut out,
        "weir_asset_runs_total",
        "counter",
        "Asset runs that ended, by status.",
    );
    for t in &totals {
        f.sample(
            "weir_asset_runs_total",
            &[("asset", &t.asset), ("status", &t.status)],
            t.runs as f64,
        );
    }
    let mut per_asset: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for t in &totals {
        let sums = per_asset.entry(&t.asset).or_default();
        sums[0] += t.rows_in;
        sums[1] += t.rows_stored;
        sums[2] += t.rows_quarantined;
        sums[3] += t.bytes_in;
    }
    for (i, (name, help)) in [
        ("weir_asset_rows_in_total", "Rows read by the asset's runs."),
        (
            "weir_asset_rows_stored_total",
            "Rows the asset's runs stored in its table.",
        ),
        (
            "weir_asset_rows_quarantined_total",
            "Rows the asset's runs quarantined.",
        ),
        (
            "weir_asset_read_bytes_total",
            "Bytes of input the asset's runs read.",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut f = Family::new(&mut out, name, "counter", help);
        for (asset, sums) in &per_asset {
            f.sample(name, &[("asset", asset)], sums[i] as f64);
        }
    }

    // Durations and failed checks, from every ended run.
    let mut durations: BTreeMap<String, (Vec<u64>, f64, u64)> = BTreeMap::new();
    let mut failures: BTreeMap<(String, String), u64> = BTreeMap::new();
    for run in state.ended_runs().await? {
        if let (Some(start), Some(end)) = (parse(&run.started_at), parse(&run.ended_at)) {
            let secs = (end - start).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
            let (buckets, sum, count) = durations
                .entry(run.asset.clone())
                .or_insert_with(|| (vec![0; DURATION_BUCKETS.len()], 0.0, 0));
            for (bucket, bound) in buckets.iter_mut().zip(DURATION_BUCKETS) {
                if secs <= bound {
                    *bucket += 1;
                }
            }
            *sum += secs;
            *count += 1;
        }
        let checks: Vec<serde_json::Value> = serde_json::from_str(&run.checks).unwrap_or_default();
        for check in checks.iter().filter(|c| c["passed"] == false) {
            let id = check["id"].as_str().unwrap_or("unknown").to_string();
            *failures.entry((run.asset.clone(), id)).or_default() += 1;
        }
    }
    let name = "weir_asset_run_duration_seconds";
    let mut f = Family::new(
        &mut out,
        name,
        "histogram",
        "How long the asset's runs took, start to end.",
    );
    for (asset, (buckets, sum, count)) in &durations {
        for (bucket, bound) in buckets.iter().zip(DURATION_BUCKETS) {
            f.sample(
                &format!("{name}_bucket"),
                &[("asset", asset), ("le", &bound.to_string())],
                *bucket as f64,
            );
        }
        f.sample(
            &format!("{name}_bucket"),
            &[("asset", asset), ("le", "+Inf")],
            *count as f64,
        );
        f.sample(&format!("{name}_sum"), &[("asset", asset)], *sum);
        f.sample(&format!("{name}_count"), &[("asset", asset)], *count as f64);
    }
    let mut f = Family::new(
        &mut out,
        "weir_check_failures_total",
        "counter",
        "Runs in which a contract check failed, by asset and check.",
    );
    for ((asset, check), n) in &failures {
        f.sample(
            "weir_check_failures_total",
            &[("asset", asset), ("check", check)],
            *n as f64,
        );
    }

    // Freshness: the lag since each asset last published, beside its latency SLA.
    let published: BTreeMap<String, String> = state.last_published().await?.into_iter().collect();
    let mut f = Family::new(
        &mut out,
        "weir_asset_freshness_lag_seconds",
        "gauge",
        "Seconds since the asset last published new data.",
    );
    for asset in &project.assets {
        if let Some(at) = published.get(&asset.name).and_then(|t| parse(t)) {
            let lag = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
            f.sample(
                "weir_asset_freshness_lag_seconds",
                &[("asset", &asset.name)],
                lag,
            );
        }
    }
    let mut f = Family::new(
        &mut out,
        "weir_asset_latency_sla_seconds",
        "gauge",
        "The latency (freshness) SLA of the asset's contract.",
    );
    for asset in &project.assets {
        if let Some(sla) = asset.contract.latency_seconds() {
            f.sample(
                "weir_asset_latency_sla_seconds",
                &[("asset", &asset.name)],
                sla,
            );
        }
    }

    // The queue and the processes working it.
    let depth: BTreeMap<String, u64> = state.queue_depth().await?.into_iter().collect();
    let mut f = Family::new(
        &mut out,
        "weir_queue_runs",
        "gauge",
        "Runs in the queue, by status.",
    );
    for status in [
        "queued",
        "retrying",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ] {
        let n = depth.get(status).copied().unwrap_or(0);
        f.sample("weir_queue_runs", &[("status", status)], n as f64);
    }
    let since = now - chrono::Duration::from_std(crate::service::ALIVE_WITHIN).unwrap_or_default();
    let live: BTreeMap<String, u64> = state
        .live_workers(&since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .await?
        .into_iter()
        .collect();
    let mut f = Family::new(
        &mut out,
        "weir_workers",
        "gauge",
        "Processes executing runs (weir serve, weir worker) seen alive in the last 30 seconds.",
    );
    for role in ["serve", "worker"] {
        f.sample(
            "weir_workers",
            &[("role", role)],
            live.get(role).copied().unwrap_or(0) as f64,
        );
    }

    // Incidents and their notifications: a channel that is down shows here.
    let mut unresolved: BTreeMap<(String, String), u64> = BTreeMap::new();
    for i in state.incidents(false, None).await? {
        let team = i.team.unwrap_or_default();
        *unresolved.entry((team, i.status)).or_default() += 1;
    }
    let mut f = Family::new(
        &mut out,
        "weir_incidents_unresolved",
        "gauge",
        "Incidents not yet resolved, by the root asset's team and status (open, acknowledged).",
    );
    for ((team, status), n) in &unresolved {
        f.sample(
            "weir_incidents_unresolved",
            &[("team", team), ("status", status)],
            *n as f64,
        );
    }
    let alerts = state.alert_counts().await?;
    let mut f = Family::new(
        &mut out,
        "weir_notifications",
        "gauge",
        "Incident notifications by delivery status: pending (retrying: pending after a failed attempt), delivered, failed (given up).",
    );
    for (status, n) in [
        ("pending", alerts.pending),
        ("retrying", alerts.retrying),
        ("delivered", alerts.delivered),
        ("failed", alerts.failed),
    ] {
        f.sample("weir_notifications", &[("status", status)], n as f64);
    }
    slo_families(&mut out, project, state).await?;
    shadow_families(&mut out, state).await?;
    component_families(&mut out, state).await?;
    Ok(out)
}

/// What every component (source, model, check, sink) of every asset reported over its runs:
/// the same families for each kind, labelled with the asset, the kind and which one.
async fn component_families(out: &mut String, state: &StateStore) -> Result<(), OrchestrateError> {
    let totals = state.component_totals().await?;
    type Pick = fn(&weir_model::ComponentMetrics) -> f64;
    let families: [(&str, &str, Pick); 7] = [
        (
            "weir_component_received_rows_total",
            "Rows a component took in.",
            |m| m.rows_in as f64,
        ),
        (
            "weir_component_sent_rows_total",
            "Rows a component passed on (a sink: wrote).",
            |m| m.rows_out as f64,
        ),
        (
            "weir_component_quarantined_rows_total",
            "Rows a component set aside in quarantine.",
            |m| m.rows_quarantined as f64,
        ),
        (
            "weir_component_discarded_rows_total",
            "Rows a component neither passed on nor quarantined: a failed run's sink publishes nothing.",
            |m| m.rows_discarded as f64,
        ),
        (
            "weir_component_received_bytes_total",
            "Bytes a component read from storage.",
            |m| m.bytes_in as f64,
        ),
        (
            "weir_component_sent_bytes_total",
            "Bytes a component wrote to storage.",
            |m| m.bytes_out as f64,
        ),
        (
            "weir_component_busy_seconds_total",
            "Time a component was busy, summed over its parallel tasks.",
            |m| m.duration.as_secs_f64(),
        ),
    ];
    for (name, help, pick) in families {
        let mut f = Family::new(out, name, "counter", help);
        for t in &totals {
            f.sample(
                name,
                &[
                    ("asset", &t.asset),
                    ("component_kind", &t.kind),
                    ("component", &t.name),
                ],
                pick(&t.metrics),
            );
        }
    }
    let name = "weir_component_errors_total";
    let mut f = Family::new(
        out,
        name,
        "counter",
        "Errors a component met, by stage (receiving, processing, sending).",
    );
    for t in &totals {
        for (stage, n) in &t.metrics.errors_by_stage {
            f.sample(
                name,
                &[
                    ("asset", &t.asset),
                    ("component_kind", &t.kind),
                    ("component", &t.name),
                    ("stage", stage),
                ],
                *n as f64,
            );
        }
    }
    Ok(())
}

/// Each shadow's agreement with the asset it shadows, at its last comparison.
async fn shadow_families(out: &mut String, state: &StateStore) -> Result<(), OrchestrateError> {
    let mut last: BTreeMap<(String, String), weir_orchestrate::ShadowComparison> = BTreeMap::new();
    for c in state.shadow_comparisons(None).await? {
        if c.compared {
            last.insert((c.asset.clone(), c.shadow_of.clone()), c);
        }
    }
    let mut f = Family::new(
        out,
        "weir_shadow_agreement_ratio",
        "gauge",
        "The share of rows a shadow asset and the asset it shadows agree on, at their last comparison.",
    );
    for ((asset, of), c) in &last {
        f.sample(
            "weir_shadow_agreement_ratio",
            &[("asset", asset), ("shadow_of", of)],
            c.agreement.unwrap_or(0.0),
        );
    }
    let mut f = Family::new(
        out,
        "weir_shadow_differing_rows",
        "gauge",
        "Rows changed or on one side only between a shadow asset and the asset it shadows, at their last comparison.",
    );
    for ((asset, of), c) in &last {
        f.sample(
            "weir_shadow_differing_rows",
            &[("asset", asset), ("shadow_of", of)],
            (c.changed + c.only_in_primary + c.only_in_shadow) as f64,
        );
    }
    Ok(())
}

/// SLO objectives, compliance over the SLO window, error budget left and burn rates, per asset
/// and SLO (`run_success`, `freshness`, `good_rows`).
async fn slo_families(
    out: &mut String,
    project: &Project,
    state: &StateStore,
) -> Result<(), OrchestrateError> {
    let statuses = match weir_observe::slo_statuses(project, state, Utc::now()).await {
        Ok(statuses) => statuses,
        Err(weir_observe::ObserveError::State(e)) => return Err(e),
        Err(e) => {
            tracing::warn!("measuring SLOs for /metrics: {e}");
            return Ok(());
        }
    };
    let mut f = Family::new(
        out,
        "weir_slo_objective_ratio",
        "gauge",
        "Each asset's service-level objective, as a ratio of good events (or time).",
    );
    for s in &statuses {
        f.sample(
            "weir_slo_objective_ratio",
            &[("asset", &s.asset), ("slo", s.slo)],
            s.objective,
        );
    }
    let mut f = Family::new(
        out,
        "weir_slo_compliance_ratio",
        "gauge",
        "The share of good events (or time) over the SLO window ([slo] window_days).",
    );
    for s in &statuses {
        if let Some(c) = s.compliance {
            f.sample(
                "weir_slo_compliance_ratio",
                &[("asset", &s.asset), ("slo", s.slo)],
                c,
            );
        }
    }
    let mut f = Family::new(
        out,
        "weir_slo_error_budget_remaining_ratio",
        "gauge",
        "The share of the SLO window's error budget left (negative once spent).",
    );
    for s in &statuses {
        if let Some(b) = s.budget_remaining {
            f.sample(
                "weir_slo_error_budget_remaining_ratio",
                &[("asset", &s.asset), ("slo", s.slo)],
                b,
            );
        }
    }
    let mut f = Family::new(
        out,
        "weir_slo_burn_rate",
        "gauge",
        "How many times faster than the SLO window allows the error budget burns, per alerting window (those of a 30-day SLO, scaled).",
    );
    for s in &statuses {
        for (window, burn) in &s.burn_rates {
            f.sample(
                "weir_slo_burn_rate",
                &[("asset", &s.asset), ("slo", s.slo), ("window", window)],
                if burn.is_finite() { *burn } else { f64::MAX },
            );
        }
    }
    Ok(())
}
