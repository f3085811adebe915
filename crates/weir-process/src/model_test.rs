//! Runs one model unit test in memory: each upstream table is the test's rows (typed by the
//! upstream contract; columns a test leaves out are null), the model's SQL runs on DataFusion,
//! and the rows it produces are compared with the expected ones as a multiset, on the columns
//! the expected rows name. Values are compared as the output column's type prints them, so
//! `10.5` expected from a `decimal(12,2)` column matches `10.50`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::deps::SqlError;

/// One row of a test: column name to value.
pub type Row = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// The columns compared, in the model's output order.
    pub columns: Vec<String>,
    /// Expected rows the model did not produce (as `col=value, ...`).
    pub missing: Vec<String>,
    /// Rows the model produced that were not expected.
    pub unexpected: Vec<String>,
    pub produced: usize,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }
}

fn error(message: String) -> SqlError {
    SqlError {
        line: None,
        column: None,
        message,
    }
}

/// `rows` as one batch of `schema` (every column nullable); `what` names them in errors.
fn to_batch(schema: &Schema, rows: &[Row], what: &str) -> Result<RecordBatch, SqlError> {
    for (i, row) in rows.iter().enumerate() {
        if let Some(unknown) = row.keys().find(|k| schema.field_with_name(k).is_err()) {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(error(format!(
                "{what}, row {}: no column `{unknown}` (the columns: {})",
                i + 1,
                names.join(", ")
            )));
        }
    }
    let nullable: SchemaRef = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let mut text = String::new();
    for row in rows {
        text.push_str(
            &serde_json::Value::from(serde_json::Map::from_iter(row.clone())).to_string(),
        );
        text.push('\n');
    }
    let reader = arrow::json::ReaderBuilder::new(nullable.clone())
        .build(std::io::Cursor::new(text.into_bytes()))
        .map_err(|e| error(format!("{what}: {e}")))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("{what}: {e}")))?;
    arrow::compute::concat_batches(&nullable, &batches).map_err(|e| error(format!("{what}: {e}")))
}

/// Each row of `batch` on `columns`, as `col=value, ...`.
fn printed(batch: &RecordBatch, columns: &[String]) -> Result<Vec<String>, SqlError> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters = columns
        .iter()
        .map(|c| {
            let array = batch
                .column_by_name(c)
                .ok_or_else(|| error(format!("no column `{c}`")))?;
            ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| error(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .zip(&formatters)
                .map(|(c, f)| format!("{c}={}", f.value(row)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect())
}

/// Runs `sql` over `given` rows of its `upstream` tables and compares with `expect`.
pub async fn run_model_test(
    sql: &str,
    upstream: &[(String, SchemaRef)],
    given: &BTreeMap<String, Vec<Row>>,
    expect: &[Row],
) -> Result<TestOutcome, SqlError> {
    if let Some(unknown) = given
        .keys()
        .find(|g| !upstream.iter().any(|(n, _)| n == *g))
    {
        let reads: Vec<&str> = upstream.iter().map(|(n, _)| n.as_str()).collect();
        return Err(error(format!(
            "`{unknown}` is not a table the model reads (it reads {})",
            reads.join(", ")
        )));
    }
    let ctx = SessionContext::new();
    for (name, schema) in upstream {
        let rows = given.get(name).map(Vec::as_slice).unwrap_or_default();
        let batch = to_batch(schema, rows, &format!("given `{name}`"))?;
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])
            .map_err(|e| error(e.to_string()))?;
        ctx.register_table(name.as_str(), Arc::new(table))
            .map_err(|e| error(e.to_string()))?;
    }
    let df = ctx.sql(sql).await.map_err(|e| error(e.strip_backtrace()))?;
    let output = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(|e| error(e.strip_backtrace()))?;
    let produced = arrow::compute::concat_batches(&Arc::new(output.clone()), &batches)
        .map_err(|e| error(e.to_string()))?;

    let named: std::collections::BTreeSet<&String> = expect.iter().flat_map(|r| r.keys()).collect();
    if let Some(unknown) = named.iter().find(|c| output.field_with_name(c).is_err()) {
        let names: Vec<&str> = output.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(error(format!(
            "expected column `{unknown}` is not in the model's output (it has {})",
            names.join(", ")
        )));
    }
    let columns: Vec<String> = output
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| named.contains(n) || named.is_empty())
        .collect();
    let projected = Schema::new(
        columns
            .iter()
            .filter_map(|c| output.field_with_name(c).ok().cloned())
            .collect::<Vec<_>>(),
    );
    let expected = to_batch(&projected, expect, "expect")?;
    let mut want = printed(&expected, &columns)?;
    let mut got = printed(&produced, &columns)?;
    want.sort();
    got.sort();
    // Multiset difference: a row expected twice must be produced twice.
    let (mut missing, mut unexpected) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(w), Some(g)) if w == g => {
                i += 1;
                j += 1;
            }
            (Some(w), Some(g)) if w < g => {
                missing.push(w.clone());
                i += 1;
            }
            (Some(w), None) => {
                missing.push(w.clone());
                i += 1;
            }
            (_, Some(g)) => {
                unexpected.push(g.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    Ok(TestOutcome {
        columns,
        missing,
        unexpected,
        produced: produced.num_rows(),
    })
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;
    use serde_json::json;

    use super::*;

    fn row(v: serde_json::Value) -> Row {
        serde_json::from_value(v).expect("a row")
    }

    fn orders() -> Vec<(String, SchemaRef)> {
        vec![(
            "orders".into(),
            Arc::new(Schema::new(vec![
                Field::new("order_id", DataType::Int64, false),
                Field::new("day", DataType::Date32, false),
                Field::new("amount", DataType::Decimal128(12, 2), false),
            ])),
        )]
    }

    const SQL: &str =
        "SELECT day, COUNT(*) AS orders, SUM(amount) AS revenue FROM orders GROUP BY day";

    #[tokio::test]
    async fn a_model_that_does_what_the_test_says_passes_and_one_that_does_not_is_shown() {
        let given = BTreeMap::from([(
            "orders".to_string(),
            vec![
                row(json!({"order_id": 1, "day": "2026-11-01", "amount": 10.5})),
                row(json!({"order_id": 2, "day": "2026-11-01", "amount": 4})),
                row(json!({"order_id": 3, "day": "2026-11-02", "amount": 1})),
            ],
        )]);
        let expect = vec![
            row(json!({"day": "2026-11-01", "orders": 2, "revenue": 14.5})),
            row(json!({"day": "2026-11-02", "orders": 1, "revenue": 1})),
        ];
        let ok = run_model_test(SQL, &orders(), &given, &expect)
            .await
            .expect("runs");
        assert!(ok.passed(), "{ok:?}");
        let wrong = run_model_test(
            "SELECT day, COUNT(*) AS orders, SUM(amount) AS revenue FROM orders WHERE amount > 5 GROUP BY day",
            &orders(),
            &given,
            &expect,
        )
        .await
        .expect("runs");
        assert!(!wrong.passed());
        assert_eq!(
            wrong.missing,
            [
                "day=2026-11-01, orders=2, revenue=14.50",
                "day=2026-11-02, orders=1, revenue=1.00"
            ]
        );
        assert_eq!(
            wrong.unexpected,
            ["day=2026-11-01, orders=1, revenue=10.50"]
        );
    }

    #[tokio::test]
    async fn a_misnamed_table_or_column_is_an_error_naming_it() {
        let given = BTreeMap::from([("order".to_string(), vec![])]);
        let err = run_model_test(SQL, &orders(), &given, &[])
            .await
            .expect_err("unknown table");
        assert!(
            err.message
                .contains("`order` is not a table the model reads"),
            "{}",
            err.message
        );
        let err = run_model_test(
            SQL,
            &orders(),
            &BTreeMap::new(),
            &[row(json!({"revenu": 1}))],
        )
        .await
        .expect_err("unknown column");
        assert!(err.message.contains("`revenu`"), "{}", err.message);
    }
}
