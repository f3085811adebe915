use std::io::Read;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

use crate::error::{IngestError, Result};

/// One input file: the unit of exactly-once ingestion for file sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUnit {
    pub path: PathBuf,
    /// The path as written in the ledger: relative to the project root, `/`-separated.
    pub key: String,
    pub size: u64,
    /// xxh3-128 of the content, hex. The ledger keys on path + hash: a file whose content
    /// changes is a new unit, and so is a copy under a new name.
    pub content_hash: String,
}

/// Expands `pattern` (relative to `root`) into files, sorted by path so runs are reproducible.
pub fn discover_files(root: &Path, pattern: &str) -> Result<Vec<FileUnit>> {
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_string()
    } else {
        format!("{}/{}", root.display(), pattern)
    };
    let paths = glob::glob(&full).map_err(|e| IngestError::Pattern {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })?;
    let mut units = Vec::new();
    for entry in paths {
        let path =
            entry.map_err(|e| IngestError::io(e.path(), std::io::Error::other(e.to_string())))?;
        let meta = std::fs::metadata(&path).map_err(|e| IngestError::io(&path, e))?;
        if !meta.is_file() {
            continue;
        }
        let key = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        units.push(FileUnit {
            content_hash: hash_file(&path)?,
            size: meta.len(),
            key,
            path,
        });
    }
    units.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(units)
}

/// Streams the file through xxh3-128 in 1 MiB chunks: memory stays flat for any size.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| IngestError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:032x}", hasher.digest128()))
}
