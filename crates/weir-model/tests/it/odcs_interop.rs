//! weir's contract parser against the ODCS standard and against an independent implementation
//! of it.
//!
//! `tests/odcs_corpus/` holds contracts across ODCS v3.0.x, v3.1.0 and v3.2.0, each named for
//! what the official JSON schema of its version says: `valid-*` or `invalid-*`. weir must
//! accept exactly the valid ones, and datacontract-cli (`datacontract lint`, installed by
//! `scripts/test.sh`) must reach the same verdict on each, apart from the divergences listed
//! in [`KNOWN_DIVERGENCES`], each with its cause. A third implementation settles those: the
//! Python `jsonschema` library (the reference implementation of JSON Schema in Python) runs
//! the same official schemas, must agree with weir on every contract, and must side with weir
//! on exactly the listed divergences — so a divergence is only accepted where datacontract-cli
//! is the one departing from the standard.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Contracts on which datacontract-cli and the official schema disagree, and why. The test
/// fails if one of them stops diverging, so the list cannot go stale.
const KNOWN_DIVERGENCES: &[(&str, &str)] = &[
    (
        "invalid-v310-unknown-property-key.yaml",
        "the official schema forbids unknown keys in a property (`unevaluatedProperties: false`, JSON Schema 2019-09); datacontract-cli validates with fastjsonschema, which ignores that keyword, and only warns about the key (an error from its January 2027 release, it says)",
    ),
    (
        "invalid-v310-rule-alias.yaml",
        "v3.1 replaced the v3.0 `rule` key of a quality rule by `metric` and closes quality rules with `unevaluatedProperties: false`; datacontract-cli ignores that keyword (as above) and passes it",
    ),
];

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/odcs_corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// weir's verdict: accepted when parsing gives a contract and no error.
fn weir_accepts(path: &Path) -> (bool, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("read");
    let (contract, diagnostics) = weir_model::parse_contract(path, &text);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| !d.is_warning)
        .map(|d| format!("{}: {}", d.field.as_deref().unwrap_or("-"), d.message))
        .collect();
    (contract.is_some() && errors.is_empty(), errors)
}

#[test]
fn the_corpus_covers_the_versions() {
    let files = corpus();
    assert!(files.len() >= 30, "{} contracts", files.len());
    for version in ["v300", "v301", "v302", "v310", "v320"] {
        assert!(
            files.iter().any(|f| name(f).contains(version)),
            "no contract for {version}"
        );
    }
    for verdict in ["valid-", "invalid-"] {
        assert!(files.iter().any(|f| name(f).starts_with(verdict)));
    }
}

#[test]
fn weir_accepts_exactly_what_the_official_schemas_accept() {
    let mut wrong = Vec::new();
    for file in corpus() {
        let expected = name(&file).starts_with("valid-");
        let (accepted, errors) = weir_accepts(&file);
        if accepted != expected {
            wrong.push(format!(
                "{}: expected {expected}, weir {accepted}: {errors:?}",
                name(&file)
            ));
        }
        if !accepted {
            // Every rejection names the field it is about.
            let text = std::fs::read_to_string(&file).expect("read");
            let (_, diagnostics) = weir_model::parse_contract(&file, &text);
            assert!(
                diagnostics
                    .iter()
                    .any(|d| !d.is_warning && d.field.is_some()),
                "{}: {diagnostics:?}",
                name(&file)
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runs one of the repository's Python scripts on `files`; its stdout is one JSON object keyed
/// by path.
fn run_script(script: &str, what: &str, files: &[PathBuf]) -> serde_json::Value {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    let out = Command::new(python)
        .arg(script)
        .args(files)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{what} failed (scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The reference validator's verdict per file: valid or not, with its errors.
fn reference_validate(files: &[PathBuf]) -> BTreeMap<String, (bool, Vec<String>)> {
    let doc = run_script(
        "odcs_reference_validate.py",
        "the reference validator (Python jsonschema)",
        files,
    );
    files
        .iter()
        .map(|f| {
            let entry = &doc[f.to_string_lossy().as_ref()];
            let valid = entry["valid"].as_bool().unwrap_or(false);
            (name(f), (valid, strings(&entry["errors"])))
        })
        .collect()
}

#[test]
fn weir_agrees_with_the_reference_json_schema_validator_on_every_contract() {
    let files = corpus();
    let reference = reference_validate(&files);
    let mut disagreements = Vec::new();
    for file in &files {
        let file_name = name(file);
        let (weir, errors) = weir_accepts(file);
        let (valid, theirs) = &reference[&file_name];
        if weir != *valid {
            disagreements.push(format!(
                "{file_name}: weir {weir} {errors:?}, reference {valid} {theirs:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// datacontract-cli's verdict per file: `passed`, `warning` (valid, with remarks) or `failed`.
pub fn datacontract_lint(files: &[PathBuf]) -> BTreeMap<String, (String, Vec<String>)> {
    let doc = run_script("datacontract_lint.py", "datacontract-cli", files);
    files
        .iter()
        .map(|f| {
            let entry = &doc[f.to_string_lossy().as_ref()];
            let result = entry["result"].as_str().unwrap_or("missing").to_string();
            (name(f), (result, strings(&entry["reasons"])))
        })
        .collect()
}

#[test]
fn weir_and_datacontract_cli_agree_on_every_contract() {
    let files = corpus();
    let lint = datacontract_lint(&files);
    let reference = reference_validate(&files);
    let mut report = Vec::new();
    let mut disagreements = Vec::new();
    for file in &files {
        let file_name = name(file);
        let (weir, errors) = weir_accepts(file);
        let (result, reasons) = &lint[&file_name];
        let theirs = result != "failed";
        report.push(format!(
            "{file_name:48} weir {:8} datacontract {result}",
            if weir { "accepts" } else { "rejects" }
        ));
        let known = KNOWN_DIVERGENCES.iter().any(|(f, _)| *f == file_name);
        match (weir == theirs, known) {
            (true, false) => {}
            (false, true) => {
                // Accepted only where the standard's reference implementation sides with weir.
                let (valid, why) = &reference[&file_name];
                if *valid != weir {
                    disagreements.push(format!(
                        "{file_name}: listed as datacontract-cli's departure from the schema, but the reference validator agrees with datacontract ({valid}, {why:?})"
                    ));
                }
            }
            (false, false) => disagreements.push(format!(
                "{file_name}: weir {weir} {errors:?}, datacontract {result} {reasons:?}"
            )),
            (true, true) => disagreements.push(format!(
                "{file_name} is listed in KNOWN_DIVERGENCES but the tools now agree: remove it"
            )),
        }
    }
    println!("{}", report.join("\n"));
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
