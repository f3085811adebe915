use std::path::Path;

use crate::support::{count, demo_project, query, run_json, run_of, runs, weir};

fn assert_balanced(doc: &serde_json::Value) {
    for r in runs(doc) {
        let (i, s, q) = (
            r["rows_in"].as_u64(),
            r["rows_stored"].as_u64(),
            r["rows_quarantined"].as_u64(),
        );
        assert_eq!(
            i.zip(s).zip(q).map(|((i, s), q)| i == s + q),
            Some(true),
            "unbalanced run {r}"
        );
    }
}

#[test]
fn demo_publishes_every_asset_with_quarantine() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("weir-demo");
    let out = std::process::Command::new(crate::support::weir_bin())
        .args(["demo", "--json", "--dir"])
        .arg(&dir)
        .output()
        .expect("demo runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(runs(&doc).len(), 6);
    assert_balanced(&doc);
    let order: Vec<&str> = runs(&doc)
        .iter()
        .filter_map(|r| r["asset"].as_str())
        .collect();
    assert_eq!(
        order,
        [
            "customers",
            "orders",
            "payments",
            "stg_orders",
            "daily_revenue",
            "order_details"
        ]
    );
    for r in runs(&doc) {
        assert_eq!(r["status"], "success", "{r}");
        if ["customers", "orders", "payments"].contains(&r["asset"].as_str().unwrap_or_default()) {
            assert!(r["rows_quarantined"].as_u64().unwrap_or(0) > 0, "{r}");
        }
        let table = Path::new(r["table_path"].as_str().expect("table_path"));
        let quarantine = Path::new(r["quarantine_path"].as_str().expect("quarantine_path"));
        assert!(table.join("_delta_log").is_dir());
        assert_eq!(count(table), r["rows_stored"].as_u64().unwrap_or(0));
        assert_eq!(
            count(quarantine),
            r["rows_quarantined"].as_u64().unwrap_or(0)
        );
    }
}

#[test]
fn rerun_is_a_no_op_and_a_new_file_is_ingested_alone() {
    let (_tmp, dir) = demo_project();
    let (code, first) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    let orders_version = run_of(&first, "orders")["table_version"].as_u64();
    let first_day_before = query(
        &dir.join("lake/daily_revenue"),
        "SELECT * FROM t WHERE order_day = DATE '2026-11-01' ORDER BY country",
    );

    let (code, second) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    for r in runs(&second) {
        assert_eq!(r["status"], "up_to_date", "{r}");
        assert_eq!(r["rows_in"], 0);
    }
    assert_eq!(
        run_of(&second, "orders")["table_version"].as_u64(),
        orders_version,
        "no new Delta version"
    );

    let extra = (20_001..20_051)
        .map(|id| format!("{{\"order_id\":{id},\"customer_id\":7,\"order_ts\":\"2026-11-03T10:00:00Z\",\"status\":\"paid\",\"amount\":12.5,\"currency\":\"EUR\"}}"))
        .chain(std::iter::once("{\"order_id\":20100,\"amount\":\"lots\"}".to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("data/orders/2026-11-03.ndjson"), extra).expect("write");
    let (code, third) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    let orders = run_of(&third, "orders");
    assert_eq!(orders["status"], "success");
    assert_eq!(orders["rows_in"], 51);
    assert_eq!(orders["rows_stored"], 50);
    assert_eq!(orders["rows_quarantined"], 1);
    assert_eq!(
        orders["files"],
        serde_json::json!(["data/orders/2026-11-03.ndjson"])
    );
    assert_eq!(run_of(&third, "customers")["status"], "up_to_date");
    // The incremental merge model recomputes only the (day, country) pairs the new orders fall
    // in (all on 2026-11-03, one customer), over all orders, and merges them; other rows stay.
    let daily = run_of(&third, "daily_revenue");
    assert_eq!(daily["status"], "success", "{daily}");
    assert_eq!(daily["warnings"], serde_json::json!([]), "{daily}");
    assert_eq!(daily["rows_stored"].as_u64(), Some(1), "{daily}");
    let daily_table = Path::new(daily["table_path"].as_str().expect("path"));
    assert_eq!(
        count(daily_table),
        run_of(&first, "daily_revenue")["rows_stored"]
            .as_u64()
            .unwrap_or(0)
            + 1
    );
    assert_eq!(
        query(
            daily_table,
            "SELECT * FROM t WHERE order_day = DATE '2026-11-01' ORDER BY country"
        ),
        first_day_before
    );
    let merge = last_commit(daily_table);
    assert_eq!(merge["operation"], "MERGE", "{merge}");
    let metrics = &merge["operationMetrics"];
    assert_eq!(
        metrics["num_target_rows_inserted"].as_u64(),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        metrics["num_target_rows_updated"].as_u64(),
        Some(0),
        "{metrics}"
    );
    // The incremental append model added exactly the 50 new paid orders.
    let stg = run_of(&third, "stg_orders");
    assert_eq!(stg["rows_stored"].as_u64(), Some(50), "{stg}");
    let total_orders = count(Path::new(orders["table_path"].as_str().expect("path")));
    assert_eq!(
        total_orders,
        run_of(&first, "orders")["rows_stored"]
            .as_u64()
            .unwrap_or(0)
            + 50
    );
}

#[test]
fn full_refresh_rebuilds_the_same_contents() {
    let (_tmp, dir) = demo_project();
    let (code, first) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    let snapshot = |doc: &serde_json::Value, asset: &str, key: &str| {
        let r = run_of(doc, asset);
        let table = Path::new(r["table_path"].as_str().expect("path")).to_path_buf();
        let quarantine = Path::new(r["quarantine_path"].as_str().expect("path")).to_path_buf();
        (
            query(&table, &format!("SELECT * FROM t ORDER BY {key}")),
            query(
                &quarantine,
                "SELECT rule_id, reason, source, position, raw_record FROM t ORDER BY source, position",
            ),
        )
    };
    let before: Vec<_> = [
        ("orders", "order_id"),
        ("customers", "customer_id"),
        ("payments", "payment_id"),
    ]
    .iter()
    .map(|(a, k)| snapshot(&first, a, k))
    .collect();
    let (code, refreshed) = run_json(&dir, &["--full-refresh"]);
    assert_eq!(code, 0);
    for r in runs(&refreshed) {
        assert_eq!(r["status"], "success");
        assert!(
            r["table_version"].as_u64()
                > run_of(&first, r["asset"].as_str().unwrap_or_default())["table_version"].as_u64()
        );
    }
    let after: Vec<_> = [
        ("orders", "order_id"),
        ("customers", "customer_id"),
        ("payments", "payment_id"),
    ]
    .iter()
    .map(|(a, k)| snapshot(&refreshed, a, k))
    .collect();
    assert_eq!(before, after);
    let out = weir(&dir, &["runs", "--json"]);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("runs json");
    assert_eq!(history["runs"].as_array().map(Vec::len), Some(12));
}

#[test]
fn a_blocking_check_publishes_nothing_and_exits_1() {
    let (_tmp, dir) = demo_project();
    // Two payments files with the same ids: the primary key check (severity error) fails.
    std::fs::copy(
        dir.join("data/payments/payments-2026-11.parquet"),
        dir.join("data/payments/copy.parquet"),
    )
    .expect("copy");
    let (code, doc) = run_json(&dir, &["payments"]);
    assert_eq!(code, 1, "{doc}");
    let payments = run_of(&doc, "payments");
    assert_eq!(payments["status"], "failed");
    let pk = payments["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "primaryKey"))
        .expect("pk check");
    assert_eq!(pk["passed"], false);
    assert_eq!(
        payments["table_version"], 0,
        "only the create commit exists"
    );
    assert_eq!(
        count(Path::new(payments["table_path"].as_str().expect("path"))),
        0
    );
    // Removing the duplicate lets the next run publish both files' rows once.
    std::fs::remove_file(dir.join("data/payments/copy.parquet")).expect("rm");
    let (code, doc) = run_json(&dir, &["payments"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(run_of(&doc, "payments")["rows_in"], 4000);
}

#[test]
fn show_and_runs_describe_the_asset() {
    let (_tmp, dir) = demo_project();
    assert_eq!(run_json(&dir, &["orders"]).0, 0);
    let out = weir(&dir, &["show", "orders", "--json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["owners"], serde_json::json!(["ana@example.com"]));
    assert_eq!(doc["team"], "sales");
    assert_eq!(doc["table_version"], 1);
    assert_eq!(doc["columns"].as_array().map(Vec::len), Some(6));
    assert_eq!(doc["runs"].as_array().map(Vec::len), Some(1));
    let out = weir(&dir, &["show", "ordres"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `orders`"));
}

#[test]
fn a_failing_upstream_skips_exactly_its_downstream() {
    let (_tmp, dir) = demo_project();
    std::fs::copy(
        dir.join("data/payments/payments-2026-11.parquet"),
        dir.join("data/payments/copy.parquet"),
    )
    .expect("copy");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(run_of(&doc, "payments")["status"], "failed");
    assert_eq!(
        run_of(&doc, "stg_orders")["status"],
        "success",
        "not downstream of payments"
    );
    assert_eq!(
        run_of(&doc, "daily_revenue")["status"],
        "success",
        "not downstream of payments"
    );
    let r = run_of(&doc, "order_details");
    assert_eq!(r["status"], "skipped", "{r}");
    let why = r["error"].as_str().unwrap_or_default();
    assert!(why.contains("upstream `payments` failed"), "{why}");
}

#[test]
fn selectors_pick_up_and_downstream() {
    let (_tmp, dir) = demo_project();
    let (code, doc) = run_json(&dir, &["+order_details"]);
    assert_eq!(code, 0, "{doc}");
    let names: Vec<&str> = runs(&doc)
        .iter()
        .filter_map(|r| r["asset"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "customers",
            "orders",
            "payments",
            "stg_orders",
            "order_details"
        ]
    );
    let (_, doc) = run_json(&dir, &["stg_orders+"]);
    let names: Vec<&str> = runs(&doc)
        .iter()
        .filter_map(|r| r["asset"].as_str())
        .collect();
    assert_eq!(names, ["stg_orders", "daily_revenue", "order_details"]);
    let (_, doc) = run_json(&dir, &["team:finance"]);
    let names: Vec<&str> = runs(&doc)
        .iter()
        .filter_map(|r| r["asset"].as_str())
        .collect();
    assert_eq!(names, ["payments", "daily_revenue"]);
    let out = weir(&dir, &["run", "stg_order+"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `stg_orders`"));
}

#[test]
fn query_reads_assets_and_travels_in_time() {
    let (_tmp, dir) = demo_project();
    assert_eq!(run_json(&dir, &["orders"]).0, 0);
    std::fs::write(
        dir.join("data/orders/2026-11-03.ndjson"),
        "{\"order_id\":30001,\"customer_id\":1,\"order_ts\":\"2026-11-03T10:00:00Z\",\"status\":\"paid\",\"amount\":1,\"currency\":\"EUR\"}\n",
    )
    .expect("write");
    assert_eq!(run_json(&dir, &["orders"]).0, 0);
    let rows = |args: &[&str]| -> serde_json::Value {
        let out = weir(&dir, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let now = rows(&["query", "SELECT COUNT(*) AS n FROM orders", "--json"]);
    let then = rows(&[
        "query",
        "SELECT COUNT(*) AS n FROM orders",
        "--at",
        "1",
        "--json",
    ]);
    assert_eq!(
        now["rows"][0]["n"].as_u64(),
        then["rows"][0]["n"].as_u64().map(|n| n + 1)
    );
    let out = weir(&dir, &["query", "SELECT * FROM nowhere"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_query_opens_only_the_tables_it_names() {
    let (_tmp, dir) = demo_project();
    assert_eq!(run_json(&dir, &["orders", "payments"]).0, 0);
    // The payments table's log made unreadable: a query of it fails, one of orders does not.
    let log = dir.join("lake/payments/_delta_log");
    std::fs::write(log.join("00000000000000000001.json"), "not a delta log\n").expect("write");
    let count = |sql: &str| -> Option<u64> {
        let out = weir(&dir, &["query", sql, "--json"]);
        if !out.status.success() {
            return None;
        }
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        doc["rows"][0]["n"].as_u64()
    };
    let orders = count("SELECT COUNT(*) AS n FROM orders");
    assert_eq!(orders, Some(9666));
    // Names as DataFusion resolves them: unquoted identifiers fold to lower case, `public.`
    // is the default schema, a CTE is no table.
    assert_eq!(count("SELECT COUNT(*) AS n FROM Public.ORDERS"), orders);
    assert_eq!(
        count("WITH payments AS (SELECT * FROM orders) SELECT COUNT(*) AS n FROM payments"),
        orders
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM quarantine.orders"),
        Some(334)
    );
    assert_eq!(count("SELECT COUNT(*) AS n FROM payments"), None);
}

#[test]
fn lineage_traces_daily_revenue_to_source_columns() {
    let (_tmp, dir) = demo_project();
    let out = weir(&dir, &["lineage", "+daily_revenue", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let daily = doc["assets"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "daily_revenue"))
        .expect("daily_revenue");
    let column = |name: &str| {
        daily["columns"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .cloned()
            .expect("column")
    };
    let origins = |name: &str| column(name)["origins"].clone();
    assert_eq!(
        origins("revenue"),
        serde_json::json!([{ "asset": "orders", "column": "amount" }])
    );
    assert_eq!(
        origins("order_day"),
        serde_json::json!([{ "asset": "orders", "column": "order_ts" }])
    );
    assert_eq!(
        origins("country"),
        serde_json::json!([{ "asset": "customers", "column": "country" }])
    );
    assert_eq!(origins("orders"), serde_json::json!([]));
    assert_eq!(column("country")["transform"], "direct");
    assert_eq!(column("revenue")["transform"], "transformation");
    assert_eq!(
        column("revenue")["inputs"],
        serde_json::json!([{ "asset": "stg_orders", "column": "amount" }])
    );
    assert_eq!(
        daily["upstream"],
        serde_json::json!(["stg_orders", "customers"])
    );
    let mermaid = weir(&dir, &["lineage", "--format", "mermaid"]);
    let text = String::from_utf8_lossy(&mermaid.stdout);
    assert!(
        text.starts_with("graph LR") && text.contains("stg_orders --> daily_revenue"),
        "{text}"
    );
    let show = weir(&dir, &["show", "orders", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(
        doc["downstream"],
        serde_json::json!(["daily_revenue", "order_details", "stg_orders"])
    );
    let finance = doc["downstream_owners"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["asset"] == "daily_revenue"))
        .expect("owner");
    assert_eq!(finance["owners"], serde_json::json!(["omar@example.com"]));
}

/// The `commitInfo` of a Delta table's latest commit, read from the log itself.
fn last_commit(table: &Path) -> serde_json::Value {
    let mut logs: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .expect("log")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    logs.sort();
    let text = std::fs::read_to_string(logs.last().expect("a commit")).expect("read");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("commitInfo").cloned())
        .expect("commitInfo")
}

#[test]
fn a_changed_model_definition_is_recomputed() {
    let (_tmp, dir) = demo_project();
    let (code, first) = run_json(&dir, &[]);
    assert_eq!(code, 0);
    let (_, again) = run_json(&dir, &["order_details"]);
    assert_eq!(run_of(&again, "order_details")["status"], "up_to_date");
    let path = dir.join("models/order_details.sql");
    let sql = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, sql.replace("LEFT JOIN payments", "JOIN payments")).expect("write");
    let (code, changed) = run_json(&dir, &["order_details"]);
    assert_eq!(code, 0);
    let stg = run_of(&changed, "order_details");
    assert_eq!(stg["status"], "success", "{stg}");
    let before = run_of(&first, "order_details")["rows_stored"]
        .as_u64()
        .unwrap_or(0);
    let after = stg["rows_stored"].as_u64().unwrap_or(u64::MAX);
    assert!(
        after < before,
        "{after} rows after dropping unpaid orders, {before} before"
    );
}
