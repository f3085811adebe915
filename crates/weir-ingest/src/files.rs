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
    /// Where reading starts: 0, or for a text file that grew by appending since it was
    /// ingested, the end of what was read before (a line boundary), so only new lines are read.
    pub start: u64,
    /// The 1-based line number of the line at `start`, so positions stay those of the file.
    pub start_line: u64,
    /// What the file system said about the file when it was hashed, if the file had settled
    /// (see [`FileStat::settled`]): the key under which its hash may be cached.
    pub stat: Option<FileStat>,
}

/// What the file system says about a file: enough to know it has not been written since, the
/// way git's index knows (the change time cannot be set back by any ordinary tool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub device: u64,
}

/// A file changed this recently may change again within the same clock tick without its times
/// showing it, so its hash is not cached ("racily clean", in git's terms). Tests shorten it
/// with `WEIR_SETTLE_MS`.
const SETTLE_NS: i64 = 2_000_000_000;

fn settle_ns() -> i64 {
    std::env::var("WEIR_SETTLE_MS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(SETTLE_NS, |ms| ms.saturating_mul(1_000_000))
}

impl FileStat {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Option<FileStat> {
        use std::os::unix::fs::MetadataExt;
        Some(FileStat {
            size: meta.len(),
            mtime_ns: meta.mtime().checked_mul(1_000_000_000)? + meta.mtime_nsec(),
            ctime_ns: meta.ctime().checked_mul(1_000_000_000)? + meta.ctime_nsec(),
            inode: meta.ino(),
            device: meta.dev(),
        })
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Option<FileStat> {
        None
    }

    /// Whether the file was last written or had its metadata changed long enough ago.
    fn settled(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        self.mtime_ns.max(self.ctime_ns) < now - settle_ns()
    }
}

impl FileUnit {
    /// Reads only what follows the first `prefix` bytes (which end with a newline), if the
    /// file still begins with exactly the bytes that hashed to `prefix_hash`: a file that grew
    /// by appending, like a log. `Ok(false)` when it did not (it was rewritten).
    pub fn resume_after(&mut self, prefix: u64, prefix_hash: &str) -> Result<bool> {
        if prefix == 0 || prefix >= self.size {
            return Ok(false);
        }
        let mut file =
            std::fs::File::open(&self.path).map_err(|e| IngestError::io(&self.path, e))?;
        let mut hasher = Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = prefix;
        let mut lines = 0u64;
        let mut last = 0u8;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = file
                .read(&mut buf[..want])
                .map_err(|e| IngestError::io(&self.path, e))?;
            if n == 0 {
                return Ok(false);
            }
            hasher.update(&buf[..n]);
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            last = buf[n - 1];
            left -= n as u64;
        }
        if last != b'\n' || format!("{:032x}", hasher.digest128()) != prefix_hash {
            return Ok(false);
        }
        self.start = prefix;
        self.start_line = lines + 1;
        Ok(true)
    }
}

/// Expands `pattern` (relative to `root`) into files, sorted by path so runs are reproducible.
/// The first file that cannot be read stops it; see [`discover_files_lenient`].
pub fn discover_files(root: &Path, pattern: &str) -> Result<Vec<FileUnit>> {
    let found = discover_files_lenient(root, pattern)?;
    match found.unreadable.into_iter().next() {
        Some(bad) => Err(bad.error),
        None => Ok(found.units),
    }
}

/// What a glob expanded into: the files that could be hashed, and those that could not.
#[derive(Debug)]
pub struct Discovered {
    pub units: Vec<FileUnit>,
    /// Files the pattern matched but that could not be read (permission denied, vanished),
    /// sorted by key; they have no content hash, so they can be neither ingested nor ledgered.
    pub unreadable: Vec<UnreadableFile>,
}

#[derive(Debug)]
pub struct UnreadableFile {
    /// The path relative to the project root, as a ledger key would be.
    pub key: String,
    pub error: IngestError,
}

/// Like [`discover_files`], but a file that cannot be read does not stop the others: it is
/// listed in [`Discovered::unreadable`]. Only a bad pattern is an error.
pub fn discover_files_lenient(root: &Path, pattern: &str) -> Result<Discovered> {
    discover_files_cached(root, pattern, &|_, _| None)
}

fn expand(root: &Path, pattern: &str) -> Result<glob::Paths> {
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_string()
    } else {
        format!("{}/{}", root.display(), pattern)
    };
    glob::glob(&full).map_err(|e| IngestError::Pattern {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })
}

/// The files `pattern` matches, by ledger key, with their [`FileStat`], without reading any:
/// what a watcher polls to see files arrive. Entries that cannot be stat'ed are left out (the
/// run that reads them reports them).
pub fn stat_files(root: &Path, pattern: &str) -> Result<Vec<(String, FileStat)>> {
    let mut found = Vec::new();
    for path in expand(root, pattern)?.flatten() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if let Some(stat) = FileStat::of(&meta) {
            found.push((
                weir_model::slash_path(path.strip_prefix(root).unwrap_or(&path)),
                stat,
            ));
        }
    }
    Ok(found)
}

/// Like [`discover_files_lenient`], but a file for which `cached` knows the hash under its
/// current [`FileStat`] is not read: an unchanged file costs a `stat`, not a read.
pub fn discover_files_cached(
    root: &Path,
    pattern: &str,
    cached: &dyn Fn(&Path, &FileStat) -> Option<String>,
) -> Result<Discovered> {
    let paths = expand(root, pattern)?;
    let mut units = Vec::new();
    let mut unreadable = Vec::new();
    for entry in paths {
        let (path, found) = match entry {
            Ok(path) => {
                let found = std::fs::metadata(&path).map_err(|e| IngestError::open(&path, e));
                (path, found)
            }
            Err(e) => {
                let path = e.path().to_path_buf();
                let error = IngestError::open(&path, e.into());
                (path, Err(error))
            }
        };
        let key = weir_model::slash_path(path.strip_prefix(root).unwrap_or(&path));
        let meta = match found {
            Ok(meta) => meta,
            Err(error) => {
                unreadable.push(UnreadableFile { key, error });
                continue;
            }
        };
        if !meta.is_file() {
            continue;
        }
        let stat = FileStat::of(&meta);
        let hashed = match stat.as_ref().and_then(|s| cached(&path, s)) {
            Some(content_hash) => Ok((content_hash, stat)),
            None => hash_file(&path).map(|content_hash| {
                // Cached only if nothing touched the file while it was read, and it had
                // settled before.
                let after = std::fs::metadata(&path).ok().and_then(|m| FileStat::of(&m));
                let stat = stat.filter(|s| after.as_ref() == Some(s) && s.settled());
                (content_hash, stat)
            }),
        };
        match hashed {
            Ok((content_hash, stat)) => units.push(FileUnit {
                content_hash,
                size: meta.len(),
                key,
                path,
                start: 0,
                start_line: 1,
                stat,
            }),
            Err(error) => unreadable.push(UnreadableFile { key, error }),
        }
    }
    units.sort_by(|a, b| a.key.cmp(&b.key));
    unreadable.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Discovered { units, unreadable })
}

/// Streams the file through xxh3-128 in 1 MiB chunks: memory stays flat for any size.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| IngestError::open(path, e))?;
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A file whose stat is what the cache holds is not read; a file written since (its change
    /// time moved, even at the same size) is read and hashed again.
    #[test]
    fn a_cached_hash_is_used_only_while_the_stat_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), "id\n1\n").expect("write");
        let first = discover_files_lenient(dir.path(), "*.csv").expect("discover");
        let unit = &first.units[0];
        let stat = FileStat::of(&std::fs::metadata(&unit.path).expect("meta")).expect("stat");
        let cache: HashMap<PathBuf, (FileStat, String)> =
            [(unit.path.clone(), (stat, "cached".to_string()))].into();
        let lookup = |path: &Path, stat: &FileStat| {
            cache
                .get(path)
                .filter(|(known, _)| known == stat)
                .map(|(_, hash)| hash.clone())
        };
        let again = discover_files_cached(dir.path(), "*.csv", &lookup).expect("discover");
        assert_eq!(again.units[0].content_hash, "cached");
        // Same size, other content: the stat changed, so the real hash comes back.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("a.csv"), "id\n2\n").expect("write");
        let changed = discover_files_cached(dir.path(), "*.csv", &lookup).expect("discover");
        assert_ne!(changed.units[0].content_hash, "cached");
        assert_ne!(changed.units[0].content_hash, unit.content_hash);
        // Just written: not settled, so not offered for caching.
        assert_eq!(changed.units[0].stat, None);
    }
}
