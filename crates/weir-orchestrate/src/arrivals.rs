//! Seeing files arrive in a source's folder, for `weir serve`: a file is new when the ledger
//! has no entry of its path and size and it has stopped changing (the same size and times on
//! two polls in a row, so a file still being copied is not read half-written).
//!
//! The watcher only decides *when* to run a source; *what* the run reads is decided, exactly,
//! by the run itself from the ledger. So a trigger too many costs an `up_to_date` run, never
//! a row read twice, and a file the watcher missed is read by the next run anyway.

use std::collections::{BTreeMap, HashSet};

use weir_ingest::{FileStat, stat_files};
use weir_model::Project;

use crate::error::Result;
use crate::state::StateStore;

/// What the watcher saw at its last poll, per source.
#[derive(Default)]
pub struct ArrivalWatch {
    /// Per source: each file's stat at the last poll.
    last: BTreeMap<String, BTreeMap<String, FileStat>>,
    /// Per source: the (path, size) pairs already handed to a run or found in the ledger.
    known: BTreeMap<String, HashSet<(String, u64)>>,
}

impl ArrivalWatch {
    /// The sources with a settled file that no run has read yet. Each file is reported once.
    pub async fn poll(&mut self, project: &Project, state: &StateStore) -> Result<Vec<String>> {
        let mut arrived = Vec::new();
        for asset in &project.assets {
            let Some(source) = &asset.source else {
                continue;
            };
            let Ok(files) = stat_files(&project.root, &source.path) else {
                continue;
            };
            let known = match self.known.get_mut(&asset.name) {
                Some(known) => known,
                None => {
                    let ledger = state.ledger(&asset.name).await?;
                    self.known.entry(asset.name.clone()).or_insert_with(|| {
                        ledger.into_iter().map(|e| (e.path, e.size_bytes)).collect()
                    })
                }
            };
            let before = self.last.remove(&asset.name).unwrap_or_default();
            let mut new_file = false;
            for (key, stat) in &files {
                let settled = before.get(key) == Some(stat);
                if settled && known.insert((key.clone(), stat.size)) {
                    new_file = true;
                }
            }
            self.last
                .insert(asset.name.clone(), files.into_iter().collect());
            if new_file {
                arrived.push(asset.name.clone());
            }
        }
        Ok(arrived)
    }
}
