//! Column-level lineage read off the DataFusion logical plan (not regexes): for each output
//! column of a model, the upstream columns it is computed from, and whether it is a plain copy.

use std::collections::BTreeSet;

use arrow::datatypes::SchemaRef;
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::deps::SqlError;

/// Where one output column comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnLineage {
    pub column: String,
    /// `(table, column)` pairs read to compute it; empty for constants and `COUNT(*)`.
    pub inputs: BTreeSet<(String, String)>,
    /// A plain copy of one input column (renames allowed); otherwise a transformation.
    pub direct: bool,
}

#[derive(Debug, Clone, Default)]
struct Origin {
    inputs: BTreeSet<(String, String)>,
    direct: bool,
}

/// Plans `sql` against empty tables shaped like the upstream contracts and walks the plan.
pub async fn column_lineage(
    sql: &str,
    upstream: &[(String, SchemaRef)],
) -> Result<Vec<ColumnLineage>, SqlError> {
    let df = crate::plan::plan_without_data(sql, upstream).await?;
    let plan = df.logical_plan();
    let origins = walk(plan);
    Ok(plan
        .schema()
        .fields()
        .iter()
        .zip(origins)
        .map(|(field, origin)| ColumnLineage {
            column: field.name().clone(),
            inputs: origin.inputs,
            direct: origin.direct,
        })
        .collect())
}

/// One origin per field of `plan`'s schema, in order.
fn walk(plan: &LogicalPlan) -> Vec<Origin> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let table = scan.table_name.table().to_string();
            scan.projected_schema
                .fields()
                .iter()
                .map(|f| Origin {
                    inputs: BTreeSet::from([(table.clone(), f.name().clone())]),
                    direct: true,
                })
                .collect()
        }
        LogicalPlan::Projection(p) => {
            let input = walk(&p.input);
            p.expr
                .iter()
                .map(|e| from_expr(e, &p.input, &input))
                .collect()
        }
        LogicalPlan::Aggregate(a) => {
            let input = walk(&a.input);
            let mut out: Vec<Origin> = a
                .group_expr
                .iter()
                .map(|e| from_expr(e, &a.input, &input))
                .collect();
            out.extend(a.aggr_expr.iter().map(|e| Origin {
                direct: false,
                ..from_expr(e, &a.input, &input)
            }));
            pad(out, plan)
        }
        LogicalPlan::Window(w) => {
            let mut out = walk(&w.input);
            out.extend(w.window_expr.iter().map(|e| Origin {
                direct: false,
                ..from_expr(e, &w.input, &walk(&w.input))
            }));
            pad(out, plan)
        }
        LogicalPlan::Join(j) => {
            let mut out = walk(&j.left);
            out.extend(walk(&j.right));
            pad(out, plan)
        }
        LogicalPlan::Union(u) => {
            let width = plan.schema().fields().len();
            let mut out = vec![
                Origin {
                    inputs: BTreeSet::new(),
                    direct: true
                };
                width
            ];
            for input in &u.inputs {
                for (slot, origin) in out.iter_mut().zip(walk(input)) {
                    slot.inputs.extend(origin.inputs);
                    slot.direct &= origin.direct;
                }
            }
            out
        }
        other => {
            let inputs = other.inputs();
            match inputs.as_slice() {
                // Filter, Sort, Limit, SubqueryAlias, Distinct, ...: the same columns as below.
                [single] if single.schema().fields().len() == plan.schema().fields().len() => {
                    walk(single)
                }
                _ => {
                    let all: BTreeSet<(String, String)> = inputs
                        .iter()
                        .flat_map(|i| walk(i))
                        .flat_map(|o| o.inputs)
                        .collect();
                    vec![
                        Origin {
                            inputs: all,
                            direct: false
                        };
                        plan.schema().fields().len()
                    ]
                }
            }
        }
    }
}

fn from_expr(expr: &Expr, input_plan: &LogicalPlan, input: &[Origin]) -> Origin {
    let schema = input_plan.schema();
    let mut origin = Origin::default();
    for column in expr.column_refs() {
        if let Ok(idx) = schema.index_of_column(column)
            && let Some(o) = input.get(idx)
        {
            origin.inputs.extend(o.inputs.iter().cloned());
        }
    }
    origin.direct = match unalias(expr) {
        Expr::Column(c) => schema
            .index_of_column(c)
            .ok()
            .and_then(|i| input.get(i))
            .is_some_and(|o| o.direct),
        _ => false,
    };
    origin
}

fn unalias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

/// Keeps the origins aligned with the schema when a plan adds or drops internal columns.
fn pad(mut out: Vec<Origin>, plan: &LogicalPlan) -> Vec<Origin> {
    out.resize(plan.schema().fields().len(), Origin::default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[tokio::test]
    async fn joins_aggregates_and_renames() {
        let orders: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("customer_id", DataType::Int64, false),
            Field::new("amount", DataType::Float64, false),
        ]));
        let customers: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, false),
        ]));
        let sql = "SELECT c.country AS nation, COUNT(*) AS n, SUM(o.amount * 2) AS total
                   FROM orders o JOIN customers c ON o.customer_id = c.customer_id
                   WHERE o.amount > 0 GROUP BY c.country";
        let lineage = column_lineage(
            sql,
            &[("orders".into(), orders), ("customers".into(), customers)],
        )
        .await
        .expect("plans");
        let find = |c: &str| {
            lineage
                .iter()
                .find(|l| l.column == c)
                .cloned()
                .expect("column")
        };
        let nation = find("nation");
        assert!(nation.direct);
        assert_eq!(
            nation.inputs,
            BTreeSet::from([("customers".to_string(), "country".to_string())])
        );
        assert!(find("n").inputs.is_empty());
        let total = find("total");
        assert!(!total.direct);
        assert_eq!(
            total.inputs,
            BTreeSet::from([("orders".to_string(), "amount".to_string())])
        );
    }
}
