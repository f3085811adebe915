//! `weir`: the one binary. This crate is the only place that parses arguments, prints, and
//! maps outcomes to exit codes (0 ok, 1 a data check or run failed, 2 bad usage or project).

mod cli;
mod commands;
mod demo_project;
mod output;
mod progress;
mod text_table;

use std::process::ExitCode;

use clap::Parser;

/// How a command ended, as the shell sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    DataFailed,
    BadInput,
}

/// mimalloc serves the many small, short-lived allocations of planning and of decoding Delta
/// logs, across threads, with less work than glibc's malloc, and Parquet's large buffers from
/// memory it keeps (BENCHMARKS.md: the model DAG's first run and `weir diff`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let json = output::json_requested(&args);
    output::set_json_mode(json);
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let informational = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if json && !informational {
                let text = e.render().to_string();
                output::user_error("usage", text.trim_end().trim_start_matches("error: "));
            } else {
                let _ = e.print();
            }
            return if informational {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    init_logging(cli.verbose, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        let outcome = commands::dispatch(cli).await;
        // A run's commits are in; the checkpoints written beside them finish before exit.
        weir_store::finish_checkpoints().await;
        outcome
    });
    match outcome {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::DataFailed) => ExitCode::from(1),
        Ok(Outcome::BadInput) => ExitCode::from(2),
        Err(e) => {
            output::user_error("error", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// Log lines go to stderr. By default only weir's own warnings: dependencies (DataFusion, the
/// Delta kernel, ...) log nothing unless asked, with `-v` (their warnings, weir's info), `-vv`
/// (debug) or a `WEIR_LOG` filter, which wins. No ANSI colour unless stderr is a terminal and
/// `NO_COLOR` is unset.
fn init_logging(verbose: u8, format: cli::LogFormat) {
    use std::io::IsTerminal;
    let weir = "weir,weir_model,weir_ingest,weir_quality,weir_store,weir_process,weir_orchestrate,weir_server";
    let default = match verbose {
        0 => {
            weir.split(',')
                .map(|c| format!("{c}=warn"))
                .collect::<Vec<_>>()
                .join(",")
                + ",off"
        }
        1 => format!(
            "warn,{}",
            weir.split(',')
                .map(|c| format!("{c}=info"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => "debug".to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Pretty => builder.with_ansi(colour).init(),
        // The fields of the spans a line is in (`asset_run`'s run id and asset, `queued_run`'s
        // id) are on the line itself, so each line stands alone.
        cli::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// The error and its causes, each said once: most of weir's messages already carry their
/// cause's text, so a cause is added only when the message does not contain it.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}
