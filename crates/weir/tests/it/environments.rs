//! Environments on the demo: `weir run --env dev` builds what changed since `weir apply` beside
//! production, reading unchanged upstream tables from production and writing nothing there
//! (every file of production's lake is byte-for-byte the same afterwards); `weir diff` against
//! production reports exactly the rows the change altered; `weir promote` publishes the
//! tables (one commit each, production's next run finds them up to date) and refuses an
//! environment holding a source's table; a promotion SIGKILLed between two tables' commits
//! is invisible to `weir query` (it reads every table as it was) until the next command
//! completes it.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{demo_project, json_of, runs, weir_bin};

/// One number from `weir query SQL` (with `extra` arguments).
fn number(dir: &Path, sql: &str, extra: &[&str]) -> f64 {
    let mut args = vec!["query", sql];
    args.extend_from_slice(extra);
    let (code, doc) = json_of(dir, &args);
    assert_eq!(code, 0, "{sql}: {doc}");
    let row = &doc["rows"][0];
    let value = row
        .as_object()
        .and_then(|o| o.values().next())
        .unwrap_or_else(|| panic!("{sql}: no row in {doc}"));
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{sql}: not a number: {value}"))
}

/// Every file of production's lake with its bytes' hash.
fn lake_files(dir: &Path) -> BTreeMap<String, u64> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, u64>) {
        for entry in std::fs::read_dir(at).expect("read lake") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                let name = path
                    .strip_prefix(root)
                    .expect("inside")
                    .display()
                    .to_string();
                let mut hasher = std::hash::DefaultHasher::new();
                bytes.hash(&mut hasher);
                out.insert(name, hasher.finish());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&dir.join("lake"), &dir.join("lake"), &mut out);
    out
}

fn commits(dir: &Path, table: &str) -> usize {
    std::fs::read_dir(dir.join("lake").join(table).join("_delta_log"))
        .expect("delta log")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
}

/// `weir promote dev` started and stopped at `failpoint` (`point@name`), still alive.
fn stopped_at(dir: &Path, failpoint: &str) -> std::process::Child {
    let mut child = Command::new(weir_bin())
        .args(["promote", "dev", "--project"])
        .arg(dir)
        .env("WEIR_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promote starts");
    let point = failpoint.split('@').next().unwrap_or(failpoint);
    let stderr = child.stderr.take().expect("stderr");
    let reached = BufReader::new(stderr)
        .lines()
        .map_while(std::result::Result::ok)
        .any(|line| line.contains(&format!("weir-failpoint: {point}")));
    assert!(reached, "the promotion never reached {failpoint}");
    child
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

fn status_of<'a>(doc: &'a Value, asset: &str) -> &'a Value {
    &runs(doc)
        .iter()
        .find(|r| r["asset"] == asset)
        .unwrap_or_else(|| panic!("no run of {asset}: {doc}"))["status"]
}

#[test]
fn an_environment_builds_beside_production_diffs_exactly_and_promotes() {
    let (_tmp, dir) = demo_project();
    assert_eq!(json_of(&dir, &["run"]).0, 0);

    // Nothing applied: nothing to compare with, said so (exit 2).
    let (code, doc) = json_of(&dir, &["run", "--env", "dev"]);
    assert_eq!(
        (code, &doc["error"]["kind"]),
        (2, &Value::from("environment"))
    );
    assert_eq!(json_of(&dir, &["apply"]).0, 0);
    let (code, doc) = json_of(&dir, &["run", "--env", "dev"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["environment"]["built"], serde_json::json!([]));

    // A known change: German revenue counted twice.
    edit(
        &dir,
        "models/daily_revenue.sql",
        "COALESCE(SUM(o.amount), 0) AS revenue",
        "COALESCE(SUM(CASE WHEN c.country = 'DE' THEN o.amount * 2 ELSE o.amount END), 0) AS revenue",
    );
    let production = lake_files(&dir);
    let (code, doc) = json_of(&dir, &["run", "--env", "dev"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc["environment"]["built"],
        serde_json::json!(["daily_revenue"])
    );
    assert_eq!(
        doc["environment"]["from_production"],
        serde_json::json!(["customers", "stg_orders"])
    );
    assert_eq!(status_of(&doc, "daily_revenue"), "success");
    assert_eq!(
        lake_files(&dir),
        production,
        "production's lake was written"
    );

    // The diff finds exactly the German days, and only in `revenue`.
    let german = number(
        &dir,
        "SELECT COUNT(*) FROM daily_revenue WHERE country = 'DE' AND revenue <> 0",
        &[],
    );
    assert!(german > 0.0);
    let (code, diff) = json_of(
        &dir,
        &[
            "diff",
            "daily_revenue@dev",
            "daily_revenue",
            "--key",
            "order_day,country",
        ],
    );
    assert_eq!(code, 1, "{diff}");
    let report = &diff["report"];
    assert_eq!(report["changed"].as_f64(), Some(german), "{report}");
    assert_eq!(
        (report["only_in_a"].as_u64(), report["only_in_b"].as_u64()),
        (Some(0), Some(0))
    );
    for column in report["columns"].as_array().expect("columns") {
        let expected = if column["column"] == "revenue" {
            german
        } else {
            0.0
        };
        assert_eq!(column["mismatches"].as_f64(), Some(expected), "{column}");
    }
    let sum = "SELECT SUM(revenue) FROM daily_revenue WHERE country = 'DE'";
    let before = number(&dir, sum, &[]);
    let in_dev = number(&dir, sum, &["--env", "dev"]);
    assert!((in_dev - 2.0 * before).abs() < 0.01, "{in_dev} vs {before}");
    // Built already: the environment's table is up to date on the next run.
    let (_, doc) = json_of(&dir, &["run", "--env", "dev"]);
    assert_eq!(status_of(&doc, "daily_revenue"), "up_to_date");
    assert_eq!(lake_files(&dir), production);

    // An environment holding a source's table is not promoted (exit 1, nothing written).
    let (code, _) = json_of(&dir, &["run", "--env", "raw", "orders"]);
    assert_eq!(code, 0);
    let (code, doc) = json_of(&dir, &["promote", "raw"]);
    assert_eq!((code, &doc["promoted"]), (1, &Value::Bool(false)), "{doc}");
    assert!(
        doc["reason"].as_str().is_some_and(|r| r.contains("source")),
        "{doc}"
    );
    assert_eq!(lake_files(&dir), production);

    // Promoted: one commit on the table, readers see the new rows, and production's next
    // run finds it up to date (what it was computed from was carried over).
    let versions = commits(&dir, "daily_revenue");
    let (code, doc) = json_of(&dir, &["promote", "dev"]);
    assert_eq!(code, 0, "{doc}");
    let table = &doc["tables"][0];
    assert_eq!(table["asset"], "daily_revenue");
    assert_eq!(
        table["version"].as_u64(),
        table["version_before"].as_u64().map(|v| v + 1)
    );
    assert_eq!(commits(&dir, "daily_revenue"), versions + 1);
    assert!((number(&dir, sum, &[]) - in_dev).abs() < 0.01);
    assert!(
        !dir.join(".weir/envs/dev").exists(),
        "the environment is removed"
    );
    let (code, doc) = json_of(&dir, &["run"]);
    assert_eq!(code, 0, "{doc}");
    for run in runs(&doc) {
        assert_eq!(run["status"], "up_to_date", "{run}");
    }
}

#[test]
fn a_promotion_killed_between_tables_is_invisible_until_the_next_command_completes_it() {
    let (_tmp, dir) = demo_project();
    assert_eq!(json_of(&dir, &["run"]).0, 0);
    assert_eq!(json_of(&dir, &["apply"]).0, 0);
    // A breaking change upstream: both models reading stg_orders are rebuilt too.
    edit(
        &dir,
        "models/stg_orders.sql",
        "WHERE status <> 'cancelled'",
        "WHERE status NOT IN ('cancelled', 'placed')",
    );
    let (code, doc) = json_of(&dir, &["run", "--env", "dev"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc["environment"]["built"],
        serde_json::json!(["stg_orders", "daily_revenue", "order_details"])
    );
    let count = |extra: &[&str]| {
        (
            number(&dir, "SELECT COUNT(*) FROM stg_orders", extra),
            number(&dir, "SELECT SUM(orders) FROM daily_revenue", extra),
        )
    };
    let old = count(&[]);
    let new = count(&["--env", "dev"]);
    assert!(new.0 < old.0 && new.1 < old.1, "{new:?} vs {old:?}");
    let stg_commits = commits(&dir, "stg_orders");

    let mut child = stopped_at(&dir, "promote-between-tables@stg_orders");
    // stg_orders is committed, daily_revenue not yet: weir's readers see neither.
    assert_eq!(commits(&dir, "stg_orders"), stg_commits + 1);
    assert_eq!(count(&[]), old);
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(
        count(&[]),
        old,
        "after the kill, still the tables from before"
    );

    // The next command completes it, then runs on the promoted tables.
    let (code, doc) = json_of(&dir, &["run"]);
    assert_eq!(code, 0, "{doc}");
    let recovered = doc["recovered"].to_string();
    assert!(recovered.contains("completed the promotion"), "{doc}");
    assert_eq!(count(&[]), new);
    assert_eq!(
        commits(&dir, "stg_orders"),
        stg_commits + 1,
        "committed once"
    );
    for asset in ["stg_orders", "daily_revenue", "order_details"] {
        assert_eq!(status_of(&doc, asset), "up_to_date", "{doc}");
    }
    assert!(!dir.join(".weir/envs/dev").exists());
}

#[test]
fn a_promotion_killed_before_its_journal_is_abandoned_and_can_be_made_again() {
    let (_tmp, dir) = demo_project();
    assert_eq!(json_of(&dir, &["run"]).0, 0);
    assert_eq!(json_of(&dir, &["apply"]).0, 0);
    edit(
        &dir,
        "models/daily_revenue.sql",
        "COALESCE(SUM(o.amount), 0) AS revenue",
        "COALESCE(SUM(o.amount), 0) + 1 AS revenue",
    );
    assert_eq!(json_of(&dir, &["run", "--env", "dev"]).0, 0);
    let production = lake_files(&dir);
    let sum = "SELECT SUM(revenue) FROM daily_revenue";
    let before = number(&dir, sum, &[]);

    // Killed after pinning the readers, before the journal: nothing was committed.
    let mut child = stopped_at(&dir, "promote-pinned");
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(number(&dir, sum, &[]), before);
    // (Production's own daily_revenue would refuse the edited SQL: run another asset.)
    let (code, doc) = json_of(&dir, &["run", "customers"]);
    assert_eq!(code, 0, "{doc}");
    assert!(
        doc["recovered"]
            .to_string()
            .contains("abandoned the promotion"),
        "{doc}"
    );
    assert_eq!(number(&dir, sum, &[]), before);
    // Production's tables were not written (a created quarantine aside, nothing changed).
    for (file, hash) in &production {
        assert_eq!(lake_files(&dir).get(file), Some(hash), "{file} changed");
    }

    // Made again, it goes through.
    let (code, doc) = json_of(&dir, &["promote", "dev"]);
    assert_eq!(code, 0, "{doc}");
    let rows = number(&dir, "SELECT COUNT(*) FROM daily_revenue", &[]);
    assert!((number(&dir, sum, &[]) - (before + rows)).abs() < 0.01);
}
