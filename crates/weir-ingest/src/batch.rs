use arrow::array::{RecordBatch, StringArray};

/// A slice of one unit, as read, before any contract check.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// One column per contract property, in contract order. Text formats give Utf8 columns
    /// holding the text exactly as found; Parquet gives its own types.
    pub batch: RecordBatch,
    /// Where each row came from in its unit: the 1-based line for text files, the 1-based row
    /// number for Parquet.
    pub positions: Vec<u64>,
    /// The original text of each row, where the format has one (NDJSON lines).
    pub raw_lines: Option<StringArray>,
    /// Records that could not be turned into a row at all.
    pub rejects: Vec<RejectedRecord>,
    /// Input bytes consumed by this batch.
    pub bytes: u64,
}

impl SourceBatch {
    /// Every record this batch accounts for: rows plus rejects.
    pub fn records(&self) -> u64 {
        (self.batch.num_rows() + self.rejects.len()) as u64
    }
}

/// A record that failed before it had columns: broken quoting, a wrong number of fields,
/// invalid UTF-8, invalid JSON, an oversized record.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRecord {
    pub position: u64,
    /// The record's bytes, lossily decoded, cut at [`RAW_RECORD_LIMIT`] bytes.
    pub raw: String,
    /// The record's exact bytes (cut at [`RAW_RECORD_LIMIT`]) when they are not valid UTF-8,
    /// so `raw`'s replacement characters lose nothing.
    pub raw_bytes: Option<Vec<u8>>,
    /// A bounded rule id (`decode.field_count`, `decode.utf8`, `decode.json`, ...).
    pub rule: &'static str,
    pub reason: String,
}

/// The most bytes of one raw record kept in the quarantine; longer records are cut and say so.
pub const RAW_RECORD_LIMIT: usize = 64 * 1024;

pub(crate) fn raw_text(bytes: &[u8]) -> String {
    if bytes.len() <= RAW_RECORD_LIMIT {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut s = String::from_utf8_lossy(&bytes[..RAW_RECORD_LIMIT]).into_owned();
    s.push_str(&format!("… [cut: record is {} bytes]", bytes.len()));
    s
}

/// The bytes of a record that is not valid UTF-8, cut at [`RAW_RECORD_LIMIT`]; `None` for text.
pub(crate) fn raw_bytes(bytes: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(bytes)
        .is_err()
        .then(|| bytes[..bytes.len().min(RAW_RECORD_LIMIT)].to_vec())
}
