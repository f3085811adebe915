//! Which output columns of a model a SQL edit changes, decided on the logical plans rather
//! than on the text: each output column of the old query and of the new one is planned alone
//! (the query with every other column projected away) and optimized, so what the column does
//! not depend on is pruned (and nothing else rewritten); the column is unchanged when both optimized plans are the same.
//! An edit that only adds columns, reformats or renames a CTE leaves the old columns' plans
//! as they were; a changed filter or join changes the plan of every column it reaches.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::Expr;
use datafusion::optimizer::optimize_projections::OptimizeProjections;
use datafusion::prelude::DataFrame;

use crate::deps::SqlError;
use crate::plan::plan_without_data;

/// How the new query's output columns relate to the old one's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanDiff {
    /// Output columns the new query has and the old did not.
    pub added: Vec<String>,
    /// Output columns the old query had and the new does not.
    pub removed: Vec<String>,
    /// Columns of both whose value or rows the edit changes (their plans differ).
    pub changed: Vec<String>,
    /// Columns of both computed exactly as before.
    pub unchanged: Vec<String>,
}

impl PlanDiff {
    /// The edit changes nothing any reader of the old columns could see.
    pub fn only_adds(&self) -> bool {
        self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compares `old_sql` planned over `old_upstream` with `new_sql` over `new_upstream` (the
/// upstream contracts then and now), column by column.
pub async fn diff_plans(
    old_sql: &str,
    old_upstream: &[(String, arrow::datatypes::SchemaRef)],
    new_sql: &str,
    new_upstream: &[(String, arrow::datatypes::SchemaRef)],
) -> Result<PlanDiff, SqlError> {
    let old = plan_without_data(old_sql, old_upstream).await?;
    let new = plan_without_data(new_sql, new_upstream).await?;
    let names = |df: &DataFrame| -> Vec<String> {
        df.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    };
    let (old_names, new_names) = (names(&old), names(&new));
    let mut diff = PlanDiff::default();
    for name in &new_names {
        if !old_names.contains(name) {
            diff.added.push(name.clone());
        }
    }
    for name in &old_names {
        if !new_names.contains(name) {
            diff.removed.push(name.clone());
        } else if column_plan(&old, name)? == column_plan(&new, name)? {
            diff.unchanged.push(name.clone());
        } else {
            diff.changed.push(name.clone());
        }
    }
    Ok(diff)
}

/// The optimized plan of `df` projected to its column `name` alone, as text.
fn column_plan(df: &DataFrame, name: &str) -> Result<String, SqlError> {
    let plain = |e: datafusion::error::DataFusionError| SqlError {
        line: None,
        column: None,
        message: e.to_string(),
    };
    let index = df
        .schema()
        .fields()
        .iter()
        .position(|f| f.name() == name)
        .ok_or_else(|| SqlError {
            line: None,
            column: None,
            message: format!("no output column `{name}`"),
        })?;
    let (qualifier, field) = df.schema().qualified_field(index);
    let only = df
        .clone()
        .select(vec![Expr::Column(Column::from((qualifier, field)))])
        .map_err(plain)?;
    // Only the pruning of what the column does not need: rules that restructure the plan
    // (a DISTINCT aggregate rewritten into two groupings, say) would make a column whose
    // values did not change look changed.
    let (state, plan) = only.into_parts();
    let state = SessionStateBuilder::new_from_existing(state)
        .with_optimizer_rules(vec![Arc::new(OptimizeProjections::new())])
        .build();
    let plan = state.optimize(&plan).map_err(plain)?;
    Ok(plan.display_indent().to_string())
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn upstream() -> Vec<(String, arrow::datatypes::SchemaRef)> {
        vec![
            (
                "orders".into(),
                Arc::new(Schema::new(vec![
                    Field::new("order_id", DataType::Int64, false),
                    Field::new("customer_id", DataType::Int64, false),
                    Field::new("amount", DataType::Float64, true),
                    Field::new("status", DataType::Utf8, true),
                ])),
            ),
            (
                "customers".into(),
                Arc::new(Schema::new(vec![
                    Field::new("customer_id", DataType::Int64, false),
                    Field::new("country", DataType::Utf8, true),
                ])),
            ),
        ]
    }

    async fn diff(old: &str, new: &str) -> PlanDiff {
        diff_plans(old, &upstream(), new, &upstream())
            .await
            .expect("both plan")
    }

    const BASE: &str = "SELECT order_id, amount, status FROM orders WHERE status <> 'cancelled'";

    #[tokio::test]
    async fn reformatting_and_adding_a_column_change_no_old_column() {
        let d = diff(
            BASE,
            "-- now with the customer\nselect order_id,\n  amount, status, customer_id\nfrom orders where status != 'cancelled'",
        )
        .await;
        assert_eq!(d.added, ["customer_id"]);
        assert!(d.only_adds(), "{d:?}");
        assert_eq!(d.unchanged, ["order_id", "amount", "status"]);
    }

    #[tokio::test]
    async fn a_changed_expression_changes_only_its_column() {
        let d = diff(
            BASE,
            "SELECT order_id, amount * 1.2 AS amount, status FROM orders WHERE status <> 'cancelled'",
        )
        .await;
        assert_eq!(d.changed, ["amount"]);
        assert_eq!(d.unchanged, ["order_id", "status"]);
    }

    #[tokio::test]
    async fn a_changed_filter_or_join_changes_every_column() {
        let d = diff(
            BASE,
            "SELECT order_id, amount, status FROM orders WHERE status <> 'refunded'",
        )
        .await;
        assert_eq!(d.changed, ["order_id", "amount", "status"]);
        let d = diff(
            BASE,
            "SELECT o.order_id, o.amount, o.status FROM orders o JOIN customers c ON c.customer_id = o.customer_id WHERE o.status <> 'cancelled'",
        )
        .await;
        assert_eq!(d.changed, ["order_id", "amount", "status"], "{d:?}");
    }

    #[tokio::test]
    async fn a_changed_aggregate_leaves_the_grouping_columns_alone() {
        let old =
            "SELECT status, COUNT(*) AS orders, SUM(amount) AS revenue FROM orders GROUP BY status";
        let d = diff(
            old,
            "SELECT status, COUNT(DISTINCT customer_id) AS orders, SUM(amount) AS revenue FROM orders GROUP BY status",
        )
        .await;
        assert_eq!(d.changed, ["orders"], "{d:?}");
        assert_eq!(d.unchanged, ["status", "revenue"]);
    }

    #[tokio::test]
    async fn a_dropped_column_is_removed() {
        let d = diff(
            BASE,
            "SELECT order_id, status FROM orders WHERE status <> 'cancelled'",
        )
        .await;
        assert_eq!(d.removed, ["amount"]);
        assert!(!d.only_adds());
    }
}
