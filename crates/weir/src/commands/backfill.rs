//! `weir backfill`: queue one run per partition and execute them, showing progress.

use std::path::Path;

use weir_server::{BackfillReport, BackfillRequest, PartitionState};

use crate::Outcome;

pub async fn run(root: &Path, request: &BackfillRequest, json: bool) -> anyhow::Result<Outcome> {
    let mut finished = 0usize;
    let show = |p: &PartitionState| {
        finished += 1;
        if !json {
            let detail = p
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            eprintln!(
                "{} {} {} (attempt {}){detail}  [{finished} finished]",
                request.asset, p.partition, p.status, p.attempts
            );
        }
    };
    let report = match weir_server::backfill(root, request, show).await {
        Ok(report) => report,
        Err(weir_server::ServeError::Request(message)) => {
            return Ok(crate::output::user_error("selection", message));
        }
        Err(weir_server::ServeError::Project(message)) => {
            return Ok(crate::output::user_error("project", message));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        crate::output::print_json(serde_json::to_value(&report)?);
    } else {
        print_summary(&report, request.enqueue_only);
    }
    Ok(if report.failed > 0 {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}

fn print_summary(report: &BackfillReport, enqueue_only: bool) {
    let total = report.partitions.len();
    println!(
        "backfill {}: {} partitions, {} queued now ({} already had a run)",
        report.trigger,
        total,
        report.queued_now,
        total - report.queued_now.min(total)
    );
    for p in report.partitions.iter().filter(|p| p.status != "succeeded") {
        let detail = p
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        println!("  {} {} (run {}){detail}", p.partition, p.status, p.run_id);
    }
    println!(
        "{} succeeded, {} failed, {} waiting or running",
        report.succeeded, report.failed, report.pending
    );
    if enqueue_only && report.pending > 0 {
        println!(
            "`weir serve` or `weir worker` executes the waiting runs; `weir runs` follows them"
        );
    }
    if report.failed > 0 {
        println!(
            "run the same command again to retry the failed partitions (the others are not run again)"
        );
    }
    if !report.stale_downstream.is_empty() {
        println!(
            "downstream of {} and now stale: {} (`weir run {}+` rebuilds them)",
            report.asset,
            report.stale_downstream.join(", "),
            report.asset
        );
    }
}
