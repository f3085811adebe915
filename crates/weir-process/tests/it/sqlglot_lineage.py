"""Independent column lineage for the corpus, computed with sqlglot (not with DataFusion).

Reads {"schema": {table: [[column, type], ...]}, "cases": [{"name", "sql"}]} as JSON on stdin and
prints {"cases": [{"name", "columns": [{"name", "direct": [[table, column], ...]}],
"dataset": [[table, column], ...], "error"}]} on stdout.

Direct edges: the source-table leaves of `sqlglot.lineage.lineage(column, ...)` on the query
after removing the positions that only *influence* a value, which sqlglot's lineage does not
tell apart from the ones that supply it (it follows every column of a select item):
  - CASE conditions and the CASE operand (`CASE x WHEN ...`): replaced by TRUE / removed;
  - a window's PARTITION BY and ORDER BY: removed;
  - an aggregate's FILTER (WHERE ...) and ordering inside an aggregate call: removed;
  - GROUPING(...): replaced by 0 (it tells which grouping set a row is in, not a value).
These are syntactic rules; sqlglot still does all the resolution (scopes, CTEs, aliases,
stars, set operations, subqueries).

Dataset edges (what decides which rows exist or their order): the source leaves of every
column referenced in WHERE, JOIN ON/USING, GROUP BY (incl. ROLLUP/CUBE/GROUPING SETS), HAVING,
ORDER BY and DISTINCT ON of the outer query and of every CTE/derived table it reads, plus all
select items of a DISTINCT select, of a UNION (without ALL) and of both sides of INTERSECT and
EXCEPT, followed through CTEs with sqlglot's lineage (all leaves, since any input of a column
used in a filter influences the filter). Scalar subqueries in a select list only influence
their column, so their clauses are not dataset edges.
"""

import json
import sys

try:
    import sqlglot
    from sqlglot import exp
    from sqlglot.lineage import lineage, to_node
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import Scope, build_scope
    from sqlglot.schema import MappingSchema
except ImportError as e:  # the Rust test turns this into a clear failure
    print(f"sqlglot is not importable: {e}", file=sys.stderr)
    sys.exit(3)

DIALECT = "postgres"


def direct_only(tree):
    tree = tree.copy()

    def strip(node):
        if isinstance(node, exp.If) and isinstance(node.parent, exp.Case):
            node.set("this", exp.true())
        elif isinstance(node, exp.Case) and node.this is not None:
            node.set("this", None)
        elif isinstance(node, exp.Window):
            node.set("partition_by", None)
            node.set("order", None)
        elif isinstance(node, exp.Filter) and isinstance(node.expression, exp.Where):
            return node.this
        elif isinstance(node, exp.Order) and not isinstance(
            node.parent, (exp.Select, exp.SetOperation, exp.Subquery)
        ):
            return node.this
        elif isinstance(node, exp.Grouping):
            return exp.Literal.number(0)
        return node

    return tree.transform(strip, copy=False)


def table_leaves(node):
    out = set()
    for n in node.walk():
        if not n.downstream and isinstance(n.source, exp.Table):
            out.add((n.source.name, n.name.split(".")[-1].strip('"')))
    return out


def output_names(tree):
    while isinstance(tree, exp.SetOperation):
        tree = tree.this
    if isinstance(tree, exp.Subquery):
        return output_names(tree.this)
    return tree.named_selects


def dataset_edges(tree, schema):
    """Source leaves of the columns that shape the rows of `tree` (see the module doc)."""
    qualified = qualify(tree.copy(), schema=schema, dialect=DIALECT, validate_qualify_columns=False)
    root = build_scope(qualified)
    out = set()

    def leaves_of_column(scope, column):
        if not column.table and column.name in scope.expression.named_selects:
            # ORDER BY / GROUP BY naming a select item of this scope.
            return table_leaves(to_node(column.name, scope=scope, dialect=DIALECT, schema=schema))
        s = scope
        while s is not None:  # correlated columns belong to an enclosing scope
            source = s.sources.get(column.table)
            if isinstance(source, exp.Table):
                return {(source.name, column.name)}
            if isinstance(source, Scope):
                return table_leaves(
                    to_node(column.name, scope=source, dialect=DIALECT, schema=schema)
                )
            s = s.parent
        raise ValueError(f"cannot resolve {column.sql()}")

    def all_columns_of(scope, node):
        found = set()
        for c in node.find_all(exp.Column):
            found |= leaves_of_column(scope_of(scope, c), c)
        return found

    def scope_of(scope, column):
        # A column inside a subquery of a clause belongs to that subquery's scope (or, when
        # correlated, to an enclosing one).
        for s in scope.traverse():
            if column in s.columns:
                return s
        return scope

    def select_items(scope):
        found = set()
        for name in scope.expression.named_selects:
            found |= table_leaves(to_node(name, scope=scope, dialect=DIALECT, schema=schema))
        return found

    seen = set()

    def visit(scope):
        if id(scope) in seen:
            return
        seen.add(id(scope))
        e = scope.expression
        if isinstance(e, exp.SetOperation):
            if isinstance(e, (exp.Intersect, exp.Except)) or e.args.get("distinct"):
                for branch in scope.set_operation_scopes:
                    out.update(branch_select_items(branch))
            for branch in scope.set_operation_scopes:
                visit(branch)
            return
        if isinstance(e, exp.Select):
            for key in ("where", "group", "having", "order"):
                clause = e.args.get(key)
                if clause is not None:
                    out.update(all_columns_of(scope, clause))
            for join in e.args.get("joins") or []:
                for key in ("on", "using"):
                    clause = join.args.get(key)
                    if clause is None:
                        continue
                    if key == "using":
                        for ident in clause:
                            for src in scope.selected_sources:
                                col = exp.column(ident.name, table=src)
                                out.update(leaves_of_column(scope, col))
                    else:
                        out.update(all_columns_of(scope, clause))
            distinct = e.args.get("distinct")
            if distinct is not None:
                on = distinct.args.get("on")
                if on is not None:
                    out.update(all_columns_of(scope, on))
                else:
                    out.update(select_items(scope))
            for source in scope.sources.values():
                if isinstance(source, Scope):
                    visit(source)

    def branch_select_items(scope):
        if isinstance(scope.expression, exp.SetOperation):
            found = set()
            for b in scope.set_operation_scopes:
                found |= branch_select_items(b)
            return found
        return select_items(scope)

    visit(root)
    return out


def main():
    request = json.load(sys.stdin)
    # Columns come as [name, type] pairs so that `SELECT *` keeps the declared order.
    schema = MappingSchema(
        {t: dict(cols) for t, cols in request["schema"].items()}, dialect=DIALECT
    )
    results = []
    for case in request["cases"]:
        result = {"name": case["name"], "columns": [], "dataset": None, "error": None}
        try:
            tree = sqlglot.parse_one(case["sql"], dialect=DIALECT)
            stripped = direct_only(tree)
            qualified = qualify(
                tree.copy(), schema=schema, dialect=DIALECT, validate_qualify_columns=False
            )
            for name in output_names(qualified):
                node = lineage(name, stripped, schema=schema, dialect=DIALECT)
                result["columns"].append(
                    {"name": name, "direct": sorted(list(x) for x in table_leaves(node))}
                )
            result["dataset"] = sorted(list(x) for x in dataset_edges(tree, schema))
        except Exception as e:  # reported per case; the Rust side fails on it
            result["error"] = f"{type(e).__name__}: {e}"
        results.append(result)
    json.dump({"cases": results, "sqlglot": sqlglot.__version__}, sys.stdout)


if __name__ == "__main__":
    main()
