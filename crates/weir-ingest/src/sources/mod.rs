//! One reader per file format. Each turns one unit into [`SourceBatch`]es whose columns are the
//! contract's properties, in contract order, so the validator sees the same shape whatever the
//! format.

mod csv;
mod ndjson;
mod parquet;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_model::{FileFormat, SourceDef};

use crate::batch::SourceBatch;
use crate::error::Result;
use crate::files::FileUnit;

/// The largest record weir reads into a row; a longer one is quarantined, not loaded.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

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
/// names, which every batch will have, in this order.
pub fn open_unit(unit: &FileUnit, def: &SourceDef, columns: &[String]) -> Result<UnitReader> {
    match def.format {
        FileFormat::Csv => csv::open(unit, &def.options, columns),
        FileFormat::Ndjson => ndjson::open(unit, &def.options, columns),
        FileFormat::Parquet => parquet::open(unit, &def.options, columns),
    }
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
