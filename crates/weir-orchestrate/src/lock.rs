use std::fs::{File, TryLockError};
use std::path::Path;

use crate::error::{OrchestrateError, Result};

/// One writer per project: runs, recovery and full refreshes assume nobody else commits.
pub struct ProjectLock {
    _file: File,
}

impl ProjectLock {
    pub fn acquire(state_dir: &Path) -> Result<ProjectLock> {
        std::fs::create_dir_all(state_dir).map_err(|e| OrchestrateError::Io {
            path: state_dir.to_path_buf(),
            source: e,
        })?;
        let path = state_dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| OrchestrateError::Io {
                path: path.clone(),
                source: e,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(ProjectLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(OrchestrateError::Locked(path)),
            Err(TryLockError::Error(e)) => Err(OrchestrateError::Io { path, source: e }),
        }
    }
}
