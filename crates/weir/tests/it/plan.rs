//! `weir plan` and `weir apply` on the demo project: dropping a column from a model's contract
//! is breaking and names exactly the downstream models that read it, with their owners (exit
//! 1); adding an optional column is non-breaking and editing a description metadata-only
//! (exit 0); a SQL edit is judged on the logical plans (an added column is non-breaking, a
//! changed filter reaches every reader); `apply` refuses a breaking plan unless told.

use std::path::Path;

use serde_json::Value;

use crate::support::{demo_project, weir};

/// Runs `weir <args> --json`: its exit code and its (documented) document.
fn run(dir: &Path, command: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![command, "--json"];
    args.extend_from_slice(extra);
    let out = weir(dir, &args);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "weir {command}: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    crate::json_output::assert_documented(&[command], &doc);
    (out.status.code().unwrap_or(-1), doc)
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) -> String {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    text
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|v| v[key].as_str().map(str::to_string))
        .collect()
}

fn change_of<'a>(plan: &'a Value, asset: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["asset"] == asset)
        .unwrap_or_else(|| panic!("no change of {asset}: {plan:#}"))
}

#[test]
fn plan_classifies_changes_and_names_exactly_the_readers_of_a_dropped_column() {
    let (_tmp, dir) = demo_project();

    let (code, plan) = run(&dir, "plan", &[]);
    assert_eq!(code, 0, "{plan:#}");
    assert!(plan["applied_at"].is_null(), "nothing applied yet");
    let (code, applied) = run(&dir, "apply", &[]);
    assert_eq!((code, &applied["applied"]), (0, &Value::Bool(true)));
    assert_eq!(applied["assets"], 6);
    let (code, plan) = run(&dir, "plan", &[]);
    assert_eq!(code, 0);
    assert_eq!(plan["changes"], serde_json::json!([]), "{plan:#}");

    // Drop `order_id` from stg_orders' contract: order_details reads it (a column and its
    // payments join); daily_revenue counts rows and never reads it.
    let contract = "contracts/stg_orders.odcs.yaml";
    let original = edit(
        &dir,
        contract,
        "      - name: order_id\n        logicalType: integer\n        primaryKey: true\n",
        "",
    );
    let (code, plan) = run(&dir, "plan", &[]);
    assert_eq!(code, 1, "breaking: exit 1\n{plan:#}");
    assert_eq!(plan["breaking"], true);
    let stg = change_of(&plan, "stg_orders");
    assert_eq!(stg["class"], "breaking");
    assert!(
        names(&stg["changes"], "what").contains(&"column `order_id` removed".to_string()),
        "{stg:#}"
    );
    assert_eq!(
        names(&plan["impact"], "asset"),
        ["order_details"],
        "{plan:#}"
    );
    let impact = &plan["impact"][0];
    assert_eq!(impact["owners"], serde_json::json!(["li@example.com"]));
    assert_eq!(impact["team"], "sales");
    assert!(
        names(&plan["changes"], "asset") == ["stg_orders"],
        "only stg_orders changed: {plan:#}"
    );
    assert_eq!(
        plan["rebuild"],
        serde_json::json!(["stg_orders", "order_details"])
    );
    // The table form says the same, for a person.
    let out = weir(&dir, &["plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("order_details")
            && text.contains("li@example.com")
            && !text.contains("daily_revenue"),
        "{text}"
    );

    // `apply` refuses it unless told.
    let (code, refused) = run(&dir, "apply", &[]);
    assert_eq!((code, &refused["applied"]), (1, &Value::Bool(false)));
    std::fs::write(dir.join(contract), &original).expect("restore");

    // An optional column added: non-breaking, exit 0.
    edit(
        &dir,
        contract,
        "      - name: currency\n",
        "      - name: channel\n        logicalType: string\n      - name: currency\n",
    );
    let (code, plan) = run(&dir, "plan", &[]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(change_of(&plan, "stg_orders")["class"], "non_breaking");
    assert_eq!(plan["impact"], serde_json::json!([]));
    std::fs::write(dir.join(contract), &original).expect("restore");

    // Only the description: metadata, exit 0, nothing to rebuild.
    edit(
        &dir,
        contract,
        "purpose: Orders that count as revenue",
        "purpose: Every order that counts as revenue",
    );
    let (code, plan) = run(&dir, "plan", &[]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(change_of(&plan, "stg_orders")["class"], "metadata");
    assert_eq!(plan["rebuild"], serde_json::json!([]));
    std::fs::write(dir.join(contract), &original).expect("restore");

    // SQL: a column added to order_details is non-breaking; a changed filter in stg_orders
    // changes every column for both readers.
    let details = edit(
        &dir,
        "models/order_details.sql",
        "p.amount AS paid_amount",
        "p.amount AS paid_amount, p.method AS method_again",
    );
    let (code, plan) = run(&dir, "plan", &[]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(change_of(&plan, "order_details")["class"], "non_breaking");
    std::fs::write(dir.join("models/order_details.sql"), details).expect("restore");
    edit(
        &dir,
        "models/stg_orders.sql",
        "WHERE status <> 'cancelled'",
        "WHERE status <> 'cancelled' AND amount > 0",
    );
    let (code, plan) = run(&dir, "plan", &[]);
    assert_eq!(code, 1, "{plan:#}");
    let stg = change_of(&plan, "stg_orders");
    assert_eq!(
        stg["changed_columns"].as_array().map(Vec::len),
        Some(7),
        "{stg:#}"
    );
    let mut reached = names(&plan["impact"], "asset");
    reached.sort();
    assert_eq!(reached, ["daily_revenue", "order_details"], "{plan:#}");

    // Applied on purpose, the plan is empty again.
    let (code, applied) = run(&dir, "apply", &["--allow-breaking"]);
    assert_eq!((code, &applied["applied"]), (0, &Value::Bool(true)));
    let (code, plan) = run(&dir, "plan", &[]);
    assert_eq!((code, &plan["changes"]), (0, &serde_json::json!([])));
}
