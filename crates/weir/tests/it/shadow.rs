//! Parallel runs on the demo: `daily_revenue_v2`, a rewrite declared `shadow_of =
//! daily_revenue`, is diffed with it after each run. A rewrite that drops Germany agrees on
//! exactly the other rows (the German ones are only in the primary); the fixed rewrite agrees
//! fully; a run that rebuilt the shadow from newer upstream rows than the primary's is not
//! compared, and says why; `weir shadow` keeps the history and the streak of full agreement.

use std::path::Path;

use serde_json::Value;

use crate::incidents::orders_file;
use crate::support::json_of;

const V2: &str = "-- A rewrite of daily_revenue, run beside it until it agrees.
-- weir: materialized = table, shadow_of = daily_revenue, shadow_key = order_day+country
SELECT o.order_day, c.country, COUNT(*) AS orders, COALESCE(SUM(o.amount), 0) AS revenue
FROM stg_orders o
JOIN customers c ON c.customer_id = o.customer_id
WHERE c.country <> 'DE'
GROUP BY o.order_day, c.country
";

fn count(dir: &Path, sql: &str) -> u64 {
    let (code, doc) = json_of(dir, &["query", sql]);
    assert_eq!(code, 0, "{doc}");
    doc["rows"][0]["n"]
        .as_u64()
        .unwrap_or_else(|| panic!("{sql}: {doc}"))
}

#[test]
fn a_shadow_is_compared_after_each_run_and_its_agreement_kept() {
    let (_tmp, dir) = crate::support::demo_project();
    let contract = std::fs::read_to_string(dir.join("contracts/daily_revenue.odcs.yaml"))
        .expect("contract")
        .replace("id: shop-daily-revenue", "id: shop-daily-revenue-v2")
        .replace("name: daily_revenue", "name: daily_revenue_v2");
    std::fs::write(dir.join("contracts/daily_revenue_v2.odcs.yaml"), contract).expect("write");
    std::fs::write(dir.join("models/daily_revenue_v2.sql"), V2).expect("write");

    let (code, doc) = json_of(&dir, &["run"]);
    assert_eq!(code, 0, "{doc}");
    let total = count(&dir, "SELECT COUNT(*) AS n FROM daily_revenue");
    let german = count(
        &dir,
        "SELECT COUNT(*) AS n FROM daily_revenue WHERE country = 'DE'",
    );
    assert!(german > 0 && german < total);
    let c = &doc["shadows"][0];
    assert_eq!(
        (c["asset"].as_str(), c["shadow_of"].as_str()),
        (Some("daily_revenue_v2"), Some("daily_revenue"))
    );
    assert_eq!(c["compared"], true, "{c}");
    assert_eq!(c["only_in_primary"].as_u64(), Some(german));
    assert_eq!(c["identical"].as_u64(), Some(total - german));
    assert_eq!(
        (c["changed"].as_u64(), c["only_in_shadow"].as_u64()),
        (Some(0), Some(0))
    );
    let expected = (total - german) as f64 / total as f64;
    assert!((c["agreement"].as_f64().expect("agreement") - expected).abs() < 1e-9);

    // Fixed: full agreement.
    let fixed = V2.replace("WHERE c.country <> 'DE'\n", "");
    std::fs::write(dir.join("models/daily_revenue_v2.sql"), fixed).expect("write");
    let (_, doc) = json_of(&dir, &["run"]);
    assert_eq!(doc["shadows"][0]["agreement"].as_f64(), Some(1.0), "{doc}");

    // New orders, and only the shadow's side rebuilt: not the same input snapshot.
    std::fs::write(
        dir.join("data/orders/late.ndjson"),
        orders_file(900_001, 5, "paid"),
    )
    .expect("orders");
    let (_, doc) = json_of(&dir, &["run", "+daily_revenue_v2"]);
    let c = &doc["shadows"][0];
    assert_eq!(c["compared"], false, "{c}");
    assert!(
        c["note"].as_str().is_some_and(|n| n.contains("stg_orders")),
        "{c}"
    );

    let (code, doc) = json_of(&dir, &["shadow", "daily_revenue_v2"]);
    assert_eq!(code, 0);
    let s = &doc["shadows"][0];
    assert_eq!(s["comparisons"], 3, "{s}");
    assert_eq!(s["agreeing_comparisons"], 1, "{s}");
    assert_eq!(s["last_agreement"].as_f64(), Some(1.0));
    assert_eq!(s["key"], serde_json::json!(["order_day", "country"]));
    // Both run: compared again, and agreeing.
    let (_, doc) = json_of(&dir, &["run"]);
    assert_eq!(doc["shadows"][0]["agreement"].as_f64(), Some(1.0), "{doc}");
    let (code, doc) = json_of(&dir, &["shadow", "orders"]);
    assert_eq!(
        (code, &doc["error"]["kind"]),
        (2, &Value::from("unknown_asset"))
    );
}
