use std::path::Path;

use weir_orchestrate::{AssetLease, StateStore, abandon, recover_pending};

use crate::Outcome;
use crate::output::{print_recovery, recovery_json};

/// `weir recover [--abandon ASSET]`: what `weir run` does first, on its own; with `--abandon`,
/// first discards that asset's pending publication.
pub async fn recover(
    root: &Path,
    abandon_asset: Option<&str>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let Some(project) = super::load(root, json, false) else {
        return Ok(Outcome::BadInput);
    };
    if let Some(asset) = abandon_asset
        && project.asset(asset).is_none()
    {
        let hint = weir_model::did_you_mean(asset, project.assets.iter().map(|a| &a.name));
        return Ok(crate::output::user_error(
            "unknown_asset",
            format!("unknown asset `{asset}`{hint}"),
        ));
    }
    let state = StateStore::connect(&project.state_url()).await?;
    let mut abandoned = Vec::new();
    if let Some(asset) = abandon_asset {
        let Some(lease) = AssetLease::try_acquire(&state, asset).await? else {
            state.close().await;
            return Ok(crate::output::user_error(
                "held",
                format!(
                    "another live process is writing `{asset}` now (it holds its lease); its publication is not abandoned"
                ),
            ));
        };
        let done = abandon(&project, &state, asset).await;
        lease.release().await?;
        abandoned = done?;
    }
    let mut recovery = recover_pending(&project, &state).await?;
    state.close().await;
    abandoned.append(&mut recovery.messages);
    recovery.messages = abandoned;
    if recovery.messages.is_empty() && recovery.held.is_empty() && !json {
        eprintln!("nothing to recover");
    }
    if json {
        crate::output::print_json(recovery_json(&recovery));
    } else {
        print_recovery(&recovery);
    }
    Ok(if recovery.held.is_empty() {
        Outcome::Ok
    } else {
        Outcome::DataFailed
    })
}
