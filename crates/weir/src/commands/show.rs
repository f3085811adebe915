use std::path::Path;

use weir_model::{arrow_type, did_you_mean};
use weir_orchestrate::{StateStore, build_graph, table_paths};
use weir_store::LakeTable;

use crate::Outcome;
use crate::output::{new_table, run_record_json, runs_table};

pub async fn show(root: &Path, name: &str, json: bool) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let Some(asset) = project.asset(name) else {
        let names: Vec<String> = project.assets.iter().map(|a| a.name.clone()).collect();
        return Ok(crate::output::user_error(
            "unknown_asset",
            format!("unknown asset `{name}`{}", did_you_mean(name, names.iter())),
        ));
    };
    let (table_path, quarantine_path) = table_paths(&project, name);
    let table_info = match LakeTable::open(&table_path).await? {
        Some(t) => Some(t.info().await?),
        None => None,
    };
    let quarantine_info = match LakeTable::open(&quarantine_path).await? {
        Some(t) => Some(t.info().await?),
        None => None,
    };
    let state = StateStore::connect(&project.state_url()).await?;
    let runs = state.runs(Some(name), 5).await?;
    let ledger = state.ledger(name).await?;
    state.close().await;
    let (graph, _) = build_graph(&project);
    let upstream: Vec<String> = graph.upstream.get(name).cloned().unwrap_or_default();
    let downstream: Vec<String> = graph.all_downstream(name).into_iter().collect();
    // Who to tell before changing this asset: the owners of everything downstream.
    let downstream_owners: Vec<serde_json::Value> = downstream
        .iter()
        .filter_map(|d| project.asset(d))
        .map(|d| serde_json::json!({ "asset": d.name, "team": d.team(), "owners": d.owners() }))
        .collect();
    let table = asset.contract.table();
    let properties = table.map(|t| t.properties.as_slice()).unwrap_or_default();
    let team = asset.team().unwrap_or("");
    let channels: Vec<String> = project
        .team_channels(team)
        .iter()
        .cloned()
        .chain(asset.contract.support.iter().map(|s| s.channel.clone()))
        .collect();

    if json {
        let columns: Vec<_> = properties
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "type": arrow_type(p).to_string(), "required": p.required || p.primary_key,
                    "unique": p.unique, "primary_key": p.primary_key, "description": p.description,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "asset": name,
            "description": asset.contract.description.as_ref().and_then(|d| d.purpose.clone()),
            "owners": asset.owners(),
            "team": asset.team(),
            "channels": channels,
            "contract": { "path": asset.contract_path, "id": asset.contract.id, "version": asset.contract.version, "status": asset.contract.status },
            "source": asset.source.as_ref().map(|s| serde_json::json!({ "format": s.format.as_str(), "path": s.path })),
            "columns": columns,
            "table_path": table_path,
            "table_version": table_info.as_ref().and_then(|i| i.version),
            "table_files": table_info.as_ref().map(|i| i.num_files),
            "table_bytes": table_info.as_ref().map(|i| i.size_bytes),
            "quarantine_path": quarantine_path,
            "quarantine_version": quarantine_info.as_ref().and_then(|i| i.version),
            "files_ingested": ledger.len(),
            "model": asset.model.as_ref().map(|m| serde_json::json!({ "path": m.path, "materialization": m.materialization.as_str(), "watermark": m.watermark })),
            "upstream": upstream,
            "downstream": downstream,
            "downstream_owners": downstream_owners,
            "runs": runs.iter().map(run_record_json).collect::<Vec<_>>(),
        });
        crate::output::print_json(doc);
        return Ok(Outcome::Ok);
    }

    println!("{name}");
    if let Some(purpose) = asset
        .contract
        .description
        .as_ref()
        .and_then(|d| d.purpose.as_deref())
    {
        println!("  {purpose}");
    }
    println!();
    println!(
        "owner     {}",
        if asset.owners().is_empty() {
            "(none: add a team member with role: owner)".into()
        } else {
            asset.owners().join(", ")
        }
    );
    println!(
        "team      {}",
        if team.is_empty() { "(none)" } else { team }
    );
    println!("channels  {}", channels.join(", "));
    println!(
        "contract  {} (id {}, version {}, {})",
        asset.contract_path.display(),
        asset.contract.id,
        asset.contract.version,
        asset.contract.status
    );
    if let Some(s) = &asset.source {
        println!("source    {} files at {}", s.format.as_str(), s.path);
    }
    match &table_info {
        Some(i) => println!(
            "table     {} (version {}, {} files, {} bytes)",
            table_path.display(),
            i.version.map(|v| v.to_string()).unwrap_or_default(),
            i.num_files,
            i.size_bytes
        ),
        None => println!(
            "table     {} (not created yet: run `weir run {name}`)",
            table_path.display()
        ),
    }
    match &quarantine_info {
        Some(i) => println!(
            "quarantine {} (version {}, {} files)",
            quarantine_path.display(),
            i.version.map(|v| v.to_string()).unwrap_or_default(),
            i.num_files
        ),
        None => println!(
            "quarantine {} (none: no row quarantined yet)",
            quarantine_path.display()
        ),
    }
    if let Some(m) = &asset.model {
        println!(
            "model     {} ({})",
            m.path.display(),
            m.materialization.as_str()
        );
    } else {
        println!("files     {} ingested", ledger.len());
    }
    println!(
        "upstream  {}",
        if upstream.is_empty() {
            "(none)".to_string()
        } else {
            upstream.join(", ")
        }
    );
    println!(
        "downstream {}",
        if downstream.is_empty() {
            "(none)".to_string()
        } else {
            downstream.join(", ")
        }
    );
    for d in downstream.iter().filter_map(|d| project.asset(d)) {
        println!(
            "  {} owned by {} ({})",
            d.name,
            d.owners().join(", "),
            d.team().unwrap_or("no team")
        );
    }
    println!();
    let mut schema = new_table(&[
        "column",
        "type",
        "required",
        "unique",
        "rules",
        "description",
    ]);
    for p in properties {
        let mut rules = Vec::new();
        if let Some(o) = &p.logical_type_options {
            if o.pattern.is_some() {
                rules.push("pattern".to_string());
            }
            if o.minimum.is_some() || o.exclusive_minimum.is_some() {
                rules.push("minimum".into());
            }
            if o.maximum.is_some() || o.exclusive_maximum.is_some() {
                rules.push("maximum".into());
            }
            if let Some(f) = &o.format {
                rules.push(format!("format {f}"));
            }
        }
        if p.enum_values.is_some() {
            rules.push("enum".into());
        }
        rules.extend(
            p.quality
                .iter()
                .filter_map(|q| q.metric.clone().or(q.rule.clone()).or(q.rule_type.clone())),
        );
        schema.add_row(vec![
            p.name.clone(),
            arrow_type(p).to_string(),
            (p.required || p.primary_key).to_string(),
            if p.primary_key {
                "primary key".into()
            } else {
                p.unique.to_string()
            },
            rules.join(", "),
            p.description.clone().unwrap_or_default(),
        ]);
    }
    println!("{schema}");
    if !runs.is_empty() {
        let history = runs_table(&runs, false);
        println!("\nlast runs\n{history}");
    }
    Ok(Outcome::Ok)
}
