//! `weir test`: the model unit tests under `tests/`, each run in memory on DataFusion (no
//! table is read or written). Exit 0 when all pass, 1 when one fails, 2 when one cannot run
//! (a test naming an unknown model, table or column; SQL that does not plan).

use std::path::Path;

use serde_json::json;
use weir_model::{LocatedTest, did_you_mean};
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

pub async fn test(root: &Path, only: &[String], json: bool) -> anyhow::Result<Outcome> {
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
        .filter(|t| only.is_empty() || only.contains(&t.test.name) || only.contains(&t.test.model))
        .collect();
    let (mut passed, mut failed, mut errors) = (0, 0, 0);
    let mut docs = Vec::new();
    for t in &tests {
        let file = t
            .file
            .strip_prefix(&project.root)
            .unwrap_or(&t.file)
            .display()
            .to_string();
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
    if json {
        crate::output::print_json(json!({
            "tests": docs, "passed": passed, "failed": failed, "errors": errors,
        }));
    } else if tests.is_empty() {
        println!("no model tests under tests/ (see the README's \"Model unit tests\")");
    } else {
        println!(
            "\n{}: {passed} passed, {failed} failed, {errors} could not run",
            crate::output::count(tests.len(), "test")
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
