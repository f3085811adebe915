//! Finishing publications: after a normal run, and after a crash.

use std::path::Path;

use weir_model::Project;
use weir_store::Publication;

use crate::error::{OrchestrateError, Result};
use crate::runner::{LedgerPayload, failpoint};
use crate::state::StateStore;

pub(crate) struct PublishedVersions {
    pub table: Option<u64>,
    pub quarantine: Option<u64>,
}

/// Commits what is not committed yet, records the run and its files, then drops the journal.
/// Every step is idempotent, so this is both the normal path and the recovery path.
pub(crate) async fn complete(
    state: &StateStore,
    publication: &Publication,
    journal: &Path,
) -> Result<PublishedVersions> {
    let payload: LedgerPayload = serde_json::from_value(publication.payload.clone())
        .map_err(|e| OrchestrateError::Config(format!("journal {}: {e}", journal.display())))?;
    let asset = payload.asset.clone();
    let asset = asset.as_str();
    let mut versions = PublishedVersions {
        table: None,
        quarantine: None,
    };
    let last = publication.parts.len().saturating_sub(1);
    for (idx, part) in publication.parts.iter().enumerate() {
        let single = Publication {
            parts: vec![part.clone()],
            ..publication.clone()
        };
        let outcome = single.apply().await?;
        let version = outcome.first().and_then(|o| o.version);
        if idx == last {
            versions.table = version;
        } else {
            versions.quarantine = version;
            failpoint("between_commits", asset);
        }
    }
    failpoint("published", asset);

    state
        .record_files(
            &payload.asset,
            &publication.run_id,
            publication.version,
            payload.replace,
            &payload.files,
        )
        .await?;
    let mut run = payload.run;
    run.table_version = versions.table;
    state.insert_run(&run).await?;
    failpoint("recorded", asset);
    weir_store::remove_journal(journal)?;
    Ok(versions)
}

/// Completes every publication a killed process left behind, and marks its unfinished runs.
/// Returns one line per thing recovered, for the user.
pub async fn recover_pending(project: &Project, state: &StateStore) -> Result<Vec<String>> {
    let mut messages = Vec::new();
    let dir = project.state_dir().join("journal");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut journals: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        journals.sort();
        for journal in journals {
            let Some(publication) = weir_store::read_journal(&journal)? else {
                continue;
            };
            complete(state, &publication, &journal).await?;
            messages.push(format!(
                "completed run {} that was interrupted while publishing",
                publication.run_id
            ));
        }
    }
    let interrupted = state.mark_interrupted().await?;
    if interrupted > 0 {
        messages.push(format!(
            "{interrupted} interrupted run(s) published nothing; their files will be ingested again"
        ));
    }
    Ok(messages)
}
