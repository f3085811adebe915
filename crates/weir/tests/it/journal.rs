//! Journals that are left, lost, truncated or garbled after a SIGKILL, and journals that cannot
//! be completed: only the affected asset is ever held back, every recovery message says what
//! the tables held, and afterwards every row is in its table or quarantine exactly once.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::crash::{assert_rows_once, kill_at};
use crate::support::{demo_project, run_json, run_of, weir};

/// 59 good orders and one with an invalid status (under the contract's 2 percent), in a file
/// added after the first run.
const ADDED: u64 = 60;

fn expected() -> [(&'static str, &'static str, u64); 3] {
    [
        ("customers", "customer_id", 2_000),
        ("orders", "order_id", 10_000 + ADDED),
        ("payments", "payment_id", 4_000),
    ]
}

fn add_orders(dir: &Path) {
    let rows: Vec<String> = (0..ADDED)
        .map(|i| {
            let status = if i < ADDED - 1 { "paid" } else { "lost" };
            format!(
                "{{\"order_id\":{},\"customer_id\":{},\"order_ts\":\"2026-11-03T10:00:00Z\",\"status\":\"{status}\",\"amount\":12.5,\"currency\":\"EUR\"}}",
                50_001 + i,
                i % 2000 + 1
            )
        })
        .collect();
    std::fs::write(dir.join("data/orders/2026-11-03.ndjson"), rows.join("\n")).expect("write");
}

/// A published demo with an added orders file: the starting point of every scenario.
fn published_demo_with_added_file() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = demo_project();
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    add_orders(&dir);
    (tmp, dir)
}

fn journal(dir: &Path, asset: &str) -> PathBuf {
    dir.join(".weir/journal").join(format!("{asset}.json"))
}

fn broken(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join(".weir/journal/broken"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn recovered(doc: &Value) -> String {
    doc["recovered"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Damage {
    Leave,
    Delete,
    Truncate,
    Garbage,
}

fn damage(path: &Path, how: Damage) {
    if !path.exists() {
        return;
    }
    match how {
        Damage::Leave => {}
        Damage::Delete => std::fs::remove_file(path).expect("delete journal"),
        Damage::Truncate => {
            let bytes = std::fs::read(path).expect("read journal");
            std::fs::write(path, &bytes[..bytes.len() / 2]).expect("truncate journal");
        }
        Damage::Garbage => std::fs::write(path, b"\x00\x01 not a journal {").expect("garble"),
    }
}

#[test]
fn every_failpoint_with_the_journal_left_lost_truncated_or_garbled_is_exact() {
    for failpoint in [
        "staged",
        "journaled",
        "between_commits",
        "published",
        "recorded",
    ] {
        for how in [
            Damage::Leave,
            Damage::Delete,
            Damage::Truncate,
            Damage::Garbage,
        ] {
            let case = format!("{failpoint} / {how:?}");
            let (_tmp, dir) = published_demo_with_added_file();
            kill_at(&dir, &format!("{failpoint}@orders"));
            let had_journal = journal(&dir, "orders").exists();
            assert_eq!(
                had_journal,
                failpoint != "staged",
                "{case}: journal on disk"
            );
            damage(&journal(&dir, "orders"), how);

            let (code, doc) = run_json(&dir, &[]);
            assert_eq!(code, 0, "{case}: {doc}");
            assert_eq!(doc["held"], serde_json::json!([]), "{case}: {doc}");
            for run in doc["runs"].as_array().expect("runs") {
                let status = run["status"].as_str().unwrap_or("");
                assert!(
                    status == "success" || status == "up_to_date",
                    "{case}: {run}"
                );
            }
            assert_rows_once(&dir, &expected());
            assert!(!journal(&dir, "orders").exists(), "{case}: journal left");

            let text = recovered(&doc);
            let garbled = had_journal && matches!(how, Damage::Truncate | Damage::Garbage);
            if garbled {
                assert!(
                    broken(&dir).iter().any(|f| f.starts_with("orders.")),
                    "{case}: broken journal not kept: {:?}",
                    broken(&dir)
                );
                assert!(text.contains("unreadable"), "{case}: {text}");
            }
            let lost = had_journal && how != Damage::Leave;
            match failpoint {
                "staged" => assert!(
                    text.contains("neither table had committed"),
                    "{case}: {text}"
                ),
                "journaled" if how == Damage::Leave => {
                    assert!(
                        text.contains("completed it from its journal"),
                        "{case}: {text}"
                    );
                    assert!(
                        text.contains("the table had not: committed it"),
                        "{case}: {text}"
                    );
                }
                "journaled" => assert!(
                    text.contains("neither table had committed"),
                    "{case}: {text}"
                ),
                "between_commits" if how == Damage::Leave => {
                    assert!(
                        text.contains("the quarantine table had committed it"),
                        "{case}: {text}"
                    );
                }
                "between_commits" => {
                    assert!(
                        text.contains("rolled back its 1 row(s)")
                            && text.contains("its 1 file(s) will be ingested again"),
                        "{case}: {text}"
                    );
                    // The re-ingested file's rows went in again, once.
                    assert_eq!(run_of(&doc, "orders")["rows_in"], ADDED, "{case}: {doc}");
                }
                "published" if lost => assert!(
                    text.contains("it was published; recorded it and its 1 file(s)"),
                    "{case}: {text}"
                ),
                "published" => assert!(
                    text.contains("the table had committed it"),
                    "{case}: {text}"
                ),
                "recorded" if garbled => {
                    assert!(text.contains("nothing to do"), "{case}: {text}")
                }
                _ => {}
            }
            if failpoint == "published" || failpoint == "recorded" {
                assert_eq!(
                    run_of(&doc, "orders")["status"],
                    "up_to_date",
                    "{case}: {doc}"
                );
            }
            assert!(
                !text.contains("published nothing")
                    || failpoint == "staged"
                    || failpoint == "journaled"
                    || how != Damage::Leave,
                "{case}: {text}"
            );

            // Nothing is left to do.
            let (code, again) = run_json(&dir, &[]);
            assert_eq!(code, 0, "{case}: {again}");
            assert_eq!(recovered(&again), "", "{case}: {again}");
            for asset in ["customers", "orders", "payments"] {
                assert_eq!(
                    run_of(&again, asset)["status"],
                    "up_to_date",
                    "{case}: {again}"
                );
            }
        }
    }
}

fn edit_journal(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(path).expect("read journal")).expect("journal json");
    edit(&mut doc);
    std::fs::write(path, serde_json::to_vec(&doc).expect("json")).expect("write journal");
}

fn assert_only_held(doc: &Value, asset: &str, downstream: &[&str]) {
    let held = doc["held"].as_array().expect("held");
    assert_eq!(held.len(), 1, "{doc}");
    assert_eq!(held[0]["asset"], asset, "{doc}");
    for run in doc["runs"].as_array().expect("runs") {
        let name = run["asset"].as_str().unwrap_or("");
        let status = run["status"].as_str().unwrap_or("");
        if name == asset {
            assert_eq!(status, "error", "{doc}");
            let error = run["error"].as_str().unwrap_or("");
            assert!(error.contains("held back by recovery"), "{error}");
            assert!(error.contains("weir recover --abandon"), "{error}");
        } else if downstream.contains(&name) {
            assert_eq!(status, "skipped", "{run}");
            assert!(run["error"].as_str().unwrap_or("").contains(asset), "{run}");
        } else {
            assert!(status == "success" || status == "up_to_date", "{run}");
        }
    }
}

#[test]
fn a_journal_that_cannot_be_completed_holds_back_only_its_asset_until_abandoned() {
    let (_tmp, dir) = published_demo_with_added_file();
    kill_at(&dir, "journaled@orders");
    // Lose one staged file the journal names: committing would name a file that is not there.
    let path = journal(&dir, "orders");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let parts = doc["parts"].as_array().expect("parts");
    let table_part = parts.last().expect("table part");
    let staged = table_part["adds"][0]["path"].as_str().expect("staged path");
    std::fs::remove_file(dir.join("lake/orders").join(staged)).expect("remove staged file");

    for _ in 0..2 {
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 1, "{doc}");
        assert_only_held(
            &doc,
            "orders",
            &["stg_orders", "order_details", "daily_revenue"],
        );
        let reason = doc["held"][0]["reason"].as_str().unwrap_or("");
        assert!(reason.contains("missing"), "{reason}");
        // The quarantine part went in before the table part failed, and the reason says so.
        assert!(
            reason.contains("the quarantine table had committed it (version 2, txn 2)")
                && reason.contains("the table had not (version 1, txn 1)"),
            "{reason}"
        );
        assert!(path.exists(), "the journal is kept while held");
    }

    let out = weir(&dir, &["recover", "--abandon", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = weir(&dir, &["recover", "--abandon", "orders", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("recover json");
    assert_eq!(out.status.code(), Some(0), "{doc}");
    let text = recovered(&doc);
    assert!(text.contains("abandoned its journal"), "{text}");
    assert!(
        text.contains(
            "the quarantine table had committed it (version 2): rolled back its 1 row(s)"
        ),
        "{text}"
    );
    assert!(text.contains("the table had not: deleted"), "{text}");
    assert!(!path.exists());
    let runs = weir(&dir, &["runs", "--asset", "orders", "--json"]);
    assert!(String::from_utf8_lossy(&runs.stdout).contains("abandoned"));

    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(run_of(&doc, "orders")["rows_in"], ADDED, "{doc}");
    assert_rows_once(&dir, &expected());
    let out = weir(&dir, &["recover"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_merge_on_a_missing_key_column_holds_back_only_its_asset() {
    // Only a publication of two tables (here `orders` and its quarantine: the added file
    // has one bad row) has a journal to complete.
    let (_tmp, dir) = published_demo_with_added_file();
    kill_at(&dir, "journaled@orders");
    let path = journal(&dir, "orders");
    edit_journal(&path, |doc| {
        if let Some(part) = doc["parts"].as_array_mut().and_then(|p| p.last_mut()) {
            part["merge_keys"] = serde_json::json!(["no_such_column"]);
        }
    });
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    assert_only_held(
        &doc,
        "orders",
        &["stg_orders", "order_details", "daily_revenue"],
    );
    let reason = doc["held"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("no_such_column"), "{reason}");

    let out = weir(&dir, &["recover", "--abandon", "orders"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(run_of(&doc, "orders")["rows_in"], ADDED, "{doc}");
    assert_rows_once(&dir, &expected());
    let published = crate::support::query(
        &dir.join("lake/daily_revenue"),
        "SELECT order_day, country, orders, revenue FROM t ORDER BY order_day, country",
    );
    let recomputed = crate::support::query_with(
        &[
            ("o", &dir.join("lake/stg_orders")),
            ("c", &dir.join("lake/customers")),
        ],
        "SELECT o.order_day, c.country, COUNT(*) AS orders, CAST(SUM(o.amount) AS DECIMAL(18, 2)) AS revenue FROM o JOIN c ON c.customer_id = o.customer_id GROUP BY o.order_day, c.country ORDER BY o.order_day, c.country",
    );
    assert_eq!(
        published[3..],
        recomputed[3..],
        "daily_revenue differs from its upstream"
    );
}

/// What the state store holds for the last run of `asset` with rows, without what differs
/// from one run to the next (ids, instants, versions).
fn last_record(dir: &Path, asset: &str) -> Value {
    let out = weir(dir, &["runs", "--asset", asset, "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("runs json");
    let mut run = doc["runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["rows_in"].as_u64() > Some(0)))
        .cloned()
        .unwrap_or_else(|| panic!("no run of {asset} with rows: {doc}"));
    for volatile in [
        "run_id",
        "started_at",
        "ended_at",
        "duration_ms",
        "table_version",
        "trigger",
    ] {
        run[volatile] = Value::Null;
    }
    run
}

/// A run that quarantines nothing publishes one commit, which needs no journal: killed after
/// that commit and before its record, it is recorded from the commit, with the same record
/// (status, counts, checks, files, null counts) as the same run uninterrupted.
#[test]
fn a_run_of_one_table_has_no_journal_and_is_recorded_from_its_commit() {
    let good: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "{{\"order_id\":{},\"customer_id\":{},\"order_ts\":\"2026-11-04T10:00:00Z\",\"status\":\"paid\",\"amount\":7.5,\"currency\":\"EUR\"}}",
                60_001 + i,
                i % 2000 + 1
            )
        })
        .collect();
    let mut records = Vec::new();
    for killed in [false, true] {
        let (_tmp, dir) = demo_project();
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 0, "{doc}");
        std::fs::write(dir.join("data/orders/2026-11-04.ndjson"), good.join("\n")).expect("write");
        if killed {
            kill_at(&dir, "published@orders");
            assert!(
                !journal(&dir, "orders").exists(),
                "a publication of one table wrote a journal"
            );
            let (code, doc) = run_json(&dir, &[]);
            assert_eq!(code, 0, "{doc}");
            let text = recovered(&doc);
            assert!(
                text.contains("`orders`: no journal")
                    && text.contains("it was published; recorded it and its 1 file(s)"),
                "{text}"
            );
            assert_eq!(run_of(&doc, "orders")["status"], "up_to_date", "{doc}");
        } else {
            let (code, doc) = run_json(&dir, &[]);
            assert_eq!(code, 0, "{doc}");
            assert_eq!(run_of(&doc, "orders")["rows_in"], 40, "{doc}");
        }
        assert_rows_once(
            &dir,
            &[
                ("customers", "customer_id", 2_000),
                ("orders", "order_id", 10_000 + 40),
                ("payments", "payment_id", 4_000),
            ],
        );
        records.push(last_record(&dir, "orders"));
    }
    assert_eq!(records[0]["status"], "success", "{}", records[0]);
    assert_eq!(records[0]["rows_in"], 40, "{}", records[0]);
    assert_eq!(
        records[0]["files"],
        serde_json::json!(["data/orders/2026-11-04.ndjson"])
    );
    assert_eq!(
        records[1], records[0],
        "the recovered record differs from the uninterrupted one"
    );
}
