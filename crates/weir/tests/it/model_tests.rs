//! `weir test` on the demo: model unit tests written as a user would (YAML under tests/) pass
//! when the model does what they say, a wrong expectation fails with the rows that differ
//! (exit 1), and a test naming a column the model does not have cannot run (exit 2).

use std::path::Path;

use serde_json::Value;

use crate::support::{demo_project, weir};

const TESTS: &str = r#"tests:
  - name: cancelled_orders_are_left_out
    model: stg_orders
    given:
      orders:
        - {order_id: 1, customer_id: 7, order_ts: "2026-11-01T10:00:00Z", status: placed, amount: 10.5, currency: EUR}
        - {order_id: 2, customer_id: 7, order_ts: "2026-11-01T11:00:00Z", status: cancelled, amount: 99, currency: EUR}
    expect:
      - {order_id: 1, order_day: 2026-11-01, amount: 10.5}
  - name: revenue_adds_up_per_day_and_country
    model: daily_revenue
    given:
      stg_orders:
        - {order_id: 1, customer_id: 7, order_day: 2026-11-01, amount: 10.5}
        - {order_id: 2, customer_id: 8, order_day: 2026-11-01, amount: 4}
        - {order_id: 3, customer_id: 7, order_day: 2026-11-02, amount: 1}
      customers:
        - {customer_id: 7, country: DE}
        - {customer_id: 8, country: DE}
    expect:
      - {order_day: 2026-11-01, country: DE, orders: 2, revenue: 14.5}
      - {order_day: 2026-11-02, country: DE, orders: 1, revenue: 1}
"#;

fn run(dir: &Path) -> (i32, Value) {
    let out = weir(dir, &["test", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "weir test: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    crate::json_output::assert_documented(&["test"], &doc);
    (out.status.code().unwrap_or(-1), doc)
}

#[test]
fn model_tests_pass_fail_with_the_differing_rows_or_cannot_run() {
    let (_tmp, dir) = demo_project();
    std::fs::create_dir_all(dir.join("tests")).expect("tests dir");
    let file = dir.join("tests/models.yaml");
    std::fs::write(&file, TESTS).expect("write tests");
    let (code, doc) = run(&dir);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        (&doc["passed"], &doc["failed"]),
        (&Value::from(2), &Value::from(0))
    );

    // A wrong expectation: the revenue of the first day.
    std::fs::write(&file, TESTS.replace("revenue: 14.5", "revenue: 15")).expect("write");
    let (code, doc) = run(&dir);
    assert_eq!(code, 1, "{doc:#}");
    let failed = &doc["tests"][1];
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["missing"],
        serde_json::json!(["order_day=2026-11-01, country=DE, orders=2, revenue=15.00"])
    );
    assert_eq!(
        failed["unexpected"],
        serde_json::json!(["order_day=2026-11-01, country=DE, orders=2, revenue=14.50"])
    );
    let text = String::from_utf8_lossy(&weir(&dir, &["test"]).stdout).to_string();
    assert!(
        text.contains("FAIL  revenue_adds_up_per_day_and_country")
            && text.contains(
                "expected, not produced: order_day=2026-11-01, country=DE, orders=2, revenue=15.00"
            ),
        "{text}"
    );

    // A column the model does not produce: the test cannot run, and says why.
    std::fs::write(&file, TESTS.replace("revenue: 14.5", "revnue: 14.5")).expect("write");
    let (code, doc) = run(&dir);
    assert_eq!(code, 2, "{doc:#}");
    let broken = &doc["tests"][1];
    assert_eq!(broken["status"], "error");
    assert!(
        broken["error"]
            .as_str()
            .is_some_and(|e| e.contains("`revnue`")),
        "{broken:#}"
    );
}
