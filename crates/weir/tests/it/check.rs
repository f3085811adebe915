use crate::support::{demo_project, weir};

fn check(dir: &std::path::Path) -> (i32, String) {
    let out = weir(dir, &["check"]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_demo_project_checks_clean() {
    let (_tmp, dir) = demo_project();
    let (code, stderr) = check(&dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("ok: 6 assets"), "{stderr}");
}

#[test]
fn an_unknown_key_names_file_line_and_field() {
    let (_tmp, dir) = demo_project();
    let path = dir.join("contracts/orders.odcs.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "      - name: customer_id\n",
            "      - name: customer_id\n        colour: blue\n",
        ),
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    let line = text
        .lines()
        .position(|l| l == "      - name: customer_id")
        .map(|i| i + 2)
        .expect("line");
    assert!(
        stderr.contains(&format!("orders.odcs.yaml:{line}:")),
        "{stderr}"
    );
    assert!(
        stderr.contains("schema[0].properties[1].colour")
            && stderr.contains("not valid ODCS v3.1.0")
            && stderr.contains("'colour' was unexpected"),
        "{stderr}"
    );
}

#[test]
fn wrong_types_and_missing_fields_are_errors() {
    let (_tmp, dir) = demo_project();
    let path = dir.join("contracts/customers.odcs.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("id: shop-customers\n", "")).expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("customers.odcs.yaml") && stderr.contains("\"id\" is a required property"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        text.replace(
            "        mustBeGreaterThan: 100\n",
            "        mustBeGreaterThan: lots\n",
        ),
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("quality[0].mustBeGreaterThan")
            && stderr.contains("\"lots\" is not of type \"number\""),
        "{stderr}"
    );
    // One root cause, one diagnostic: not the schema's echoes, nor the source and the models
    // that depend on the broken contract.
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");

    std::fs::write(
        &path,
        text.replace(
            "        logicalType: date\n",
            "        logicalType: datetime\n",
        ),
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("logicalType") && stderr.contains("\"datetime\" is not one of"),
        "{stderr}"
    );
}

#[test]
fn a_broken_weir_toml_and_an_orphan_source_are_reported_together() {
    let (_tmp, dir) = demo_project();
    std::fs::write(
        dir.join("sources/refunds.toml"),
        "format = \"csv\"\npath = \"data/refunds/*.csv\"\n",
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("refunds.toml") && stderr.contains("no contract"),
        "{stderr}"
    );

    std::fs::write(dir.join("weir.toml"), "[project]\nname = 3\n").expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(stderr.contains("weir.toml:2"), "{stderr}");
    let out = weir(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn model_errors_name_file_and_line() {
    let (_tmp, dir) = demo_project();
    let path = dir.join("models/daily_revenue.sql");
    let text = std::fs::read_to_string(&path).expect("read");

    std::fs::write(&path, text.replace("FROM stg_orders", "FROM stg_order")).expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("daily_revenue.sql:5:6:")
            && stderr.contains("unknown table `stg_order` (did you mean `stg_orders`?)"),
        "{stderr}"
    );

    std::fs::write(&path, text.replace("GROUP BY", "GROUP BYE")).expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("daily_revenue.sql") && stderr.contains("does not parse"),
        "{stderr}"
    );

    std::fs::write(&path, text.replace("0) AS revenue", "0) AS revenu")).expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("does not produce it") && stderr.contains("`revenue`"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        text.replace("COUNT(*) AS orders", "MIN(country) AS orders"),
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(stderr.contains("column `orders` is Utf8"), "{stderr}");

    std::fs::write(&path, text).expect("restore");
    let stg = dir.join("models/stg_orders.sql");
    let stg_text = std::fs::read_to_string(&stg).expect("read");
    std::fs::write(
        &stg,
        stg_text.replace("FROM orders", "FROM orders JOIN daily_revenue ON true"),
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("dependency cycle") && stderr.contains("stg_orders"),
        "{stderr}"
    );
}

#[test]
fn incremental_models_that_cannot_be_exact_are_warned_about() {
    let (_tmp, dir) = demo_project();
    let (code, stderr) = check(&dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("recompute"),
        "the demo's models are exact: {stderr}"
    );
    let stg = dir.join("models/stg_orders.sql");
    let text = std::fs::read_to_string(&stg).expect("read");
    std::fs::write(
        &stg,
        text.replace(
            "WHERE status <> 'cancelled'",
            "WHERE status <> 'cancelled' LIMIT 5",
        ),
    )
    .expect("write");
    let daily = dir.join("models/daily_revenue.sql");
    let daily_text = std::fs::read_to_string(&daily).expect("read");
    std::fs::write(
        &daily,
        daily_text.replace(
            "GROUP BY o.order_day, c.country",
            "GROUP BY o.order_day, c.country HAVING COUNT(*) > 1",
        ),
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 0, "warnings only: {stderr}");
    assert!(
        stderr.contains("stg_orders.sql") && stderr.contains("this query has LIMIT"),
        "{stderr}"
    );
    assert!(
        stderr.contains("daily_revenue.sql") && stderr.contains("HAVING"),
        "{stderr}"
    );
    std::fs::write(
        &daily,
        daily_text.replace(
            "unique_key = order_day+country",
            "unique_key = order_day+region",
        ),
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("does not produce the key column `region`"),
        "{stderr}"
    );
}

#[test]
fn check_catches_what_a_run_would_trip_on() {
    let (_tmp, dir) = demo_project();
    // A file weir does not read, options that do not apply, a glob that matches nothing.
    std::fs::write(dir.join("sources/refunds.yaml"), "format: csv\n").expect("write");
    std::fs::write(
        dir.join("sources/payments.toml"),
        "format = \"parquet\"\npath = \"data/none/*.parquet\"\n\n[options]\ndelimiter = \";\"\n",
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 0, "warnings only: {stderr}");
    assert!(
        stderr.contains("refunds.yaml: weir does not read this file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`delimiter` does not apply to parquet files"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`data/none/*.parquet` matches no file yet"),
        "{stderr}"
    );
    let out = weir(&dir, &["check", "--deny-warnings"]);
    assert_eq!(out.status.code(), Some(2));

    // A SQL rule that does not plan, one that returns no single number, a column the contract
    // requires that the source's file lacks, and a watermark the model does not produce.
    let path = dir.join("contracts/orders.odcs.yaml");
    let orders = std::fs::read_to_string(&path).expect("read");
    let broken = orders.replace("WHERE amount > 450", "WHERE no_such_column > 450");
    assert_ne!(broken, orders, "the demo's SQL rule changed");
    std::fs::write(&path, broken).expect("write");
    let path = dir.join("contracts/customers.odcs.yaml");
    let customers = std::fs::read_to_string(&path).expect("read");
    let extra = customers.replace(
        "    properties:\n",
        "    properties:\n      - name: loyalty_tier\n        logicalType: string\n        required: true\n      - name: nickname\n        logicalType: string\n",
    );
    std::fs::write(&path, extra).expect("write");
    let path = dir.join("models/stg_orders.sql");
    let model = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        model.replace(
            "strategy = append",
            "strategy = append, watermark = order_time",
        ),
    )
    .expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("quality rule `big_orders`: its query does not plan")
            && stderr.contains("no_such_column"),
        "{stderr}"
    );
    assert!(
        stderr.contains("has no column `loyalty_tier`, which the contract requires"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning:") && stderr.contains("has no column `nickname`"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("the query does not produce the column `order_time` that `watermark` names"),
        "{stderr}"
    );
}

#[test]
fn a_sql_rule_must_return_one_number() {
    let (_tmp, dir) = demo_project();
    let path = dir.join("contracts/orders.odcs.yaml");
    let orders = std::fs::read_to_string(&path).expect("read");
    let two = orders.replace(
        "SELECT COUNT(*) FROM {object} WHERE amount > 450",
        "SELECT order_id, status FROM {object} WHERE amount > 450",
    );
    assert_ne!(two, orders, "the demo's SQL rule changed");
    std::fs::write(&path, two).expect("write");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("its query must return one number, and returns 2 column(s)"),
        "{stderr}"
    );
}

#[test]
fn observability_settings_name_unknown_assets_bad_numbers_and_bad_channels() {
    let (_tmp, dir) = demo_project();
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str("\n[anomalies]\nsensitivity = -1\nassets = { ordres = 5.0, orders = 0 }\n");
    let config = config.replace(
        "channels = [\"slack:#finance-data\"]",
        "channels = [\"slack:#finance-data\", \"webhook:htps://alerts.example.com/x\"]",
    );
    std::fs::write(dir.join("weir.toml"), config).expect("write weir.toml");
    let (code, stderr) = check(&dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("anomalies.sensitivity = -1") && stderr.contains("at least 0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`ordres`, which is not an asset"),
        "a misspelt asset is named: {stderr}"
    );
    assert!(!stderr.contains("`orders`, which"), "{stderr}");
    assert!(
        stderr.contains("teams.finance.channels[1]")
            && stderr.contains("a webhook channel needs an http:// or https:// URL"),
        "a mistyped channel is refused, not left to send nothing: {stderr}"
    );
}
