-- Column lineage corpus: weir's lineage is compared with sqlglot's on every query below
-- (tests/it/lineage_vs_sqlglot.rs). Format:
--   -- table <name>: <column> <TYPE>, ...     an upstream table (types: BIGINT, DOUBLE PRECISION,
--                                            TEXT, TIMESTAMP, TEXT[])
--   -- case: <name>                          starts a case; the SQL runs to the next case
--   -- sqlglot-wrong: <column> extra|missing <table>.<column>: <reason>
--                                            sqlglot's direct edges are demonstrably wrong there:
--                                            `extra` drops an edge it reports, `missing` adds one
--                                            it misses. Every such line needs a reason.
-- Computed columns are aliased so both sides name them the same.

-- table orders: order_id BIGINT, customer_id BIGINT, amount DOUBLE PRECISION, status TEXT, order_ts TIMESTAMP, tags TEXT[]
-- table customers: customer_id BIGINT, name TEXT, country TEXT, tier TEXT
-- table payments: payment_id BIGINT, order_id BIGINT, method TEXT, amount DOUBLE PRECISION

-- case: plain_projection
SELECT order_id, amount FROM orders

-- case: star
SELECT * FROM customers

-- case: renames
SELECT order_id AS id, status AS state FROM orders

-- case: expressions
SELECT order_id, amount * 1.2 AS gross, upper(status) AS loud FROM orders

-- case: cast_and_functions
SELECT CAST(order_ts AS DATE) AS day, coalesce(status, 'none') AS status FROM orders

-- case: constants
SELECT 1 AS one, 'x' AS label, order_id FROM orders

-- case: case_searched
SELECT order_id,
       CASE WHEN amount > 100 THEN 'big' WHEN status = 'refund' THEN status ELSE 'small' END AS size
FROM orders

-- case: case_operand
SELECT CASE status WHEN 'paid' THEN amount ELSE 0 END AS paid FROM orders

-- case: case_in_aggregate
SELECT customer_id, SUM(CASE WHEN status = 'paid' THEN amount END) AS paid
FROM orders GROUP BY customer_id

-- case: aggregates
SELECT customer_id, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean, MAX(order_ts) AS last_order
FROM orders GROUP BY customer_id

-- case: count_distinct
SELECT COUNT(DISTINCT customer_id) AS buyers FROM orders

-- case: having
SELECT status, COUNT(*) AS n FROM orders GROUP BY status HAVING SUM(amount) > 10

-- case: aggregate_filter
SELECT customer_id, COUNT(*) FILTER (WHERE status = 'paid') AS paid_orders, SUM(amount) FILTER (WHERE amount > 0) AS positive
FROM orders GROUP BY customer_id

-- case: rollup
SELECT status, customer_id, SUM(amount) AS total FROM orders GROUP BY ROLLUP (status, customer_id)

-- case: cube
SELECT c.country, c.tier, COUNT(*) AS n FROM customers c GROUP BY CUBE (c.country, c.tier)

-- case: grouping_sets
SELECT status, customer_id, MAX(amount) AS top
FROM orders GROUP BY GROUPING SETS ((status), (customer_id), ())

-- case: grouping_function
SELECT status, GROUPING(status) AS is_total, SUM(amount) AS total FROM orders GROUP BY ROLLUP (status)

-- case: rollup_in_cte
WITH r AS (SELECT country, tier, COUNT(*) AS n FROM customers GROUP BY ROLLUP (country, tier))
SELECT tier, n FROM r WHERE country IS NOT NULL

-- case: distinct
SELECT DISTINCT country, tier FROM customers

-- case: distinct_on
SELECT DISTINCT ON (customer_id) customer_id, order_id, amount FROM orders ORDER BY customer_id, order_ts DESC

-- case: distinct_on_not_selected
SELECT DISTINCT ON (customer_id) status, order_id * 10 AS ref FROM orders ORDER BY customer_id, amount DESC

-- case: inner_join
SELECT o.order_id, c.name, c.country FROM orders o JOIN customers c ON o.customer_id = c.customer_id

-- case: left_join
SELECT o.order_id, p.method, p.amount AS paid
FROM orders o LEFT JOIN payments p ON p.order_id = o.order_id AND p.method <> 'gift'

-- case: full_join
SELECT coalesce(o.order_id, p.order_id) AS order_id, o.amount, p.amount AS paid
FROM orders o FULL JOIN payments p ON p.order_id = o.order_id

-- case: three_way_join
SELECT c.country, SUM(p.amount) AS paid
FROM orders o JOIN customers c ON c.customer_id = o.customer_id JOIN payments p ON p.order_id = o.order_id
GROUP BY c.country

-- case: cross_join
SELECT c.name, p.method FROM customers c CROSS JOIN payments p

-- case: where_filter
SELECT order_id, amount FROM orders WHERE status = 'paid' AND amount > 10

-- case: order_by_limit
SELECT order_id, amount FROM orders ORDER BY order_ts DESC LIMIT 10

-- case: order_by_expression
SELECT name FROM customers ORDER BY country, upper(tier)

-- case: window_partition
SELECT order_id, SUM(amount) OVER (PARTITION BY customer_id ORDER BY order_ts) AS running FROM orders

-- case: window_ranking
SELECT order_id,
       ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS rn,
       RANK() OVER (ORDER BY order_ts) AS r
FROM orders

-- case: window_lag
SELECT order_id, LAG(amount) OVER (PARTITION BY customer_id ORDER BY order_ts) AS previous FROM orders

-- case: window_then_filter
SELECT order_id, rn
FROM (SELECT order_id, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS rn FROM orders) ranked
WHERE rn = 1

-- case: scalar_subquery
SELECT order_id, amount / (SELECT SUM(amount) FROM payments) AS share FROM orders

-- case: correlated_scalar_subquery
SELECT c.name, (SELECT MAX(o.amount) FROM orders o WHERE o.customer_id = c.customer_id) AS biggest
FROM customers c

-- case: correlated_count
SELECT c.customer_id, (SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.customer_id) AS n
FROM customers c

-- case: exists_filter
SELECT c.name FROM customers c
WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.status = 'paid')

-- case: not_exists_filter
SELECT o.order_id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id)

-- case: in_filter
SELECT order_id FROM orders WHERE customer_id IN (SELECT customer_id FROM customers WHERE country = 'FR')

-- case: scalar_subquery_filter
SELECT order_id, amount FROM orders WHERE amount > (SELECT AVG(amount) FROM payments)

-- case: exists_in_select
SELECT c.customer_id, EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id) AS has_orders
FROM customers c

-- case: in_subquery_in_select
SELECT order_id, customer_id IN (SELECT customer_id FROM customers WHERE tier = 'gold') AS gold FROM orders

-- case: union_all
SELECT order_id, amount FROM orders UNION ALL SELECT order_id, amount FROM payments

-- case: union_distinct
SELECT customer_id AS id FROM orders UNION SELECT customer_id FROM customers

-- case: intersect
SELECT customer_id FROM orders INTERSECT SELECT customer_id FROM customers
-- sqlglot-wrong: customer_id extra customers.customer_id: INTERSECT returns the rows of its left side that also occur on the right; the right side only filters (a semi-join), so its column is an indirect (JOIN) input, not a source of the values

-- case: except
SELECT customer_id FROM customers EXCEPT SELECT customer_id FROM orders
-- sqlglot-wrong: customer_id extra orders.customer_id: EXCEPT returns rows of the left side that do NOT occur on the right; no value of orders.customer_id can reach the output

-- case: cte
WITH paid AS (SELECT order_id, amount FROM orders WHERE status = 'paid')
SELECT order_id, amount * 2 AS double_amount FROM paid

-- case: nested_ctes
WITH a AS (SELECT customer_id, SUM(amount) AS total FROM orders GROUP BY customer_id),
     b AS (SELECT c.country, a.total FROM a JOIN customers c ON c.customer_id = a.customer_id)
SELECT country, MAX(total) AS top FROM b GROUP BY country

-- case: cte_used_twice
WITH t AS (SELECT customer_id, amount FROM orders)
SELECT x.customer_id, x.amount - y.amount AS diff FROM t x JOIN t y ON x.customer_id = y.customer_id

-- case: derived_table
SELECT s.customer_id, s.total
FROM (SELECT customer_id, SUM(amount) AS total FROM orders GROUP BY customer_id) s
WHERE s.total > 100

-- case: union_in_cte
WITH amounts AS (SELECT customer_id AS id, amount FROM orders UNION ALL SELECT order_id, amount FROM payments)
SELECT id, SUM(amount) AS total FROM amounts GROUP BY id

-- case: unnest
SELECT order_id, unnest(tags) AS tag FROM orders

-- case: unnest_in_cte
WITH t AS (SELECT order_id, unnest(tags) AS tag FROM orders)
SELECT tag, COUNT(*) AS n FROM t GROUP BY tag

-- case: in_list_and_between
SELECT order_id, amount BETWEEN 10 AND 20 AS mid, status IN ('a', 'b') AS ab FROM orders

-- case: case_over_window_in_cte
WITH w AS (SELECT order_id, amount, AVG(amount) OVER (PARTITION BY customer_id) AS mean FROM orders)
SELECT order_id, CASE WHEN amount > mean THEN amount - mean ELSE 0 END AS above FROM w
