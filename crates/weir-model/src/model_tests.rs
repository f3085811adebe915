//! Model unit tests: `tests/*.yaml` in the project, each a list of tests that give rows for a
//! model's upstream tables and the rows the model must produce from them, the way dbt's unit
//! tests do. `weir test` runs them in-process; this module only reads and checks the files.
//!
//! ```yaml
//! tests:
//!   - name: revenue_adds_up_per_day_and_country
//!     model: daily_revenue
//!     given:
//!       stg_orders:
//!         - {order_id: 1, customer_id: 7, order_day: 2026-11-01, amount: 10.5}
//!       customers:
//!         - {customer_id: 7, country: DE}
//!     expect:
//!       - {order_day: 2026-11-01, country: DE, orders: 1, revenue: 10.5}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One row: column name to value (a missing column is null).
pub type TestRow = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTest {
    pub name: String,
    pub model: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Rows of each upstream table; an upstream table not given is empty.
    #[serde(default)]
    pub given: BTreeMap<String, Vec<TestRow>>,
    /// The rows the model must produce, in any order. Only the columns named in them are
    /// compared.
    pub expect: Vec<TestRow>,
}

/// A contract test: sample rows checked against a contract's rules, the way a source run
/// checks them, with the rows it must quarantine (and for which rule) and the verdict of the
/// named dataset checks.
///
/// ```yaml
/// contract_tests:
///   - name: negative_amounts_are_quarantined
///     contract: orders
///     rows:
///       - {order_id: 1, customer_id: 7, order_ts: "2026-11-01T10:00:00Z", status: paid, amount: 10.5, currency: EUR}
///       - {order_id: 2, customer_id: 7, order_ts: "2026-11-01T11:00:00Z", status: paid, amount: -1, currency: EUR}
///     expect:
///       stored: 1
///       quarantined: {2: amount.minimum}
///       checks: {orders_volume: fail}
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractTest {
    pub name: String,
    /// The asset whose contract is tested.
    pub contract: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The sample rows, as a text file would give them (values are read as their text).
    pub rows: Vec<TestRow>,
    #[serde(default)]
    pub expect: ContractExpectation,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractExpectation {
    /// Rows that must be stored; unchecked when absent.
    #[serde(default)]
    pub stored: Option<u64>,
    /// Row number (1-based) → the rule id it must be quarantined for; every other row must
    /// be stored.
    #[serde(default)]
    pub quarantined: BTreeMap<u64, String>,
    /// Dataset check id → `pass` or `fail`; checks not named are not compared.
    #[serde(default)]
    pub checks: BTreeMap<String, CheckVerdict>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckVerdict {
    Pass,
    Fail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    tests: Vec<ModelTest>,
    #[serde(default)]
    contract_tests: Vec<ContractTest>,
}

/// A contract test with the file it came from.
#[derive(Debug, Clone)]
pub struct LocatedContractTest {
    pub file: PathBuf,
    pub test: ContractTest,
}

/// A test with the file it came from.
#[derive(Debug, Clone)]
pub struct LocatedTest {
    pub file: PathBuf,
    pub test: ModelTest,
}

/// Every test file under `root/tests/` (`*.yaml`, `*.yml`), by file name; or the first file
/// that does not parse, with why.
fn load_test_files(root: &Path) -> Result<Vec<(PathBuf, TestFile)>, String> {
    let dir = root.join("tests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml")
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed: TestFile =
            serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        out.push((file, parsed));
    }
    Ok(out)
}

/// Every model test under `root/tests/`, by file name then order in the file; or the first
/// file that does not parse, with why.
pub fn load_model_tests(root: &Path) -> Result<Vec<LocatedTest>, String> {
    Ok(load_test_files(root)?
        .into_iter()
        .flat_map(|(file, parsed)| {
            parsed.tests.into_iter().map(move |test| LocatedTest {
                file: file.clone(),
                test,
            })
        })
        .collect())
}

/// Every contract test under `root/tests/`, in the same order.
pub fn load_contract_tests(root: &Path) -> Result<Vec<LocatedContractTest>, String> {
    Ok(load_test_files(root)?
        .into_iter()
        .flat_map(|(file, parsed)| {
            parsed
                .contract_tests
                .into_iter()
                .map(move |test| LocatedContractTest {
                    file: file.clone(),
                    test,
                })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_are_read_in_file_order_and_a_typo_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("tests")).expect("dir");
        std::fs::write(
            dir.path().join("tests/b.yaml"),
            "tests:\n  - name: second\n    model: m\n    expect: []\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("tests/a.yaml"),
            "tests:\n  - name: first\n    model: m\n    given:\n      t: [{x: 1}]\n    expect: [{x: 1}]\n",
        )
        .expect("write");
        let tests = load_model_tests(dir.path()).expect("load");
        let names: Vec<&str> = tests.iter().map(|t| t.test.name.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        assert_eq!(tests[0].test.given["t"][0]["x"], 1);
        std::fs::write(
            dir.path().join("tests/c.yaml"),
            "tests:\n  - name: x\n    model: m\n    expected: []\n",
        )
        .expect("write");
        let err = load_model_tests(dir.path()).expect_err("a typo");
        assert!(err.contains("c.yaml") && err.contains("expected"), "{err}");
    }
}
