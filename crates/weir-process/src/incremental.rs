//! Whether a model can be computed incrementally *exactly*, read off its logical plan.
//!
//! weir processes only the rows that upstream commits added (read from the Delta log), so an
//! incremental run is exact only for SQL with the right algebra:
//!
//! - an `append` model must distribute over appends: `Q(A ∪ ΔA) = Q(A) ∪ Q(ΔA)`. That holds for
//!   projections, filters and inner joins of tables each read once (over several tables the new
//!   rows are `ΔA⋈B ∪ A'⋈ΔB`), and fails for aggregates, windows, DISTINCT, LIMIT, outer and
//!   semi joins, set operations and subqueries;
//! - a `merge` model recomputes the `unique_key` values that new rows can affect. That set is the
//!   keys of the query's output over the new rows (`ΔA⋈B ∪ A'⋈ΔB` over several tables) when
//!   every key column is a plain copy of an upstream column or a deterministic function of that
//!   one column (`CAST(created_at AS DATE)`: rows with one source value always get one key), every
//!   table is read once, and the
//!   path from each key column down to its table only holds nodes that never mix rows of
//!   different keys (aggregates and DISTINCT ON grouped by the key, windows partitioned by it,
//!   joins that keep that side's rows) and never make a key disappear when rows are added (no
//!   filter above an aggregate, a window or a DISTINCT).
//!
//! Anything else is reported with the reason, and the model is recomputed in full: never a
//! guessed increment.

use std::collections::{BTreeMap, HashSet};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan};

use crate::deps::SqlError;

/// What an incremental run of a model may do.
#[derive(Debug, Clone, PartialEq)]
pub struct IncrementalPlan {
    /// `None` when the query distributes over appends; otherwise why it does not.
    pub append_blocker: Option<String>,
    /// Where the `unique_key` values come from, or why they cannot be traced.
    pub merge_keys: Result<KeySource, String>,
}

/// The upstream `(table, column)` each `unique_key` column is a copy, or a deterministic
/// function, of, in key order, and which function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySource {
    pub columns: Vec<(String, String)>,
    pub functions: Vec<KeyFunction>,
}

/// What a key column computes from its upstream column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFunction {
    /// The value itself.
    Copy,
    /// `CAST(column AS DATE)`, possibly under copies: a non-decreasing function of a timestamp
    /// or date, so the keys of rows whose column lies in `[lo, hi]` lie in
    /// `[CAST(lo AS DATE), CAST(hi AS DATE)]`, a range of days that can be listed.
    Date,
    /// Anything else.
    Other,
}

impl KeyFunction {
    /// What an expression computes from the one column it reads.
    fn of(expr: &Expr) -> KeyFunction {
        let mut inner = expr;
        while let Expr::Alias(alias) = inner {
            inner = alias.expr.as_ref();
        }
        match inner {
            Expr::Column(_) => KeyFunction::Copy,
            Expr::Cast(cast)
                if cast.field.data_type() == &arrow::datatypes::DataType::Date32
                    && matches!(cast.expr.as_ref(), Expr::Column(_)) =>
            {
                KeyFunction::Date
            }
            _ => KeyFunction::Other,
        }
    }

    /// `self` applied to the result of `inner`.
    fn after(self, inner: KeyFunction) -> KeyFunction {
        match (self, inner) {
            (KeyFunction::Copy, f) | (f, KeyFunction::Copy) => f,
            (KeyFunction::Date, KeyFunction::Date) => KeyFunction::Date,
            _ => KeyFunction::Other,
        }
    }
}

/// Plans `sql` over empty tables shaped like `upstream` and analyses it for `unique_key`.
pub async fn analyze_incremental(
    sql: &str,
    upstream: &[(String, arrow::datatypes::SchemaRef)],
    unique_key: &[String],
) -> Result<IncrementalPlan, SqlError> {
    let df = crate::plan::plan_without_data(sql, upstream).await?;
    Ok(analyze_plan(df.logical_plan(), unique_key))
}

/// Analyses an already planned query (its table scans named as the upstream assets).
pub fn analyze_plan(plan: &LogicalPlan, unique_key: &[String]) -> IncrementalPlan {
    let scans = scan_counts(plan);
    let reread = scans.iter().find(|(_, n)| **n > 1).map(|(t, _)| t.clone());
    let append_blocker = match &reread {
        Some(t) => Some(format!("it reads table `{t}` more than once")),
        None => append_blocker(plan),
    };
    let merge_keys = trace_keys(plan, unique_key, &scans);
    IncrementalPlan {
        append_blocker,
        merge_keys,
    }
}

/// How many times each table is scanned, subqueries included.
fn scan_counts(plan: &LogicalPlan) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            *counts
                .entry(scan.table_name.table().to_string())
                .or_default() += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    counts
}

fn has_subquery(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::InSubquery(_)
                | Expr::Exists(_)
                | Expr::SetComparison(_)
                | Expr::OuterReferenceColumn(..)
        ))
    })
    .unwrap_or(true)
}

/// The first node (walking down from the root) that keeps the query from distributing over
/// appends, described for the user.
fn append_blocker(plan: &LogicalPlan) -> Option<String> {
    let here = match plan {
        LogicalPlan::Projection(p) if p.expr.iter().any(has_subquery) => {
            Some("a subquery in the select list".to_string())
        }
        LogicalPlan::Filter(f) if has_subquery(&f.predicate) => {
            Some("a subquery in a filter (IN / EXISTS)".to_string())
        }
        LogicalPlan::Projection(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::TableScan(_)
        | LogicalPlan::Values(_)
        | LogicalPlan::EmptyRelation(_) => None,
        LogicalPlan::Sort(s) if s.fetch.is_some() => Some("ORDER BY ... LIMIT".to_string()),
        LogicalPlan::Sort(_) => None,
        LogicalPlan::Join(j) if j.join_type != JoinType::Inner => {
            Some(format!("a {} join", j.join_type))
        }
        LogicalPlan::Join(j) if j.filter.as_ref().is_some_and(has_subquery) => {
            Some("a subquery in a join condition".to_string())
        }
        LogicalPlan::Join(_) => None,
        LogicalPlan::Aggregate(_) => {
            Some("an aggregate (GROUP BY or an aggregate function)".into())
        }
        LogicalPlan::Window(_) => Some("a window function".into()),
        LogicalPlan::Distinct(_) => Some("DISTINCT".into()),
        LogicalPlan::Limit(_) => Some("LIMIT".into()),
        LogicalPlan::Union(_) => Some("a set operation (UNION)".into()),
        other => Some(format!("a {} node", node_name(other))),
    };
    if here.is_some() {
        return here;
    }
    plan.inputs().into_iter().find_map(append_blocker)
}

fn node_name(plan: &LogicalPlan) -> String {
    let display = format!("{}", plan.display());
    display
        .split([':', ' '])
        .next()
        .unwrap_or("plan")
        .to_string()
}

/// Traces every key column down to one upstream table column (see the module doc).
fn trace_keys(
    plan: &LogicalPlan,
    unique_key: &[String],
    scans: &BTreeMap<String, usize>,
) -> Result<KeySource, String> {
    if unique_key.is_empty() {
        return Err("the model has no unique_key".into());
    }
    if let Some((table, _)) = scans.iter().find(|(_, n)| **n > 1) {
        return Err(format!("it reads table `{table}` more than once"));
    }
    let mut columns = Vec::new();
    let mut functions = Vec::new();
    let mut path = HashSet::new();
    for key in unique_key {
        let index = plan
            .schema()
            .fields()
            .iter()
            .position(|f| f.name() == key)
            .ok_or_else(|| format!("the query does not produce the key column `{key}`"))?;
        let (table, column, function) = trace_column(plan, index, false, &mut path)
            .map_err(|why| format!("key column `{key}`: {why}"))?;
        columns.push((table, column));
        functions.push(function);
    }
    monotone(plan, &path, false)?;
    Ok(KeySource { columns, functions })
}

/// The one column a key expression is computed from: the column itself, or a deterministic
/// function of it alone. Rows that agree on that column then agree on the key, so the nodes
/// below, which are checked not to mix rows of different values of the column, never mix
/// rows of different keys either.
fn key_source_column(expr: &Expr) -> Result<&datafusion::common::Column, String> {
    let mut inner = expr;
    while let Expr::Alias(alias) = inner {
        inner = alias.expr.as_ref();
    }
    if let Some(column) = inner.try_as_col() {
        return Ok(column);
    }
    if inner.is_volatile() {
        return Err("it is computed with a volatile function".into());
    }
    if has_subquery(inner) {
        return Err("it is computed with a subquery".into());
    }
    let columns = inner.column_refs();
    match columns.iter().next() {
        Some(column) if columns.len() == 1 => Ok(column),
        _ => Err(format!(
            "it is computed from {} columns, and weir traces a key only to one upstream column",
            columns.len()
        )),
    }
}

fn node_id(plan: &LogicalPlan) -> usize {
    plan as *const LogicalPlan as usize
}

/// The rest of the plan (off the key columns' paths) must not mix or drop rows when rows are
/// added upstream: no aggregate, window or DISTINCT there, no anti or full join, no LIMIT, no
/// subquery, and no filter above an outer join (`WHERE b.x IS NULL` drops rows when `b` grows).
fn monotone(plan: &LogicalPlan, path: &HashSet<usize>, filtered: bool) -> Result<(), String> {
    let on_path = path.contains(&node_id(plan));
    let mut filtered = filtered;
    match plan {
        LogicalPlan::Projection(p) if p.expr.iter().any(has_subquery) => {
            return Err("a subquery in the select list".into());
        }
        LogicalPlan::Filter(f) if has_subquery(&f.predicate) => {
            return Err("a subquery in a filter (IN / EXISTS)".into());
        }
        LogicalPlan::Filter(_) => filtered = true,
        LogicalPlan::Projection(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::TableScan(_)
        | LogicalPlan::Values(_)
        | LogicalPlan::EmptyRelation(_) => {}
        LogicalPlan::Sort(s) if s.fetch.is_none() => {}
        LogicalPlan::Join(j) => match j.join_type {
            JoinType::Inner => {}
            JoinType::Left | JoinType::Right if !filtered => {}
            JoinType::Left | JoinType::Right => {
                return Err(format!(
                    "a filter above a {} join can drop rows when rows are added",
                    j.join_type
                ));
            }
            other => return Err(format!("a {other} join can drop rows when rows are added")),
        },
        LogicalPlan::Aggregate(_) | LogicalPlan::Window(_) | LogicalPlan::Distinct(_)
            if on_path => {}
        LogicalPlan::Aggregate(_) => {
            return Err("an aggregate that does not group by the key".into());
        }
        LogicalPlan::Window(_) => return Err("a window function not partitioned by the key".into()),
        LogicalPlan::Distinct(_) => return Err("a DISTINCT that does not keep the key".into()),
        other => return Err(format!("a {} node", node_name(other))),
    }
    plan.inputs()
        .into_iter()
        .try_for_each(|input| monotone(input, path, filtered))
}

/// Follows output column `index` of `plan` down to the table column it copies or computes
/// from, and says what it computes.
/// `filtered` is true once a filter was passed on the way down: an aggregate, window or
/// DISTINCT below it could then drop a key when rows are added.
fn trace_column(
    plan: &LogicalPlan,
    index: usize,
    filtered: bool,
    path: &mut HashSet<usize>,
) -> Result<(String, String, KeyFunction), String> {
    path.insert(node_id(plan));
    let not_a_copy = || "it is computed, not a plain copy of an upstream column".to_string();
    match plan {
        LogicalPlan::Projection(p) => {
            let expr = p.expr.get(index).ok_or_else(not_a_copy)?;
            let column = key_source_column(expr)?;
            let at = p
                .input
                .schema()
                .index_of_column(column)
                .map_err(|e| e.to_string())?;
            computed(expr, trace_column(&p.input, at, filtered, path))
        }
        LogicalPlan::Filter(f) => {
            if has_subquery(&f.predicate) {
                return Err("a filter holds a subquery".into());
            }
            trace_column(&f.input, index, true, path)
        }
        LogicalPlan::SubqueryAlias(a) => trace_column(&a.input, index, filtered, path),
        LogicalPlan::Repartition(r) => trace_column(&r.input, index, filtered, path),
        LogicalPlan::Sort(s) if s.fetch.is_none() => trace_column(&s.input, index, filtered, path),
        LogicalPlan::Aggregate(a) => {
            if filtered {
                return Err(
                    "a filter above an aggregate (HAVING) can drop a key when rows are added"
                        .into(),
                );
            }
            let expr = a
                .group_expr
                .get(index)
                .ok_or_else(|| "it is an aggregate, not a GROUP BY column".to_string())?;
            if a.group_expr
                .iter()
                .any(|g| matches!(g, Expr::GroupingSet(_)))
            {
                return Err("grouping sets (ROLLUP, CUBE) mix keys".into());
            }
            let column = key_source_column(expr)?;
            let at = a
                .input
                .schema()
                .index_of_column(column)
                .map_err(|e| e.to_string())?;
            computed(expr, trace_column(&a.input, at, filtered, path))
        }
        LogicalPlan::Window(w) => {
            if filtered {
                return Err(
                    "a filter above a window function can drop a key when rows are added".into(),
                );
            }
            let width = w.input.schema().fields().len();
            if index >= width {
                return Err("it is a window function".into());
            }
            let key = w.input.schema().qualified_field(index);
            let key = datafusion::common::Column::from(key);
            for expr in &w.window_expr {
                let partitioned = match expr.clone().unalias() {
                    Expr::WindowFunction(f) => f
                        .params
                        .partition_by
                        .iter()
                        .any(|p| p.try_as_col() == Some(&key)),
                    _ => false,
                };
                if !partitioned {
                    return Err("a window function is not partitioned by the key".into());
                }
            }
            trace_column(&w.input, index, filtered, path)
        }
        LogicalPlan::Distinct(Distinct::All(input)) => {
            if filtered {
                return Err("a filter above DISTINCT can drop a key when rows are added".into());
            }
            trace_column(input, index, filtered, path)
        }
        LogicalPlan::Distinct(Distinct::On(on)) => {
            if filtered {
                return Err("a filter above DISTINCT ON can drop a key when rows are added".into());
            }
            let expr = on.select_expr.get(index).ok_or_else(not_a_copy)?;
            let column = key_source_column(expr)?;
            if !on.on_expr.iter().any(|e| e.try_as_col() == Some(column)) {
                return Err("DISTINCT ON does not include the key".into());
            }
            let at = on
                .input
                .schema()
                .index_of_column(column)
                .map_err(|e| e.to_string())?;
            computed(expr, trace_column(&on.input, at, filtered, path))
        }
        LogicalPlan::Join(j) => {
            if j.filter.as_ref().is_some_and(has_subquery) {
                return Err("a join condition holds a subquery".into());
            }
            let left_width = j.left.schema().fields().len();
            let (side, at, kept) = if index < left_width {
                let kept = matches!(
                    j.join_type,
                    JoinType::Inner | JoinType::Left | JoinType::LeftSemi
                );
                (&j.left, index, kept)
            } else {
                let kept = matches!(j.join_type, JoinType::Inner | JoinType::Right);
                (&j.right, index - left_width, kept)
            };
            if matches!(j.join_type, JoinType::LeftAnti | JoinType::RightAnti) {
                return Err("an anti join can drop a key when rows are added".into());
            }
            // Semi joins on the right output only the right side's columns.
            let (side, at, kept) = match j.join_type {
                JoinType::RightSemi => (&j.right, index, true),
                _ => (side, at, kept),
            };
            if !kept {
                return Err(format!(
                    "a {} join can pad or drop the key's rows",
                    j.join_type
                ));
            }
            trace_column(side, at, filtered, path)
        }
        LogicalPlan::TableScan(scan) => {
            let field = scan
                .projected_schema
                .fields()
                .get(index)
                .ok_or_else(not_a_copy)?;
            Ok((
                scan.table_name.table().to_string(),
                field.name().clone(),
                KeyFunction::Copy,
            ))
        }
        other => Err(format!("the plan holds a {} node", node_name(other))),
    }
}

/// A traced column with `expr` applied on top of what was traced below it.
fn computed(
    expr: &Expr,
    below: Result<(String, String, KeyFunction), String>,
) -> Result<(String, String, KeyFunction), String> {
    below.map(|(table, column, f)| (table, column, KeyFunction::of(expr).after(f)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

    use super::*;

    fn upstream() -> Vec<(String, SchemaRef)> {
        let events = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("user_id", DataType::Int64, true),
            Field::new("day", DataType::Date32, true),
            Field::new("amount", DataType::Float64, true),
            Field::new(
                "created_at",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]);
        let users = Schema::new(vec![
            Field::new("user_id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, true),
        ]);
        vec![
            ("events".into(), Arc::new(events)),
            ("users".into(), Arc::new(users)),
        ]
    }

    async fn analyze(sql: &str, key: &[&str]) -> IncrementalPlan {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        match analyze_incremental(sql, &upstream(), &key).await {
            Ok(plan) => plan,
            Err(e) => panic!("{sql}: {}", e.message),
        }
    }

    #[tokio::test]
    async fn projections_filters_and_inner_joins_distribute() {
        for sql in [
            "SELECT id, amount * 2 AS doubled FROM events WHERE amount > 0",
            "SELECT e.id, u.country FROM events e JOIN users u ON e.user_id = u.user_id",
            "SELECT * FROM events ORDER BY id",
        ] {
            assert_eq!(analyze(sql, &["id"]).await.append_blocker, None, "{sql}");
        }
    }

    #[tokio::test]
    async fn aggregates_windows_and_more_do_not_distribute() {
        for (sql, why) in [
            (
                "SELECT day, SUM(amount) AS s FROM events GROUP BY day",
                "aggregate",
            ),
            ("SELECT DISTINCT day FROM events", "DISTINCT"),
            ("SELECT id FROM events LIMIT 3", "LIMIT"),
            (
                "SELECT e.id FROM events e LEFT JOIN users u ON e.user_id = u.user_id",
                "Left join",
            ),
            (
                "SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM events",
                "window",
            ),
            (
                "SELECT id FROM events UNION ALL SELECT user_id FROM users",
                "UNION",
            ),
            (
                "SELECT id FROM events WHERE user_id IN (SELECT user_id FROM users)",
                "subquery",
            ),
            (
                "SELECT a.id FROM events a JOIN events b ON a.id = b.id",
                "more than once",
            ),
        ] {
            let blocker = analyze(sql, &["id"]).await.append_blocker;
            assert!(
                blocker.as_deref().is_some_and(|b| b.contains(why)),
                "{sql}: {blocker:?}"
            );
        }
    }

    #[tokio::test]
    async fn merge_keys_trace_through_group_by_joins_and_dedup() {
        use KeyFunction::{Copy, Date, Other};
        for (sql, key, column, function) in [
            (
                "SELECT day, SUM(amount) AS revenue FROM events GROUP BY day",
                "day",
                "day",
                Copy,
            ),
            (
                "SELECT e.day AS d, COUNT(*) AS n FROM events e JOIN users u ON e.user_id = u.user_id WHERE u.country = 'NL' GROUP BY e.day",
                "d",
                "day",
                Copy,
            ),
            (
                "SELECT DISTINCT ON (user_id) user_id, amount FROM events ORDER BY user_id, day DESC",
                "user_id",
                "user_id",
                Copy,
            ),
            (
                "SELECT id, SUM(amount) OVER (PARTITION BY id ORDER BY day) AS running FROM events",
                "id",
                "id",
                Copy,
            ),
            (
                "SELECT date_trunc('month', CAST(day AS TIMESTAMP)) AS month, COUNT(*) AS n FROM events GROUP BY date_trunc('month', CAST(day AS TIMESTAMP))",
                "month",
                "day",
                Other,
            ),
            (
                "SELECT CAST(day AS VARCHAR) AS d, COUNT(*) AS n FROM events GROUP BY day",
                "d",
                "day",
                Other,
            ),
            (
                "SELECT CAST(created_at AS DATE) AS d, COUNT(*) AS n FROM events GROUP BY CAST(created_at AS DATE)",
                "d",
                "created_at",
                Date,
            ),
            (
                "SELECT d, n FROM (SELECT CAST(created_at AS DATE) AS d, COUNT(*) AS n FROM events GROUP BY 1) t",
                "d",
                "created_at",
                Date,
            ),
            (
                "SELECT CAST(CAST(created_at AS VARCHAR) AS DATE) AS d, COUNT(*) AS n FROM events GROUP BY 1",
                "d",
                "created_at",
                Other,
            ),
        ] {
            let keys = analyze(sql, &[key]).await.merge_keys;
            assert_eq!(
                keys,
                Ok(KeySource {
                    columns: vec![("events".into(), column.into())],
                    functions: vec![function],
                }),
                "{sql}"
            );
        }
    }

    #[tokio::test]
    async fn merge_keys_may_come_from_several_tables() {
        let sql = "SELECT e.day, u.country, COUNT(*) AS n FROM events e JOIN users u ON e.user_id = u.user_id GROUP BY e.day, u.country";
        let keys = analyze(sql, &["day", "country"]).await.merge_keys;
        assert_eq!(
            keys,
            Ok(KeySource {
                columns: vec![
                    ("events".into(), "day".into()),
                    ("users".into(), "country".into())
                ],
                functions: vec![KeyFunction::Copy, KeyFunction::Copy],
            })
        );
    }

    #[tokio::test]
    async fn merge_keys_that_cannot_be_traced_say_why() {
        for (sql, key, why) in [
            (
                "SELECT day, SUM(amount) AS s FROM events GROUP BY day HAVING SUM(amount) > 10",
                "day",
                "HAVING",
            ),
            (
                "SELECT concat(CAST(user_id AS VARCHAR), CAST(day AS VARCHAR)) AS d, COUNT(*) AS n FROM events GROUP BY user_id, day",
                "d",
                "2 columns",
            ),
            (
                "SELECT day + CAST(random() * 3 AS INT) AS d, COUNT(*) AS n FROM events GROUP BY 1",
                "d",
                "volatile",
            ),
            (
                "SELECT day, SUM(amount) AS s FROM events GROUP BY ROLLUP(day)",
                "day",
                "grouping sets",
            ),
            (
                "SELECT u.user_id, e.id FROM events e RIGHT JOIN users u ON e.user_id = u.user_id",
                "id",
                "join",
            ),
            (
                "SELECT id, SUM(amount) OVER (ORDER BY day) AS running FROM events",
                "id",
                "not partitioned",
            ),
            (
                "SELECT a.id, COUNT(*) AS n FROM events a JOIN events b ON a.user_id = b.user_id GROUP BY a.id",
                "id",
                "more than once",
            ),
            (
                "SELECT e.id, t.n FROM events e JOIN (SELECT country, COUNT(*) AS n FROM users GROUP BY country HAVING COUNT(*) > 2) t ON e.amount = t.n",
                "id",
                "aggregate that does not group by the key",
            ),
            (
                "SELECT e.id FROM events e LEFT JOIN users u ON e.user_id = u.user_id WHERE u.country IS NULL",
                "id",
                "filter above a Left join",
            ),
        ] {
            let keys = analyze(sql, &[key]).await.merge_keys;
            assert!(
                keys.as_ref().is_err_and(|e| e.contains(why)),
                "{sql}: {keys:?}"
            );
        }
    }
}
