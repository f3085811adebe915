//! `weir diff` on two ROWS-row tables, with no differences and with 1 % of rows differing,
//! beside reladiff (installed from PyPI) on the same rows loaded into DuckDB.
//!
//! `generate_tables` writes `a.parquet`, `b0.parquet` (the same rows, its own file) and
//! `b1.parquet` (0.2 % of A's rows missing, 0.5 % with `amount` changed, 0.1 % with `status`
//! changed, and 0.2 % new rows), and remembers what it changed, so every tool's counts are
//! checked against what was really done, not only against each other. Each weir diff runs in
//! its own process (`diff-one`), so its peak memory is its own; reladiff runs through a Python
//! wrapper that reports its child's wall time and peak memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const BATCH: u64 = 65_536;
const STATUSES: &[&str] = &["paid", "pending", "refunded", "failed"];
const COLUMNS: &[&str] = &["customer_id", "amount", "status", "created_at", "note"];

/// What `b1` differs from `a` by, counted while writing it.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    only_in_a: u64,
    only_in_b: u64,
    changed: u64,
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new(
            "created_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("note", DataType::Utf8, true),
    ]))
}

/// Columns of one batch being built.
#[derive(Default)]
struct Rows {
    id: Vec<i64>,
    customer_id: Vec<i64>,
    amount: Vec<f64>,
    status: Vec<&'static str>,
    created_at: Vec<i64>,
    note: Vec<Option<String>>,
}

impl Rows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        id: i64,
        customer: i64,
        amount: f64,
        status: &'static str,
        at: i64,
        note: &Option<String>,
    ) {
        self.id.push(id);
        self.customer_id.push(customer);
        self.amount.push(amount);
        self.status.push(status);
        self.created_at.push(at);
        self.note.push(note.clone());
    }

    fn take(&mut self, schema: &Arc<Schema>) -> anyhow::Result<RecordBatch> {
        let rows = std::mem::take(self);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(rows.id)),
            Arc::new(Int64Array::from(rows.customer_id)),
            Arc::new(Float64Array::from(rows.amount)),
            Arc::new(StringArray::from(rows.status)),
            Arc::new(TimestampMicrosecondArray::from(rows.created_at)),
            Arc::new(StringArray::from(rows.note)),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

fn generate_tables(dir: &Path, rows: u64) -> anyhow::Result<Expected> {
    std::fs::create_dir_all(dir)?;
    let schema = schema();
    let writer = |name: &str| -> anyhow::Result<ArrowWriter<std::fs::File>> {
        Ok(ArrowWriter::try_new(
            std::fs::File::create(dir.join(name))?,
            schema.clone(),
            None,
        )?)
    };
    let (mut wa, mut wb0, mut wb1) = (
        writer("a.parquet")?,
        writer("b0.parquet")?,
        writer("b1.parquet")?,
    );
    let (mut a, mut b0, mut b1) = (Rows::default(), Rows::default(), Rows::default());
    let mut rng = StdRng::seed_from_u64(11);
    let mut expected = Expected::default();
    let start = 1_767_225_600_000_000i64; // 2026-01-01
    let row_of = |rng: &mut StdRng, id: i64| {
        let customer = rng.random_range(1..200_000i64);
        let amount = rng.random_range(0..100_000i64) as f64 / 100.0;
        let status = STATUSES[rng.random_range(0..STATUSES.len())];
        let at = start + id * 3_000_000 + rng.random_range(0..3_000_000i64);
        let note = (rng.random_range(0..10) != 0)
            .then(|| format!("note {}", rng.random_range(0..1_000_000u32)));
        (customer, amount, status, at, note)
    };
    for id in 0..rows as i64 {
        let (customer, amount, status, at, note) = row_of(&mut rng, id);
        a.push(id, customer, amount, status, at, &note);
        b0.push(id, customer, amount, status, at, &note);
        let dice = rng.random_range(0..1000u32);
        match dice {
            0..2 => expected.only_in_a += 1,
            2..7 => {
                expected.changed += 1;
                b1.push(id, customer, amount + 1.0, status, at, &note);
            }
            7 => {
                expected.changed += 1;
                let other = STATUSES[(STATUSES.iter().position(|s| *s == status).unwrap_or(0) + 1)
                    % STATUSES.len()];
                b1.push(id, customer, amount, other, at, &note);
            }
            _ => b1.push(id, customer, amount, status, at, &note),
        }
        if a.id.len() as u64 == BATCH {
            wa.write(&a.take(&schema)?)?;
            wb0.write(&b0.take(&schema)?)?;
        }
        if b1.id.len() as u64 >= BATCH {
            wb1.write(&b1.take(&schema)?)?;
        }
    }
    // New rows, only in B: 0.2 %.
    for id in rows as i64..(rows + rows / 500) as i64 {
        let (customer, amount, status, at, note) = row_of(&mut rng, id);
        b1.push(id, customer, amount, status, at, &note);
        expected.only_in_b += 1;
        if b1.id.len() as u64 >= BATCH {
            wb1.write(&b1.take(&schema)?)?;
        }
    }
    for (mut w, mut r) in [(wa, a), (wb0, b0), (wb1, b1)] {
        if !r.id.is_empty() {
            w.write(&r.take(&schema)?)?;
        }
        w.close()?;
    }
    Ok(expected)
}

/// One weir diff of `a.parquet` against `b`, as `weir diff a.parquet b.parquet --key id` does
/// it; prints its figures as one JSON line.
pub async fn diff_one(dir: &Path, b: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let ctx = datafusion::prelude::SessionContext::new();
    for (name, file) in [
        (weir_change::TABLE_A, "a.parquet"),
        (weir_change::TABLE_B, b),
    ] {
        let path = dir.join(file);
        ctx.register_parquet(
            name,
            path.to_str().context("a path that is not UTF-8")?,
            datafusion::prelude::ParquetReadOptions::default(),
        )
        .await?;
    }
    let options = weir_change::DiffOptions {
        key: vec!["id".into()],
        abs_tolerance: 0.0,
        rel_tolerance: 0.0,
        time_tolerance_secs: 0.0,
        samples: 5,
    };
    let report = weir_change::diff_tables(&ctx, &options).await?;
    println!(
        "{}",
        json!({
            "seconds": started.elapsed().as_secs_f64(),
            "peak_mb": crate::peak_rss_mb(),
            "rows_a": report.rows_a,
            "rows_b": report.rows_b,
            "only_in_a": report.only_in_a,
            "only_in_b": report.only_in_b,
            "changed": report.changed,
        })
    );
    Ok(())
}

/// Loads the three Parquet files into DuckDB tables `a`, `b0`, `b1` (reladiff's best case:
/// native tables in one database file).
const DUCKDB_LOAD: &str = r#"
import sys, duckdb
con = duckdb.connect(sys.argv[1])
for name in ["a", "b0", "b1"]:
    path = f"{sys.argv[2]}/{name}.parquet".replace("'", "''")
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet('{path}')")
con.close()
"#;

/// Runs the reladiff command line given after the script and prints its wall time, its peak
/// memory and its last output line (the `--stats --json` summary).
const TIMED: &str = r#"
import json, os, resource, subprocess, sys, time
started = time.time()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True, env=dict(os.environ, COLUMNS="100000"))
seconds = time.time() - started
if out.returncode != 0:
    sys.exit(out.stderr)
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "stats": json.loads(out.stdout.strip().splitlines()[-1])}))
"#;

fn last_json(out: &std::process::Output, what: &str) -> anyhow::Result<Value> {
    anyhow::ensure!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("{what}: {stdout}"))
}

/// Runs of each side of the comparison.
const ROUNDS: usize = 3;

/// The lowest, the median and the highest of `values`.
fn median(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |i: usize| values.get(i).copied().unwrap_or(f64::NAN);
    (
        at(0),
        at(values.len() / 2),
        at(values.len().wrapping_sub(1)),
    )
}

/// One reladiff run of `algorithm` on DuckDB tables `a` and `b`; prints its figures, checks
/// its counts against the generator's and returns its wall time.
fn reladiff_run(
    python: &str,
    reladiff: &Path,
    url: &str,
    b: &str,
    algorithm: &str,
    want: &Expected,
) -> anyhow::Result<f64> {
    let mut command = Command::new(python);
    command
        .arg("-c")
        .arg(TIMED)
        .arg(reladiff)
        .arg(url)
        .args(["a", b, "-k", "id"]);
    for c in COLUMNS {
        command.args(["-c", c]);
    }
    command.args(["-a", algorithm, "--stats", "--json"]);
    let timed = last_json(&command.output()?, "reladiff")?;
    let stats = &timed["stats"];
    let theirs = Expected {
        only_in_a: count(stats, "exclusive_A"),
        only_in_b: count(stats, "exclusive_B"),
        changed: count(stats, "updated"),
    };
    let secs = timed["seconds"].as_f64().unwrap_or(f64::NAN);
    println!(
        "reladiff {algorithm} a {b}: {secs:.2}s, peak RSS {:.0} MB ({} only in a, {} only in b, {} changed{})",
        timed["peak_mb"].as_f64().unwrap_or(f64::NAN),
        theirs.only_in_a,
        theirs.only_in_b,
        theirs.changed,
        if theirs == *want {
            ", as generated"
        } else {
            ": NOT what the generator made"
        },
    );
    Ok(secs)
}

fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(u64::MAX)
}

pub fn diff(dir: &Path, rows: u64) -> anyhow::Result<()> {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let reladiff = Path::new(&python)
        .parent()
        .map(|bin| bin.join("reladiff"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("reladiff"));
    let check = Command::new(&python)
        .args(["-c", "import duckdb, reladiff"])
        .status();
    anyhow::ensure!(
        check.is_ok_and(|s| s.success()),
        "the diff benchmark needs reladiff and DuckDB: {python} -m pip install 'reladiff[duckdb]' duckdb (and WEIR_TEST_PYTHON set to that python)"
    );
    let dir = dir.join("diff");
    let started = Instant::now();
    let expected = generate_tables(&dir, rows)?;
    println!(
        "generated a, b0 (identical) and b1 ({} only in a, {} only in b, {} changed) of {rows} rows in {:.1}s",
        expected.only_in_a,
        expected.only_in_b,
        expected.changed,
        started.elapsed().as_secs_f64()
    );
    let database = dir.join("bench.duckdb");
    let _ = std::fs::remove_file(&database);
    let out = Command::new(&python)
        .arg("-c")
        .arg(DUCKDB_LOAD)
        .arg(&database)
        .arg(&dir)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "loading DuckDB failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me = std::env::current_exe()?;
    let url = format!("duckdb://{}", database.display());
    for (b, want) in [("b0", Expected::default()), ("b1", expected)] {
        // weir and joindiff take turns, ROUNDS times, so a slow minute of this shared machine
        // lands on both; hashdiff (ten times slower) runs once.
        let (mut weir_secs, mut joindiff_secs) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let out = Command::new(&me)
                .arg("diff-one")
                .arg(&dir)
                .arg(format!("{b}.parquet"))
                .output()?;
            let weir = last_json(&out, "weir diff")?;
            let got = Expected {
                only_in_a: count(&weir, "only_in_a"),
                only_in_b: count(&weir, "only_in_b"),
                changed: count(&weir, "changed"),
            };
            anyhow::ensure!(
                got == want,
                "weir diff a {b}: found {got:?}, the generator made {want:?}"
            );
            let secs = weir["seconds"].as_f64().unwrap_or(f64::NAN);
            weir_secs.push(secs);
            println!(
                "weir diff a {b} --key id: {secs:.2}s, peak RSS {:.0} MB ({} only in a, {} only in b, {} changed)",
                weir["peak_mb"].as_f64().unwrap_or(f64::NAN),
                got.only_in_a,
                got.only_in_b,
                got.changed
            );
            let algorithms: &[&str] = if round == 0 {
                &["joindiff", "hashdiff"]
            } else {
                &["joindiff"]
            };
            for &algorithm in algorithms {
                let secs = reladiff_run(&python, &reladiff, &url, b, algorithm, &want)?;
                if algorithm == "joindiff" {
                    joindiff_secs.push(secs);
                }
            }
        }
        let (weir, joindiff) = (median(&mut weir_secs), median(&mut joindiff_secs));
        println!(
            "a {b}, median of {ROUNDS}: weir {:.2}s (range {:.2}-{:.2}), reladiff joindiff {:.2}s (range {:.2}-{:.2}); reladiff takes {:.1}x weir's time",
            weir.1,
            weir.0,
            weir.2,
            joindiff.1,
            joindiff.0,
            joindiff.2,
            joindiff.1 / weir.1
        );
    }
    Ok(())
}
