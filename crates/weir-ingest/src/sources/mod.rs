//! One reader per file format. Each turns one unit into [`SourceBatch`]es whose columns are the
//! contract's properties, in contract order, so the validator sees the same shape whatever the
//! format.

mod csv;
mod ndjson;
mod parquet;
pub(crate) mod sniff;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_model::{FileFormat, SourceDef};

use crate::batch::{RejectedRecord, SourceBatch};
use crate::error::{IngestError, Result};
use crate::files::FileUnit;

/// The largest record weir reads into a row; a longer one is quarantined, not loaded.
pub use weir_model::MAX_RECORD_BYTES;

/// Reads one unit batch by batch; `warnings` holds what the reader noticed on opening it
/// (an empty file, a missing or unexpected column).
pub struct UnitReader {
    pub warnings: Vec<String>,
    batches: Box<dyn Iterator<Item = Result<SourceBatch>> + Send>,
}

impl Iterator for UnitReader {
    type Item = Result<SourceBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.batches.next()
    }
}

/// Opens `unit` with the reader for the source's format. `columns` are the contract's property
/// names, which every batch will have, in this order; `required` are those of them the contract
/// requires (`required` or `primaryKey`): a file whose header or schema lacks one of them is an
/// [`IngestError::MissingColumn`] (a missing optional column is a warning and reads as null).
pub fn open_unit(
    unit: &FileUnit,
    def: &SourceDef,
    columns: &[String],
    required: &[String],
) -> Result<UnitReader> {
    match def.format {
        FileFormat::Csv => csv::open(unit, &def.options, columns, required),
        FileFormat::Ndjson => ndjson::open(unit, &def.options, columns),
        FileFormat::Parquet => parquet::open(unit, &def.options, columns, required),
    }
}

/// The fewest records a first batch must hold for [`first_batch_unreadable`] to judge it.
pub(crate) const UNREADABLE_MIN_RECORDS: usize = 2;

/// A file whose first batch (at least [`UNREADABLE_MIN_RECORDS`] records) is rejected whole
/// by one decode rule is read with the wrong settings, not merely dirty: it fails instead of
/// quarantining every line. Batches stream, so the decision is taken on the first batch
/// alone, before anything of the file is staged; a later batch rejected whole is not
/// an error (the file has shown it can be read). `hint` explains the first reject.
pub(crate) fn first_batch_unreadable(
    path: &std::path::Path,
    rows: usize,
    rejects: &[RejectedRecord],
    hint: impl FnOnce(&RejectedRecord) -> String,
) -> Option<IngestError> {
    let first = rejects.first()?;
    if rows > 0
        || rejects.len() < UNREADABLE_MIN_RECORDS
        || rejects.iter().any(|r| r.rule != first.rule)
    {
        return None;
    }
    Some(IngestError::Unreadable {
        path: path.to_path_buf(),
        count: rejects.len(),
        rule: first.rule,
        hint: hint(first),
    })
}

/// All-text schema for formats that carry no types of their own.
pub(crate) fn text_schema(columns: &[String]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}
