//! Column-level lineage read off the DataFusion logical plan (not regexes), in the terms of
//! OpenLineage's column lineage facet: for each output column of a model, the upstream columns
//! its value is computed from (DIRECT edges) and the ones that only influence it (INDIRECT
//! edges), each with a transformation subtype; plus the INDIRECT edges that decide which rows
//! the model has at all (filters, joins, grouping, ordering), kept once for the whole dataset
//! like the facet's `dataset` list rather than copied onto every column.
//!
//! The walk is exact or says so: a plan node or expression it does not understand marks the
//! columns computed through it `unknown` and contributes no edge, never a guessed one.

use std::collections::{BTreeMap, BTreeSet};

use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, JoinType};
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction, WindowFunctionDefinition};
use datafusion::logical_expr::utils::grouping_set_to_exprlist;
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan, SortExpr, Subquery};

use crate::deps::SqlError;

/// Whether an input supplies the value of an output column or only influences it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    /// The output value is derived from the input value.
    Direct,
    /// The input decides which rows exist, their order or which branch computes the value.
    Indirect,
}

/// OpenLineage's transformation subtypes; each one belongs to exactly one [`EdgeKind`].
///
/// The direct subtypes are ordered by strength: a value that is an aggregate of a
/// transformation of an input is an `Aggregation` of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subtype {
    /// DIRECT: the value is copied as is (renames, `UNION` branches, grouping keys).
    Identity,
    /// DIRECT: the value is computed from the input, row by row.
    Transformation,
    /// DIRECT: the value is computed from several rows of the input (aggregates, window
    /// aggregates).
    Aggregation,
    /// INDIRECT: the input is a join key or in a join condition, including the implicit
    /// semi-/anti-joins of `INTERSECT` and `EXCEPT`.
    Join,
    /// INDIRECT: the input is in a `WHERE`, `HAVING`, a subquery's filter, or an `EXISTS`/`IN`
    /// subquery used as a predicate.
    Filter,
    /// INDIRECT: the input is a grouping key (`GROUP BY`, grouping sets, `DISTINCT`,
    /// `DISTINCT ON`, `UNION` without `ALL`) or the argument of `GROUPING()`.
    GroupBy,
    /// INDIRECT: the input orders rows (`ORDER BY`, `DISTINCT ON` ordering, ordered aggregates).
    Sort,
    /// INDIRECT: the input partitions or orders a window function's frame.
    Window,
    /// INDIRECT: the input is in a condition that chooses the value (`CASE WHEN`, an
    /// aggregate's `FILTER (WHERE ...)`).
    Conditional,
}

impl Subtype {
    pub fn kind(self) -> EdgeKind {
        match self {
            Subtype::Identity | Subtype::Transformation | Subtype::Aggregation => EdgeKind::Direct,
            _ => EdgeKind::Indirect,
        }
    }

    /// The OpenLineage spelling: `IDENTITY`, `GROUP_BY`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Subtype::Identity => "IDENTITY",
            Subtype::Transformation => "TRANSFORMATION",
            Subtype::Aggregation => "AGGREGATION",
            Subtype::Join => "JOIN",
            Subtype::Filter => "FILTER",
            Subtype::GroupBy => "GROUP_BY",
            Subtype::Sort => "SORT",
            Subtype::Window => "WINDOW",
            Subtype::Conditional => "CONDITIONAL",
        }
    }
}

impl EdgeKind {
    /// The OpenLineage spelling: `DIRECT` or `INDIRECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Direct => "DIRECT",
            EdgeKind::Indirect => "INDIRECT",
        }
    }
}

/// One upstream column and how it reaches an output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    pub table: String,
    pub column: String,
    pub subtype: Subtype,
}

impl Edge {
    pub fn kind(&self) -> EdgeKind {
        self.subtype.kind()
    }
}

/// Where one output column comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnLineage {
    pub column: String,
    /// Sorted by table, column and subtype. At most one DIRECT edge per input column (the
    /// strongest subtype); an input can also have INDIRECT edges of several subtypes. Empty for
    /// constants and `COUNT(*)`. Only what is specific to this column: the edges that shape the
    /// whole dataset are in [`Lineage::dataset`].
    pub edges: BTreeSet<Edge>,
    /// The plan computes this column through something the lineage walk does not understand:
    /// `edges` may be incomplete (but holds no guess).
    pub unknown: bool,
}

impl ColumnLineage {
    pub fn direct(&self) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(|e| e.kind() == EdgeKind::Direct)
    }

    pub fn indirect(&self) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(|e| e.kind() == EdgeKind::Indirect)
    }

    /// A plain copy of input columns (renames allowed, several under `UNION`), known for sure.
    pub fn is_identity(&self) -> bool {
        !self.unknown
            && self.direct().next().is_some()
            && self.direct().all(|e| e.subtype == Subtype::Identity)
    }
}

/// The column lineage of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// One per output column, in output order.
    pub columns: Vec<ColumnLineage>,
    /// INDIRECT edges that apply to every column: the inputs that decide which rows the
    /// output has and in which order (OpenLineage's dataset-level dependencies).
    pub dataset: BTreeSet<Edge>,
    /// The rows are shaped by something the walk does not understand: `dataset` may be
    /// incomplete.
    pub dataset_unknown: bool,
}

/// Plans `sql` against empty tables shaped like the upstream contracts and walks the plan.
pub async fn column_lineage(
    sql: &str,
    upstream: &[(String, SchemaRef)],
) -> Result<Lineage, SqlError> {
    let df = crate::plan::plan_without_data(sql, upstream).await?;
    Ok(lineage_of_plan(df.logical_plan()))
}

/// The lineage of an already planned query.
pub fn lineage_of_plan(plan: &LogicalPlan) -> Lineage {
    let rel = walk(plan, None);
    let columns = plan
        .schema()
        .fields()
        .iter()
        .zip(rel.cols)
        .map(|(field, info)| ColumnLineage {
            column: field.name().clone(),
            unknown: info.unknown,
            edges: info.into_edges(),
        })
        .collect();
    Lineage {
        columns,
        dataset_unknown: rel.rows.unknown,
        dataset: rel.rows.into_edges(),
    }
}

type Source = (String, String);

/// What is known about one column (or, for `Rel::rows`, about the row set) of a plan node.
#[derive(Debug, Clone, Default)]
struct Info {
    direct: BTreeMap<Source, Subtype>,
    indirect: BTreeSet<(Source, Subtype)>,
    unknown: bool,
}

impl Info {
    fn unknown() -> Self {
        Info {
            unknown: true,
            ..Info::default()
        }
    }

    fn merge(&mut self, other: Info) {
        for (source, subtype) in other.direct {
            let slot = self.direct.entry(source).or_insert(subtype);
            *slot = (*slot).max(subtype);
        }
        self.indirect.extend(other.indirect);
        self.unknown |= other.unknown;
    }

    /// The same inputs, reached through `role`.
    fn through(&self, role: Role) -> Info {
        match role {
            Role::Copy => self.clone(),
            Role::Value(at_least) => Info {
                direct: self
                    .direct
                    .iter()
                    .map(|(s, sub)| (s.clone(), (*sub).max(at_least)))
                    .collect(),
                indirect: self.indirect.clone(),
                unknown: self.unknown,
            },
            Role::Indirect(subtype) => Info {
                direct: BTreeMap::new(),
                indirect: self
                    .direct
                    .keys()
                    .chain(self.indirect.iter().map(|(s, _)| s))
                    .map(|s| (s.clone(), subtype))
                    .collect(),
                unknown: self.unknown,
            },
        }
    }

    /// Only the indirect part, relabelled when `role` is indirect: how a subquery's rows (its
    /// filters, joins and correlation) reach the expression that uses it.
    fn rows_through(&self, role: Role) -> Info {
        match role {
            Role::Indirect(_) => self.through(role),
            Role::Copy | Role::Value(_) => Info {
                direct: BTreeMap::new(),
                indirect: self.indirect.clone(),
                unknown: self.unknown,
            },
        }
    }

    fn into_edges(self) -> BTreeSet<Edge> {
        let direct = self.direct.into_iter();
        direct
            .chain(self.indirect)
            .map(|((table, column), subtype)| Edge {
                table,
                column,
                subtype,
            })
            .collect()
    }
}

/// How an expression position passes its inputs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The top of a select item: a bare column keeps its edges as they are.
    Copy,
    /// Inside a computed value: direct edges become at least this subtype.
    Value(Subtype),
    /// Every input becomes an indirect edge of this subtype.
    Indirect(Subtype),
}

impl Role {
    /// The role of the operands of a computation in this role.
    fn operand(self) -> Role {
        match self {
            Role::Copy => Role::Value(Subtype::Transformation),
            other => other,
        }
    }

    /// The role of a condition or ordering inside a computation in this role: inside an
    /// indirect position everything keeps that position's subtype.
    fn influence(self, subtype: Subtype) -> Role {
        match self {
            Role::Indirect(_) => self,
            _ => Role::Indirect(subtype),
        }
    }
}

/// A plan node's output: one `Info` per field of its schema, and the row set's influences.
#[derive(Debug, Clone, Default)]
struct Rel {
    cols: Vec<Info>,
    rows: Info,
}

impl Rel {
    fn unknown(width: usize) -> Rel {
        Rel {
            cols: vec![Info::unknown(); width],
            rows: Info::unknown(),
        }
    }
}

/// The columns an expression can name: the input of the node it sits in, and, inside a
/// subquery, the inputs of the enclosing nodes (`outer_ref(...)`).
struct Scope<'a> {
    schema: &'a DFSchema,
    cols: &'a [Info],
    outer: Option<&'a Scope<'a>>,
}

impl Scope<'_> {
    fn column(&self, column: &datafusion::common::Column) -> Info {
        self.schema
            .index_of_column(column)
            .ok()
            .and_then(|i| self.cols.get(i))
            .cloned()
            .unwrap_or_else(Info::unknown)
    }

    fn outer_column(&self, column: &datafusion::common::Column) -> Info {
        let mut scope = self.outer;
        while let Some(s) = scope {
            if let Ok(i) = s.schema.index_of_column(column) {
                return s.cols.get(i).cloned().unwrap_or_else(Info::unknown);
            }
            scope = s.outer;
        }
        Info::unknown()
    }
}

/// One `Info` per field of `plan`'s schema, in order, and what shapes its rows. `outer` is the
/// scope of the enclosing query when `plan` is a subquery.
fn walk(plan: &LogicalPlan, outer: Option<&Scope>) -> Rel {
    let width = plan.schema().fields().len();
    let rel = walk_node(plan, outer);
    if rel.cols.len() == width {
        rel
    } else {
        // The walk lost track of which column is which: say so rather than misalign.
        Rel::unknown(width)
    }
}

fn scope<'a>(plan: &'a LogicalPlan, rel: &'a Rel, outer: Option<&'a Scope<'a>>) -> Scope<'a> {
    Scope {
        schema: plan.schema(),
        cols: &rel.cols,
        outer,
    }
}

fn walk_node(plan: &LogicalPlan, outer: Option<&Scope>) -> Rel {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let table = scan.table_name.table().to_string();
            let cols: Vec<Info> = scan
                .projected_schema
                .fields()
                .iter()
                .map(|f| Info {
                    direct: BTreeMap::from([(
                        (table.clone(), f.name().clone()),
                        Subtype::Identity,
                    )]),
                    ..Info::default()
                })
                .collect();
            let mut rows = Info::default();
            if !scan.filters.is_empty() {
                let rel = Rel {
                    cols: cols.clone(),
                    rows: Info::default(),
                };
                let s = Scope {
                    schema: &scan.projected_schema,
                    cols: &rel.cols,
                    outer,
                };
                for f in &scan.filters {
                    rows.merge(expr(f, &s, Role::Indirect(Subtype::Filter)));
                }
            }
            Rel { cols, rows }
        }
        LogicalPlan::Projection(p) => {
            let input = walk(&p.input, outer);
            let s = scope(&p.input, &input, outer);
            let cols = p.expr.iter().map(|e| expr(e, &s, Role::Copy)).collect();
            Rel {
                cols,
                rows: input.rows.clone(),
            }
        }
        LogicalPlan::Filter(f) => {
            let input = walk(&f.input, outer);
            let condition = expr(
                &f.predicate,
                &scope(&f.input, &input, outer),
                Role::Indirect(Subtype::Filter),
            );
            let mut rel = input.clone();
            rel.rows.merge(condition);
            rel
        }
        LogicalPlan::Aggregate(a) => {
            let input = walk(&a.input, outer);
            let s = scope(&a.input, &input, outer);
            let Ok(keys) = grouping_set_to_exprlist(&a.group_expr) else {
                return Rel::unknown(plan.schema().fields().len());
            };
            let mut grouping = Info::default();
            let mut cols = Vec::new();
            for key in &keys {
                grouping.merge(expr(key, &s, Role::Indirect(Subtype::GroupBy)));
                cols.push(expr(key, &s, Role::Copy));
            }
            if matches!(a.group_expr.as_slice(), [Expr::GroupingSet(_)]) {
                // `__grouping_id`: which grouping set a row belongs to.
                cols.push(grouping.clone());
            }
            cols.extend(a.aggr_expr.iter().map(|e| expr(e, &s, Role::Copy)));
            let mut rows = input.rows.clone();
            rows.merge(grouping);
            Rel { cols, rows }
        }
        LogicalPlan::Window(w) => {
            let input = walk(&w.input, outer);
            let s = scope(&w.input, &input, outer);
            let mut cols = input.cols.clone();
            cols.extend(w.window_expr.iter().map(|e| expr(e, &s, Role::Copy)));
            Rel {
                cols,
                rows: input.rows.clone(),
            }
        }
        LogicalPlan::Sort(sort) => {
            let input = walk(&sort.input, outer);
            let order = sort_exprs(
                &sort.expr,
                &scope(&sort.input, &input, outer),
                Role::Indirect(Subtype::Sort),
            );
            let mut rel = input.clone();
            rel.rows.merge(order);
            rel
        }
        LogicalPlan::Join(j) => {
            let left = walk(&j.left, outer);
            let right = walk(&j.right, outer);
            let Ok(both) = j.left.schema().join(j.right.schema()) else {
                return Rel::unknown(plan.schema().fields().len());
            };
            let mut all_cols = left.cols.clone();
            all_cols.extend(right.cols.iter().cloned());
            let s = Scope {
                schema: &both,
                cols: &all_cols,
                outer,
            };
            let role = Role::Indirect(Subtype::Join);
            let mut condition = Info::default();
            for (l, r) in &j.on {
                condition.merge(expr(l, &s, role));
                condition.merge(expr(r, &s, role));
            }
            if let Some(filter) = &j.filter {
                condition.merge(expr(filter, &s, role));
            }
            let mut rows = left.rows.clone();
            rows.merge(right.rows.clone());
            rows.merge(condition.clone());
            let cols = match j.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => all_cols,
                JoinType::LeftSemi | JoinType::LeftAnti => left.cols,
                JoinType::RightSemi | JoinType::RightAnti => right.cols,
                JoinType::LeftMark => {
                    let mut cols = left.cols;
                    cols.push(condition);
                    cols
                }
                JoinType::RightMark => {
                    let mut cols = right.cols;
                    cols.push(condition);
                    cols
                }
            };
            Rel { cols, rows }
        }
        LogicalPlan::Union(u) => {
            let mut out = Rel {
                cols: vec![Info::default(); plan.schema().fields().len()],
                rows: Info::default(),
            };
            for input in &u.inputs {
                let rel = walk(input, outer);
                if rel.cols.len() != out.cols.len() {
                    return Rel::unknown(out.cols.len());
                }
                for (slot, info) in out.cols.iter_mut().zip(rel.cols) {
                    slot.merge(info);
                }
                out.rows.merge(rel.rows);
            }
            out
        }
        LogicalPlan::Distinct(Distinct::All(input)) => {
            let mut rel = walk(input, outer);
            for col in &rel.cols {
                rel.rows
                    .merge(col.through(Role::Indirect(Subtype::GroupBy)));
            }
            rel
        }
        LogicalPlan::Distinct(Distinct::On(d)) => {
            let input = walk(&d.input, outer);
            let s = scope(&d.input, &input, outer);
            let cols = d
                .select_expr
                .iter()
                .map(|e| expr(e, &s, Role::Copy))
                .collect();
            let mut rows = input.rows.clone();
            for e in &d.on_expr {
                rows.merge(expr(e, &s, Role::Indirect(Subtype::GroupBy)));
            }
            if let Some(order) = &d.sort_expr {
                rows.merge(sort_exprs(order, &s, Role::Indirect(Subtype::Sort)));
            }
            Rel { cols, rows }
        }
        LogicalPlan::Unnest(u) => {
            let input = walk(&u.input, outer);
            let unnested: BTreeSet<usize> = u
                .list_type_columns
                .iter()
                .map(|(i, _)| *i)
                .chain(u.struct_type_columns.iter().copied())
                .collect();
            let cols = u
                .dependency_indices
                .iter()
                .map(|&i| match input.cols.get(i) {
                    Some(info) if unnested.contains(&i) => {
                        info.through(Role::Value(Subtype::Transformation))
                    }
                    Some(info) => info.clone(),
                    None => Info::unknown(),
                })
                .collect();
            Rel {
                cols,
                rows: input.rows,
            }
        }
        LogicalPlan::Values(v) => {
            let empty = DFSchema::empty();
            let s = Scope {
                schema: &empty,
                cols: &[],
                outer,
            };
            let mut cols = vec![Info::default(); plan.schema().fields().len()];
            for row in &v.values {
                for (slot, e) in cols.iter_mut().zip(row) {
                    slot.merge(expr(e, &s, Role::Copy));
                }
            }
            Rel {
                cols,
                rows: Info::default(),
            }
        }
        LogicalPlan::EmptyRelation(_) => Rel {
            cols: vec![Info::default(); plan.schema().fields().len()],
            rows: Info::default(),
        },
        // Same columns as the input, same rows or a prefix of them.
        LogicalPlan::SubqueryAlias(a) => walk(&a.input, outer),
        LogicalPlan::Limit(l) => walk(&l.input, outer),
        LogicalPlan::Repartition(r) => walk(&r.input, outer),
        LogicalPlan::Subquery(s) => walk(&s.subquery, outer),
        // Recursive CTEs, extensions, DDL/DML and anything newer: not understood.
        _ => Rel::unknown(plan.schema().fields().len()),
    }
}

fn sort_exprs(order: &[SortExpr], s: &Scope, role: Role) -> Info {
    let mut info = Info::default();
    for o in order {
        info.merge(expr(&o.expr, s, role));
    }
    info
}

/// The inputs of `e`, evaluated in `s`, reaching it in `role`.
fn expr(e: &Expr, s: &Scope, role: Role) -> Info {
    let mut info = Info::default();
    match e {
        Expr::Alias(a) => return expr(&a.expr, s, role),
        Expr::Column(c) => return s.column(c).through(role),
        Expr::OuterReferenceColumn(_, c) => return s.outer_column(c).through(role),
        Expr::Literal(..) | Expr::ScalarVariable(..) | Expr::Placeholder(_) => {}
        Expr::Case(case) => {
            let condition = role.influence(Subtype::Conditional);
            if let Some(base) = &case.expr {
                info.merge(expr(base, s, condition));
            }
            for (when, then) in &case.when_then_expr {
                info.merge(expr(when, s, condition));
                info.merge(expr(then, s, role.operand()));
            }
            if let Some(otherwise) = &case.else_expr {
                info.merge(expr(otherwise, s, role.operand()));
            }
        }
        Expr::AggregateFunction(AggregateFunction { func, params }) => {
            let value = if func.name().eq_ignore_ascii_case("grouping") {
                // GROUPING(a) tells which grouping set a row is in, not anything about `a`'s
                // values.
                role.influence(Subtype::GroupBy)
            } else {
                match role {
                    Role::Indirect(_) => role,
                    _ => Role::Value(Subtype::Aggregation),
                }
            };
            for arg in &params.args {
                info.merge(expr(arg, s, value));
            }
            if let Some(filter) = &params.filter {
                info.merge(expr(filter, s, role.influence(Subtype::Conditional)));
            }
            info.merge(sort_exprs(
                &params.order_by,
                s,
                role.influence(Subtype::Sort),
            ));
        }
        Expr::WindowFunction(w) => {
            let WindowFunction { fun, params } = w.as_ref();
            let value = match (role, fun) {
                (Role::Indirect(_), _) => role,
                (_, WindowFunctionDefinition::AggregateUDF(_)) => Role::Value(Subtype::Aggregation),
                // LAG, LEAD, FIRST_VALUE, NTH_VALUE, ...: another row's value, computed.
                (_, WindowFunctionDefinition::WindowUDF(_)) => Role::Value(Subtype::Transformation),
            };
            for arg in &params.args {
                info.merge(expr(arg, s, value));
            }
            let window = role.influence(Subtype::Window);
            for p in &params.partition_by {
                info.merge(expr(p, s, window));
            }
            info.merge(sort_exprs(&params.order_by, s, window));
            if let Some(filter) = &params.filter {
                info.merge(expr(filter, s, role.influence(Subtype::Conditional)));
            }
        }
        Expr::ScalarSubquery(sq) => {
            let (value, rows) = subquery(sq, s, role.operand());
            info.merge(value);
            info.merge(rows.rows_through(role));
        }
        Expr::InSubquery(in_sq) => {
            info.merge(expr(&in_sq.expr, s, role.operand()));
            let (value, rows) = subquery(&in_sq.subquery, s, role.operand());
            info.merge(value);
            info.merge(rows.rows_through(role));
        }
        Expr::SetComparison(cmp) => {
            info.merge(expr(&cmp.expr, s, role.operand()));
            let (value, rows) = subquery(&cmp.subquery, s, role.operand());
            info.merge(value);
            info.merge(rows.rows_through(role));
        }
        Expr::Exists(ex) => {
            // Only whether rows exist matters, not what the subquery selects.
            let (_, rows) = subquery(&ex.subquery, s, role.operand());
            info.merge(rows.rows_through(role));
        }
        // Row-by-row computations of their operands.
        Expr::BinaryExpr(_)
        | Expr::Like(_)
        | Expr::SimilarTo(_)
        | Expr::Not(_)
        | Expr::IsNotNull(_)
        | Expr::IsNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsNotUnknown(_)
        | Expr::Negative(_)
        | Expr::Between(_)
        | Expr::Cast(_)
        | Expr::TryCast(_)
        | Expr::ScalarFunction(_)
        | Expr::InList(_) => {
            let operand = role.operand();
            let walked = e.apply_children(|child| {
                info.merge(expr(child, s, operand));
                Ok(TreeNodeRecursion::Continue)
            });
            if walked.is_err() {
                info.unknown = true;
            }
        }
        // Grouping sets outside an aggregate, unnest before it is planned, lambdas, wildcards
        // and anything newer: not understood.
        _ => info.unknown = true,
    }
    info
}

/// A subquery's single output column (through `role`) and its row influences (its own
/// filters, joins, grouping and its correlation with the enclosing query).
fn subquery(sq: &Subquery, s: &Scope, role: Role) -> (Info, Info) {
    let rel = walk(&sq.subquery, Some(s));
    let mut value = Info::default();
    for col in &rel.cols {
        value.merge(col.through(role));
    }
    (value, rel.rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn upstream() -> Vec<(String, SchemaRef)> {
        let orders: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("customer_id", DataType::Int64, false),
            Field::new("amount", DataType::Float64, false),
            Field::new("status", DataType::Utf8, false),
        ]));
        let customers: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, false),
        ]));
        vec![("orders".into(), orders), ("customers".into(), customers)]
    }

    async fn lineage(sql: &str) -> Lineage {
        column_lineage(sql, &upstream()).await.expect("plans")
    }

    /// `column` rendered as `table.column:SUBTYPE` strings, for short assertions.
    fn edges(l: &Lineage, column: &str) -> Vec<String> {
        let col = l
            .columns
            .iter()
            .find(|c| c.column == column)
            .unwrap_or_else(|| panic!("no column {column} in {l:?}"));
        assert!(!col.unknown, "{col:?}");
        render(&col.edges)
    }

    fn render(edges: &BTreeSet<Edge>) -> Vec<String> {
        edges
            .iter()
            .map(|e| format!("{}.{}:{}", e.table, e.column, e.subtype.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn joins_aggregates_and_renames() {
        let l = lineage(
            "SELECT c.country AS nation, COUNT(*) AS n, SUM(o.amount * 2) AS total
             FROM orders o JOIN customers c ON o.customer_id = c.customer_id
             WHERE o.amount > 0 GROUP BY c.country",
        )
        .await;
        assert_eq!(edges(&l, "nation"), ["customers.country:IDENTITY"]);
        assert!(l.columns[0].is_identity());
        assert!(edges(&l, "n").is_empty());
        assert_eq!(edges(&l, "total"), ["orders.amount:AGGREGATION"]);
        assert_eq!(
            render(&l.dataset),
            [
                "customers.country:GROUP_BY",
                "customers.customer_id:JOIN",
                "orders.amount:FILTER",
                "orders.customer_id:JOIN",
            ]
        );
        assert!(!l.dataset_unknown);
    }

    #[tokio::test]
    async fn rollup_keeps_columns_aligned() {
        let l = lineage(
            "SELECT status, customer_id, SUM(amount) AS total, GROUPING(status) AS g
             FROM orders GROUP BY ROLLUP (status, customer_id)",
        )
        .await;
        assert_eq!(edges(&l, "status"), ["orders.status:IDENTITY"]);
        assert_eq!(edges(&l, "customer_id"), ["orders.customer_id:IDENTITY"]);
        assert_eq!(edges(&l, "total"), ["orders.amount:AGGREGATION"]);
        assert_eq!(edges(&l, "g"), ["orders.status:GROUP_BY"]);
    }

    #[tokio::test]
    async fn distinct_on_selects_its_own_columns() {
        let l = lineage(
            "SELECT DISTINCT ON (customer_id) amount * 2 AS doubled, status
             FROM orders ORDER BY customer_id, order_id DESC",
        )
        .await;
        assert_eq!(edges(&l, "doubled"), ["orders.amount:TRANSFORMATION"]);
        assert_eq!(edges(&l, "status"), ["orders.status:IDENTITY"]);
        assert_eq!(
            render(&l.dataset),
            [
                "orders.customer_id:GROUP_BY",
                "orders.customer_id:SORT",
                "orders.order_id:SORT"
            ]
        );
    }

    #[tokio::test]
    async fn correlated_scalar_subquery_in_the_select_list() {
        let l = lineage(
            "SELECT c.country,
                    (SELECT MAX(o.amount) FROM orders o WHERE o.customer_id = c.customer_id) AS top
             FROM customers c",
        )
        .await;
        assert_eq!(
            edges(&l, "top"),
            [
                "customers.customer_id:FILTER",
                "orders.amount:AGGREGATION",
                "orders.customer_id:FILTER"
            ]
        );
        assert!(l.dataset.is_empty());
    }

    #[tokio::test]
    async fn case_conditions_and_windows_are_indirect() {
        let l = lineage(
            "SELECT CASE WHEN status = 'paid' THEN amount ELSE 0 END AS paid,
                    SUM(amount) OVER (PARTITION BY customer_id ORDER BY order_id) AS running
             FROM orders",
        )
        .await;
        assert_eq!(
            edges(&l, "paid"),
            ["orders.amount:TRANSFORMATION", "orders.status:CONDITIONAL"]
        );
        assert_eq!(
            edges(&l, "running"),
            [
                "orders.amount:AGGREGATION",
                "orders.customer_id:WINDOW",
                "orders.order_id:WINDOW"
            ]
        );
    }

    #[tokio::test]
    async fn except_takes_values_from_the_left_only() {
        let l = lineage("SELECT customer_id FROM orders EXCEPT SELECT customer_id FROM customers")
            .await;
        assert_eq!(edges(&l, "customer_id"), ["orders.customer_id:IDENTITY"]);
        assert_eq!(
            render(&l.dataset),
            [
                "customers.customer_id:JOIN",
                "orders.customer_id:JOIN",
                "orders.customer_id:GROUP_BY"
            ]
        );
    }

    #[tokio::test]
    async fn what_is_not_understood_is_unknown() {
        let l = lineage(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3)
             SELECT o.order_id, r.n FROM orders o CROSS JOIN r",
        )
        .await;
        assert!(!l.columns[0].unknown, "{l:?}");
        assert_eq!(edges(&l, "order_id"), ["orders.order_id:IDENTITY"]);
        assert!(l.columns[1].unknown);
        assert!(l.columns[1].edges.is_empty());
        assert!(l.dataset_unknown);
    }
}
