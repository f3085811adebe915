use std::path::Path;
use std::time::Duration;

use weir_server::{Listening, ServeOptions, Working};

use crate::Outcome;

pub async fn run(
    root: &Path,
    addr: Option<String>,
    grace_secs: Option<u64>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let options = ServeOptions {
        addr,
        grace: grace_secs.map(Duration::from_secs),
    };
    let announce = |l: &Listening| {
        if json {
            crate::output::print_json(serde_json::json!({
                "listening": format!("http://{}", l.addr),
                "jobs": l.jobs,
                "file_arrival": l.file_arrival,
                "token_set": l.token_set,
            }));
        } else {
            eprintln!(
                "weir serve: listening on http://{} ({} scheduled, file arrival {}{}); Ctrl-C stops",
                l.addr,
                crate::output::count(l.jobs, "job"),
                if l.file_arrival { "on" } else { "off" },
                if l.token_set {
                    ""
                } else {
                    "; no API token set, so the API refuses writes"
                },
            );
            eprintln!("weir serve: the dashboard is at http://{}/", l.addr);
        }
    };
    weir_server::serve(root, options, announce, stop_signal()).await?;
    if !json {
        eprintln!("weir serve: stopped");
    }
    Ok(Outcome::Ok)
}

pub async fn work(root: &Path, grace_secs: Option<u64>, json: bool) -> anyhow::Result<Outcome> {
    let options = ServeOptions {
        addr: None,
        grace: grace_secs.map(Duration::from_secs),
    };
    let announce = |w: &Working| {
        if json {
            crate::output::print_json(serde_json::json!({
                "worker": w.name,
                "state": w.state,
            }));
        } else {
            eprintln!(
                "weir worker: {} executes runs from the queue in {}; Ctrl-C stops",
                w.name, w.state
            );
        }
    };
    weir_server::work(root, options, announce, stop_signal()).await?;
    if !json {
        eprintln!("weir worker: stopped");
    }
    Ok(Outcome::Ok)
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
