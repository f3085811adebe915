//! Which files a source run reads: new files in full, files that grew by appending from where
//! the last read ended, and a file rewritten in place either never again (refused) or in full,
//! replacing the rows it contributed before (`on_change = "replace"`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use weir_ingest::FileUnit;
use weir_model::{FileFormat, OnChange};

use crate::error::Result;
use crate::report::RejectedFile;
use crate::state::LedgerEntry;

/// The files to read, and the files refused (with the reason, for the user).
pub(crate) struct Selection {
    pub pending: Vec<FileUnit>,
    pub refused: Vec<RejectedFile>,
    /// Pending files rewritten in place whose new content replaces their earlier rows.
    pub replacing: BTreeSet<String>,
}

/// Compares what the glob finds with the ledger. A file whose path and content hash are in the
/// ledger was read. A text file (CSV, NDJSON) whose first bytes are exactly the content last
/// read, ending on a line boundary, grew by appending: only the new lines are read. Any other
/// change to a file already read is refused, naming the file (reading it again in full would
/// double its rows), unless the source's policy is to replace: then it is read in full and
/// listed in [`Selection::replacing`].
pub(crate) fn select(
    units: Vec<FileUnit>,
    ledger: &[LedgerEntry],
    format: FileFormat,
    on_change: OnChange,
    full_refresh: bool,
) -> Result<Selection> {
    if full_refresh {
        return Ok(Selection {
            pending: units,
            refused: Vec::new(),
            replacing: BTreeSet::new(),
        });
    }
    let seen: HashSet<(&str, &str)> = ledger
        .iter()
        .map(|e| (e.path.as_str(), e.content_hash.as_str()))
        .collect();
    let mut latest: BTreeMap<&str, &LedgerEntry> = BTreeMap::new();
    for entry in ledger {
        let slot = latest.entry(entry.path.as_str()).or_insert(entry);
        if entry.size_bytes > slot.size_bytes {
            *slot = entry;
        }
    }
    let mut selection = Selection {
        pending: Vec::new(),
        refused: Vec::new(),
        replacing: BTreeSet::new(),
    };
    for mut unit in units {
        if seen.contains(&(unit.key.as_str(), unit.content_hash.as_str())) {
            continue;
        }
        let Some(previous) = latest.get(unit.key.as_str()) else {
            selection.pending.push(unit);
            continue;
        };
        let text = matches!(format, FileFormat::Csv | FileFormat::Ndjson);
        if text && unit.resume_after(previous.size_bytes, &previous.content_hash)? {
            selection.pending.push(unit);
            continue;
        }
        if on_change == OnChange::Replace {
            selection.replacing.insert(unit.key.clone());
            selection.pending.push(unit);
            continue;
        }
        selection.refused.push(RejectedFile {
            reason: format!(
                "{} changed since it was ingested ({} bytes then, {} now, and not by appending lines): it is not read again, since its rows would be stored twice; restore it, give the new content a new file name, set `on_change = \"replace\"` in the source to let a rewritten file replace its rows, or rebuild the table with `weir run --full-refresh`",
                unit.key, previous.size_bytes, unit.size
            ),
            path: unit.key,
        });
    }
    Ok(selection)
}
