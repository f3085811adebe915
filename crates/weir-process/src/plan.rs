use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext};

use crate::deps::SqlError;

/// Plans `sql` against empty tables with the given schemas (the upstream contracts), returning
/// the output schema without reading any data: this is how `weir check` type-checks models.
pub async fn output_schema(
    sql: &str,
    upstream: &[(String, SchemaRef)],
) -> Result<SchemaRef, SqlError> {
    let df = plan_without_data(sql, upstream).await?;
    Ok(Arc::new(df.schema().as_arrow().clone()))
}

/// The query planned over empty tables shaped like `upstream`: types, nullability and the
/// logical plan, with no data read.
pub(crate) async fn plan_without_data(
    sql: &str,
    upstream: &[(String, SchemaRef)],
) -> Result<DataFrame, SqlError> {
    let ctx = SessionContext::new();
    for (name, schema) in upstream {
        let table =
            MemTable::try_new(schema.clone(), vec![vec![]]).map_err(|e| plain(e.to_string()))?;
        ctx.register_table(name.as_str(), Arc::new(table))
            .map_err(|e| plain(e.to_string()))?;
    }
    ctx.sql(sql).await.map_err(|e| plain(e.to_string()))
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
    /// The run still works (the rows that break it are quarantined), but the query does not
    /// guarantee what the contract promises.
    pub is_warning: bool,
}

/// Compares the planned output with the contract's schema: every contract column must be
/// produced with a type that converts to the contract's; columns the contract does not name
/// are reported, since they would be dropped.
pub fn check_output_schema(output: &SchemaRef, contract: &SchemaRef) -> Vec<SchemaMismatch> {
    let mut problems = Vec::new();
    let mut problem = |column: &str, message: String, is_warning: bool| {
        problems.push(SchemaMismatch {
            column: column.to_string(),
            message,
            is_warning,
        })
    };
    for field in contract.fields() {
        let name = field.name();
        match output.field_with_name(name) {
            Err(_) => problem(
                name,
                format!("the contract requires column `{name}` but the query does not produce it"),
                false,
            ),
            Ok(produced) if !compatible(produced.data_type(), field.data_type()) => problem(
                name,
                format!(
                    "column `{name}` is {} in the query but {} in the contract",
                    produced.data_type(),
                    field.data_type()
                ),
                false,
            ),
            Ok(produced) if !field.is_nullable() && produced.is_nullable() => problem(
                name,
                format!(
                    "the contract requires `{name}` but the query may produce nulls there; such rows will be quarantined"
                ),
                true,
            ),
            Ok(_) => {}
        }
    }
    for field in output.fields() {
        let name = field.name();
        if contract.field_with_name(name).is_err() {
            problem(
                name,
                format!("the query produces column `{name}`, which the contract does not declare"),
                false,
            );
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
        let errors: Vec<_> = problems.iter().filter(|p| !p.is_warning).collect();
        assert_eq!(errors.len(), 1, "{problems:?}");
        assert_eq!(errors[0].column, "missing");
    }
}
