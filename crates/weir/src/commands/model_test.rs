//! `weir test`: the model unit tests and contract tests under `tests/`, each run in memory
//! (no table is read or written). Exit 0 when all pass, 1 when one fails, 2 when one cannot
//! run (a test naming an unknown model, contract, table or column; SQL that does not plan).

use std::path::Path;

use serde_json::json;
use weir_model::{LocatedContractTest, LocatedTest, did_you_mean};
use weir_quality::{ParseOptions, Validator};

use crate::Outcome;

enum Verdict {
    Ran(weir_process::TestOutcome),
    Error(String),
}

async fn run_one(
    project: &weir_model::Project,
    graph: &weir_orchestrate::AssetGraph,
    t: &LocatedTest,
) -> Verdict {
    let Some(model) = project.asset(&t.test.model).and_then(|a| a.model.as_ref()) else {
        let models: Vec<String> = project
            .assets
            .iter()
            .filter(|a| a.model.is_some())
            .map(|a| a.name.clone())
            .collect();
        return Verdict::Error(format!(
            "no model `{}`{}",
            t.test.model,
            did_you_mean(&t.test.model, models.iter())
        ));
    };
    let mut upstream = Vec::new();
    for name in graph.upstream.get(&t.test.model).into_iter().flatten() {
        let Some(up) = project.asset(name) else {
            continue;
        };
        match Validator::new(name, &up.contract, ParseOptions::default()) {
            Ok(v) => upstream.push((name.clone(), v.schema())),
            Err(e) => return Verdict::Error(format!("{name}'s contract: {e}")),
        }
    }
    match weir_process::run_model_test(&model.sql, &upstream, &t.test.given, &t.test.expect).await {
        Ok(outcome) => Verdict::Ran(outcome),
        Err(e) => Verdict::Error(e.message),
    }
}

/// A test file's path relative to the project, for messages.
fn relative(project: &weir_model::Project, file: &Path) -> String {
    file.strip_prefix(&project.root)
        .unwrap_or(file)
        .display()
        .to_string()
}

pub async fn test(
    root: &Path,
    only: &[String],
    contracts_only: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let Some(graph) = super::graph(&project, json) else {
        return Ok(Outcome::BadInput);
    };
    let tests = match weir_model::load_model_tests(&project.root) {
        Ok(tests) => tests,
        Err(why) => return Ok(crate::output::user_error("project", why)),
    };
    let tests: Vec<LocatedTest> = tests
        .into_iter()
        .filter(|_| !contracts_only)
        .filter(|t| only.is_empty() || only.contains(&t.test.name) || only.contains(&t.test.model))
        .collect();
    let contract_tests = match weir_model::load_contract_tests(&project.root) {
        Ok(tests) => tests,
        Err(why) => return Ok(crate::output::user_error("project", why)),
    };
    let contract_tests: Vec<LocatedContractTest> = contract_tests
        .into_iter()
        .filter(|t| {
            only.is_empty() || only.contains(&t.test.name) || only.contains(&t.test.contract)
        })
        .collect();
    let (mut passed, mut failed, mut errors) = (0, 0, 0);
    let mut docs = Vec::new();
    for t in &tests {
        let file = relative(&project, &t.file);
        let verdict = run_one(&project, &graph, t).await;
        let doc = match &verdict {
            Verdict::Ran(o) if o.passed() => {
                passed += 1;
                json!({"name": t.test.name, "model": t.test.model, "file": file, "status": "passed",
                       "columns": o.columns, "produced": o.produced, "missing": o.missing,
                       "unexpected": o.unexpected, "error": null})
            }
            Verdict::Ran(o) => {
                failed += 1;
                json!({"name": t.test.name, "model": t.test.model, "file": file, "status": "failed",
                       "columns": o.columns, "produced": o.produced, "missing": o.missing,
                       "unexpected": o.unexpected, "error": null})
            }
            Verdict::Error(e) => {
                errors += 1;
                json!({"name": t.test.name, "model": t.test.model, "file": file, "status": "error",
                       "columns": [], "produced": 0, "missing": [], "unexpected": [], "error": e})
            }
        };
        if !json {
            print_verdict(t, &file, &verdict);
        }
        docs.push(doc);
    }
    let mut contract_docs = Vec::new();
    for t in &contract_tests {
        let file = relative(&project, &t.file);
        let outcome = match project.asset(&t.test.contract) {
            Some(asset) => {
                weir_quality::run_contract_test(
                    &asset.name,
                    &asset.contract,
                    &t.test.rows,
                    &t.test.expect,
                )
                .await
            }
            None => {
                let names: Vec<String> = project.assets.iter().map(|a| a.name.clone()).collect();
                Err(format!(
                    "no contract for `{}`{}",
                    t.test.contract,
                    did_you_mean(&t.test.contract, names.iter())
                ))
            }
        };
        let doc = match &outcome {
            Ok(o) => {
                let status = if o.failures.is_empty() {
                    passed += 1;
                    "passed"
                } else {
                    failed += 1;
                    "failed"
                };
                if !json {
                    println!(
                        "{}  {} (contract {}: {} stored, {} quarantined)",
                        if status == "passed" { "PASS" } else { "FAIL" },
                        t.test.name,
                        t.test.contract,
                        o.stored,
                        o.quarantined.len()
                    );
                    for f in &o.failures {
                        println!("      {f}");
                    }
                }
                let checks: Vec<serde_json::Value> = o
                    .checks
                    .iter()
                    .map(|c| json!({"id": c.id, "passed": c.passed, "value": c.value}))
                    .collect();
                json!({"name": t.test.name, "contract": t.test.contract, "file": file, "status": status,
                       "stored": o.stored, "quarantined": o.quarantined, "checks": checks,
                       "failures": o.failures, "error": null})
            }
            Err(e) => {
                errors += 1;
                if !json {
                    println!(
                        "ERROR {} (contract {}, {file}): {e}",
                        t.test.name, t.test.contract
                    );
                }
                json!({"name": t.test.name, "contract": t.test.contract, "file": file, "status": "error",
                       "stored": 0, "quarantined": {}, "checks": [], "failures": [], "error": e})
            }
        };
        contract_docs.push(doc);
    }
    let total = tests.len() + contract_tests.len();
    if json {
        crate::output::print_json(json!({
            "tests": docs, "contract_tests": contract_docs,
            "passed": passed, "failed": failed, "errors": errors,
        }));
    } else if total == 0 {
        println!(
            "no tests under tests/ (see the README's \"Model unit tests\" and \"Contract tests\")"
        );
    } else {
        println!(
            "\n{}: {passed} passed, {failed} failed, {errors} could not run",
            crate::output::count(total, "test")
        );
    }
    Ok(if errors > 0 {
        Outcome::BadInput
    } else if failed > 0 {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}

fn print_verdict(t: &LocatedTest, file: &str, verdict: &Verdict) {
    match verdict {
        Verdict::Ran(o) if o.passed() => {
            println!(
                "PASS  {} ({}, {} rows)",
                t.test.name, t.test.model, o.produced
            );
        }
        Verdict::Ran(o) => {
            println!("FAIL  {} ({}, {file})", t.test.name, t.test.model);
            for row in &o.missing {
                println!("      - expected, not produced: {row}");
            }
            for row in &o.unexpected {
                println!("      + produced, not expected: {row}");
            }
        }
        Verdict::Error(e) => {
            println!("ERROR {} ({}, {file}): {e}", t.test.name, t.test.model);
        }
    }
}
