//! `weir-bench`: the figures in BENCHMARKS.md.
//!
//! Each phase runs in its own process so peak memory (VmHWM) belongs to that phase alone:
//!   weir-bench generate DIR [ROWS]   write DIR/data/events.csv and DIR/parquet/events.parquet
//!   weir-bench ingest DIR            (a) CSV → validated Delta ingest through `weir run`'s pipeline
//!   weir-bench validate DIR          (b) validation alone on the Parquet file, every failing row captured
//!   weir-bench validate-csv DIR      the same on the CSV file: the decoding side of (a) alone
//!   weir-bench models DIR [ROWS]     after `ingest`: a SQL model over the table, full build vs an
//!                                    incremental run after 1% new rows, and the same SQL in plain
//!                                    DataFusion
//!   weir-bench peers DIR             after `generate`: the same CSV through peer tools (pyarrow's
//!                                    CSV reader into the Python `deltalake` writer; DuckDB splitting
//!                                    good and bad rows to two Parquet files), for the ratios
//!   weir-bench all DIR [ROWS]        all of them, each in a child process
//!   weir-bench queue DIR [RUNS]      the durable run queue alone: RUNS no-op runs (default
//!                                    10,000) enqueued, claimed, heartbeated, completed
//!   weir-bench serve DIR             40 sequential runs through `weir serve`, and file landing
//!                                    to run start over 200 files
//!   weir-bench dag DIR [MODELS [THREADS]]
//!                                    MODELS (default 1,000) trivial table models in a
//!                                    chain-and-fan DAG: first run and no-op run, per model,
//!                                    THREADS at a time (default: `weir run`'s)
//!   weir-bench plan DIR [MODELS]     `weir plan` on that DAG applied, one model edited
//!   weir-bench diff DIR [ROWS]       `weir diff` of two ROWS-row tables with 0 and 1 % of rows
//!                                    differing, beside reladiff (PyPI) on the same rows in DuckDB

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_ingest::{discover_files, open_unit};
use weir_orchestrate::{NoProgress, RunOptions, StateStore, run_assets};
use weir_quality::{AuditScope, ParseOptions, Validator, audit};

/// mimalloc serves the many small, short-lived allocations of planning and of decoding Delta
/// logs, across threads, with less work than glibc's malloc, and Parquet's large buffers from
/// memory it keeps (BENCHMARKS.md: the model DAG's first run and `weir diff`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod dag;
mod diff;
mod plan;
mod serve;

const CONTRACT: &str = r#"apiVersion: v3.1.0
kind: DataContract
id: bench-events
version: 1.0.0
status: active
team:
  name: bench
  members:
    - username: bench@example.com
      role: owner
schema:
  - name: events
    quality:
      - id: volume
        metric: rowCount
        mustBeGreaterThan: 0
    properties:
      - name: id
        logicalType: integer
        primaryKey: true
      - name: customer_id
        logicalType: integer
        required: true
      - name: email
        logicalType: string
        logicalTypeOptions:
          pattern: "^[a-z0-9.]+@[a-z]+\\.com$"
      - name: country
        logicalType: string
        quality:
          - id: country_valid
            metric: invalidValues
            arguments:
              validValues: [US, GB, DE, FR, NL, ES, IT, SE, PL, JP]
            mustBeLessThan: 5
            unit: percent
      - name: amount
        logicalType: number
        logicalTypeOptions:
          minimum: 0
      - name: quantity
        logicalType: integer
        logicalTypeOptions:
          minimum: 1
          maximum: 100
      - name: status
        logicalType: string
        required: true
      - name: created_at
        logicalType: timestamp
        required: true
      - name: note
        logicalType: string
        logicalTypeOptions:
          maxLength: 32
        quality:
          - id: note_nulls
            metric: nullValues
            mustBeLessThan: 50
            unit: percent
      - name: score
        logicalType: number
        logicalTypeOptions:
          minimum: 0
          maximum: 1
"#;

const COUNTRIES: &[&str] = &["US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "JP"];

fn main() -> anyhow::Result<()> {
    // Per-stage timings of the runs measured: `WEIR_LOG=weir_orchestrate=debug`.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: weir-bench generate|ingest|validate|validate-csv|models|increment|peers|all|queue|serve|dag|plan|diff DIR [ROWS]";
    let command = args.get(1).context(usage)?;
    let dir = PathBuf::from(args.get(2).context(usage)?);
    if command == "diff-one" {
        let b = args
            .get(3)
            .context("usage: weir-bench diff-one DIR B.parquet")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(diff::diff_one(&dir, b));
    }
    let rows: u64 = args
        .get(3)
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    match command.as_str() {
        "generate" => generate(&dir, rows),
        "ingest" => ingest(&dir),
        "validate" => validate(&dir, weir_model::FileFormat::Parquet),
        "validate-csv" => validate(&dir, weir_model::FileFormat::Csv),
        "models" => models(&dir, rows / 100),
        "increment" => increment(&dir, rows / 100),
        "peers" => peers(&dir),
        "diff" => diff::diff(&dir, rows),
        "serve-child" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve::serve_child(&dir)),
        "queue" | "serve" | "dag" | "plan" => {
            std::fs::create_dir_all(&dir)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                if command == "dag" || command == "plan" {
                    let models = args.get(3).map(|r| r.parse()).transpose()?.unwrap_or(1_000);
                    if command == "dag" {
                        let threads = args.get(4).map(|t| t.parse()).transpose()?;
                        dag::dag(&dir, models, threads).await
                    } else {
                        plan::plan(&dir, models).await
                    }
                } else if command == "queue" {
                    let runs = args
                        .get(3)
                        .map(|r| r.parse())
                        .transpose()?
                        .unwrap_or(10_000);
                    serve::queue(&dir, runs).await
                } else {
                    serve::serve(&dir).await
                }
            })
        }
        "all" => {
            let me = std::env::current_exe()?;
            for phase in [
                "generate",
                "ingest",
                "validate",
                "models",
                "increment",
                "peers",
            ] {
                let status = Command::new(&me)
                    .arg(phase)
                    .arg(&dir)
                    .arg(rows.to_string())
                    .status()?;
                anyhow::ensure!(status.success(), "{phase} failed");
            }
            Ok(())
        }
        _ => anyhow::bail!(usage),
    }
}

/// Peak resident memory of this process, from /proc.
pub(crate) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// One row in a hundred breaks a rule, spread over the kinds of rule.
fn generate(dir: &Path, rows: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::create_dir_all(dir.join("parquet"))?;
    std::fs::create_dir_all(dir.join("contracts"))?;
    std::fs::create_dir_all(dir.join("sources"))?;
    std::fs::write(
        dir.join("weir.toml"),
        "[project]\nname = \"bench\"\n[teams.bench]\nchannels = []\n",
    )?;
    std::fs::write(dir.join("contracts/events.odcs.yaml"), CONTRACT)?;
    std::fs::write(
        dir.join("sources/events.toml"),
        "format = \"csv\"\npath = \"data/*.csv\"\n",
    )?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut csv =
        BufWriter::with_capacity(1 << 22, std::fs::File::create(dir.join("data/events.csv"))?);
    writeln!(
        csv,
        "id,customer_id,email,country,amount,quantity,status,created_at,note,score"
    )?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("quantity", DataType::Int64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new(
            "created_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("note", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let file = std::fs::File::create(dir.join("parquet/events.parquet"))?;
    let mut parquet = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None)?;
    let chunk = 1_000_000u64;
    let base = 1_767_225_600_000_000i64;
    let mut start = 1u64;
    while start <= rows {
        let end = (start + chunk).min(rows + 1);
        let n = (end - start) as usize;
        let (mut id, mut cust, mut email, mut country, mut amount) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut qty, mut status, mut ts, mut note, mut score) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for i in start..end {
            let bad = rng.random_range(0..100u32) == 0;
            let kind = if bad { rng.random_range(0..5u32) } else { 99 };
            id.push(Some(i as i64));
            cust.push(Some(rng.random_range(1..1_000_000i64)));
            email.push(Some(if kind == 0 {
                format!("user{i}-at-example")
            } else {
                format!("user{i}@example.com")
            }));
            country.push(Some(if kind == 1 {
                "XX"
            } else {
                COUNTRIES[(i % 10) as usize]
            }));
            amount.push(Some(if kind == 2 {
                -1.0
            } else {
                rng.random_range(0..100_000) as f64 / 100.0
            }));
            qty.push(Some(if kind == 3 {
                0
            } else {
                rng.random_range(1..=100i64)
            }));
            status.push(Some(if i % 3 == 0 { "paid" } else { "placed" }));
            // Events arrive roughly in time order over a year (within a few hours), as event
            // data does: files and row groups are then clustered by day.
            let span = 86_400_000_000i64 * SPAN_DAYS;
            let at = (i as f64 / rows as f64 * span as f64) as i64;
            ts.push(Some(
                (base + at + rng.random_range(0..3_600_000_000i64 * 4)).min(base + span - 1),
            ));
            note.push(if i % 4 == 0 {
                None
            } else {
                Some(format!("note {}", i % 1000))
            });
            score.push(Some(if kind == 4 {
                1.5
            } else {
                rng.random_range(0..1000) as f64 / 1000.0
            }));
        }
        for r in 0..n {
            let t = ts[r].map(|micros| {
                let secs = micros / 1_000_000;
                arrow::temporal_conversions::timestamp_s_to_datetime(secs)
                    .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default()
            });
            writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{}",
                id[r].unwrap_or_default(),
                cust[r].unwrap_or_default(),
                email[r].as_deref().unwrap_or(""),
                country[r].unwrap_or(""),
                amount[r].unwrap_or_default(),
                qty[r].unwrap_or_default(),
                status[r].unwrap_or(""),
                t.unwrap_or_default(),
                note[r].as_deref().unwrap_or(""),
                score[r].unwrap_or_default()
            )?;
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(id)),
            Arc::new(Int64Array::from(cust)),
            Arc::new(StringArray::from(email)),
            Arc::new(StringArray::from(country)),
            Arc::new(Float64Array::from(amount)),
            Arc::new(Int64Array::from(qty)),
            Arc::new(StringArray::from(status)),
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(StringArray::from(note)),
            Arc::new(Float64Array::from(score)),
        ];
        parquet.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        start = end;
    }
    csv.flush()?;
    parquet.close()?;
    let size = std::fs::metadata(dir.join("data/events.csv"))?.len();
    println!(
        "generate: {rows} rows, CSV {:.0} MB, in {:.1}s",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Starts a phase from an empty lake and state, without the new-rows file a phase leaves.
fn reset_lake(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir.join("lake"));
    let _ = std::fs::remove_dir_all(dir.join(".weir"));
    remove_late_rows(dir);
}

/// Removes the files of late rows the `models` phase writes (`data/events-new*.csv`).
fn remove_late_rows(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("data"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("events-new") && name.ends_with(".csv") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// (a) The real `weir run` pipeline: CSV → types → row rules → quarantine → staged Parquet →
/// fused audit → Delta commit with txn.
fn ingest(dir: &Path) -> anyhow::Result<()> {
    // Also the file an earlier `models` phase left: (a) measures the 10 M-row file alone.
    reset_lake(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (project, diagnostics) = weir_model::load_project(dir);
        anyhow::ensure!(!diagnostics.has_errors(), "{diagnostics}");
        let project = project.context("project")?;
        let state = StateStore::connect(&project.state_url()).await?;
        let (graph, _) = weir_orchestrate::build_graph(&project);
        let started = Instant::now();
        let options = RunOptions { full_refresh: false, trigger: "bench".into(), threads: 1, partition: None };
        let only_events = vec!["events".to_string()];
        let reports = run_assets(&project, &state, &graph, &only_events, &Default::default(), &options, std::sync::Arc::new(NoProgress)).await?;
        let secs = started.elapsed().as_secs_f64();
        let r = reports.first().context("no report")?;
        anyhow::ensure!(r.error.is_none(), "{:?}", r.error);
        println!(
            "ingest (a): {} rows in ({} stored, {} quarantined, {} checks) from {:.0} MB CSV in {secs:.2}s = {:.2} M rows/s, peak RSS {:.0} MB",
            r.rows_in,
            r.rows_stored,
            r.rows_quarantined,
            r.checks.len(),
            r.bytes_in as f64 / 1e6,
            r.rows_in as f64 / secs / 1e6,
            peak_rss_mb()
        );
        Ok(())
    })
}

/// Row-by-row uniqueness against a published table: the 10 M-row CSV is ingested again (the
/// table then has 9.9 M keys), then 1 % new rows arrive in a file of their own: new events with
/// new ids, and one in a hundred of them re-sent with an id the table already has (from its
/// last 100,000 rows). The second run must quarantine every re-sent row as `id.duplicate` and
/// cost in proportion to the new rows, not the table.
fn increment(dir: &Path, new_rows: u64) -> anyhow::Result<()> {
    reset_lake(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let (project, diagnostics) = weir_model::load_project(dir);
        anyhow::ensure!(!diagnostics.has_errors(), "{diagnostics}");
        let project = project.context("project")?;
        let run = || async {
            let state = StateStore::connect(&project.state_url()).await?;
            let (graph, _) = weir_orchestrate::build_graph(&project);
            let options = RunOptions { full_refresh: false, trigger: "bench".into(), threads: 1, partition: None };
            let started = Instant::now();
            let reports = run_assets(&project, &state, &graph, &["events".to_string()], &Default::default(), &options, std::sync::Arc::new(NoProgress)).await?;
            let secs = started.elapsed().as_secs_f64();
            state.close().await;
            let r = reports.into_iter().next().context("no report")?;
            anyhow::ensure!(r.error.is_none(), "{:?}", r.error);
            anyhow::Ok((r, secs))
        };
        let (full, full_secs) = run().await?;
        let table_max = full.rows_in as i64;
        let base = chrono::DateTime::parse_from_rfc3339("2026-01-31T00:00:00Z")?.timestamp();
        // Two increments, one after the other: new events only, then new events with one in a
        // hundred re-sent (an id from the table's last 100,000 rows).
        let mut stored = full.rows_stored;
        for (n, resending) in [(0i64, false), (1, true)] {
            let path = dir.join(format!("data/events-increment-{n}.csv"));
            let mut csv = BufWriter::new(std::fs::File::create(&path)?);
            writeln!(csv, "id,customer_id,email,country,amount,quantity,status,created_at,note,score")?;
            let mut resent = 0u64;
            for i in 0..new_rows {
                let id = if resending && i % 100 == 99 {
                    resent += 1;
                    table_max - (i as i64 * 7919) % 100_000
                } else {
                    table_max + 1 + n * new_rows as i64 + i as i64
                };
                let at = chrono::DateTime::from_timestamp(base + i as i64, 0).context("timestamp")?;
                writeln!(csv, "{id},{},user{id}@example.com,{},{},{},paid,{},new,0.5", i % 1000, COUNTRIES[(i % 10) as usize], 10.5, 1 + i % 100, at.format("%Y-%m-%dT%H:%M:%SZ"))?;
            }
            csv.flush()?;
            let (inc, inc_secs) = run().await?;
            let duplicates = inc.quarantine_by_rule.get("id.duplicate").copied().unwrap_or(0);
            println!(
                "increment: 10 M-row ingest {full_secs:.2}s; then {} new rows ({} re-sent with a key the table has) into the {}-row table in {inc_secs:.3}s: {} stored, {} quarantined as id.duplicate; {:.1}% of the 10 M-row ingest (target <= 3%)",
                inc.rows_in,
                resent,
                stored,
                inc.rows_stored,
                duplicates,
                inc_secs / full_secs * 100.0
            );
            // Re-sent ids of rows the first file had quarantined are new to the table: stored.
            anyhow::ensure!(duplicates <= resent && inc.rows_stored + inc.rows_quarantined == inc.rows_in, "{resent} re-sent, {duplicates} refused");
            stored += inc.rows_stored;
        }
        let (events_path, _) = weir_orchestrate::table_paths(&project, "events");
        let events = weir_store::LakeTable::open(&events_path).await?.context("events table")?;
        let ctx = SessionContext::new();
        weir_store::register_delta(&ctx, "events", &events).await?;
        let counted = ctx.sql("SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM events").await?.collect().await?;
        let text = arrow::util::pretty::pretty_format_batches(&counted)?.to_string();
        anyhow::ensure!(text.contains(&format!("| {stored} | {stored} |")), "the table should hold {stored} rows with as many distinct ids:\n{text}");
        anyhow::Ok(())
    });
    // The other phases measure the 10 M-row file alone.
    for n in 0..2 {
        let _ = std::fs::remove_file(dir.join(format!("data/events-increment-{n}.csv")));
    }
    outcome
}

/// (b) Validation alone: Parquet → every row rule with failing rows captured, plus the fused
/// dataset audit over the same file.
fn validate(dir: &Path, format: weir_model::FileFormat) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (project, _) = weir_model::load_project(dir);
        let project = project.context("project")?;
        let asset = project.asset("events").context("events asset")?;
        let validator = Validator::new("events", &asset.contract, ParseOptions::default())?;
        let mut source = asset.source.clone().context("source")?;
        source.format = format;
        let pattern = if format == weir_model::FileFormat::Csv { "data/*.csv" } else { "parquet/*.parquet" };
        let units = discover_files(dir, pattern)?;
        let started = Instant::now();
        let (mut rows, mut captured) = (0u64, 0u64);
        for unit in &units {
            for batch in open_unit(
                unit,
                &source,
                &validator.column_names(),
                &validator.required_column_names(),
            )? {
                let batch = batch?;
                let validated = validator.validate(&batch)?;
                rows += batch.records();
                captured += validated.quarantined.len() as u64;
            }
        }
        let row_secs = started.elapsed().as_secs_f64();
        let ctx = SessionContext::new();
        let path = dir.join("parquet/events.parquet").display().to_string();
        ctx.register_parquet("events", &path, ParquetReadOptions::default()).await?;
        let checks = audit(&AuditScope { ctx: &ctx, table: "events", appended: None }, validator.dataset_rules()).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "validate (b): {rows} rows, {captured} failing rows captured, {} dataset checks, row pass {row_secs:.2}s, total {secs:.2}s = {:.2} M rows/s, peak RSS {:.0} MB",
            checks.len(),
            rows as f64 / secs / 1e6,
            peak_rss_mb()
        );
        Ok(())
    })
}

const MODEL_SQL: &str = "-- weir: materialized = incremental, strategy = append
SELECT id, customer_id, country, amount, amount * 1.2 AS amount_gross, created_at,
       CAST(created_at AS DATE) AS day
FROM events
WHERE status = 'paid'
";

const DAILY_SQL: &str = "-- weir: materialized = incremental, strategy = merge, unique_key = day
SELECT CAST(created_at AS DATE) AS day, COUNT(*) AS orders, SUM(amount) AS revenue
FROM events
GROUP BY CAST(created_at AS DATE)
";

const DAILY_CONTRACT: &str = r#"apiVersion: v3.1.0
kind: DataContract
id: bench-daily
version: 1.0.0
status: active
schema:
  - name: daily
    properties:
      - name: day
        logicalType: date
        required: true
      - name: orders
        logicalType: integer
        required: true
      - name: revenue
        logicalType: number
"#;

const MODEL_CONTRACT: &str = r#"apiVersion: v3.1.0
kind: DataContract
id: bench-paid-events
version: 1.0.0
status: active
team:
  name: bench
  members:
    - username: bench@example.com
      role: owner
schema:
  - name: paid_events
    quality:
      - id: volume
        metric: rowCount
        mustBeGreaterThan: 0
    properties:
      - name: id
        logicalType: integer
        required: true
      - name: customer_id
        logicalType: integer
        required: true
      - name: country
        logicalType: string
      - name: amount
        logicalType: number
      - name: amount_gross
        logicalType: number
      - name: created_at
        logicalType: timestamp
        required: true
      - name: day
        logicalType: date
        required: true
"#;

/// The days the generated events span: a year, as an event table holds, so a day is about
/// 0.3 % of the rows.
const SPAN_DAYS: i64 = 365;

/// The models' figures: the append model's full build, the same SQL in plain DataFusion, then
/// incremental runs of the append model and of a merge daily aggregate over it after
/// `new_rows` late rows spread over 3 days arrive, each against a full refresh.
fn models(dir: &Path, new_rows: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("models"))?;
    std::fs::write(dir.join("models/paid_events.sql"), MODEL_SQL)?;
    std::fs::write(dir.join("contracts/paid_events.odcs.yaml"), MODEL_CONTRACT)?;
    std::fs::write(dir.join("models/daily.sql"), DAILY_SQL)?;
    std::fs::write(dir.join("contracts/daily.odcs.yaml"), DAILY_CONTRACT)?;
    for table in ["paid_events", "daily"] {
        let _ = std::fs::remove_dir_all(dir.join("lake").join(table));
        let _ = std::fs::remove_dir_all(dir.join("lake/_quarantine").join(table));
    }
    remove_late_rows(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let run = |selector: &'static str, full_refresh: bool| {
            let dir = dir.to_path_buf();
            async move {
                let (project, diagnostics) = weir_model::load_project(&dir);
                anyhow::ensure!(!diagnostics.has_errors(), "{diagnostics}");
                let project = project.context("project")?;
                let state = StateStore::connect(&project.state_url()).await?;
                let (graph, _) = weir_orchestrate::build_graph(&project);
                let selected = weir_orchestrate::select(&project, &graph, &[selector.to_string()]).map_err(anyhow::Error::msg)?;
                let options = RunOptions { full_refresh, trigger: "bench".into(), threads: 1, partition: None };
                let reports = run_assets(&project, &state, &graph, &selected, &Default::default(), &options, std::sync::Arc::new(NoProgress)).await?;
                state.close().await;
                for r in &reports {
                    anyhow::ensure!(r.error.is_none(), "{}: {:?}", r.asset, r.error);
                    anyhow::ensure!(r.warnings.iter().all(|w| !w.contains("recomputed in full")) || full_refresh, "{}: {:?}", r.asset, r.warnings);
                }
                Ok(reports)
            }
        };
        let pick = |reports: &[weir_orchestrate::AssetRunReport], asset: &str| {
            reports.iter().find(|r| r.asset == asset).cloned().context("no report")
        };
        let built = run("events+", false).await?;
        let first = pick(&built, "paid_events")?;
        let daily_first = pick(&built, "daily")?;
        println!(
            "daily merge model full build: {} rows in {:.2}s",
            daily_first.rows_stored,
            daily_first.duration.as_secs_f64()
        );
        println!(
            "model full build: {} rows in {:.2}s ({:.2} M rows/s)",
            first.rows_stored,
            first.duration.as_secs_f64(),
            first.rows_stored as f64 / first.duration.as_secs_f64() / 1e6
        );

        // The same SQL in plain DataFusion over the same Delta table, written as Parquet.
        let ctx = SessionContext::new();
        let (project, _) = weir_model::load_project(dir);
        let project = project.context("project")?;
        let (events_path, _) = weir_orchestrate::table_paths(&project, "events");
        let events = weir_store::LakeTable::open(&events_path).await?.context("events table")?;
        weir_store::register_delta(&ctx, "events", &events).await?;
        let out = dir.join("plain-datafusion-out");
        let _ = std::fs::remove_dir_all(&out);
        let started = Instant::now();
        ctx.sql(MODEL_SQL)
            .await?
            .write_parquet(&out.display().to_string(), datafusion::dataframe::DataFrameWriteOptions::new(), None)
            .await?;
        let plain = started.elapsed().as_secs_f64();
        println!(
            "plain DataFusion, same SQL to Parquet: {plain:.2}s; weir adds {:.2}s ({:.0}%) for contract checks, quarantine, audit and the Delta commit",
            first.duration.as_secs_f64() - plain,
            (first.duration.as_secs_f64() / plain - 1.0) * 100.0
        );

        // 1% new rows, late: spread over 3 days that are already published (days 10–12), with
        // the table's mix of statuses (one in three paid), so they are 1% of each model's rows
        // too.
        write_late_rows(&dir.join("data/events-new.csv"), 100_000_000, new_rows)?;
        let after = run("events+", false).await?;
        let incremental = pick(&after, "paid_events")?;
        let daily_incremental = pick(&after, "daily")?;
        let refresh = pick(&run("paid_events", true).await?, "paid_events")?;
        let append_share = incremental.duration.as_secs_f64() / refresh.duration.as_secs_f64() * 100.0;
        println!(
            "append model after {new_rows} new rows: {} rows appended in {:.3}s; full refresh {} rows in {:.2}s; incremental = {append_share:.1}% of the full build (target <= 3%)",
            incremental.rows_stored,
            incremental.duration.as_secs_f64(),
            refresh.rows_stored,
            refresh.duration.as_secs_f64(),
        );
        let (project, _) = weir_model::load_project(dir);
        let project = project.context("project")?;
        let (daily_path, _) = weir_orchestrate::table_paths(&project, "daily");
        let read_daily = || async {
            let ctx = SessionContext::new();
            let table = weir_store::LakeTable::open(&daily_path).await?.context("daily")?;
            weir_store::register_delta(&ctx, "daily", &table).await?;
            // Float sums depend on the order rows are added in: compare to the cent.
            let batches = ctx.sql("SELECT day, orders, ROUND(revenue, 2) AS revenue FROM daily ORDER BY day").await?.collect().await?;
            anyhow::Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
        };
        let merged = read_daily().await?;
        let daily_refresh = pick(&run("daily", true).await?, "daily")?;
        let equal = merged == read_daily().await?;
        let merge_share = daily_incremental.duration.as_secs_f64() / daily_refresh.duration.as_secs_f64() * 100.0;
        println!(
            "merge daily aggregate after {new_rows} late rows over 3 days: {} days recomputed in {:.3}s; full refresh {} days in {:.2}s; incremental = {merge_share:.1}% of the full build (target <= 10%); merged table equals the full refresh: {equal}",
            daily_incremental.rows_stored,
            daily_incremental.duration.as_secs_f64(),
            daily_refresh.rows_stored,
            daily_refresh.duration.as_secs_f64(),
        );
        if !equal {
            let now = read_daily().await?;
            anyhow::bail!("the merged daily table differs from its full refresh:\n{merged}\n{now}");
        }
        // More batches of late rows, each ingested and then merged into `daily` on its own, for
        // the spread of the merge's figure; with WEIR_BENCH_PERF_CTL naming the control FIFO
        // of `perf record --control fifo:… -D -1`, only the merges are profiled.
        let repeats: u64 = std::env::var("WEIR_BENCH_MERGES").ok().and_then(|n| n.parse().ok()).unwrap_or(4);
        let perf = std::env::var_os("WEIR_BENCH_PERF_CTL").map(PathBuf::from);
        let mut merges = vec![daily_incremental.duration.as_secs_f64()];
        for k in 1..=repeats {
            let path = dir.join(format!("data/events-new-{k}.csv"));
            write_late_rows(&path, 100_000_000 + k * new_rows, new_rows)?;
            run("events", false).await?;
            perf_control(perf.as_deref(), "enable");
            let merged = pick(&run("daily", false).await?, "daily");
            perf_control(perf.as_deref(), "disable");
            merges.push(merged?.duration.as_secs_f64());
        }
        if repeats > 0 {
            let merged = read_daily().await?;
            let refresh = pick(&run("daily", true).await?, "daily")?.duration.as_secs_f64();
            anyhow::ensure!(merged == read_daily().await?, "after {repeats} more merges the daily table differs from its full refresh");
            let mut shares: Vec<f64> = merges.iter().map(|m| m / refresh * 100.0).collect();
            shares.sort_by(f64::total_cmp);
            println!(
                "{} merges of {new_rows} late rows each: {}s; against a full refresh of {refresh:.3}s (the first one {:.3}s): {:.1}–{:.1}%, median {:.1}% (target <= 10%); the table still equals its full refresh",
                merges.len(),
                merges.iter().map(|m| format!("{m:.3}")).collect::<Vec<_>>().join(", "),
                daily_refresh.duration.as_secs_f64(),
                shares[0],
                shares[shares.len() - 1],
                shares[shares.len() / 2],
            );
        }
        println!("peak RSS {:.0} MB", peak_rss_mb());
        Ok(())
    })
}

/// `rows` late events from id `first_id` on, spread over 3 days that are already published
/// (days 10–12 of 2026), with the table's mix of statuses (one in three paid).
fn write_late_rows(path: &Path, first_id: u64, rows: u64) -> anyhow::Result<()> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.timestamp();
    let mut csv = BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        csv,
        "id,customer_id,email,country,amount,quantity,status,created_at,note,score"
    )?;
    for i in 0..rows {
        let id = first_id + i;
        let at = base + 86_400 * (10 + ((i / 3) % 3) as i64) + (i as i64 * 7) % 86_400;
        let at = chrono::DateTime::from_timestamp(at, 0).context("timestamp")?;
        let status = if i % 3 == 0 { "paid" } else { "placed" };
        writeln!(
            csv,
            "{id},{},user{id}@example.com,{},{},{},{status},{},new,0.5",
            i % 1000,
            COUNTRIES[(i % 10) as usize],
            10.5,
            1 + i % 100,
            at.format("%Y-%m-%dT%H:%M:%SZ")
        )?;
    }
    csv.flush()?;
    Ok(())
}

/// Sends `command` ("enable" or "disable") to a `perf record --control fifo:PATH` session.
fn perf_control(fifo: Option<&Path>, command: &str) {
    if let Some(fifo) = fifo
        && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(fifo)
    {
        let _ = writeln!(f, "{command}");
    }
}

/// pyarrow's streaming CSV reader into the Python `deltalake` writer: no validation at all.
const PYARROW_TO_DELTA: &str = r#"
import json, resource, sys, time
import pyarrow.csv as pc
from deltalake import write_deltalake
started = time.time()
reader = pc.open_csv(sys.argv[1], read_options=pc.ReadOptions(block_size=1 << 24))
write_deltalake(sys.argv[2], reader, mode="overwrite")
print(json.dumps({"seconds": time.time() - started, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"#;

/// DuckDB reads the CSV as text and writes the rows that pass the contract's row rules to one
/// Parquet file and the others to another (no reasons, no positions).
const DUCKDB_SPLIT: &str = r#"
import json, resource, sys, time
import duckdb
started = time.time()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
path = sys.argv[1].replace("'", "''")
con.execute(f"CREATE VIEW e AS SELECT * FROM read_csv('{path}', all_varchar = true, header = true)")
good = """TRY_CAST(id AS BIGINT) IS NOT NULL AND TRY_CAST(customer_id AS BIGINT) IS NOT NULL
  AND (email IS NULL OR regexp_full_match(email, '^[a-z0-9.]+@[a-z]+\.com$'))
  AND (country IS NULL OR country IN ('US','GB','DE','FR','NL','ES','IT','SE','PL','JP'))
  AND (amount IS NULL OR TRY_CAST(amount AS DOUBLE) >= 0)
  AND (quantity IS NULL OR TRY_CAST(quantity AS BIGINT) BETWEEN 1 AND 100)
  AND status IS NOT NULL AND (created_at IS NULL OR TRY_CAST(created_at AS TIMESTAMP) IS NOT NULL)"""
con.execute(f"COPY (SELECT * FROM e WHERE COALESCE({good}, false)) TO '{sys.argv[2]}/good.parquet' (FORMAT parquet)")
con.execute(f"COPY (SELECT * FROM e WHERE NOT COALESCE({good}, false)) TO '{sys.argv[2]}/bad.parquet' (FORMAT parquet)")
print(json.dumps({"seconds": time.time() - started, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"#;

/// The peers on the same CSV as (a), each in its own Python process, so the ratio to weir's
/// ingest is measured on the same machine in the same run.
fn peers(dir: &Path) -> anyhow::Result<()> {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = Command::new(&python)
        .args(["-c", "import pyarrow, deltalake, duckdb"])
        .status()
        .with_context(|| format!("cannot run {python}"))?;
    anyhow::ensure!(
        check.success(),
        "the peer runs need the Python packages pyarrow, deltalake and duckdb: {python} -m pip install pyarrow deltalake duckdb"
    );
    let csv = dir.join("data/events.csv");
    for (name, script) in [
        (
            "pyarrow CSV reader -> Python deltalake writer, no validation",
            PYARROW_TO_DELTA,
        ),
        (
            "DuckDB, good and bad rows to two Parquet files",
            DUCKDB_SPLIT,
        ),
    ] {
        let out_dir = dir.join("peer-out");
        let _ = std::fs::remove_dir_all(&out_dir);
        std::fs::create_dir_all(&out_dir)?;
        let target = if script == PYARROW_TO_DELTA {
            out_dir.join("delta")
        } else {
            out_dir.clone()
        };
        let out = Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(&csv)
            .arg(&target)
            .output()
            .with_context(|| format!("cannot run {python}"))?;
        anyhow::ensure!(
            out.status.success(),
            "{name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        let figures: serde_json::Value =
            serde_json::from_str(last).with_context(|| format!("{name}: {stdout}"))?;
        println!(
            "peer: {name}: {:.2}s, peak RSS {:.0} MB",
            figures["seconds"].as_f64().unwrap_or(f64::NAN),
            figures["peak_mb"].as_f64().unwrap_or(f64::NAN)
        );
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    Ok(())
}
