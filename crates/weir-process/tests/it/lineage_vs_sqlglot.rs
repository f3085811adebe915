//! weir's column lineage against an independent implementation: sqlglot's, run by
//! `sqlglot_lineage.py` on every query of `tests/lineage_corpus/corpus.sql`.
//!
//! Direct edges must agree exactly (precision and recall 1.0), except where the corpus
//! documents that sqlglot is wrong. Dataset-level indirect edges (filters, joins, grouping,
//! ordering), which the script derives from sqlglot's scopes, must agree by input column too
//! (their subtypes are not compared). Run with `--nocapture` to see the figures.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::{Value, json};
use weir_process::{Lineage, column_lineage};

type Pair = (String, String);

struct Table {
    name: String,
    /// `(column, SQL type)`.
    columns: Vec<(String, String)>,
}

#[derive(Default)]
struct Case {
    name: String,
    sql: String,
    /// `(column, pair, is_extra)`: sqlglot reports a wrong edge (`extra`) or misses one.
    sqlglot_wrong: Vec<(String, Pair, bool)>,
}

fn parse_corpus(text: &str) -> (Vec<Table>, Vec<Case>) {
    let mut tables = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("-- table ") {
            let (name, cols) = rest.split_once(':').expect("`-- table name: columns`");
            let columns = cols
                .split(',')
                .map(|c| {
                    let (col, ty) = c.trim().split_once(' ').expect("`column TYPE`");
                    (col.to_string(), ty.trim().to_string())
                })
                .collect();
            tables.push(Table {
                name: name.trim().to_string(),
                columns,
            });
        } else if let Some(name) = line.strip_prefix("-- case: ") {
            cases.push(Case {
                name: name.trim().to_string(),
                ..Case::default()
            });
        } else if let Some(rest) = line.strip_prefix("-- sqlglot-wrong: ") {
            let case = cases.last_mut().expect("sqlglot-wrong after a case");
            let (what, reason) = rest.split_once(": ").expect("a reason after `: `");
            assert!(!reason.trim().is_empty(), "{}: empty reason", case.name);
            let parts: Vec<&str> = what.split_whitespace().collect();
            let [column, how, pair] = parts.as_slice() else {
                panic!("{}: `column extra|missing table.column: reason`", case.name);
            };
            let (t, c) = pair.split_once('.').expect("table.column");
            let extra = match *how {
                "extra" => true,
                "missing" => false,
                other => panic!("{}: `{other}` is not extra or missing", case.name),
            };
            case.sqlglot_wrong
                .push((column.to_string(), (t.into(), c.into()), extra));
        } else if line.starts_with("--") {
        } else if let Some(case) = cases.last_mut() {
            case.sql.push_str(line);
            case.sql.push('\n');
        }
    }
    (tables, cases)
}

fn arrow_type(sql: &str) -> DataType {
    match sql {
        "BIGINT" => DataType::Int64,
        "DOUBLE PRECISION" => DataType::Float64,
        "TEXT" => DataType::Utf8,
        "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "TEXT[]" => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        other => panic!("corpus type {other} is not mapped"),
    }
}

/// Runs the Python side; fails loudly when Python or sqlglot is missing.
fn run_sqlglot(request: &Value) -> Value {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sqlglot_lineage.py");
    let hint = "install it with `./scripts/test.sh` (which pip-installs sqlglot) or \
                `<python> -m pip install sqlglot`; WEIR_TEST_PYTHON picks the interpreter";
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run Python `{python}` ({e}); {hint}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("python runs");
    assert!(
        out.status.success(),
        "the sqlglot lineage script failed with `{python}`: {}\n{hint}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

fn pairs(v: &Value) -> BTreeSet<Pair> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
        .collect()
}

#[derive(Default)]
struct Score {
    agreed: usize,
    weir_only: usize,
    sqlglot_only: usize,
}

impl Score {
    fn add(&mut self, weir: &BTreeSet<Pair>, expected: &BTreeSet<Pair>) {
        self.agreed += weir.intersection(expected).count();
        self.weir_only += weir.difference(expected).count();
        self.sqlglot_only += expected.difference(weir).count();
    }
    fn precision(&self) -> f64 {
        ratio(self.agreed, self.agreed + self.weir_only)
    }
    fn recall(&self) -> f64 {
        ratio(self.agreed, self.agreed + self.sqlglot_only)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

#[tokio::test]
async fn lineage_agrees_with_sqlglot() {
    let corpus_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lineage_corpus/corpus.sql");
    let text = std::fs::read_to_string(&corpus_path).expect("corpus");
    let (tables, cases) = parse_corpus(&text);
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());

    let upstream: Vec<(String, SchemaRef)> = tables
        .iter()
        .map(|t| {
            let fields: Vec<Field> = t
                .columns
                .iter()
                .map(|(c, ty)| Field::new(c, arrow_type(ty), true))
                .collect();
            (t.name.clone(), Arc::new(Schema::new(fields)) as SchemaRef)
        })
        .collect();
    let mut weir: Vec<Lineage> = Vec::new();
    for case in &cases {
        let lineage = column_lineage(&case.sql, &upstream)
            .await
            .unwrap_or_else(|e| panic!("{}: weir cannot plan it: {}", case.name, e.message));
        weir.push(lineage);
    }

    let schema: serde_json::Map<String, Value> = tables
        .iter()
        .map(|t| {
            let cols: Vec<Value> = t.columns.iter().map(|(c, ty)| json!([c, ty])).collect();
            (t.name.clone(), Value::Array(cols))
        })
        .collect();
    let request = json!({
        "schema": schema,
        "cases": cases.iter().map(|c| json!({ "name": c.name, "sql": c.sql })).collect::<Vec<_>>(),
    });
    let answer = run_sqlglot(&request);
    let results = answer["cases"].as_array().expect("cases");
    assert_eq!(results.len(), cases.len());

    let mut direct = Score::default();
    let mut dataset = Score::default();
    let mut problems = Vec::new();
    let mut dataset_differences = Vec::new();
    let mut excluded = 0;
    let mut columns = 0;
    for ((case, lineage), result) in cases.iter().zip(&weir).zip(results) {
        if let Some(error) = result["error"].as_str() {
            problems.push(format!("{}: sqlglot failed: {error}", case.name));
            continue;
        }
        let theirs = result["columns"].as_array().expect("columns");
        let names: Vec<String> = lineage
            .columns
            .iter()
            .map(|c| c.column.to_lowercase())
            .collect();
        let their_names: Vec<String> = theirs
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_lowercase())
            .collect();
        if names != their_names {
            problems.push(format!(
                "{}: weir outputs {names:?}, sqlglot {their_names:?}",
                case.name
            ));
            continue;
        }
        for (col, their) in lineage.columns.iter().zip(theirs) {
            columns += 1;
            if col.unknown {
                problems.push(format!("{}.{}: weir says unknown", case.name, col.column));
            }
            let ours: BTreeSet<Pair> = col
                .direct()
                .map(|e| (e.table.clone(), e.column.clone()))
                .collect();
            let mut expected = pairs(&their["direct"]);
            for (column, pair, extra) in &case.sqlglot_wrong {
                if column.eq_ignore_ascii_case(&col.column) {
                    excluded += 1;
                    let changed = if *extra {
                        expected.remove(pair)
                    } else {
                        expected.insert(pair.clone())
                    };
                    if !changed {
                        problems.push(format!(
                            "{}.{}: stale sqlglot-wrong line for {pair:?}",
                            case.name, col.column
                        ));
                    }
                }
            }
            direct.add(&ours, &expected);
            if ours != expected {
                problems.push(format!(
                    "{}.{}: weir {ours:?}, sqlglot {expected:?}",
                    case.name, col.column
                ));
            }
        }
        let ours: BTreeSet<Pair> = lineage
            .dataset
            .iter()
            .map(|e| (e.table.clone(), e.column.clone()))
            .collect();
        let theirs = pairs(&result["dataset"]);
        dataset.add(&ours, &theirs);
        if ours != theirs {
            dataset_differences.push(format!("{}: weir {ours:?}, sqlglot {theirs:?}", case.name));
        }
    }
    println!(
        "lineage corpus: {} queries, {columns} columns, sqlglot {}",
        cases.len(),
        answer["sqlglot"].as_str().unwrap_or("?")
    );
    println!(
        "direct edges: precision {:.3}, recall {:.3} ({} agreed, {} weir only, {} sqlglot only; {excluded} documented sqlglot errors excluded)",
        direct.precision(),
        direct.recall(),
        direct.agreed,
        direct.weir_only,
        direct.sqlglot_only
    );
    println!(
        "dataset indirect edges (by input column): precision {:.3}, recall {:.3} ({} agreed, {} weir only, {} sqlglot only)",
        dataset.precision(),
        dataset.recall(),
        dataset.agreed,
        dataset.weir_only,
        dataset.sqlglot_only
    );
    for d in &dataset_differences {
        println!("  dataset differs: {d}");
    }
    assert!(
        problems.is_empty()
            && direct.precision() == 1.0
            && direct.recall() == 1.0
            && dataset.precision() == 1.0
            && dataset.recall() == 1.0,
        "weir and sqlglot disagree:\n{}",
        problems.join("\n")
    );
}
