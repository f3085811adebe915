//! A run's quarantine table, created with the first row the asset ever quarantines.
//!
//! Most runs quarantine nothing. Creating the table up front cost every asset's first run a
//! second Delta table (two folders, a commit and a snapshot read: about a third of the files
//! a model's first run creates), and every later run a second snapshot to open. Readers
//! take a missing quarantine table as one without rows (`weir query` serves an empty
//! `quarantine.<asset>`).

use std::path::{Path, PathBuf};

use weir_store::{LakeTable, LiveFile, StagedWriter};

use crate::error::Result;

pub(crate) struct RunQuarantine {
    pub path: PathBuf,
    name: String,
    table: Option<LakeTable>,
}

impl RunQuarantine {
    /// Opens the asset's quarantine table if it has one; creates nothing.
    pub async fn open(path: &Path, asset: &str) -> Result<RunQuarantine> {
        let name = format!("{asset}_quarantine");
        let table = weir_store::open_quarantine_if_any(path, &name).await?;
        Ok(RunQuarantine {
            path: path.to_path_buf(),
            name,
            table,
        })
    }

    /// The table, created now if the asset never had one.
    pub async fn created(&mut self) -> Result<&LakeTable> {
        let table = match self.table.take() {
            Some(table) => table,
            None => weir_store::open_quarantine(&self.path, &self.name).await?,
        };
        Ok(self.table.insert(table))
    }

    /// A writer of staged quarantine files, creating the table if needed.
    pub async fn stage(&mut self) -> Result<StagedWriter> {
        Ok(self.created().await?.stage()?)
    }

    /// The table's live files; none without a table.
    pub async fn live_files(&self) -> Result<Vec<LiveFile>> {
        match &self.table {
            Some(table) => Ok(table.live_files().await?),
            None => Ok(Vec::new()),
        }
    }

    pub async fn has_no_files(&self) -> Result<bool> {
        match &self.table {
            Some(table) => Ok(table.has_no_files().await?),
            None => Ok(true),
        }
    }

    pub fn version(&self) -> Option<u64> {
        self.table.as_ref().and_then(LakeTable::version)
    }

    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>> {
        match &self.table {
            Some(table) => Ok(table.txn_version(app_id).await?),
            None => Ok(None),
        }
    }
}
