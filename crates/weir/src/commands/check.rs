use std::path::Path;

use weir_model::{Diagnostic, load_project};
use weir_quality::{ParseOptions, Validator};

use crate::Outcome;
use crate::output::diagnostics_json;

/// Parses everything, then compiles every contract the way a run would, reporting every
/// problem at once.
pub fn check(root: &Path, deny_warnings: bool, json: bool) -> anyhow::Result<Outcome> {
    let (project, mut diagnostics) = load_project(root);
    if let Some(project) = &project {
        for asset in &project.assets {
            if let Err(e) = Validator::new(&asset.name, &asset.contract, ParseOptions::default()) {
                diagnostics.push(Diagnostic::error(&asset.contract_path, e.to_string()));
            }
        }
    }
    let failed =
        diagnostics.has_errors() || (deny_warnings && diagnostics.warnings().next().is_some());
    if json {
        let assets: Vec<&str> = project
            .iter()
            .flat_map(|p| p.assets.iter().map(|a| a.name.as_str()))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": !failed,
                "assets": assets,
                "diagnostics": diagnostics_json(&diagnostics),
            }))?
        );
    } else {
        for d in &diagnostics.0 {
            eprintln!("{d}");
        }
        let errors = diagnostics.errors().count();
        let warnings = diagnostics.warnings().count();
        match &project {
            Some(p) if !failed => eprintln!(
                "ok: {} assets, {errors} errors, {warnings} warnings",
                p.assets.len()
            ),
            _ => eprintln!("check failed: {errors} errors, {warnings} warnings"),
        }
    }
    Ok(if failed {
        Outcome::BadInput
    } else {
        Outcome::Ok
    })
}
