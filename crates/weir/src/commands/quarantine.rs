//! `weir quarantine ASSET`: what the quarantine holds, by rule and by run, with sample rows.

use std::path::Path;

use datafusion::prelude::SessionContext;
use serde_json::{Map, Value, json};
use weir_model::did_you_mean;
use weir_orchestrate::table_paths;
use weir_store::{LakeTable, register_delta};

use crate::Outcome;
use crate::output::new_table;

/// The filters of `weir quarantine`.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub run: Option<String>,
    pub rule: Option<String>,
    pub status: Option<String>,
    pub limit: usize,
}

pub async fn quarantine(
    root: &Path,
    name: &str,
    filters: &Filters,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    if project.asset(name).is_none() {
        let names: Vec<String> = project.assets.iter().map(|a| a.name.clone()).collect();
        return Ok(crate::output::user_error(
            "unknown_asset",
            format!("unknown asset `{name}`{}", did_you_mean(name, names.iter())),
        ));
    }
    let (_, path) = table_paths(&project, name);
    let Some(table) = LakeTable::open(&path).await? else {
        if json {
            crate::output::print_json(json!({
                "asset": name, "quarantine_path": path, "version": null, "rows": 0,
                "replayed": 0, "by_rule": {}, "by_run": [], "samples": [],
            }));
        } else {
            println!(
                "no row of `{name}` has been quarantined (its quarantine table, {}, is created with the first)",
                path.display()
            );
        }
        return Ok(Outcome::Ok);
    };
    let ctx = SessionContext::new();
    register_delta(&ctx, "q", &table).await?;
    // A table written before `run_status`, `replayed_by` and `raw_bytes` existed reads them as
    // null: its rows all come from published runs.
    let has: Vec<String> = ctx
        .table("q")
        .await?
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let col = |c: &str, present: &str, absent: &str| {
        if has.iter().any(|h| h == c) {
            present.to_string()
        } else {
            absent.to_string()
        }
    };
    let mut conditions = vec!["true".to_string()];
    if let Some(run) = &filters.run {
        conditions.push(format!("run_id = {}", literal(run)));
    }
    if let Some(rule) = &filters.rule {
        conditions.push(format!("rule_id = {}", literal(rule)));
    }
    if let Some(status) = &filters.status {
        conditions.push(format!("run_status = {}", literal(status)));
    }
    let view = format!(
        "CREATE VIEW v AS SELECT * FROM (SELECT run_id, {status} AS run_status, rule_id, reason, source, position, raw_record, {bytes} AS raw_bytes_hex, {replayed} AS replayed_by, quarantined_at FROM q) WHERE {conditions}",
        status = col(
            "run_status",
            "COALESCE(run_status, 'published')",
            "'published'"
        ),
        bytes = col(
            "raw_bytes",
            "encode(raw_bytes, 'hex')",
            "CAST(NULL AS VARCHAR)"
        ),
        replayed = col("replayed_by", "replayed_by", "CAST(NULL AS VARCHAR)"),
        conditions = conditions.join(" AND "),
    );
    ctx.sql(&view).await?.collect().await?;
    let totals = rows(
        &ctx,
        "SELECT COUNT(*) AS n, COUNT(replayed_by) AS replayed FROM v",
    )
    .await?;
    let by_rule = rows(
        &ctx,
        "SELECT rule_id, COUNT(*) AS rows, COUNT(replayed_by) AS replayed FROM v GROUP BY rule_id ORDER BY rows DESC, rule_id",
    )
    .await?;
    let by_run = rows(
        &ctx,
        "SELECT run_id, run_status, COUNT(*) AS rows, COUNT(replayed_by) AS replayed, MIN(quarantined_at) AS quarantined_at FROM v GROUP BY run_id, run_status ORDER BY run_id",
    )
    .await?;
    let samples = rows(
        &ctx,
        &format!(
            "SELECT run_id, run_status, rule_id, reason, source, position, raw_record, raw_bytes_hex, replayed_by FROM v ORDER BY run_id DESC, source, position LIMIT {}",
            filters.limit
        ),
    )
    .await?;
    let total = totals.first().and_then(|r| r.get("n")).cloned();
    let replayed = totals.first().and_then(|r| r.get("replayed")).cloned();
    if json {
        let rules: Map<String, Value> = by_rule
            .iter()
            .map(|r| {
                (
                    r.get("rule_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    r.get("rows").cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        let doc = json!({
            "asset": name,
            "quarantine_path": path,
            "version": table.version(),
            "filters": { "run": filters.run, "rule": filters.rule, "status": filters.status },
            "rows": total.unwrap_or(json!(0)),
            "replayed": replayed.unwrap_or(json!(0)),
            "by_rule": rules,
            "by_rule_detail": by_rule,
            "by_run": by_run,
            "samples": samples,
        });
        crate::output::print_json(doc);
        return Ok(Outcome::Ok);
    }
    let show = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    println!(
        "quarantine of `{name}` ({}, version {}): {} rows, {} replayed",
        path.display(),
        show(table.version().map(|v| json!(v)).as_ref()),
        show(total.as_ref()),
        show(replayed.as_ref()),
    );
    let mut t = new_table(&["rule", "rows", "replayed"]);
    for r in &by_rule {
        t.add_row(vec![
            show(r.get("rule_id")),
            show(r.get("rows")),
            show(r.get("replayed")),
        ]);
    }
    println!("\nby rule\n{t}");
    let mut t = new_table(&["run", "status", "rows", "replayed", "quarantined at"]);
    for r in &by_run {
        t.add_row(vec![
            show(r.get("run_id")),
            show(r.get("run_status")),
            show(r.get("rows")),
            show(r.get("replayed")),
            show(r.get("quarantined_at")),
        ]);
    }
    println!("\nby run\n{t}");
    let mut t = new_table(&["rule", "reason", "source", "position", "raw record"]);
    for r in &samples {
        let raw = match r.get("raw_bytes_hex") {
            Some(Value::String(hex)) => format!("(bytes, hex) {hex}"),
            _ => show(r.get("raw_record")),
        };
        t.add_row(vec![
            show(r.get("rule_id")),
            show(r.get("reason")),
            show(r.get("source")),
            show(r.get("position")),
            cut(&raw, 120),
        ]);
    }
    println!("\nsample rows\n{t}");
    Ok(Outcome::Ok)
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max).collect();
    s.push('…');
    s
}

/// A query's rows as JSON objects, nulls included.
async fn rows(ctx: &SessionContext, sql: &str) -> anyhow::Result<Vec<Map<String, Value>>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    for b in &batches {
        writer.write(b)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&bytes)?)
}
