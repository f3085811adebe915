//! `weir shadow [ASSET]`: how each shadow asset (`shadow_of` in its model) has agreed with the
//! asset it shadows, comparison by comparison, and for how long it has agreed fully: the
//! evidence a migration needs before its cut-over.

use std::path::Path;

use serde_json::json;
use weir_orchestrate::{ShadowComparison, StateStore};

use crate::Outcome;

/// One line saying what a comparison found.
pub(crate) fn describe(c: &ShadowComparison) -> String {
    match c.agreement {
        Some(agreement) if c.compared => format!(
            "shadow {} of {}: {:.2}% of rows agree (identical {}, changed {}, only in {} {}, only in {} {})",
            c.asset,
            c.shadow_of,
            agreement * 100.0,
            c.identical,
            c.changed,
            c.shadow_of,
            c.only_in_primary,
            c.asset,
            c.only_in_shadow
        ),
        _ => format!(
            "shadow {} of {}: {}",
            c.asset,
            c.shadow_of,
            c.note.as_deref().unwrap_or("not compared")
        ),
    }
}

/// The most recent comparisons that agreed fully, without a compared one between them that
/// did not (comparisons not made are passed over): how many, and since when.
fn streak(history: &[ShadowComparison]) -> (usize, Option<&str>) {
    let mut count = 0;
    let mut since = None;
    for c in history.iter().rev().filter(|c| c.compared) {
        if c.agreement != Some(1.0) {
            break;
        }
        count += 1;
        since = Some(c.compared_at.as_str());
    }
    (count, since)
}

pub async fn shadow_command(
    root: &Path,
    asset: Option<&str>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    let shadows: Vec<&weir_model::Asset> = project
        .assets
        .iter()
        .filter(|a| a.model.as_ref().is_some_and(|m| m.shadow_of.is_some()))
        .filter(|a| asset.is_none_or(|name| a.name == name))
        .collect();
    if let Some(name) = asset
        && shadows.is_empty()
    {
        let why = match project.asset(name) {
            Some(_) => format!("`{name}` is not a shadow: its model has no `shadow_of`"),
            None => format!("unknown asset `{name}`"),
        };
        return Ok(crate::output::user_error("unknown_asset", why));
    }
    let state = StateStore::connect(&project.state_url()).await?;
    let mut docs = Vec::new();
    for shadow in &shadows {
        let Some(primary) = shadow
            .model
            .as_ref()
            .and_then(|m| m.shadow_of.as_deref())
            .and_then(|p| project.asset(p))
        else {
            continue;
        };
        let history = state.shadow_comparisons(Some(&shadow.name)).await?;
        let (agreeing, since) = streak(&history);
        let last = history.iter().rev().find(|c| c.compared);
        if !json {
            println!(
                "{} shadows {} (compared on {}): {} comparison(s), {} made",
                shadow.name,
                primary.name,
                weir_model::shadow_key(shadow, primary).join(", "),
                history.len(),
                history.iter().filter(|c| c.compared).count()
            );
            match (last, since) {
                (None, _) => println!(
                    "  not compared yet: run both (`weir run {} {}`)",
                    primary.name, shadow.name
                ),
                (Some(_), Some(since)) => println!(
                    "  agreeing fully for the last {agreeing} comparison(s), since {since}"
                ),
                (Some(c), None) => println!("  the last comparison disagreed: {}", describe(c)),
            }
            for c in history.iter().rev().take(10) {
                println!("  {}  {}", c.compared_at, describe(c));
            }
        }
        docs.push(json!({
            "asset": shadow.name,
            "shadow_of": primary.name,
            "key": weir_model::shadow_key(shadow, primary),
            "comparisons": history.len(),
            "last_agreement": last.and_then(|c| c.agreement),
            "agreeing_comparisons": agreeing,
            "agreeing_since": since,
            "history": history,
        }));
    }
    state.close().await;
    if json {
        crate::output::print_json(json!({ "shadows": docs }));
    } else if docs.is_empty() {
        println!("no shadow assets: declare one with `-- weir: shadow_of = ASSET` in a model");
    }
    Ok(Outcome::Ok)
}
