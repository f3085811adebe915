//! Promoting a table built in an environment: its live data files are placed in the
//! production table's folder (hard-linked when the file system allows, else copied) under
//! names no writer of that table uses, ready for one replacing commit
//! ([`crate::PublicationPart`] with `replace`). Until that commit, the placed files are
//! referenced by no version, so a promotion stopped before it leaves only what `weir vacuum`
//! removes.

use std::path::Path;

use deltalake::kernel::Add;
use futures::TryStreamExt;

use crate::error::{Result, StoreError};
use crate::table::{LakeTable, percent_decode};

/// The file-name prefix of promoted data files.
pub const PROMOTED_PREFIX: &str = "promoted";

/// Places every live data file of `from` in `to_dir`, named
/// `promoted-<tag>-<original name>` (in the same sub-folder; `tag` must need no URI
/// encoding), and returns the `add` actions
/// naming the placed files, with the originals' statistics and tags. Placing a file that is
/// already there (a promotion resumed after a crash) is a no-op.
pub async fn place_live_files(from: &LakeTable, to_dir: &Path, tag: &str) -> Result<Vec<Add>> {
    let snapshot = from
        .table
        .snapshot()
        .map_err(StoreError::delta(&from.path))?;
    let adds: Vec<Add> = snapshot
        .snapshot()
        .file_views(from.table.log_store().as_ref(), None)
        .map_ok(|f| {
            #[allow(deprecated)] // the only public way to a file's whole `add` action
            f.add_action()
        })
        .try_collect()
        .await
        .map_err(StoreError::delta(&from.path))?;
    let mut placed = Vec::with_capacity(adds.len());
    for add in adds {
        let relative = percent_decode(&add.path);
        let source = from.path.join(&relative);
        let relative = Path::new(&relative);
        let file_name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                StoreError::Other(format!(
                    "table {}: data file `{}` has no file name",
                    from.path.display(),
                    add.path
                ))
            })?;
        let new_name = format!("{PROMOTED_PREFIX}-{tag}-{file_name}");
        let new_relative = match relative.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.join(&new_name),
            _ => Path::new(&new_name).to_path_buf(),
        };
        let target = to_dir.join(&new_relative);
        place(&source, &target)?;
        // The add path is URI-encoded; the prefix needs no encoding, so it goes in as is.
        let encoded = match add.path.rsplit_once('/') {
            Some((folder, name)) => format!("{folder}/{PROMOTED_PREFIX}-{tag}-{name}"),
            None => format!("{PROMOTED_PREFIX}-{tag}-{}", add.path),
        };
        placed.push(Add {
            path: encoded,
            ..add
        });
    }
    Ok(placed)
}

/// Hard-links `source` to `target` (data files are immutable, so both tables can share one),
/// or copies it when linking is not possible (another file system).
fn place(source: &Path, target: &Path) -> Result<()> {
    if target.is_file() {
        return Ok(());
    }
    let io = |what: &str, e: std::io::Error| {
        StoreError::Other(format!(
            "{what} {} to {}: {e}",
            source.display(),
            target.display()
        ))
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("making the folder for", e))?;
    }
    if std::fs::hard_link(source, target).is_ok() {
        return Ok(());
    }
    // Copied under a temporary name and renamed, so a half-copied file never has the name a
    // commit will reference.
    let partial = target.with_extension("partial");
    std::fs::copy(source, &partial).map_err(|e| io("copying", e))?;
    std::fs::rename(&partial, target).map_err(|e| io("renaming the copy of", e))?;
    Ok(())
}

impl LakeTable {
    /// The table's Delta schema as JSON (what [`crate::PublicationPart::schema`] takes).
    pub fn schema_json(&self) -> Result<String> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(StoreError::delta(&self.path))?;
        serde_json::to_string(snapshot.schema().as_ref())
            .map_err(|e| StoreError::Other(format!("table {}: {e}", self.path.display())))
    }
}

/// Deletes a whole lake folder with every table in it: an environment's, once its tables are
/// promoted (the production tables hold their own links or copies of the files). A checkpoint
/// still being written for one of its tables is waited for first: written after the removal,
/// it would leave a `_delta_log` folder of a table that no longer exists.
pub async fn delete_lake(dir: &Path) -> Result<()> {
    crate::checkpoint::finish_checkpoints_under(dir).await;
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Other(format!(
            "removing {}: {e}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}
