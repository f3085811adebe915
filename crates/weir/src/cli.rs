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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold an example project (a shop: customers CSV, orders NDJSON, payments Parquet).
    ///
    /// Example: weir init my-shop && weir run -p my-shop
    Init {
        /// Folder to create.
        dir: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Create ./weir-demo with `init` (unless it exists) and run it.
    ///
    /// Example: weir demo
    Demo {
        /// Where to put the demo project.
        #[arg(long, default_value = "weir-demo")]
        dir: PathBuf,
        #[command(flatten)]
        common: Common,
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
    /// Ingest new data for the selected assets (all by default).
    ///
    /// Example: weir run orders customers --full-refresh
    Run {
        /// Asset names; none means every asset.
        assets: Vec<String>,
        /// Rebuild the tables from every file instead of only new ones.
        #[arg(long)]
        full_refresh: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Show an asset: schema, owner, contract, table version, last runs.
    ///
    /// Example: weir show orders
    Show {
        asset: String,
        #[command(flatten)]
        common: Common,
    },
    /// Run history, newest first.
    ///
    /// Example: weir runs --asset orders --limit 5
    Runs {
        /// Only this asset's runs.
        #[arg(long)]
        asset: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        common: Common,
    },
}
