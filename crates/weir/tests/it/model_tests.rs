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

const CONTRACT_TESTS: &str = r#"contract_tests:
  - name: bad_rows_are_quarantined_for_the_rule_they_break
    contract: orders
    rows:
      - {order_id: 1, customer_id: 7, order_ts: "2026-11-01T10:00:00Z", status: paid, amount: 10.5, currency: EUR}
      - {order_id: 2, customer_id: 7, order_ts: "2026-11-01T11:00:00Z", status: paid, amount: -1, currency: EUR}
      - {order_id: 3, customer_id: 7, order_ts: "not a time", status: paid, amount: 1, currency: EUR}
      - {order_id: 4, customer_id: 7, order_ts: "2026-11-01T12:00:00Z", status: paid, amount: 1, currency: euro}
      - {order_id: 1, customer_id: 8, order_ts: "2026-11-01T13:00:00Z", status: paid, amount: 2, currency: EUR}
      - {order_id: 6, order_ts: "2026-11-01T13:00:00Z", status: paid, amount: 2, currency: EUR}
    expect:
      stored: 1
      quarantined:
        2: amount.minimum
        3: order_ts.type
        4: currency.pattern
        5: order_id.duplicate
        6: customer_id.required
      checks: {orders_volume: fail, big_orders: pass}
  - name: a_big_order_is_fine
    contract: orders
    rows:
      - {order_id: 1, customer_id: 7, order_ts: "2026-11-01T10:00:00Z", status: paid, amount: 500, currency: EUR}
    expect:
      checks: {big_orders: fail}
"#;

#[test]
fn contract_tests_check_sample_rows_against_the_rules() {
    let (_tmp, dir) = demo_project();
    std::fs::create_dir_all(dir.join("tests")).expect("tests dir");
    std::fs::write(dir.join("tests/orders_contract.yaml"), CONTRACT_TESTS).expect("write");
    let out = weir(&dir, &["test", "--contracts", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    crate::json_output::assert_documented(&["test"], &doc);
    assert_eq!(out.status.code(), Some(1), "{doc}");
    assert_eq!(
        doc["tests"],
        serde_json::json!([]),
        "--contracts runs only contract tests"
    );
    let tests = doc["contract_tests"].as_array().expect("contract tests");
    assert_eq!(tests[0]["status"], "passed", "{}", tests[0]);
    assert_eq!(tests[0]["stored"], 1);
    assert_eq!(tests[0]["quarantined"]["5"], "order_id.duplicate");
    // `big_orders` (at most 19 orders over 450) passes with one: the expectation is wrong.
    assert_eq!(tests[1]["status"], "failed");
    let failure = tests[1]["failures"][0].as_str().expect("a failure");
    assert!(
        failure.contains("big_orders") && failure.contains("expected it to fail"),
        "{failure}"
    );

    // A column the contract does not have: the test cannot run (exit 2).
    std::fs::write(
        dir.join("tests/orders_contract.yaml"),
        "contract_tests:\n  - name: typo\n    contract: orders\n    rows: [{order_idd: 1}]\n",
    )
    .expect("write");
    let out = weir(&dir, &["test", "--contracts", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out.status.code(), Some(2), "{doc}");
    let error = doc["contract_tests"][0]["error"].as_str().expect("error");
    assert!(error.contains("order_idd"), "{error}");
}
