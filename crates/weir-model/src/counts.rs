//! Counts a table's files already know, so an audit need not scan the rows again.

use std::collections::BTreeMap;

/// The rows of a set of Delta data files and the nulls of each column, summed from the files'
/// statistics (`numRecords`, `nullCount`). Produced by the store, read by the audit: an
/// additive measure of the table after an append is these counts plus the staged rows'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub rows: u64,
    /// Only columns whose null count every file's statistics hold.
    pub nulls: BTreeMap<String, u64>,
}

impl TableCounts {
    /// The nulls of `column`, if known: from the statistics, or none at all with no rows.
    pub fn nulls_of(&self, column: &str) -> Option<u64> {
        self.nulls
            .get(column)
            .copied()
            .or((self.rows == 0).then_some(0))
    }
}
