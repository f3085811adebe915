//! Jobs and the service settings of `weir.toml`: what `weir serve` runs unattended, and when.
//!
//! A job is a named selection of assets (the selectors `weir run` takes) with a cron schedule
//! in a time zone. The cron expression and the zone are checked here, when the project loads,
//! so a typo is a `weir check` error naming the job, not a schedule that silently never fires.

use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Diagnostics};

/// `[jobs.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Selectors, as `weir run` takes them: `orders`, `orders+`, `+daily_revenue`, `tag:nightly`.
    pub select: Vec<String>,
    /// A cron expression, five fields (minute precision) or six (seconds first), or an alias
    /// such as `@hourly`.
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in; UTC when unset.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// What happens to ticks missed while the service was down.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Higher runs first when several runs wait.
    #[serde(default)]
    pub priority: i64,
    /// Attempts a failed run gets before it stays failed (1: no retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// An attempt that runs longer is stopped (nothing it staged is published) and retried
    /// while attempts remain.
    pub timeout_secs: Option<u64>,
    pub description: Option<String>,
}

/// Ticks missed while `weir serve` was not running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Run once for all the ticks missed (the latest of them), as Dagster and Airflow's
    /// `catchup=False` do: one run brings the assets up to date.
    #[default]
    Once,
    /// Skip them: the next run is the next tick.
    Skip,
}

/// `[serve]`: how `weir serve` listens and watches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The address the HTTP API listens on; loopback unless said otherwise.
    #[serde(default = "default_addr")]
    pub addr: String,
    /// Whether a new file matching a source's glob triggers a run of the source and of what
    /// is downstream of it.
    #[serde(default = "default_true")]
    pub file_arrival: bool,
    /// How often source folders are looked at, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// The environment variable holding the bearer token the API requires.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Whether the read endpoints (assets, runs) answer without the token.
    #[serde(default)]
    pub open_reads: bool,
    /// How long a run may go without its heartbeat before another process takes it over.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// Whether an asset runs when an asset upstream of it publishes a new version in a run
    /// that did not include it.
    #[serde(default = "default_true")]
    pub dependency_automation: bool,
    /// How long such a run waits before it starts, so that upstream publications close
    /// together make one run.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// Whether an asset whose contract has a `latency` (or `freshness`) SLA runs, with what is
    /// upstream of it, once [`FRESHNESS_LEAD`] of that SLA has passed since its last run, so
    /// that new data reaches it before the SLA is breached.
    #[serde(default = "default_true")]
    pub freshness_automation: bool,
    /// How many queued runs one `weir serve` or `weir worker` executes at once (their assets
    /// are kept apart by the asset leases).
    #[serde(default = "default_max_runs")]
    pub max_runs: usize,
}

/// The share of an asset's latency SLA after its last run at which freshness automation runs
/// it again: early enough for the run to finish within the SLA.
pub const FRESHNESS_LEAD: f64 = 0.8;

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: default_addr(),
            file_arrival: true,
            poll_ms: default_poll_ms(),
            token_env: default_token_env(),
            open_reads: false,
            lease_secs: default_lease_secs(),
            dependency_automation: true,
            debounce_ms: default_debounce_ms(),
            freshness_automation: true,
            max_runs: default_max_runs(),
        }
    }
}

fn default_max_runs() -> usize {
    1
}

fn default_timezone() -> String {
    "UTC".into()
}
fn default_max_attempts() -> u32 {
    3
}
fn default_addr() -> String {
    "127.0.0.1:7420".into()
}
fn default_true() -> bool {
    true
}
fn default_poll_ms() -> u64 {
    250
}
fn default_token_env() -> String {
    "WEIR_API_TOKEN".into()
}
fn default_lease_secs() -> u64 {
    30
}
fn default_debounce_ms() -> u64 {
    1000
}

impl JobConfig {
    /// The parsed schedule, or why it does not parse.
    pub fn schedule(&self) -> Result<Option<(croner::Cron, chrono_tz::Tz)>, String> {
        let zone = self.zone()?;
        Ok(self.cron()?.map(|cron| (cron, zone)))
    }

    /// The parsed cron expression, if the job has one, or why it does not parse.
    pub fn cron(&self) -> Result<Option<croner::Cron>, String> {
        let Some(cron) = &self.cron else {
            return Ok(None);
        };
        croner::Cron::from_str(cron)
            .map(Some)
            .map_err(|e| format!("`cron = \"{cron}\"` is not a cron expression: {e}"))
    }

    /// The job's time zone, or why it is not one.
    pub fn zone(&self) -> Result<chrono_tz::Tz, String> {
        chrono_tz::Tz::from_str(&self.timezone).map_err(|_| {
            format!(
                "`timezone = \"{}\"` is not an IANA time zone (such as `UTC` or `Europe/Paris`)",
                self.timezone
            )
        })
    }
}

/// Checks every job: a schedule that parses, at least one selector, a positive attempt count.
pub(crate) fn check_jobs(
    config_path: &Path,
    jobs: &std::collections::BTreeMap<String, JobConfig>,
    diagnostics: &mut Diagnostics,
) {
    for (name, job) in jobs {
        // The zone and the expression are two mistakes when both are wrong: both are said.
        if let Err(why) = job.zone() {
            diagnostics.push(
                Diagnostic::error(config_path, format!("job `{name}`: {why}"))
                    .field(format!("jobs.{name}.timezone")),
            );
        }
        if let Err(why) = job.cron() {
            diagnostics.push(
                Diagnostic::error(config_path, format!("job `{name}`: {why}"))
                    .field(format!("jobs.{name}.cron")),
            );
        }
        if job.select.is_empty() {
            diagnostics.push(
                Diagnostic::error(
                    config_path,
                    format!("job `{name}` selects nothing: give `select = [\"asset+\"]`"),
                )
                .field(format!("jobs.{name}.select")),
            );
        }
        if job.max_attempts == 0 {
            diagnostics.push(
                Diagnostic::error(
                    config_path,
                    format!("job `{name}`: `max_attempts` is at least 1 (the first attempt)"),
                )
                .field(format!("jobs.{name}.max_attempts")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(cron: &str, timezone: &str) -> JobConfig {
        JobConfig {
            select: vec!["*".into()],
            cron: Some(cron.into()),
            timezone: timezone.into(),
            catch_up: CatchUp::Once,
            priority: 0,
            max_attempts: 3,
            timeout_secs: None,
            description: None,
        }
    }

    #[test]
    fn schedules_parse_or_say_why() {
        assert!(job("0 2 * * *", "Europe/Paris").schedule().is_ok());
        assert!(job("*/5 * * * * *", "UTC").schedule().is_ok());
        assert!(job("@hourly", "UTC").schedule().is_ok());
        let err = job("0 25 * * *", "UTC").schedule().expect_err("rejected");
        assert!(err.contains("not a cron expression"), "{err}");
        let err = job("0 2 * * *", "Mars/Olympus")
            .schedule()
            .expect_err("rejected");
        assert!(err.contains("IANA"), "{err}");
    }
}
