use std::path::Path;

use weir_orchestrate::{VacuumOptions, vacuum};

use crate::Outcome;

/// `weir vacuum`: the data files no table version names, deleted with `--apply`; with
/// `--retain HOURS`, also Delta VACUUM of files only versions older than that need.
pub async fn run(
    root: &Path,
    selectors: &[String],
    options: &VacuumOptions,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(upkeep) = super::upkeep_selection(root, selectors, json).await? else {
        return Ok(Outcome::BadInput);
    };
    let reports = vacuum(
        &upkeep.project,
        &upkeep.selected,
        &upkeep.recovery.held,
        options,
    )
    .await;
    let recovery = upkeep.recovery.clone();
    upkeep.done().await?;
    let reports = reports?;
    let files: usize = reports.iter().map(|r| r.unreferenced_files.len()).sum();
    let bytes: u64 = reports.iter().map(|r| r.unreferenced_bytes).sum();
    let expired: usize = reports.iter().map(|r| r.expired_files.len()).sum();
    if json {
        crate::output::print_json(serde_json::json!({
            "applied": options.apply,
            "tables": reports,
            "held": crate::output::recovery_json(&recovery)["held"],
            "unreferenced_files": files,
            "unreferenced_bytes": bytes,
            "expired_files": expired,
        }));
    } else {
        for r in reports
            .iter()
            .filter(|r| !r.unreferenced_files.is_empty() || !r.expired_files.is_empty())
        {
            for file in &r.unreferenced_files {
                println!("{} ({}): {file}: named by no version", r.asset, r.kind);
            }
            for file in &r.expired_files {
                println!(
                    "{} ({}): {file}: only versions past the retention need it",
                    r.asset, r.kind
                );
            }
        }
        for (asset, why) in &recovery.held {
            eprintln!("{asset}: left alone, its publication is held back: {why}");
        }
        let verb = if options.apply {
            "deleted"
        } else {
            "would delete"
        };
        println!(
            "{verb} {} ({bytes} bytes) that no version names{}",
            crate::output::count(files, "file"),
            if options.retain_hours.is_some() {
                format!(
                    ", and {} past the retention",
                    crate::output::count(expired, "file")
                )
            } else {
                String::new()
            }
        );
        if !options.apply && (files > 0 || expired > 0) {
            println!("this was a dry run: add --apply to delete");
        }
    }
    Ok(Outcome::Ok)
}
