//! The example project `weir init` writes: a small shop with three sources in three formats,
//! two teams, and a few percent of bad rows of several kinds, so the first run shows
//! quarantine, warnings and the accounting at work.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct Summary {
    pub files: Vec<PathBuf>,
    pub rows: usize,
    pub bad_rows: usize,
}

const COUNTRIES: &[&str] = &["US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "JP"];
const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Linus",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Torvalds",
];
const STATUSES: &[&str] = &["placed", "paid", "shipped", "delivered", "cancelled"];
const METHODS: &[&str] = &["card", "paypal", "bank_transfer"];

pub fn write(dir: &Path) -> anyhow::Result<Summary> {
    let mut summary = Summary {
        files: Vec::new(),
        rows: 0,
        bad_rows: 0,
    };
    let mut rng = StdRng::seed_from_u64(20261125);
    for sub in [
        "contracts",
        "sources",
        "models",
        "data/customers",
        "data/orders",
        "data/payments",
    ] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let mut put = |rel: &str, contents: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(rel);
        std::fs::write(&path, contents)?;
        summary.files.push(PathBuf::from(rel));
        Ok(())
    };
    put("weir.toml", WEIR_TOML.as_bytes())?;
    put(".gitignore", b"lake/\n.weir/\n")?;
    put(
        "contracts/customers.odcs.yaml",
        CUSTOMERS_CONTRACT.as_bytes(),
    )?;
    put("contracts/orders.odcs.yaml", ORDERS_CONTRACT.as_bytes())?;
    put("contracts/payments.odcs.yaml", PAYMENTS_CONTRACT.as_bytes())?;
    put("sources/customers.toml", CUSTOMERS_SOURCE.as_bytes())?;
    put("sources/orders.toml", ORDERS_SOURCE.as_bytes())?;
    put("sources/payments.toml", PAYMENTS_SOURCE.as_bytes())?;
    put("models/stg_orders.sql", STG_ORDERS_SQL.as_bytes())?;
    put(
        "contracts/stg_orders.odcs.yaml",
        STG_ORDERS_CONTRACT.as_bytes(),
    )?;
    put("models/order_details.sql", ORDER_DETAILS_SQL.as_bytes())?;
    put(
        "contracts/order_details.odcs.yaml",
        ORDER_DETAILS_CONTRACT.as_bytes(),
    )?;
    put("models/daily_revenue.sql", DAILY_REVENUE_SQL.as_bytes())?;
    put(
        "contracts/daily_revenue.odcs.yaml",
        DAILY_REVENUE_CONTRACT.as_bytes(),
    )?;

    let (csv, rows, bad) = customers_csv(&mut rng, 2_000);
    put("data/customers/customers.csv", csv.as_bytes())?;
    let (mut total_rows, mut total_bad) = (rows, bad);
    for (day, start) in [("2026-11-01", 1u64), ("2026-11-02", 5_001)] {
        let (ndjson, rows, bad) = orders_ndjson(&mut rng, day, start, 5_000);
        put(&format!("data/orders/{day}.ndjson"), ndjson.as_bytes())?;
        total_rows += rows;
        total_bad += bad;
    }
    let (parquet, rows, bad) = payments_parquet(&mut rng, 4_000)?;
    put("data/payments/payments-2026-11.parquet", &parquet)?;
    total_rows += rows;
    total_bad += bad;
    summary.rows = total_rows;
    summary.bad_rows = total_bad;
    Ok(summary)
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Customers, with bad emails, unknown countries, missing ids, impossible dates and a line
/// with a stray delimiter.
fn customers_csv(rng: &mut StdRng, n: u64) -> (String, usize, usize) {
    let mut out = String::from("customer_id,email,name,country,tier,signup_date\n");
    let mut bad = 0;
    for id in 1..=n {
        let first = pick(rng, FIRST);
        let last = pick(rng, LAST);
        let mut email = format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            id
        );
        let mut country = pick(rng, COUNTRIES).to_string();
        let tier = pick(rng, &["gold", "silver", "bronze"]);
        let mut date = format!(
            "2025-{:02}-{:02}",
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        );
        let mut id_text = id.to_string();
        let roll = rng.random_range(0..100);
        match roll {
            0 => {
                email = format!(
                    "{}.{}-at-example.com",
                    first.to_lowercase(),
                    last.to_lowercase()
                )
            }
            1 => country = "XX".into(),
            2 => id_text.clear(),
            3 => date = "2025-02-30".into(),
            _ => {}
        }
        if roll < 4 {
            bad += 1;
        }
        if id % 500 == 0 {
            let _ = writeln!(
                out,
                "{id_text},{email},\"{last}, {first}\",{country},{tier},{date},EXTRA"
            );
            bad += 1;
            continue;
        }
        let name = if id % 97 == 0 {
            String::new()
        } else {
            format!("\"{first} {last}\"")
        };
        let _ = writeln!(out, "{id_text},{email},{name},{country},{tier},{date}");
    }
    (out, n as usize, bad)
}

/// Orders, with negative amounts, unknown statuses, amounts that are not numbers, lowercase
/// currencies and a truncated JSON line.
fn orders_ndjson(rng: &mut StdRng, day: &str, start: u64, n: u64) -> (String, usize, usize) {
    let mut out = String::new();
    let mut bad = 0;
    for id in start..start + n {
        let customer = rng.random_range(1..=2_000u64);
        let ts = format!(
            "{day}T{:02}:{:02}:{:02}Z",
            rng.random_range(0..24),
            rng.random_range(0..60),
            rng.random_range(0..60)
        );
        let mut amount = serde_json::json!((rng.random_range(500..50_000) as f64) / 100.0);
        let mut status = pick(rng, STATUSES).to_string();
        let mut currency = "EUR".to_string();
        let roll = rng.random_range(0..100);
        match roll {
            0 => amount = serde_json::json!(-12.5),
            1 => status = "lost_in_space".into(),
            2 => amount = serde_json::json!("twelve"),
            _ => {}
        }
        if id % 700 == 0 {
            currency = "eur".into();
        }
        if roll < 3 || id % 700 == 0 {
            bad += 1;
        }
        let line = serde_json::json!({
            "order_id": id, "customer_id": customer, "order_ts": ts, "status": status, "amount": amount, "currency": currency,
        })
        .to_string();
        if id % 1_250 == 0 {
            let _ = writeln!(out, "{}", &line[..line.len() / 2]);
            bad += 1;
            continue;
        }
        let _ = writeln!(out, "{line}");
    }
    (out, n as usize, bad)
}

/// Payments as Parquet, typed already; bad rows are semantic: negative amounts, unknown
/// methods, missing ids.
fn payments_parquet(rng: &mut StdRng, n: usize) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    let mut ids = Vec::with_capacity(n);
    let mut orders = Vec::with_capacity(n);
    let mut methods = Vec::with_capacity(n);
    let mut amounts = Vec::with_capacity(n);
    let mut paid_at = Vec::with_capacity(n);
    let mut bad = 0;
    let base = 1_793_491_200_000_000i64; // 2026-11-01T00:00:00Z
    for i in 0..n {
        let roll = rng.random_range(0..100);
        ids.push(if roll == 0 { None } else { Some(i as i64 + 1) });
        orders.push(Some(rng.random_range(1..=10_000i64)));
        methods.push(Some(if roll == 1 {
            "cash_in_envelope"
        } else {
            pick(rng, METHODS)
        }));
        amounts.push(Some(if roll == 2 {
            -5.0
        } else {
            rng.random_range(500..50_000) as f64 / 100.0
        }));
        paid_at.push(Some(base + rng.random_range(0..2 * 86_400_000_000i64)));
        if roll < 3 {
            bad += 1;
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("payment_id", DataType::Int64, true),
        Field::new("order_id", DataType::Int64, true),
        Field::new("method", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new(
            "paid_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(Int64Array::from(orders)),
        Arc::new(StringArray::from(methods)),
        Arc::new(Float64Array::from(amounts)),
        Arc::new(TimestampMicrosecondArray::from(paid_at).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let mut buf = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok((buf, n, bad))
}

const WEIR_TOML: &str = r##"# A weir project: everything here is text, reviewed in git.
[project]
name = "shop"
lake = "lake"                       # Delta tables, one folder per asset
state = "sqlite:.weir/state.db"     # runs and the file ledger

[teams.sales]
description = "Owns customers and orders"
channels = ["slack:#sales-data", "email:sales-data@example.com"]

[teams.finance]
description = "Owns payments"
channels = ["slack:#finance-data"]
"##;

const CUSTOMERS_SOURCE: &str = r#"format = "csv"
path = "data/customers/*.csv"
description = "Customer master data exported nightly from the CRM"

[options]
delimiter = ","
header = true
date_format = "%Y-%m-%d"
"#;

const ORDERS_SOURCE: &str = r#"format = "ndjson"
path = "data/orders/*.ndjson"
description = "One file of orders per day from the shop backend"
"#;

const PAYMENTS_SOURCE: &str = r#"format = "parquet"
path = "data/payments/*.parquet"
description = "Monthly payment exports from the payment provider"
"#;

const CUSTOMERS_CONTRACT: &str = r##"apiVersion: v3.1.0
kind: DataContract
id: shop-customers
version: 1.0.0
status: active
name: customers
domain: sales
description:
  purpose: Every customer of the shop, one row per customer.
team:
  name: sales
  members:
    - username: ana@example.com
      role: owner
    - username: li@example.com
      role: steward
support:
  - channel: "#sales-data"
    tool: slack
    scope: issues
slaProperties:
  - property: latency
    value: 1
    unit: d
    element: customers.signup_date
  - property: errorRate # the supplier's exports are dirty: up to 6 % of rows may be quarantined
    value: 6
    unit: percent
schema:
  - name: customers
    physicalType: table
    quality:
      - id: customers_volume
        metric: rowCount
        mustBeGreaterThan: 100
        severity: error
    properties:
      - name: customer_id
        logicalType: integer
        primaryKey: true
        required: true
      - name: email
        logicalType: string
        required: true
        logicalTypeOptions:
          format: email
        quality:
          - id: email_duplicates
            metric: duplicateValues
            mustBe: 0
            severity: warning
      - name: name
        logicalType: string
        quality:
          - id: name_missing
            metric: missingValues
            arguments:
              missingValues: [null, "", "N/A"]
            mustBeLessThan: 5
            unit: percent
            severity: warning
      - name: country
        logicalType: string
        required: true
        logicalTypeOptions:
          pattern: "^[A-Z]{2}$"
        quality:
          - id: country_known
            metric: invalidValues
            arguments:
              validValues: [US, GB, DE, FR, NL, ES, IT, SE, PL, JP]
            mustBeLessThan: 2
            unit: percent
            severity: error
      - name: tier
        logicalType: string
        quality:
          - id: tier_valid
            metric: invalidValues
            arguments:
              validValues: [gold, silver, bronze]
            mustBe: 0
      - name: signup_date
        logicalType: date
        required: true
        logicalTypeOptions:
          minimum: "2020-01-01"
"##;

const ORDERS_CONTRACT: &str = r##"apiVersion: v3.1.0
kind: DataContract
id: shop-orders
version: 1.2.0
status: active
name: orders
domain: sales
description:
  purpose: Orders placed in the shop, one row per order.
team:
  name: sales
  members:
    - username: ana@example.com
      role: owner
support:
  - channel: "#sales-data"
    tool: slack
    scope: notifications
slaProperties:
  - property: latency
    value: 2
    unit: h
    element: orders.order_ts
  - property: frequency
    value: 1
    unit: d
  - property: errorRate # the supplier's exports are dirty: up to 6 % of rows may be quarantined
    value: 6
    unit: percent
schema:
  - name: orders
    physicalType: table
    quality:
      - id: orders_volume
        metric: rowCount
        mustBeGreaterThan: 1000
      - id: big_orders
        type: sql
        description: Orders over 450 need a manual fraud review, and the review team handles at most 20 per load.
        query: "SELECT COUNT(*) FROM {object} WHERE amount > 450"
        mustBeLessThan: 20
        severity: warning
    properties:
      - name: order_id
        logicalType: integer
        primaryKey: true
        required: true
      - name: customer_id
        logicalType: integer
        required: true
      - name: order_ts
        logicalType: timestamp
        required: true
      - name: status
        logicalType: string
        required: true
        quality:
          - id: status_valid
            metric: invalidValues
            arguments:
              validValues: [placed, paid, shipped, delivered, cancelled]
            mustBeLessOrEqualTo: 2
            unit: percent
      - name: amount
        logicalType: number
        physicalType: decimal(12,2)
        required: true
        logicalTypeOptions:
          minimum: 0
      - name: currency
        logicalType: string
        required: true
        logicalTypeOptions:
          pattern: "^[A-Z]{3}$"
"##;

const PAYMENTS_CONTRACT: &str = r##"apiVersion: v3.1.0
kind: DataContract
id: shop-payments
version: 1.0.0
status: active
name: payments
domain: finance
description:
  purpose: Payments received, one row per payment.
team:
  name: finance
  members:
    - username: omar@example.com
      role: owner
support:
  - channel: "#finance-data"
    tool: slack
    scope: issues
slaProperties:
  - property: errorRate # the supplier's exports are dirty: up to 6 % of rows may be quarantined
    value: 6
    unit: percent
schema:
  - name: payments
    physicalType: table
    quality:
      - id: payments_volume
        metric: rowCount
        mustBeBetween: [100, 1000000]
    properties:
      - name: payment_id
        logicalType: integer
        primaryKey: true
        required: true
      - name: order_id
        logicalType: integer
        required: true
        quality:
          - id: order_id_nulls
            metric: nullValues
            mustBe: 0
      - name: method
        logicalType: string
        required: true
        quality:
          - id: method_valid
            metric: invalidValues
            arguments:
              validValues: [card, paypal, bank_transfer]
            mustNotBeBetween: [5, 100]
            unit: percent
      - name: amount
        logicalType: number
        required: true
        logicalTypeOptions:
          exclusiveMinimum: 0
      - name: paid_at
        logicalType: timestamp
        required: true
"##;

const STG_ORDERS_SQL: &str = "-- Orders that count as revenue, with the day they were placed. Incremental: each run adds
-- the rows of the order files ingested since the last one (read from the Delta log).
-- weir: materialized = incremental, strategy = append
SELECT order_id, customer_id, order_ts, CAST(order_ts AS DATE) AS order_day, status, amount, currency
FROM orders
WHERE status <> 'cancelled'
";

const ORDER_DETAILS_SQL: &str =
    "-- Each order with its customer and payment: the table analysts start from.
-- weir: materialized = table
SELECT o.order_id, o.order_day, o.amount, c.customer_id, c.country, c.tier,
       p.method AS payment_method, p.amount AS paid_amount
FROM stg_orders o
JOIN customers c ON c.customer_id = o.customer_id
LEFT JOIN payments p ON p.order_id = o.order_id
";

const DAILY_REVENUE_SQL: &str =
    "-- Revenue per day and country. Each run recomputes, over all orders, only the (day, country)
-- pairs that new orders fall in, and merges them in: late orders update their day's row.
-- weir: materialized = incremental, strategy = merge, unique_key = order_day+country
SELECT o.order_day, c.country, COUNT(*) AS orders, COALESCE(SUM(o.amount), 0) AS revenue
FROM stg_orders o
JOIN customers c ON c.customer_id = o.customer_id
GROUP BY o.order_day, c.country
";

const STG_ORDERS_CONTRACT: &str = r##"apiVersion: v3.1.0
kind: DataContract
id: shop-stg-orders
version: 1.0.0
status: active
name: stg_orders
domain: sales
description:
  purpose: Orders that count as revenue (not cancelled), with their day.
team:
  name: sales
  members:
    - username: ana@example.com
      role: owner
schema:
  - name: stg_orders
    properties:
      - name: order_id
        logicalType: integer
        primaryKey: true
      - name: customer_id
        logicalType: integer
        required: true
      - name: order_ts
        logicalType: timestamp
        required: true
      - name: order_day
        logicalType: date
        required: true
      - name: status
        logicalType: string
        required: true
      - name: amount
        logicalType: number
        physicalType: decimal(12,2)
        required: true
      - name: currency
        logicalType: string
        required: true
"##;

const ORDER_DETAILS_CONTRACT: &str = r##"apiVersion: v3.1.0
kind: DataContract
id: shop-order-details
version: 1.0.0
status: active
name: order_details
domain: sales
description:
  purpose: Orders joined with their customer and payment.
team:
  name: sales
  members:
    - username: li@example.com
      role: owner
schema:
  - name: order_details
    quality:
      - id: one_row_per_order
        description: An order paid in several payments shows up several times; finance is told, nothing is blocked.
        metric: duplicateValues
        arguments:
          properties: [order_id]
        mustBe: 0
        severity: warning
    properties:
      - name: order_id
        logicalType: integer
        required: true
      - name: order_day
        logicalType: date
        required: true
      - name: amount
        logicalType: number
        physicalType: decimal(12,2)
        required: true
      - name: customer_id
        logicalType: integer
        required: true
      - name: country
        logicalType: string
        required: true
      - name: tier
        logicalType: string
      - name: payment_method
        logicalType: string
      - name: paid_amount
        logicalType: number
"##;

const DAILY_REVENUE_CONTRACT: &str = r##"apiVersion: v3.1.0
kind: DataContract
id: shop-daily-revenue
version: 1.0.0
status: active
name: daily_revenue
domain: finance
description:
  purpose: Revenue per day and country, for the finance dashboard.
team:
  name: finance
  members:
    - username: omar@example.com
      role: owner
support:
  - channel: "#finance-data"
    tool: slack
schema:
  - name: daily_revenue
    quality:
      - id: one_row_per_day_and_country
        metric: duplicateValues
        arguments:
          properties: [order_day, country]
        mustBe: 0
    properties:
      - name: order_day
        logicalType: date
        required: true
      - name: country
        logicalType: string
        required: true
      - name: orders
        logicalType: integer
        required: true
        logicalTypeOptions:
          minimum: 1
      - name: revenue
        logicalType: number
        physicalType: decimal(18,2)
        required: true
        logicalTypeOptions:
          minimum: 0
"##;
