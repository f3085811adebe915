use std::path::Path;

use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use weir_orchestrate::table_paths;
use weir_store::{LakeTable, StoreError, register_delta};

use crate::Outcome;

/// The schema quarantine tables are registered in: `SELECT * FROM quarantine.orders`.
pub const QUARANTINE_SCHEMA: &str = "quarantine";

/// How to print query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Ad-hoc SQL over every asset's table (by asset name) and every quarantine table (as
/// `quarantine.<asset>`). `at` reads the table the query names at a Delta version (one table
/// only); `as_of` reads every table as of an RFC 3339 instant; `env` reads the tables that
/// environment holds from it.
pub async fn query(
    root: &Path,
    sql: &str,
    at: Option<u64>,
    as_of: Option<&str>,
    env: Option<&str>,
    format: Format,
) -> anyhow::Result<Outcome> {
    let Some(mut project) = super::load(root, format == Format::Json, false) else {
        return Ok(Outcome::BadInput);
    };
    if let Some(env) = env
        && let Err(why) = super::environment::read(&mut project, env)
    {
        return Ok(crate::output::user_error("environment", why));
    }
    let referenced = match weir_process::qualified_table_references(sql) {
        Ok(t) => t,
        Err(e) => {
            return Ok(crate::output::user_error(
                "query",
                format!("SQL does not parse: {e}"),
            ));
        }
    };
    if at.is_some() && referenced.len() != 1 {
        return Ok(crate::output::user_error(
            "query",
            format!(
                "--at VERSION needs a query over exactly one table (this one reads {}); use --as-of for several",
                referenced.len()
            ),
        ));
    }
    let as_of = match as_of.map(chrono::DateTime::parse_from_rfc3339).transpose() {
        Ok(t) => t.map(|t| t.with_timezone(&chrono::Utc)),
        Err(e) => {
            return Ok(crate::output::user_error(
                "query",
                format!("--as-of must be an RFC 3339 timestamp such as 2026-11-25T18:00:00Z: {e}"),
            ));
        }
    };
    let ctx = SessionContext::new();
    if let Some(catalog) = ctx.catalog("datafusion") {
        catalog.register_schema(QUARANTINE_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
    }
    // A promotion publishing right now: read every table it touches as it was before.
    let pins = if at.is_none() && as_of.is_none() {
        super::environment::reader_pins(&project).await?
    } else {
        Default::default()
    };
    for asset in &project.assets {
        let from_production = project
            .environment
            .as_ref()
            .is_none_or(|env| !env.assets.contains(&asset.name));
        let (table_path, quarantine_path) = table_paths(&project, &asset.name);
        let quarantine_name = format!("{QUARANTINE_SCHEMA}.{}", asset.name);
        for (name, path) in [
            (asset.name.clone(), table_path),
            (quarantine_name, quarantine_path),
        ] {
            let named = referenced.contains(&name)
                || (name == asset.name && referenced.contains(&format!("public.{name}")));
            // Only the tables the query names are opened: the names come normalized as
            // DataFusion resolves them (CTEs left out), so no other table could be read, and a
            // project of many assets is not opened whole for one query.
            if !named {
                continue;
            }
            let pinned = pins.get(&name).filter(|_| from_production);
            let opened = match pinned {
                Some(Some(version)) => LakeTable::open_at(&path, *version).await?,
                Some(None) => None,
                None => LakeTable::open(&path).await?,
            };
            let Some(mut table) = opened else {
                // A quarantine table is created with the asset's first quarantined row: none
                // means no row was ever set aside, which reads as an empty table.
                if name != asset.name {
                    if at.is_some() {
                        return Ok(crate::output::user_error(
                            "query",
                            format!(
                                "`{name}` has no versions: no row of `{}` has been quarantined",
                                asset.name
                            ),
                        ));
                    }
                    let empty = MemTable::try_new(weir_store::quarantine_schema(), vec![vec![]])?;
                    ctx.register_table(name.as_str(), Arc::new(empty))?;
                }
                continue;
            };
            if let Some(version) = at {
                let latest = table.version().unwrap_or(0);
                if version > latest {
                    return Ok(crate::output::user_error(
                        "query",
                        format!(
                            "`{name}` has versions 0 to {latest}; there is no version {version} to read (`weir runs --asset {}` lists what each run published)",
                            asset.name
                        ),
                    ));
                }
                table
                    .table
                    .load_version(version)
                    .await
                    .map_err(|e| StoreError::Delta {
                        path: path.clone(),
                        source: e,
                    })?;
            } else if let Some(instant) = as_of
                && let Err(e) = table.table.load_with_datetime(instant).await
            {
                return Ok(crate::output::user_error(
                    "query",
                    format!(
                        "cannot read `{name}` as of {instant}: {} (it may not have existed yet then)",
                        StoreError::Delta {
                            path: path.clone(),
                            source: e,
                        }
                    ),
                ));
            }
            register_delta(&ctx, &name, &table).await?;
        }
    }
    let df = match ctx.sql(sql).await {
        Ok(df) => df,
        Err(e) => {
            return Ok(crate::output::user_error(
                "query",
                format!("the query does not plan: {}", e.strip_backtrace()),
            ));
        }
    };
    let batches = match df.collect().await {
        Ok(batches) => batches,
        Err(e) => {
            return Ok(crate::output::user_error(
                "query",
                format!("the query failed while running: {}", e.strip_backtrace()),
            ));
        }
    };
    match format {
        Format::Table => println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?),
        Format::Csv => {
            let mut writer = arrow::csv::Writer::new(std::io::stdout());
            for b in &batches {
                writer.write(b)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            for b in &batches {
                writer.write(b)?;
            }
            writer.finish()?;
            let rows: serde_json::Value = serde_json::from_slice(&writer.into_inner())
                .unwrap_or(serde_json::Value::Array(Vec::new()));
            crate::output::print_json(serde_json::json!({ "rows": rows }));
        }
    }
    Ok(Outcome::Ok)
}
