//! CSV that cannot be misread: a stray quote costs one line, a wrong delimiter fails the file
//! with a hint instead of quarantining every line, and a missing required column fails the file
//! naming it. Rows are counted with the Python `deltalake` reader.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{PyLake, run_json, run_of};

const ITEMS: &str = "apiVersion: v3.1.0
kind: DataContract
id: items
version: 1.0.0
status: active
schema:
  - name: items
    properties:
      - name: id
        logicalType: integer
        required: true
      - name: name
        logicalType: string
        required: true
      - name: amount
        logicalType: integer
";

fn project(source: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    for sub in ["contracts", "sources", "data"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(dir.join("weir.toml"), "[project]\nname = \"csv\"\n").expect("write");
    std::fs::write(dir.join("contracts/items.odcs.yaml"), ITEMS).expect("write");
    std::fs::write(dir.join("sources/items.toml"), source).expect("write");
    (tmp, dir)
}

const SOURCE: &str = "format = \"csv\"\npath = \"data/*.csv\"\nmax_quarantined = \"100%\"\n";

/// Stored ids and live quarantine rows (`source|position|rule`) of `items`.
fn lake(dir: &Path) -> (Vec<i64>, Vec<String>) {
    let table = dir.join("lake/items");
    let quarantine = dir.join("lake/_quarantine/items");
    let read = PyLake::start().read(&[(&table, "id")], &[&quarantine]);
    let ids = read.tables[&table.display().to_string()]
        .iter()
        .map(|v| v.as_i64().expect("an id"))
        .collect();
    (
        ids,
        read.quarantines[&quarantine.display().to_string()].clone(),
    )
}

fn rows(delimiter: char, ids: std::ops::Range<i64>) -> String {
    let mut text = format!("id{delimiter}name{delimiter}amount\n");
    for i in ids {
        text.push_str(&format!("{i}{delimiter}name{i}{delimiter}{}\n", i % 97));
    }
    text
}

fn rejected(run: &Value) -> Vec<(String, String)> {
    run["rejected_files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| {
                    (
                        f["path"].as_str().unwrap_or_default().to_string(),
                        f["reason"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_stray_quote_in_200k_rows_quarantines_that_line_alone() {
    let (_tmp, dir) = project(SOURCE);
    // Line 11 (data row 9, after the header): `9,"name9,9` opens a quote nothing closes.
    let mut text = String::from("id,name,amount\n");
    for i in 0..200_000i64 {
        if i == 9 {
            text.push_str("9,\"name9,9\n");
        } else {
            text.push_str(&format!("{i},name{i},{}\n", i % 97));
        }
    }
    std::fs::write(dir.join("data/big.csv"), text).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "items");
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["rows_in"], 200_000, "{run}");
    assert_eq!(run["rows_stored"], 199_999, "{run}");
    assert_eq!(run["rows_quarantined"], 1, "{run}");
    let (ids, quarantined) = lake(&dir);
    assert_eq!(quarantined, ["data/big.csv|11|decode.unbalanced_quote"]);
    assert_eq!(ids.len(), 199_999);
    assert_eq!(ids.len() + quarantined.len(), 200_000);
    let expected: Vec<i64> = (0..200_000).filter(|&i| i != 9).collect();
    assert_eq!(ids, expected, "every other row is stored once");
}

#[test]
fn a_semicolon_file_is_sniffed_or_fails_with_a_hint_when_the_delimiter_is_forced() {
    // Sniffed: both files read, the `;` one with a warning naming the delimiter.
    let (_tmp, dir) = project(SOURCE);
    std::fs::write(dir.join("data/a.csv"), rows(',', 0..50)).expect("write");
    std::fs::write(dir.join("data/b.csv"), rows(';', 100..180)).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 0, "{doc}");
    let run = run_of(&doc, "items");
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["rows_quarantined"], 0, "{run}");
    let warnings = run["warnings"].to_string();
    assert!(
        warnings.contains("data/b.csv: detected delimiter ';'"),
        "{warnings}"
    );
    assert!(!warnings.contains("data/a.csv"), "{warnings}");
    let (ids, quarantined) = lake(&dir);
    assert!(quarantined.is_empty(), "{quarantined:?}");
    assert_eq!(ids, (0..50).chain(100..180).collect::<Vec<_>>());

    // Forced to `,`: the `;` file fails whole with a hint, the other is published.
    let forced = format!("{SOURCE}[options]\ndelimiter = \",\"\n");
    let (_tmp, dir) = project(&forced);
    std::fs::write(dir.join("data/a.csv"), rows(',', 0..50)).expect("write");
    std::fs::write(dir.join("data/b.csv"), rows(';', 100..180)).expect("write");
    for round in 0..2 {
        let (code, doc) = run_json(&dir, &[]);
        assert_eq!(code, 1, "round {round}: {doc}");
        let run = run_of(&doc, "items");
        let expected = if round == 0 { "partial" } else { "error" };
        assert_eq!(run["status"], expected, "round {round}: {run}");
        let message = if round == 0 {
            let rejected = rejected(run);
            assert_eq!(rejected.len(), 1, "{run}");
            assert_eq!(rejected[0].0, "data/b.csv");
            rejected[0].1.clone()
        } else {
            run["error"].as_str().unwrap_or_default().to_string()
        };
        assert!(message.contains("';'"), "round {round}: {message}");
        assert!(message.contains("options.delimiter"), "{message}");
        let (ids, quarantined) = lake(&dir);
        assert!(quarantined.is_empty(), "{quarantined:?}");
        assert_eq!(ids, (0..50).collect::<Vec<_>>(), "nothing from b.csv");
    }

    // Without a header, every line has one field: the file fails instead of quarantining all.
    let headerless = format!("{SOURCE}[options]\ndelimiter = \",\"\nheader = false\n");
    let (_tmp, dir) = project(&headerless);
    let text: String = (0..40).map(|i| format!("{i};name{i};{i}\n")).collect();
    std::fs::write(dir.join("data/b.csv"), text).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let run = run_of(&doc, "items");
    assert_eq!(run["status"], "error", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("data/b.csv") && error.contains("delimiter looks like ';'"),
        "{error}"
    );
    let (ids, quarantined) = lake(&dir);
    assert!(
        ids.is_empty() && quarantined.is_empty(),
        "{ids:?} {quarantined:?}"
    );
}

#[test]
fn a_required_column_missing_from_the_header_fails_that_file_naming_it() {
    let (_tmp, dir) = project(SOURCE);
    std::fs::write(dir.join("data/a.csv"), rows(',', 0..10)).expect("write");
    let text: String = std::iter::once("id,amount\n".to_string())
        .chain((10..20).map(|i| format!("{i},{i}\n")))
        .collect();
    std::fs::write(dir.join("data/b.csv"), text).expect("write");
    let (code, doc) = run_json(&dir, &[]);
    assert_eq!(code, 1, "{doc}");
    let run = run_of(&doc, "items");
    assert_eq!(run["status"], "partial", "{run}");
    let rejected = rejected(run);
    assert_eq!(rejected.len(), 1, "{run}");
    assert_eq!(rejected[0].0, "data/b.csv");
    assert!(rejected[0].1.contains("name"), "{}", rejected[0].1);
    let (ids, quarantined) = lake(&dir);
    assert!(quarantined.is_empty(), "{quarantined:?}");
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
}
