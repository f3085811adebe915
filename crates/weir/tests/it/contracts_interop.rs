//! Contracts as the ODCS ecosystem writes and reads them: every contract weir writes passes
//! datacontract-cli's lint, and contracts in the v3.0 and v3.2 forms run end to end.

use std::path::PathBuf;

use crate::support::{assert_datacontract_lint_passes, demo_project, run_json, run_of};

#[test]
fn every_contract_weir_writes_passes_datacontract_lint() {
    let (_tmp, dir) = demo_project();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("contracts"))
        .expect("contracts")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 6);
    assert_datacontract_lint_passes(&files);
}

#[test]
fn v30_and_v32_contracts_run_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    for sub in ["contracts", "sources", "data/old", "data/new"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(dir.join("weir.toml"), "[project]\nname = \"versions\"\n").expect("write");
    // v3.0.2: team as a list, rules by their v3.0 names.
    std::fs::write(
        dir.join("contracts/old.odcs.yaml"),
        "apiVersion: v3.0.2\nkind: DataContract\nid: old\nversion: 1.0.0\nstatus: active\nteam:\n  - username: ana@example.com\n    role: owner\nschema:\n  - name: old\n    quality:\n      - rule: rowCount\n        mustBeGreaterThan: 0\n    properties:\n      - name: id\n        logicalType: integer\n        required: true\n        quality:\n          - rule: duplicateCount\n            mustBe: 0\n      - name: status\n        logicalType: string\n        quality:\n          - rule: validValues\n            validValues: [paid, placed]\n            mustBeLessThan: 5\n",
    )
    .expect("write");
    // v3.2.0: the property's enum is enforced row by row.
    std::fs::write(
        dir.join("contracts/new.odcs.yaml"),
        "apiVersion: v3.2.0\nkind: DataContract\nid: new\nversion: 1.0.0\nstatus: active\nteam:\n  name: ops\n  members:\n    - username: bo@example.com\n      role: owner\nschema:\n  - name: new\n    properties:\n      - name: id\n        logicalType: integer\n        semanticType: dimension\n      - name: status\n        logicalType: string\n        enum:\n          - value: paid\n          - value: placed\n            label: Placed\n",
    )
    .expect("write");
    for name in ["old", "new"] {
        std::fs::write(
            dir.join(format!("sources/{name}.toml")),
            format!("format = \"csv\"\npath = \"data/{name}/*.csv\"\n"),
        )
        .expect("write");
        std::fs::write(
            dir.join(format!("data/{name}/a.csv")),
            "id,status\n1,paid\n2,placed\n3,lost\n",
        )
        .expect("write");
    }
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let old = run_of(&doc, "old");
    assert_eq!(old["rows_stored"], 2, "{old}");
    assert_eq!(old["rows_quarantined"], 1, "{old}");
    assert_eq!(old["quarantine_by_rule"]["status.quality[0]"], 1, "{old}");
    // The v3.0 team list is the team: its owner owns the asset.
    let out = crate::support::weir(&dir, &["lineage", "--json"]);
    let lineage: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let owners = lineage["assets"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "old"))
        .map(|x| x["owners"].clone());
    assert_eq!(
        owners,
        Some(serde_json::json!(["ana@example.com"])),
        "{lineage}"
    );
    let new = run_of(&doc, "new");
    assert_eq!(new["rows_stored"], 2, "{new}");
    assert_eq!(new["rows_quarantined"], 1, "{new}");
    assert_eq!(new["quarantine_by_rule"]["status.enum"], 1, "{new}");
}
