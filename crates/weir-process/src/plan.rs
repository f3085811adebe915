use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::deps::SqlError;

/// Plans `sql` against empty tables with the given schemas (the upstream contracts), returning
/// the output schema without reading any data: this is how `weir check` type-checks models.
pub async fn output_schema(
    sql: &str,
    upstream: &[(String, SchemaRef)],
) -> Result<SchemaRef, SqlError> {
    let ctx = SessionContext::new();
    for (name, schema) in upstream {
        let table =
            MemTable::try_new(schema.clone(), vec![vec![]]).map_err(|e| plain(e.to_string()))?;
        ctx.register_table(name.as_str(), Arc::new(table))
            .map_err(|e| plain(e.to_string()))?;
    }
    let df = ctx.sql(sql).await.map_err(|e| plain(e.to_string()))?;
    Ok(Arc::new(df.schema().as_arrow().clone()))
}

fn plain(message: String) -> SqlError {
    SqlError {
        line: None,
        column: None,
        message,
    }
}

/// One way a model's output differs from its contract.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaMismatch {
    pub column: String,
    pub message: String,
}

/// Compares the planned output with the contract's schema: every contract column must be
/// produced with a type that converts to the contract's; columns the contract does not name
/// are reported, since they would be dropped.
pub fn check_output_schema(output: &SchemaRef, contract: &SchemaRef) -> Vec<SchemaMismatch> {
    let mut problems = Vec::new();
    for field in contract.fields() {
        match output.field_with_name(field.name()) {
            Err(_) => problems.push(SchemaMismatch {
                column: field.name().clone(),
                message: format!(
                    "the contract requires column `{}` but the query does not produce it",
                    field.name()
                ),
            }),
            Ok(produced) if !compatible(produced.data_type(), field.data_type()) => {
                problems.push(SchemaMismatch {
                    column: field.name().clone(),
                    message: format!(
                        "column `{}` is {} in the query but {} in the contract",
                        field.name(),
                        produced.data_type(),
                        field.data_type()
                    ),
                })
            }
            Ok(_) => {}
        }
    }
    for field in output.fields() {
        if contract.field_with_name(field.name()).is_err() {
            problems.push(SchemaMismatch {
                column: field.name().clone(),
                message: format!(
                    "the query produces column `{}`, which the contract does not declare",
                    field.name()
                ),
            });
        }
    }
    problems
}

/// Same family of type: integers widen, numbers convert between float and decimal, text is text.
fn compatible(produced: &DataType, wanted: &DataType) -> bool {
    use DataType::*;
    let integer = |t: &DataType| {
        matches!(
            t,
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
        )
    };
    let number = |t: &DataType| {
        integer(t)
            || matches!(
                t,
                Float16 | Float32 | Float64 | Decimal128(..) | Decimal256(..)
            )
    };
    let text = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    match wanted {
        Int64 => integer(produced),
        Float64 | Decimal128(..) => number(produced),
        Utf8 => text(produced),
        Date32 => matches!(produced, Date32 | Date64),
        Timestamp(..) => matches!(produced, Timestamp(..)),
        Boolean => matches!(produced, Boolean),
        other => produced == other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};

    #[tokio::test]
    async fn plans_without_data_and_compares() {
        let orders: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("amount", DataType::Decimal128(12, 2), false),
        ]));
        let out = output_schema(
            "SELECT order_id, SUM(amount) AS revenue FROM orders GROUP BY order_id",
            &[("orders".into(), orders)],
        )
        .await
        .expect("plans");
        let contract: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("revenue", DataType::Float64, true),
            Field::new("missing", DataType::Utf8, true),
        ]));
        let problems = check_output_schema(&out, &contract);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].column, "missing");
    }
}
