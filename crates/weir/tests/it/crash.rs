//! Kill `weir run` with SIGKILL at every publishing step and at random instants; a re-run must
//! leave every row exactly once in its table or its quarantine.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{demo_project, run_json, run_of, scalar, weir_bin};

/// Input rows per demo asset, as `weir init` writes them.
const EXPECTED: [(&str, &str, u64); 3] = [
    ("customers", "customer_id", 2_000),
    ("orders", "order_id", 10_000),
    ("payments", "payment_id", 4_000),
];

pub(crate) fn assert_exactly_once(dir: &Path) {
    assert_rows_once(dir, &EXPECTED);
}

/// Every input row of each `(asset, key, rows)` is in the table or the quarantine exactly once.
pub(crate) fn assert_rows_once(dir: &Path, expected: &[(&str, &str, u64)]) {
    for &(asset, key, rows) in expected {
        let table = dir.join("lake").join(asset);
        let quarantine = dir.join("lake/_quarantine").join(asset);
        let stored = scalar(&table, "SELECT COUNT(*) FROM t");
        let distinct = scalar(&table, &format!("SELECT COUNT(DISTINCT {key}) FROM t"));
        let quarantined = scalar(&quarantine, "SELECT COUNT(*) FROM t");
        let distinct_q = scalar(
            &quarantine,
            "SELECT COUNT(DISTINCT source || ':' || CAST(position AS VARCHAR)) FROM t",
        );
        assert_eq!(
            stored + quarantined,
            rows,
            "{asset}: {stored} stored + {quarantined} quarantined"
        );
        assert_eq!(stored, distinct, "{asset}: duplicated rows in the table");
        assert_eq!(
            quarantined, distinct_q,
            "{asset}: duplicated rows in the quarantine"
        );
    }
}

/// Starts `weir run` stopped at `failpoint`, and SIGKILLs it there.
pub(crate) fn kill_at(dir: &Path, failpoint: &str) {
    kill_command_at(dir, &["run", "--json"], failpoint);
}

/// Starts `weir ARGS` stopped at `failpoint` (`point` or `point@asset`), and SIGKILLs it there.
pub(crate) fn kill_command_at(dir: &Path, args: &[&str], failpoint: &str) {
    let mut child = Command::new(weir_bin())
        .args(args)
        .arg("--project")
        .arg(dir)
        .env("WEIR_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut reached = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        let point = failpoint.split('@').next().unwrap_or(failpoint);
        if line.contains(&format!("weir-failpoint: {point}")) {
            reached = true;
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(
        reached,
        "failpoint {failpoint} was never reached (exit {status:?})"
    );
}

#[test]
fn sigkill_at_every_publishing_step_loses_and_doubles_nothing() {
    for failpoint in [
        "staged",
        "journaled",
        "between_commits",
        "published",
        "recorded",
    ] {
        let (_tmp, dir) = demo_project();
        kill_at(&dir, failpoint);
        // Whatever is visible now is whole: a table never shows a run's rows without the run's
        // commit, so stored rows are a multiple of complete files.
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 0, "after kill at {failpoint}: {doc}");
        assert_exactly_once(&dir);
        if failpoint != "staged" {
            assert_eq!(
                doc["recovered"].as_array().map(|r| r.is_empty()),
                Some(false),
                "{failpoint}: nothing recovered in {doc}"
            );
        }
        // A third run finds nothing left to do.
        let (_, again) = run_json(&dir, &[]);
        for asset in ["customers", "orders", "payments"] {
            assert_eq!(
                run_of(&again, asset)["status"],
                "up_to_date",
                "{failpoint}: {again}"
            );
        }
    }
}

#[test]
fn sigkill_at_random_instants_then_rerun_is_exact() {
    let (_tmp, dir) = demo_project();
    // Spread kills over the whole run: from process start to well past publishing.
    let delays_ms = [5u64, 40, 90, 140, 200, 260, 330, 420, 520, 650];
    for delay in delays_ms {
        let mut child = Command::new(weir_bin())
            .args(["run", "--json", "--project"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
    }
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_exactly_once(&dir);
}

/// The incremental merge model killed before and after its MERGE commit: the re-run completes
/// it once, and the table equals a recomputation from its upstream.
#[test]
fn sigkill_around_a_merge_leaves_the_model_exact() {
    for failpoint in [
        "journaled@daily_revenue",
        "published@daily_revenue",
        "staged@daily_revenue",
    ] {
        let (_tmp, dir) = demo_project();
        let (code, _) = run_json(&dir, &[]);
        assert_eq!(code, 0);
        let late = (40_001..40_031)
            .map(|id| format!("{{\"order_id\":{id},\"customer_id\":{},\"order_ts\":\"2026-11-02T23:00:00Z\",\"status\":\"paid\",\"amount\":20,\"currency\":\"EUR\"}}", id % 2000 + 1))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.join("data/orders/late.ndjson"), late).expect("write");
        kill_at(&dir, failpoint);
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 0, "after kill at {failpoint}: {doc}");
        let daily = dir.join("lake/daily_revenue");
        let stg = dir.join("lake/stg_orders");
        let published = crate::support::query(
            &daily,
            "SELECT order_day, country, orders, revenue FROM t ORDER BY order_day, country",
        );
        let recomputed = crate::support::query_with(
            &[("o", &stg), ("c", &dir.join("lake/customers"))],
            "SELECT o.order_day, c.country, COUNT(*) AS orders, CAST(SUM(o.amount) AS DECIMAL(18, 2)) AS revenue FROM o JOIN c ON c.customer_id = o.customer_id GROUP BY o.order_day, c.country ORDER BY o.order_day, c.country",
        );
        assert_eq!(
            published[3..],
            recomputed[3..],
            "{failpoint}: daily_revenue differs from its upstream"
        );
    }
}
