use std::path::Path;

use crate::Outcome;

/// `weir optimize`: each selected table's small files compacted (Delta OPTIMIZE), without
/// changing a row; the replaced files stay for time travel until `weir vacuum --retain`.
pub async fn run(
    root: &Path,
    selectors: &[String],
    target_mb: u64,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(upkeep) = super::upkeep_selection(root, selectors, json).await? else {
        return Ok(Outcome::BadInput);
    };
    let target = target_mb.saturating_mul(1024 * 1024);
    let reports = weir_orchestrate::optimize(
        &upkeep.project,
        &upkeep.selected,
        &upkeep.recovery.held,
        target,
    )
    .await;
    upkeep.done().await?;
    let reports = reports?;
    if json {
        crate::output::print_json(serde_json::json!({ "tables": reports }));
    } else {
        for r in &reports {
            match &r.skipped {
                Some(why) => println!("{} ({}): left alone: {why}", r.asset, r.kind),
                None if r.files_removed > 0 => println!(
                    "{} ({}): {} compacted into {} (version {})",
                    r.asset,
                    r.kind,
                    crate::output::count(r.files_removed as usize, "file"),
                    r.files_added,
                    r.version.map(|v| v.to_string()).unwrap_or_default()
                ),
                None => {}
            }
        }
        let removed: u64 = reports.iter().map(|r| r.files_removed).sum();
        if removed == 0 {
            println!("nothing to compact");
        }
    }
    Ok(Outcome::Ok)
}
