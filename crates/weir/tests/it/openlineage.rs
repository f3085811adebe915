//! OpenLineage run events: `weir run` with `[openlineage]` set appends a START and a
//! COMPLETE (or FAIL) event per asset run to a file and posts the same events to an HTTP
//! receiver, with weir's run ids, the schema, column lineage (DIRECT/INDIRECT), data quality
//! metrics and assertions facets; every event validates against the official OpenLineage
//! client's model of the spec (`scripts/openlineage_validate.py`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::incidents::{hits_on, orders_file, receiver, wait_for_hits};
use crate::support::{demo_project, weir};

fn events_in(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the events file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[test]
fn every_asset_run_is_a_start_and_a_complete_or_fail_event_to_a_file_and_an_endpoint() {
    let (_tmp, dir) = demo_project();
    let (hits, port) = receiver();
    let mut config = std::fs::read_to_string(dir.join("weir.toml")).expect("weir.toml");
    config.push_str(&format!(
        "\n[openlineage]\nurl = \"http://127.0.0.1:{port}\"\nfile = \"lineage.ndjson\"\nnamespace = \"shop-prod\"\n"
    ));
    std::fs::write(dir.join("weir.toml"), config).expect("weir.toml");
    let out = weir(&dir, &["run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("run JSON");
    let runs = doc["runs"].as_array().expect("runs");

    let events = events_in(&dir.join("lineage.ndjson"));
    assert_eq!(events.len(), 2 * runs.len(), "{events:#?}");
    for run in runs {
        let id = run["run_id"].as_str().expect("a run id");
        let mine: Vec<&Value> = events.iter().filter(|e| e["run"]["runId"] == id).collect();
        let kinds: Vec<&str> = mine
            .iter()
            .filter_map(|e| e["eventType"].as_str())
            .collect();
        assert_eq!(kinds, ["START", "COMPLETE"], "{}", run["asset"]);
        for e in &mine {
            assert_eq!(e["job"]["namespace"], "shop-prod");
            assert_eq!(e["job"]["name"], run["asset"]);
            assert_eq!(
                e["schemaURL"],
                "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
            );
        }
        let done = mine[1];
        assert!(done["eventTime"].as_str() >= mine[0]["eventTime"].as_str());
        let output = &done["outputs"][0];
        assert!(
            output["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(&format!(
                    "lake/{}",
                    run["asset"].as_str().unwrap_or_default()
                ))),
            "{output:#}"
        );
        assert_eq!(
            output["facets"]["dataQualityMetrics"]["rowCount"], run["rows_stored"],
            "{output:#}"
        );
        assert_eq!(
            output["outputFacets"]["outputStatistics"]["rowCount"],
            run["rows_stored"]
        );
        let assertions = output["facets"]["dataQualityAssertions"]["assertions"]
            .as_array()
            .expect("assertions");
        assert_eq!(
            assertions.len(),
            run["checks"].as_array().map_or(0, Vec::len)
        );
        assert!(
            output["facets"]["schema"]["fields"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        );
        for facet in ["schema", "dataQualityMetrics", "dataQualityAssertions"] {
            assert!(output["facets"][facet]["_producer"].is_string(), "{facet}");
            assert!(output["facets"][facet]["_schemaURL"].is_string(), "{facet}");
        }
    }

    // The orders source read its two files; stg_orders' column lineage reaches them.
    let complete = |asset: &str| -> Value {
        events
            .iter()
            .find(|e| e["job"]["name"] == asset && e["eventType"] == "COMPLETE")
            .cloned()
            .expect("a COMPLETE event")
    };
    let orders = complete("orders");
    let inputs: Vec<&str> = orders["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    assert!(
        inputs.iter().all(|i| i.contains("data/orders/")),
        "{inputs:?}"
    );
    let stg = complete("stg_orders");
    let lineage = &stg["outputs"][0]["facets"]["columnLineage"];
    let order_day = &lineage["fields"]["order_day"]["inputFields"][0];
    assert!(
        order_day["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("lake/orders"))
    );
    assert_eq!(order_day["field"], "order_ts");
    assert_eq!(order_day["transformations"][0]["type"], "DIRECT");
    assert!(
        lineage["dataset"]
            .as_array()
            .is_some_and(|d| d.iter().any(|f| f["field"] == "status"
                && f["transformations"][0]["type"] == "INDIRECT"
                && f["transformations"][0]["subtype"] == "FILTER")),
        "the WHERE on status shapes the dataset: {lineage:#}"
    );
    assert!(
        stg["job"]["facets"]["sql"]["query"]
            .as_str()
            .is_some_and(|q| q.contains("FROM orders"))
    );

    // The endpoint got the same events, in the same order, at Marquez's path.
    let posted = wait_for_hits(&hits, "/api/v1/lineage", events.len(), 10);
    let bodies: Vec<&Value> = posted.iter().map(|h| &h.body).collect();
    assert_eq!(bodies, events.iter().collect::<Vec<_>>());

    // A run that a blocking check fails is a FAIL event with the error.
    std::fs::write(
        dir.join("data/orders/2026-11-03.ndjson"),
        orders_file(900_001, 50, "lost_in_transit"),
    )
    .expect("bad file");
    let out = weir(&dir, &["run", "orders"]);
    assert!(!out.status.success());
    let events = events_in(&dir.join("lineage.ndjson"));
    let failed = events.last().expect("events");
    assert_eq!(failed["eventType"], "FAIL", "{failed:#}");
    assert_eq!(failed["job"]["name"], "orders");
    assert!(
        failed["run"]["facets"]["errorMessage"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("status_valid")),
        "{failed:#}"
    );
    let failed_check = failed["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
        .as_array()
        .expect("assertions")
        .iter()
        .find(|a| a["assertion"] == "status_valid")
        .cloned()
        .expect("the status check");
    assert_eq!(failed_check["success"], false);
    assert_eq!(hits_on(&hits, "/api/v1/lineage").len(), events.len());
    assert_valid_openlineage(&dir.join("lineage.ndjson"));
}

/// Every event in `path` validates against openlineage-python's model of the spec and its
/// standard facets (scripts/openlineage_validate.py; scripts/test.sh installs the package).
fn assert_valid_openlineage(path: &Path) {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/openlineage_validate.py");
    let out = Command::new(python)
        .arg(script)
        .arg(path)
        .output()
        .expect("python runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the events do not validate:\n{said}");
    assert!(said.contains("events valid"), "{said}");
}
