//! Lets a filter on the *date* of a timestamp column prune data files and row groups.
//!
//! A daily rollup is the usual `merge` model: `SELECT CAST(created_at AS DATE) AS day, …
//! GROUP BY day`. Recomputing a few affected days filters the query on `day IN (…)`, which
//! DataFusion pushes below the aggregate as `CAST(created_at AS DATE) IN (…)`. Neither
//! DataFusion's pruning nor the Delta scan can use a cast to a coarser type against file and
//! row-group statistics well, and evaluating the cast on every row of the row groups read costs
//! more than reading them. This rule rewrites the condition into the equivalent ranges on the
//! timestamp itself, `created_at >= d AND created_at < d + 1 day` for each date, which the
//! statistics prune with and which cost a comparison per row. For a UTC or naive timestamp
//! the two conditions hold for exactly the same rows, so the rewrite never changes a result.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Cast, Expr, ExprSchemable, Filter, LogicalPlan, Operator,
    TableProviderFilterPushDown, TableScan, lit,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// The optimizer rule; add it to a session with `SessionContext::add_optimizer_rule`.
#[derive(Debug, Default)]
pub struct DateRangePruning;

/// A session context whose queries prune with [`DateRangePruning`]. The rule runs right after
/// filter pushdown (which moves the key filter down to the cast it names) and before common
/// subexpression elimination (which would hide the cast behind a projection).
pub fn pruning_session() -> datafusion::prelude::SessionContext {
    let mut rules = datafusion::optimizer::Optimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "push_down_filter")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(DateRangePruning));
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_default_features()
        .with_optimizer_rules(rules)
        .build();
    datafusion::prelude::SessionContext::new_with_state(state)
}

impl OptimizerRule for DateRangePruning {
    fn name(&self) -> &str {
        "weir_date_range_pruning"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match plan {
            LogicalPlan::Filter(filter) => {
                let schema = filter.input.schema().clone();
                let conjuncts: Vec<Expr> = split_conjunction(&filter.predicate)
                    .into_iter()
                    .cloned()
                    .collect();
                let Some(rewritten) = as_ranges(&conjuncts, |e| e.get_type(schema.as_ref()).ok())
                else {
                    return Ok(Transformed::no(LogicalPlan::Filter(filter)));
                };
                let predicate = rewritten.into_iter().reduce(Expr::and).unwrap_or(lit(true));
                Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
                    predicate,
                    filter.input,
                )?)))
            }
            LogicalPlan::TableScan(scan) => {
                let schema = scan.source.schema();
                let Some(rewritten) = as_ranges(&scan.filters, |e| match e {
                    Expr::Column(c) => schema
                        .field_with_name(&c.name)
                        .ok()
                        .map(|f| f.data_type().clone()),
                    _ => None,
                }) else {
                    return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
                };
                // A filter the source promised to apply exactly (so no Filter was kept above
                // the scan) is swapped only for one it applies exactly too.
                let exact = |filters: &[Expr]| -> Result<Vec<bool>> {
                    let refs: Vec<&Expr> = filters.iter().collect();
                    Ok(scan
                        .source
                        .supports_filters_pushdown(&refs)?
                        .into_iter()
                        .map(|p| p == TableProviderFilterPushDown::Exact)
                        .collect())
                };
                let (before, after) = (exact(&scan.filters)?, exact(&rewritten)?);
                let filters: Vec<Expr> = scan
                    .filters
                    .iter()
                    .zip(rewritten)
                    .zip(before.into_iter().zip(after))
                    .map(|((old, new), (was, is))| if was && !is { old.clone() } else { new })
                    .collect();
                if filters == scan.filters {
                    return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
                }
                let mut scan: TableScan = scan;
                scan.filters = filters;
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

/// `conjuncts` with every date condition on a timestamp replaced by its ranges, or `None` when
/// there is none. `type_of` gives the type of a column expression.
fn as_ranges(conjuncts: &[Expr], type_of: impl Fn(&Expr) -> Option<DataType>) -> Option<Vec<Expr>> {
    let mut changed = false;
    let rewritten = conjuncts
        .iter()
        .map(|c| match range_for(c, &type_of) {
            Some(range) => {
                changed = true;
                range
            }
            None => c.clone(),
        })
        .collect();
    changed.then_some(rewritten)
}

/// `CAST(ts AS DATE) = d`, `CAST(ts AS DATE) IN (d1, …)` or a disjunction of those (the
/// simplifier turns short IN lists into one) over one timestamp column `ts` in UTC or without
/// a time zone: the same condition, for every row (a NULL `ts` fails both), as ranges of `ts`.
fn range_for(expr: &Expr, type_of: &impl Fn(&Expr) -> Option<DataType>) -> Option<Expr> {
    let mut cast: Option<&Cast> = None;
    let mut dates: Vec<&Expr> = Vec::new();
    for disjunct in split_disjunction(expr) {
        let (this, values): (&Cast, Vec<&Expr>) = match disjunct {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => match (left.as_ref(), right.as_ref()) {
                (Expr::Cast(c), d @ Expr::Literal(..)) | (d @ Expr::Literal(..), Expr::Cast(c)) => {
                    (c, vec![d])
                }
                _ => return None,
            },
            Expr::InList(list) if !list.negated => match list.expr.as_ref() {
                Expr::Cast(c) => (c, list.list.iter().collect()),
                _ => return None,
            },
            _ => return None,
        };
        if cast.is_some_and(|c| c != this) {
            return None;
        }
        cast = Some(this);
        dates.extend(values);
    }
    let cast = cast?;
    if cast.field.data_type() != &DataType::Date32 || !matches!(cast.expr.as_ref(), Expr::Column(_))
    {
        return None;
    }
    let (unit, tz) = match type_of(&cast.expr)? {
        DataType::Timestamp(unit, tz) => (unit, tz),
        _ => return None,
    };
    // Casting to a date takes the date in the column's time zone: only UTC and naive
    // timestamps have days that start at multiples of 86,400 seconds.
    if tz
        .as_deref()
        .is_some_and(|tz| !matches!(tz, "UTC" | "+00:00" | "Z"))
    {
        return None;
    }
    let per_day: i64 = match unit {
        TimeUnit::Second => 86_400,
        TimeUnit::Millisecond => 86_400_000,
        TimeUnit::Microsecond => 86_400_000_000,
        TimeUnit::Nanosecond => 86_400_000_000_000,
    };
    let at = |day: i64| -> Option<Expr> {
        let value = Some(day.checked_mul(per_day)?);
        Some(lit(match unit {
            TimeUnit::Second => ScalarValue::TimestampSecond(value, tz.clone()),
            TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(value, tz.clone()),
            TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(value, tz.clone()),
            TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(value, tz.clone()),
        }))
    };
    let mut ranges = Vec::with_capacity(dates.len());
    for date in dates {
        // A NULL date matches nothing and contributes no range; any other literal makes the
        // condition one this rule does not know how to bound.
        let day = match date {
            Expr::Literal(ScalarValue::Date32(Some(day)), _) => i64::from(*day),
            Expr::Literal(ScalarValue::Date32(None), _) => continue,
            _ => return None,
        };
        let column = cast.expr.as_ref().clone();
        ranges.push(
            column
                .clone()
                .gt_eq(at(day)?)
                .and(column.lt(at(day.checked_add(1)?)?)),
        );
    }
    Some(ranges.into_iter().reduce(Expr::or).unwrap_or(lit(false)))
}

/// The operands of a chain of ORs.
fn split_disjunction(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let mut parts = split_disjunction(left);
            parts.extend(split_disjunction(right));
            parts
        }
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;

    async fn context() -> datafusion::prelude::SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("v", DataType::Int64, false),
        ]));
        let day = 86_400_000_000_i64;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(0),
                        Some(day - 1),
                        Some(day),
                        Some(3 * day + 5),
                        None,
                        Some(-1),
                    ])
                    .with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
            ],
        )
        .expect("batch");
        let ctx = pruning_session();
        ctx.register_table(
            "t",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).expect("table")),
        )
        .expect("register");
        ctx
    }

    async fn sums(ctx: &datafusion::prelude::SessionContext, sql: &str) -> String {
        let batches = ctx
            .sql(sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string()
    }

    #[tokio::test]
    async fn the_range_is_added_and_results_do_not_change() {
        let ctx = context().await;
        let sql = "SELECT day, SUM(v) AS s FROM (SELECT CAST(at AS DATE) AS day, v FROM t) \
                   WHERE day IN (DATE '1970-01-01', DATE '1969-12-31', DATE '1970-01-04') GROUP BY day ORDER BY day";
        let plan = ctx
            .sql(&format!("EXPLAIN {sql}"))
            .await
            .expect("plan")
            .collect()
            .await
            .expect("explain");
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
            .expect("format")
            .to_string();
        assert!(text.contains("t.at >= TimestampMicrosecond(0"), "{text}");
        assert!(!text.contains("CAST(t.at AS Date32) ="), "{text}");
        let plain = datafusion::prelude::SessionContext::new();
        plain
            .register_table("t", ctx.table_provider("t").await.expect("provider"))
            .expect("register");
        assert_eq!(sums(&ctx, sql).await, sums(&plain, sql).await);
        let expected = [
            "+------------+---+",
            "| day        | s |",
            "+------------+---+",
            "| 1969-12-31 | 6 |",
            "| 1970-01-01 | 3 |",
            "| 1970-01-04 | 4 |",
            "+------------+---+",
        ]
        .join("\n");
        assert_eq!(sums(&ctx, sql).await, expected);
    }

    #[test]
    fn other_time_zones_and_types_get_no_range() {
        let column = Expr::Column("at".into());
        let filter = Expr::Cast(Cast::new(Box::new(column), DataType::Date32))
            .eq(lit(ScalarValue::Date32(Some(3))));
        let berlin = |_: &Expr| {
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("Europe/Berlin".into()),
            ))
        };
        assert!(range_for(&filter, &berlin).is_none());
        assert!(range_for(&filter, &|_: &Expr| Some(DataType::Utf8)).is_none());
        let naive = |_: &Expr| Some(DataType::Timestamp(TimeUnit::Second, None));
        let range = range_for(&filter, &naive).expect("a range");
        assert_eq!(
            range.to_string(),
            "at >= TimestampSecond(259200, None) AND at < TimestampSecond(345600, None)"
        );
    }
}
