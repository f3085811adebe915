//! A first project built the way the README tells a newcomer to: from an empty folder, with
//! `init --empty`, `contract infer` and `new`, plus the edits a user makes (keeping a suggested
//! rule), then checked and run. Every contract weir wrote passes datacontract-cli's lint.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{assert_datacontract_lint_passes, run_json, run_of, weir_bin};

fn weir_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(weir_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("weir runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_empty_folder_becomes_a_running_project() {
    let tmp = tempfile::tempdir().expect("tempdir");
    ok(&weir_in(tmp.path(), &["init", "shop", "--empty"]));
    let dir = tmp.path().join("shop");
    assert!(dir.join("contracts/example.odcs.yaml.sample").is_file());
    // An empty project checks clean.
    ok(&weir_in(&dir, &["check", "--deny-warnings"]));

    std::fs::create_dir_all(dir.join("data/customers")).expect("mkdir");
    std::fs::create_dir_all(dir.join("data/orders")).expect("mkdir");
    let mut customers = String::from("customer_id;email;tier;signup_date\n");
    for i in 1..=60 {
        let tier = ["gold", "silver", "bronze"][i % 3];
        customers.push_str(&format!(
            "{i};user{i}@example.com;{tier};2025-01-{:02}\n",
            1 + i % 28
        ));
    }
    customers.push_str("61;broken@example.com;platinum;2025-02-30\n");
    std::fs::write(dir.join("data/customers/2025-01.csv"), customers).expect("write");
    let mut orders = String::new();
    for i in 1..=80 {
        orders.push_str(&format!(
            "{{\"order_id\": {i}, \"customer_id\": {}, \"amount\": {}.5, \"placed_at\": \"2025-03-{:02}T10:00:00Z\"}}\n",
            1 + i % 61,
            i * 3,
            1 + i % 28
        ));
    }
    orders.push_str("{\"order_id\": 81, \"customer_id\": 2, \"amount\": \"lots\", \"placed_at\": \"2025-03-02T10:00:00Z\"}\n");
    std::fs::write(dir.join("data/orders/2025-03-01.ndjson"), orders).expect("write");

    // `contract infer` prints a contract weir accepts.
    let inferred = ok(&weir_in(
        &dir,
        &["contract", "infer", "data/customers/2025-01.csv"],
    ));
    let (contract, diagnostics) = weir_model::parse_contract(Path::new("inferred.yaml"), &inferred);
    assert!(contract.is_some(), "{diagnostics:?}\n{inferred}");
    assert!(inferred.contains("id: customers"), "{inferred}");
    assert!(
        inferred.contains("validValues: [bronze, gold, platinum, silver]"),
        "{inferred}"
    );

    ok(&weir_in(
        &dir,
        &[
            "new",
            "source",
            "customers",
            "--from",
            "data/customers/2025-01.csv",
            "--owner",
            "ana@example.com",
        ],
    ));
    ok(&weir_in(
        &dir,
        &[
            "new",
            "source",
            "orders",
            "--from",
            "data/orders/2025-03-01.ndjson",
            "--owner",
            "bo@example.com",
        ],
    ));
    let source = std::fs::read_to_string(dir.join("sources/customers.toml")).expect("read");
    assert!(
        source.contains("path = \"data/customers/*.csv\""),
        "{source}"
    );
    assert!(source.contains("delimiter = \";\""), "{source}");
    let orders_contract =
        std::fs::read_to_string(dir.join("contracts/orders.odcs.yaml")).expect("read");
    assert!(
        orders_contract.contains("logicalType: timestamp"),
        "{orders_contract}"
    );
    assert!(
        orders_contract.contains("primaryKey: true"),
        "{orders_contract}"
    );

    // The user keeps the suggested value list for `tier` (uncommenting its lines) without the
    // one value they know is wrong.
    let path = dir.join("contracts/customers.odcs.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    let mut kept = Vec::new();
    let mut in_tier = false;
    for line in text.lines() {
        if line.trim_start().starts_with("- name: ") {
            in_tier = line.trim_end().ends_with("tier");
        }
        if in_tier && line.starts_with("        # ") {
            // Removing the `# ` is all it takes: what follows is YAML, with its own comments.
            kept.push(line.replacen("# ", "", 1).replace(", platinum", ""));
        } else {
            kept.push(line.to_string());
        }
    }
    std::fs::write(&path, kept.join("\n") + "\n").expect("write");

    ok(&weir_in(
        &dir,
        &[
            "new",
            "model",
            "customer_revenue",
            "--owner",
            "ana@example.com",
            "--sql",
            "SELECT c.customer_id, c.tier, SUM(o.amount) AS revenue FROM orders o JOIN customers c ON o.customer_id = c.customer_id GROUP BY c.customer_id, c.tier",
        ],
    ));
    ok(&weir_in(
        &dir,
        &[
            "new",
            "model",
            "tier_revenue",
            "--owner",
            "ana@example.com",
            "--sql",
            "SELECT tier, SUM(revenue) AS revenue FROM customer_revenue GROUP BY tier",
        ],
    ));
    ok(&weir_in(&dir, &["check", "--deny-warnings"]));

    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let customers = run_of(&doc, "customers");
    assert_eq!(customers["rows_in"], 61, "{customers}");
    assert_eq!(customers["rows_stored"], 60, "{customers}");
    // The broken row fails its date and the kept value list at once; it is quarantined once,
    // and 1 row in 61 stays under the suggested 5 % bound.
    assert_eq!(customers["rows_quarantined"], 1, "{customers}");
    let orders = run_of(&doc, "orders");
    assert_eq!(orders["rows_stored"], 80, "{orders}");
    assert_eq!(orders["quarantine_by_rule"]["amount.type"], 1, "{orders}");
    assert_eq!(run_of(&doc, "tier_revenue")["rows_stored"], 3, "{doc}");

    let mut contracts: Vec<_> = std::fs::read_dir(dir.join("contracts"))
        .expect("contracts")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    contracts.push(dir.join("contracts/example.odcs.yaml.sample"));
    assert_datacontract_lint_passes(&contracts);
}
