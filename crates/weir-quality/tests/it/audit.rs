//! The audit of an append from the published rows' statistics plus a scan of the staged rows
//! gives exactly what a scan of the whole post-publish view gives; a measure the statistics do
//! not know falls back to the scan.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use weir_model::{TableCounts, parse_contract};
use weir_quality::{AuditScope, CheckResult, ParseOptions, Validator, audit};

const CONTRACT: &str = "apiVersion: v3.1.0
kind: DataContract
id: a
version: 1.0.0
status: active
schema:
  - name: t
    quality:
      - id: volume
        metric: rowCount
        mustBeGreaterThan: 5
    properties:
      - name: id
        logicalType: integer
      - name: note
        logicalType: string
        quality:
          - id: note_nulls
            metric: nullValues
            mustBeLessThan: 30
            unit: percent
          - id: note_null_rows
            metric: nullValues
            mustBeLessOrEqualTo: 3
";

fn batch(ids: &[i64], notes: &[Option<&str>]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("note", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(notes.to_vec())),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

async fn checks(
    ctx: &SessionContext,
    appended: Option<(&TableCounts, Option<&str>)>,
) -> Vec<CheckResult> {
    let (contract, diagnostics) = parse_contract(Path::new("a.yaml"), CONTRACT);
    let contract = contract.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let validator = Validator::new("t", &contract, ParseOptions::default()).expect("validator");
    audit(
        &AuditScope {
            ctx,
            table: "t",
            appended,
        },
        validator.dataset_rules(),
    )
    .await
    .expect("audit")
}

#[tokio::test]
async fn an_append_is_audited_from_statistics_plus_the_staged_rows() {
    let published = batch(&[1, 2, 3, 4], &[Some("a"), None, Some("c"), None]);
    let staged = batch(&[5, 6, 7], &[None, Some("f"), Some("g")]);
    let ctx = SessionContext::new();
    for (name, b) in [("published", &published), ("staged", &staged)] {
        let table = MemTable::try_new(b.schema(), vec![vec![b.clone()]]).expect("mem");
        ctx.register_table(name, Arc::new(table)).expect("register");
    }
    ctx.sql("CREATE VIEW t AS SELECT * FROM published UNION ALL SELECT * FROM staged")
        .await
        .expect("view");
    let scanned = checks(&ctx, None).await;
    let counts = TableCounts {
        rows: 4,
        nulls: [("note".to_string(), 2), ("id".to_string(), 0)].into(),
    };
    let split = checks(&ctx, Some((&counts, Some("staged")))).await;
    assert_eq!(split, scanned);
    let values: Vec<f64> = scanned.iter().map(|c| c.value).collect();
    assert_eq!(values.len(), 3);
    assert!(values.contains(&7.0) && values.contains(&3.0), "{values:?}");
    assert!(scanned.iter().any(|c| !c.passed), "3 of 7 null is over 30%");

    // Statistics that lack the column: the scan decides, with the same result.
    let partial = TableCounts {
        rows: 4,
        nulls: [("id".to_string(), 0)].into(),
    };
    assert_eq!(
        checks(&ctx, Some((&partial, Some("staged")))).await,
        scanned
    );

    // Wrong statistics would show: the split path really uses them.
    let wrong = TableCounts {
        rows: 40,
        nulls: [("note".to_string(), 2)].into(),
    };
    assert_ne!(checks(&ctx, Some((&wrong, Some("staged")))).await, scanned);
}
