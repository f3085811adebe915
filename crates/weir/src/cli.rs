use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// weir: contract-first data pipelines in one binary.
///
/// Ingest files through ODCS data contracts into Delta Lake tables, quarantining every bad row.
#[derive(Debug, Parser)]
#[command(name = "weir", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log lines on stderr: `-v` adds weir's progress notes and the warnings of the
    /// libraries it uses, `-vv` everything down to debug (`WEIR_LOG=filter` overrides both).
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// How log lines on stderr are written: `pretty` (for people) or `json` (one object per
    /// line, for log shippers); an asset's run and a queued run put their ids on every line.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct Common {
    /// The project folder (the one holding weir.toml).
    #[arg(long, short = 'p', global = true, default_value = ".")]
    pub project: PathBuf,
    /// Print one JSON document on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A data file format, for files whose extension does not say.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Csv,
    Ndjson,
    Parquet,
}

impl From<FormatArg> for weir_model::FileFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Csv => weir_model::FileFormat::Csv,
            FormatArg::Ndjson => weir_model::FileFormat::Ndjson,
            FormatArg::Parquet => weir_model::FileFormat::Parquet,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// The incident with its impact, timeline and notifications (Markdown; --json for all).
    ///
    /// Example: weir incident show 3
    Show {
        /// The incident's number, as `weir incidents` lists it.
        id: i64,
        #[command(flatten)]
        common: Common,
    },
    /// Acknowledge an open incident: someone is on it.
    ///
    /// Example: weir incident ack 3 --by ada
    Ack {
        /// The incident's number, as `weir incidents` lists it.
        id: i64,
        /// Who (default: the login name).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Resolve an incident by hand (a good run of its root asset resolves it by itself); its
    /// channels get a resolved notification.
    ///
    /// Example: weir incident resolve 3 --note "supplier resent the file"
    Resolve {
        /// The incident's number, as `weir incidents` lists it.
        id: i64,
        /// Who (default: the login name).
        #[arg(long)]
        by: Option<String>,
        /// What was done, for the timeline.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Open an incident on an asset by hand; its team's channels are notified.
    ///
    /// Example: weir incident open orders --title "totals look doubled since noon"
    Open {
        /// The asset whose data is wrong (its downstream assets are listed as affected).
        asset: String,
        /// What is wrong.
        #[arg(long)]
        title: String,
        /// Who (default: the login name).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Draft a post-mortem in Markdown: summary, impact, timeline, notifications, figures.
    ///
    /// Example: weir incident postmortem 3 -o postmortems/3.md
    Postmortem {
        /// The incident's number, as `weir incidents` lists it.
        id: i64,
        /// Write it to this file (never over an existing one) instead of stdout.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Draft an ODCS contract from a sample of a CSV, NDJSON or Parquet file: types, `required`
    /// where the sample has no nulls, the key, and rules the sample suggests (as comments).
    ///
    /// Prints the contract on stdout; `-o` writes it to a file instead.
    ///
    /// Example: weir contract infer data/orders.csv --name orders --owner me@example.com
    Infer {
        /// The file to sample.
        file: PathBuf,
        /// The asset name (default: from the file name).
        #[arg(long)]
        name: Option<String>,
        /// The file's format, when its extension does not say.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// How many rows to sample.
        #[arg(long, default_value_t = crate::commands::SAMPLE_ROWS)]
        rows: usize,
        /// Write the contract to this file (never over an existing one).
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// The owner's username (e.g. an email), who is alerted when the asset breaks.
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum NewCommand {
    /// A source asset: sources/NAME.toml reading the folder of FILE (every file like it), and
    /// contracts/NAME.odcs.yaml drafted from a sample of FILE.
    ///
    /// Example: weir new source orders --from data/orders/2024-01.csv --owner me@example.com
    Source {
        /// The asset name: lowercase letters, digits and `_`.
        name: String,
        /// A sample file inside the project.
        #[arg(long)]
        from: PathBuf,
        /// The file's format, when its extension does not say.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// The owner's username (e.g. an email).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A SQL model: models/NAME.sql and contracts/NAME.odcs.yaml with the columns the query
    /// produces, planned against the upstream contracts.
    ///
    /// Example: weir new model big_orders --sql "SELECT order_id, amount FROM orders WHERE amount > 100"
    Model {
        /// The asset name: lowercase letters, digits and `_`.
        name: String,
        /// The model's query.
        #[arg(long)]
        sql: String,
        /// The owner's username (e.g. an email).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold an example project: a shop with customers CSV, orders NDJSON, payments Parquet and three SQL models.
    ///
    /// Example: weir init my-shop && weir run -p my-shop
    Init {
        /// Folder to create.
        dir: PathBuf,
        /// A blank project instead: weir.toml, the folders, and an annotated example contract
        /// (contracts/example.odcs.yaml.sample) to copy from.
        #[arg(long)]
        empty: bool,
        /// Print one JSON document on stdout (what was written) instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Contracts: draft one from a data file.
    ///
    /// Example: weir contract infer data/orders/2024-01.csv -o contracts/orders.odcs.yaml
    Contract {
        #[command(subcommand)]
        command: ContractCommand,
    },
    /// Add an asset to the project: a source reading files, or a SQL model; each with its
    /// contract.
    ///
    /// Example: weir new source orders --from data/orders/2024-01.csv
    /// Example: weir new model big_orders --sql "SELECT * FROM orders WHERE amount > 100"
    New {
        #[command(subcommand)]
        command: NewCommand,
    },
    /// Create ./weir-demo with `init` (unless it exists) and run it.
    ///
    /// Example: weir demo
    Demo {
        /// Where to put the demo project.
        #[arg(long, default_value = "weir-demo")]
        dir: PathBuf,
        /// Print the run's JSON document on stdout instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Lint and compile the project; exit 2 on any error (for CI).
    ///
    /// Example: weir check -p my-shop --deny-warnings
    Check {
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run the selected assets in dependency order (all by default).
    ///
    /// Selectors: `orders` (one), `orders+` (and everything downstream), `+daily_revenue` (and
    /// everything upstream), `team:finance`, `tag:NAME`.
    ///
    /// Example: weir run orders+ --full-refresh
    /// Example: weir run daily_orders --partition 2026-11-25
    /// Example: weir run --env dev
    Run {
        /// Asset selectors; none means every asset.
        assets: Vec<String>,
        /// Rebuild the tables from all their input instead of only what is new.
        #[arg(long, conflicts_with = "partition")]
        full_refresh: bool,
        /// Recompute only this partition (2026-11-25, or 2026-11-25T05 for hourly ones) of
        /// the selected models, which must be partitioned (`partition_by`); the partition's
        /// earlier rows are replaced in one commit.
        #[arg(long)]
        partition: Option<String>,
        /// Build into this isolated environment (`.weir/envs/NAME/`) instead of production:
        /// without selectors, what `weir plan` says must be rebuilt since `weir apply`;
        /// unchanged upstream tables are read from production, which is never written.
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// How many independent assets run at the same time.
        #[arg(long, default_value_t = weir_orchestrate::DEFAULT_THREADS as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
        threads: u16,
        #[command(flatten)]
        common: Common,
    },
    /// Recompute a partitioned model over a range of partitions: one queued run per
    /// partition (both ends included), executed here unless --enqueue-only.
    ///
    /// Resumable: the same command again runs only the partitions that have not succeeded.
    /// Each partition's earlier rows are replaced, never appended to.
    ///
    /// Example: weir backfill daily_orders --from 2026-11-01 --to 2026-11-30
    Backfill {
        /// The partitioned model.
        asset: String,
        /// The first partition (2026-11-01, or 2026-11-01T00 for hourly ones).
        #[arg(long)]
        from: String,
        /// The last partition, included.
        #[arg(long)]
        to: String,
        /// Queue the runs and return; `weir serve` or `weir worker` executes them.
        #[arg(long)]
        enqueue_only: bool,
        /// Attempts per partition (errors that may pass are retried with backoff).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        max_attempts: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Show an asset: schema, owner, contract, table version, last runs.
    ///
    /// Example: weir show orders
    Show {
        /// The asset to show.
        asset: String,
        #[command(flatten)]
        common: Common,
    },
    /// Ad-hoc SQL over every asset's Delta table, with time travel.
    ///
    /// Example: weir query "SELECT country, SUM(revenue) FROM daily_revenue GROUP BY country"
    /// Example: weir query "SELECT COUNT(*) FROM orders" --at 1
    Query {
        /// One SELECT; tables are named by asset, quarantines as quarantine.ASSET.
        sql: String,
        /// Read the queried table at this Delta version.
        #[arg(long, conflicts_with = "as_of")]
        at: Option<u64>,
        /// Read every table as of this RFC 3339 instant.
        #[arg(long)]
        as_of: Option<String>,
        /// Read the tables environment NAME holds from it, the others from production.
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// Print CSV instead of a table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Table- and column-level lineage, from the models' logical plans.
    ///
    /// Example: weir lineage +daily_revenue --format json
    Lineage {
        /// Asset selectors; none means every asset.
        selectors: Vec<String>,
        /// The graph's format: Mermaid (the default), Graphviz dot, or JSON with column lineage
        /// (what --json prints; --json with another --format is an error).
        #[arg(long, value_enum)]
        format: Option<crate::commands::LineageFormat>,
        #[command(flatten)]
        common: Common,
    },
    /// Check that weir's state agrees with the lake, and repair it from the Delta logs.
    ///
    /// The file ledger (which input files each source asset has ingested) is an index of
    /// what the asset tables' commits record; doctor compares the two and rebuilds the ledger
    /// from the lake where they differ.
    ///
    /// Example: weir doctor --dry-run --json
    Doctor {
        /// Report only; change nothing (exit 1 if anything disagrees).
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Finish or settle what a killed `weir run` left behind (`weir run` does this first).
    ///
    /// Exit 0 when everything is settled, 1 when an asset is still held back, 2 on bad input.
    ///
    /// Example: weir recover --abandon orders
    Recover {
        /// Discard this asset's pending publication: uncommitted staged files are deleted, a
        /// quarantine commit without its table commit is rolled back, the run is marked
        /// abandoned, and its input will be read again.
        #[arg(long, value_name = "ASSET")]
        abandon: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Run the project unattended: cron schedules of the [jobs] in weir.toml, a run of a
    /// source and its downstream when a new file lands in its folder, and an HTTP API
    /// (GET /openapi.json describes it) to list assets and runs, trigger and cancel runs.
    ///
    /// Runs come from a durable queue in the state store: a run whose process died is queued
    /// again, and a failed one is retried with backoff as its job allows. SIGTERM or Ctrl-C
    /// stops claiming runs and lets the one in progress finish (up to --grace-secs). Write
    /// endpoints need the token in WEIR_API_TOKEN (the variable `[serve] token_env` names).
    ///
    /// Example: weir serve --addr 127.0.0.1:7420   (with WEIR_API_TOKEN set in the environment)
    Serve {
        /// The address to listen on (default: `[serve] addr`, 127.0.0.1:7420).
        #[arg(long)]
        addr: Option<String>,
        /// Seconds a run in progress may take to finish once a stop is asked for.
        #[arg(long)]
        grace_secs: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Execute runs from the queue, beside a `weir serve` that schedules them: no schedules,
    /// no file watching, no API.
    ///
    /// Any number of workers share the queue through leases: each run is claimed by one of
    /// them, and a run whose worker died is claimed again once its lease expires. With the
    /// state on PostgreSQL (`state = "postgres://..."` in weir.toml, or WEIR_STATE), workers
    /// may run on any machine that sees the project folder and its lake. SIGTERM or Ctrl-C
    /// stops claiming and lets the run in progress finish (up to --grace-secs).
    ///
    /// Example: weir worker   (with WEIR_STATE=postgres://weir@db.internal/weir in the environment)
    Worker {
        /// Seconds a run in progress may take to finish once a stop is asked for.
        #[arg(long)]
        grace_secs: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Compact each table's small files into larger ones (Delta OPTIMIZE), one commit per
    /// table, without changing a row.
    ///
    /// Downstream incremental models see no new rows; the replaced files stay for time travel
    /// until `weir vacuum --retain`. Sources with on_change = "replace" are left alone.
    ///
    /// Example: weir optimize orders --target-mb 64
    Optimize {
        /// Asset selectors; none means every asset.
        selectors: Vec<String>,
        /// The size compacted files aim for, in MiB.
        #[arg(long, default_value_t = 128)]
        target_mb: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Delete the data files no version of a table names (left by killed or failed runs);
    /// a dry run unless --apply.
    ///
    /// With --retain HOURS, also Delta VACUUM: files that only versions older than HOURS need
    /// (never below the table's retention, 168 hours by default); time travel to before that
    /// horizon then stops working.
    ///
    /// Example: weir vacuum orders --apply
    Vacuum {
        /// Asset selectors; none means every asset.
        selectors: Vec<String>,
        /// Delete; without it, only list what would go.
        #[arg(long)]
        apply: bool,
        /// Also remove files only versions older than this many hours need.
        #[arg(long, value_name = "HOURS")]
        retain: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Print a shell completion script for weir on stdout.
    ///
    /// Example: weir completions bash > ~/.local/share/bash-completion/completions/weir
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// What a change to the project breaks before it ships: every asset whose contract, SQL
    /// or settings differ from what `weir apply` recorded, each change classified breaking,
    /// non-breaking or metadata-only, the downstream assets and columns a breaking change
    /// reaches (through column lineage) with their owners, and what to rebuild.
    ///
    /// Exit code 0: no breaking change; 1: breaking changes (for CI gating); 2: an error.
    ///
    /// Example: weir plan --json
    Plan {
        #[command(flatten)]
        common: Common,
    },
    /// Record the project as deployed: the definition of every asset (contract, SQL or source
    /// settings, their fingerprints and their parents'), which `weir plan` compares with.
    ///
    /// A plan with breaking changes is not applied without --allow-breaking.
    ///
    /// Example: weir apply --allow-breaking
    Apply {
        /// Apply even though the plan has breaking changes (after telling their owners).
        #[arg(long)]
        allow_breaking: bool,
        #[command(flatten)]
        common: Common,
    },
    /// How each shadow asset (a model with `shadow_of = ASSET`) has agreed with the asset it
    /// shadows: every comparison made after its runs (on the same upstream versions), and for
    /// how many comparisons, since when, it has agreed fully.
    ///
    /// Example: weir shadow daily_revenue_v2
    Shadow {
        /// One shadow asset; all of them by default.
        asset: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Publish the tables an environment built (`weir run --env NAME`) to production, once
    /// every one passed its checks there: each table replaced in one Delta commit, upstream
    /// first, and readers that go through weir (`weir query`, `weir diff`) switched to all of
    /// them at once. A promotion killed half-way is completed by the next command. The
    /// environment's folder is removed afterwards.
    ///
    /// Exit code 0: promoted; 1: refused (a check did not pass, or it holds a source's
    /// table); 2: an error.
    ///
    /// Example: weir promote dev
    Promote {
        /// The environment to publish.
        environment: String,
        #[command(flatten)]
        common: Common,
    },
    /// Compare two tables row by row on a key: rows only in A, only in B, changed rows, and
    /// per column how many rows differ, with samples. A side is an asset (`orders`), one Delta
    /// version of it (`orders@12`), its table in an environment (`orders@dev`), a Delta table
    /// folder, a Parquet, CSV or NDJSON file, or a PostgreSQL table
    /// (`postgres://USER@HOST:PORT/DB#SCHEMA.TABLE`; only the key segments whose checksums
    /// differ are fetched).
    ///
    /// Exit code 0: they agree (within the tolerances); 1: they differ; 2: an error.
    ///
    /// Example: weir diff orders@3 orders --key order_id --abs-tolerance 0.005
    /// Example: weir diff daily_revenue@dev daily_revenue --key day
    /// Example: weir diff orders postgres://app@db.internal/shop#public.orders --key order_id
    Diff {
        /// The first table (A).
        a: String,
        /// The second table (B).
        b: String,
        /// The columns that identify a row, comma-separated (unique on both sides).
        #[arg(long, value_delimiter = ',', required = true)]
        key: Vec<String>,
        /// Numbers closer than this are equal.
        #[arg(long, default_value_t = 0.0)]
        abs_tolerance: f64,
        /// Numbers whose difference is at most this share of the larger one are equal.
        #[arg(long, default_value_t = 0.0)]
        rel_tolerance: f64,
        /// Timestamps closer than this many seconds are equal.
        #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
        time_tolerance: f64,
        /// Sample rows shown of each kind of difference.
        #[arg(long, default_value_t = 5)]
        samples: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Run the tests under tests/*.yaml: model unit tests (given rows for a model's upstream
    /// tables, the rows it must produce) and contract tests (sample rows checked against a
    /// contract). In memory; no table is read or written.
    ///
    /// Exit code 0: all pass; 1: a test fails (what differs is shown); 2: a test cannot run
    /// (an unknown model, contract, table or column).
    ///
    /// Example: weir test daily_revenue
    /// Example: weir test --contracts
    Test {
        /// Test, model or contract (asset) names; none runs every test.
        names: Vec<String>,
        /// Run only the contract tests (`contract_tests:`): sample rows checked against a
        /// contract's rules, with the rows they must quarantine and the checks' verdicts.
        #[arg(long)]
        contracts: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Service-level objectives: each asset's run success, freshness and good-row share over
    /// the SLO window, the error budget left and how fast it burns, and the same per team.
    ///
    /// Objectives come from `[slo]` in weir.toml, or the contract's `successRate`,
    /// `availability` (time within the latency SLA) and `errorRate` SLA properties.
    ///
    /// Example: weir slo --json
    Slo {
        #[command(flatten)]
        common: Common,
    },
    /// Incidents: the open ones, or all of a period, with the mean times to detect, notify
    /// and resolve (MTTD, MTTR) per team and per root asset.
    ///
    /// A bad run (failed, error, partial, needs a full refresh) opens an incident on its asset
    /// unless one upstream is already open, which it then joins; a good run resolves it.
    ///
    /// Example: weir incidents --since 2026-11-01
    Incidents {
        /// Resolved incidents too.
        #[arg(long)]
        all: bool,
        /// Only incidents detected since this date (2026-11-01) or instant (RFC 3339); implies
        /// --all.
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// One incident: show its timeline, acknowledge it, resolve it, open one by hand, or draft
    /// its post-mortem.
    ///
    /// Example: weir incident ack 3 --by ada
    Incident {
        #[command(subcommand)]
        command: IncidentCommand,
    },
    /// Run history, newest first.
    ///
    /// Example: weir runs --asset orders --status failed --limit 5
    Runs {
        /// Only this asset's runs.
        #[arg(long)]
        asset: Option<String>,
        /// Only runs with this status (success, failed, error, up_to_date, partial, ...).
        #[arg(long)]
        status: Option<String>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Queue a run of the selected assets for `weir serve` (or a server's) to execute.
    ///
    /// Without --server the run goes into this project's state store, where the `weir serve`
    /// of this project picks it up; with --server it is sent to that server's API, with the
    /// token in WEIR_API_TOKEN.
    ///
    /// Example: weir trigger orders+ --server http://127.0.0.1:7420
    Trigger {
        /// Asset selectors, as `weir run` takes them.
        #[arg(required = true)]
        selectors: Vec<String>,
        /// Rebuild the selected tables from scratch.
        #[arg(long)]
        full_refresh: bool,
        /// Higher runs first when several runs wait.
        #[arg(long, default_value_t = 0)]
        priority: i64,
        /// A `weir serve` API to send the run to, instead of the local state store.
        #[arg(long)]
        server: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Cancel a queued run: at once if it waits, at its next heartbeat if it runs.
    ///
    /// Example: weir cancel 01a2174b-895a-7707-b014-f78eb3e37fe1
    Cancel {
        /// The run's id, as `weir trigger` or GET /runs gives it.
        id: String,
        /// A `weir serve` API to send the request to, instead of the local state store.
        #[arg(long)]
        server: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Every asset at a glance: its last run, when it last published, its freshness against
    /// the contract's latency SLA, and when a job of weir.toml next runs it.
    ///
    /// Example: weir status --json
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// What an asset's quarantine holds: rows by rule and by run, and sample rows.
    ///
    /// Rows of a failed run (`--status failed`) were never published: their files are read
    /// again by the next run.
    ///
    /// Example: weir quarantine orders --rule amount.maximum --limit 5
    Quarantine {
        /// The asset whose quarantine to show.
        asset: String,
        /// Only this run's rows.
        #[arg(long)]
        run: Option<String>,
        /// Only rows set aside by this rule id.
        #[arg(long)]
        rule: Option<String>,
        /// Only rows of runs that published, or of runs that failed.
        #[arg(long, value_parser = ["published", "failed"])]
        status: Option<String>,
        /// How many sample rows to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Check quarantined rows again against the current contract and publish those that pass.
    ///
    /// Exactly once: the rows and their `replayed_by` mark are published together, and a
    /// second replay skips them.
    ///
    /// Example: weir replay orders --rule amount.maximum
    Replay {
        /// The asset whose quarantined rows to check again.
        asset: String,
        /// Only this run's rows.
        #[arg(long)]
        run: Option<String>,
        /// Only rows set aside by this rule id.
        #[arg(long)]
        rule: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command says what it does and shows an example; every flag and argument says
    /// what it is for.
    #[test]
    fn every_command_and_flag_is_described_with_an_example() {
        fn walk(command: &clap::Command, path: &str, problems: &mut Vec<String>) {
            let name = format!("{path} {}", command.get_name()).trim().to_string();
            if command.get_about().is_none() {
                problems.push(format!("`{name}` has no description"));
            }
            let leaf = command.get_subcommands().next().is_none();
            let long = command
                .get_long_about()
                .map(ToString::to_string)
                .unwrap_or_default();
            if leaf && name != "weir" && !long.contains("Example: weir") {
                problems.push(format!("`{name}` has no example"));
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    problems.push(format!("`{name}`: `{id}` has no description"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &name, problems);
                }
            }
        }
        let mut problems = Vec::new();
        walk(&Cli::command(), "", &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        Cli::command().debug_assert();
    }
}
