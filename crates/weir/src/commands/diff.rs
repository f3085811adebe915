//! `weir diff A B --key COLS`: two tables compared row by row. A side is an asset of the
//! project (`orders`), one Delta version of it (`orders@12`), its table in an environment
//! (`orders@dev`), a PostgreSQL table (`postgres://USER@HOST/DB#SCHEMA.TABLE`, compared by
//! checksummed segments so only what differs is fetched), a Delta table folder, or a
//! Parquet, CSV or NDJSON file. Exit 0 when they agree within tolerance, 1 when they differ,
//! 2 on an error.

use std::path::Path;

use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use serde_json::json;
use weir_change::{
    DiffOptions, DiffReport, PostgresTable, RemoteSide, TABLE_A, TABLE_B, diff_tables,
    diff_with_postgres,
};
use weir_orchestrate::{redact, table_paths};
use weir_store::{LakeTable, register_delta};

use crate::Outcome;

/// Registers the side `spec` as `name`; the error sentence when it names nothing readable.
async fn register(
    ctx: &SessionContext,
    project: &weir_model::Project,
    spec: &str,
    name: &str,
    pins: &std::collections::BTreeMap<String, Option<u64>>,
) -> anyhow::Result<Result<(), String>> {
    let (base, version, env) = match spec.rsplit_once('@') {
        Some((base, v)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => {
            (base, v.parse::<u64>().ok(), None)
        }
        Some((base, env)) if project.asset(base).is_some() => (base, None, Some(env)),
        _ => (spec, None, None),
    };
    let delta_path = if let Some(env) = env {
        if !super::environment::exists(project, env) {
            return Ok(Err(format!(
                "`{spec}`: there is no environment `{env}` (build one with `weir run --env {env}`)"
            )));
        }
        let path = project.environment_dir(env).join("lake").join(base);
        if !path.join("_delta_log").is_dir() {
            return Ok(Err(format!(
                "`{spec}`: environment `{env}` holds no table for `{base}` (it reads production's, so they are the same)"
            )));
        }
        Some(path)
    } else if project.asset(base).is_some() {
        Some(table_paths(project, base).0)
    } else if Path::new(base).join("_delta_log").is_dir() {
        Some(Path::new(base).to_path_buf())
    } else {
        None
    };
    if let Some(path) = delta_path {
        let table = match version {
            Some(v) => match LakeTable::open(&path).await? {
                Some(latest) if latest.version().is_some_and(|l| v > l) => {
                    return Ok(Err(format!(
                        "`{base}` has versions 0 to {}; there is no version {v}",
                        latest.version().unwrap_or(0)
                    )));
                }
                _ => LakeTable::open_at(&path, v).await?,
            },
            // A promotion publishing right now: the production table as it was before.
            None if env.is_none() && project.asset(base).is_some() => match pins.get(base) {
                Some(Some(pinned)) => LakeTable::open_at(&path, *pinned).await?,
                Some(None) => None,
                None => LakeTable::open(&path).await?,
            },
            None => LakeTable::open(&path).await?,
        };
        let Some(table) = table else {
            return Ok(Err(format!(
                "`{base}` has no table yet (run it first: `weir run {base}`)"
            )));
        };
        register_delta(ctx, name, &table).await?;
        return Ok(Ok(()));
    }
    let file = Path::new(spec);
    if !file.is_file() {
        return Ok(Err(format!(
            "`{spec}` is neither an asset of this project, a Delta table folder, nor a file"
        )));
    }
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let registered = match extension.as_str() {
        "parquet" => {
            ctx.register_parquet(name, spec, ParquetReadOptions::default())
                .await
        }
        "csv" => ctx.register_csv(name, spec, CsvReadOptions::new()).await,
        "ndjson" | "jsonl" | "json" => {
            ctx.register_json(
                name,
                spec,
                JsonReadOptions::default().file_extension(&format!(".{extension}")),
            )
            .await
        }
        _ => {
            return Ok(Err(format!(
                "`{spec}`: a file to diff must end in .parquet, .csv, .ndjson, .jsonl or .json"
            )));
        }
    };
    Ok(registered.map_err(|e| format!("`{spec}` cannot be read: {}", e.strip_backtrace())))
}

pub async fn diff(
    root: &Path,
    a: &str,
    b: &str,
    options: &DiffOptions,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let ctx = SessionContext::new();
    // A promotion publishing right now: production's tables as they were before, read once.
    let pins = super::environment::reader_pins(&project).await?;
    let remote = |spec: &str| spec.starts_with("postgres://") || spec.starts_with("postgresql://");
    let side = match (remote(a), remote(b)) {
        (true, true) => {
            return Ok(crate::output::user_error(
                "diff",
                "both sides are PostgreSQL tables: diff one of them against a table weir reads (an asset, a Delta folder or a file)",
            ));
        }
        (true, false) => Some((RemoteSide::A, a, b, TABLE_B)),
        (false, true) => Some((RemoteSide::B, b, a, TABLE_A)),
        (false, false) => None,
    };
    let (report, transfer) = match side {
        Some((side, remote_spec, local_spec, local_name)) => {
            let table = match PostgresTable::parse(remote_spec) {
                Ok(t) => t,
                Err(why) => return Ok(crate::output::user_error("diff", why)),
            };
            if let Err(why) = register(&ctx, &project, local_spec, local_name, &pins).await? {
                return Ok(crate::output::user_error("diff", why));
            }
            match diff_with_postgres(&ctx, local_name, &table, side, options).await {
                Ok((report, transfer)) => (report, Some(transfer)),
                Err(e) => return Ok(crate::output::user_error("diff", e)),
            }
        }
        None => {
            for (spec, name) in [(a, TABLE_A), (b, TABLE_B)] {
                if let Err(why) = register(&ctx, &project, spec, name, &pins).await? {
                    return Ok(crate::output::user_error("diff", why));
                }
            }
            match diff_tables(&ctx, options).await {
                Ok(report) => (report, None),
                Err(e) => return Ok(crate::output::user_error("diff", e)),
            }
        }
    };
    // A URL's password never reaches the output.
    let (a, b) = (&redact(a), &redact(b));
    if json {
        let mut doc = json!({
            "a": a,
            "b": b,
            "differs": report.differs(),
            "report": report,
        });
        if let Some(transfer) = &transfer {
            doc["transfer"] = json!(transfer);
        }
        crate::output::print_json(doc);
    } else {
        print_report(a, b, &report);
        if let Some(t) = &transfer {
            println!(
                "\nfrom PostgreSQL: {} queries, {} segments compared, {} of {} rows fetched, {} bytes",
                t.queries, t.segments_compared, t.rows_fetched, t.remote_rows, t.bytes_fetched
            );
        }
    }
    Ok(if report.differs() {
        Outcome::DataFailed
    } else {
        Outcome::Ok
    })
}

fn print_report(a: &str, b: &str, r: &DiffReport) {
    println!("A = {a}: {} rows", r.rows_a);
    println!("B = {b}: {} rows", r.rows_b);
    println!("key: {}\n", r.key.join(", "));
    println!("identical rows   {}", r.identical);
    println!("changed rows     {}", r.changed);
    println!("only in A        {}", r.only_in_a);
    println!("only in B        {}", r.only_in_b);
    let show_key = |k: &std::collections::BTreeMap<String, String>| {
        k.iter()
            .map(|(c, v)| format!("{c}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (label, samples) in [
        ("only in A", &r.samples_only_in_a),
        ("only in B", &r.samples_only_in_b),
    ] {
        if !samples.is_empty() {
            let keys: Vec<String> = samples.iter().map(show_key).collect();
            println!("  {label}, e.g.: {}", keys.join("; "));
        }
    }
    let differing: Vec<_> = r.columns.iter().filter(|c| c.mismatches > 0).collect();
    if !differing.is_empty() {
        println!("\ncolumns that differ:");
        for c in differing {
            println!("  {}: {} row(s)", c.column, c.mismatches);
            for s in &c.samples {
                println!(
                    "    {}: A {} | B {}",
                    show_key(&s.key),
                    s.a.as_deref().unwrap_or("NULL"),
                    s.b.as_deref().unwrap_or("NULL")
                );
            }
        }
    }
    for (side, columns) in [("A", &r.only_in_a_columns), ("B", &r.only_in_b_columns)] {
        if !columns.is_empty() {
            println!("\nnot compared, only in {side}: {}", columns.join(", "));
        }
    }
    println!(
        "\n{}",
        if r.differs() {
            "the tables differ: exit 1"
        } else {
            "the tables agree"
        }
    );
}
