//! A set of row keys held in memory, and which rows of a batch have a key in it.
//!
//! Two places look keys up this way: a merge, which finds the published rows a staged row
//! replaces, and a diff's second pass, which reads back only the rows whose hashes differed.
//! Keys compare as arrow's row format encodes them, the equality DataFusion's hash joins use;
//! a key with a NULL in any column is in no set, as no NULL is equal to anything in SQL.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Int64Type};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};
use datafusion::common::hash_utils::RandomState;

use crate::data_file::cast_strictly;

/// The key's column types, and the keys.
pub struct KeySet {
    types: Vec<DataType>,
    keys: Keys,
}

/// A key of one integer column is held as integers, looked up without encoding each row (most
/// keys are one, and the lookup is the whole cost of a filter by keys); any other in arrow's
/// row format.
enum Keys {
    Integers(HashSet<i64, RandomState>),
    Rows {
        converter: RowConverter,
        rows: HashSet<Box<[u8]>, RandomState>,
    },
}

impl KeySet {
    /// An empty set of keys whose columns have these types.
    pub fn new(types: Vec<DataType>) -> Result<KeySet, ArrowError> {
        let keys = if integer_key(&types) {
            Keys::Integers(HashSet::with_hasher(RandomState::default()))
        } else {
            Keys::Rows {
                converter: RowConverter::new(types.iter().cloned().map(SortField::new).collect())?,
                rows: HashSet::with_hasher(RandomState::default()),
            }
        };
        Ok(KeySet { types, keys })
    }

    /// The key's column types.
    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        match &self.keys {
            Keys::Integers(set) => set.len(),
            Keys::Rows { rows, .. } => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the keys of rows whose key columns are `columns` (a key holding a NULL is left out).
    pub fn insert(&mut self, columns: &[ArrayRef]) -> Result<(), ArrowError> {
        let columns = self.as_key_types(columns)?;
        match &mut self.keys {
            Keys::Integers(set) => set.extend(as_integers(&columns[0])?.iter().flatten()),
            Keys::Rows { converter, rows } => {
                let encoded = converter.convert_columns(&columns)?;
                let nulls = logical_nulls(&columns);
                for (i, row) in encoded.iter().enumerate() {
                    if all_valid(&nulls, i) {
                        rows.insert(Box::from(row.as_ref()));
                    }
                }
            }
        }
        Ok(())
    }

    /// For each row whose key columns are `columns`, whether its key is in the set (never null).
    pub fn contains(&self, columns: &[ArrayRef]) -> Result<BooleanArray, ArrowError> {
        let columns = self.as_key_types(columns)?;
        Ok(match &self.keys {
            Keys::Integers(set) => as_integers(&columns[0])?
                .iter()
                .map(|v| Some(v.is_some_and(|v| set.contains(&v))))
                .collect(),
            Keys::Rows { converter, rows } => {
                let encoded = converter.convert_columns(&columns)?;
                let nulls = logical_nulls(&columns);
                encoded
                    .iter()
                    .enumerate()
                    .map(|(i, row)| Some(all_valid(&nulls, i) && rows.contains(row.as_ref())))
                    .collect()
            }
        })
    }

    /// `columns` cast to the key's types; an error when there are not as many or a value does
    /// not convert (a cast that would turn it into NULL would make a key silently match
    /// nothing).
    fn as_key_types(&self, columns: &[ArrayRef]) -> Result<Vec<ArrayRef>, ArrowError> {
        if columns.len() != self.types.len() {
            return Err(ArrowError::InvalidArgumentError(format!(
                "a key of {} column(s) looked up in a set of {}-column keys",
                columns.len(),
                self.types.len()
            )));
        }
        columns
            .iter()
            .zip(&self.types)
            .map(|(c, t)| cast_strictly(c, t))
            .collect()
    }
}

fn logical_nulls(columns: &[ArrayRef]) -> Vec<Option<NullBuffer>> {
    columns.iter().map(|c| c.logical_nulls()).collect()
}

/// Whether every key column of row `i` holds a value.
fn all_valid(nulls: &[Option<NullBuffer>], i: usize) -> bool {
    nulls.iter().flatten().all(|n| n.is_valid(i))
}

/// Whether a key of this one type is looked up as `i64` (every value converts exactly).
fn integer_key(types: &[DataType]) -> bool {
    matches!(
        types,
        [DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32]
    )
}

/// The column as `i64` values (for [`integer_key`] types).
fn as_integers(column: &ArrayRef) -> Result<arrow::array::Int64Array, ArrowError> {
    Ok(arrow::compute::cast(column, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray};

    fn found(set: &KeySet, columns: &[ArrayRef]) -> Vec<bool> {
        set.contains(columns)
            .expect("lookup")
            .iter()
            .map(|v| v.expect("never null"))
            .collect()
    }

    #[test]
    fn a_composite_key_is_in_only_as_a_whole_and_never_with_a_null() {
        let mut set = KeySet::new(vec![DataType::Int64, DataType::Utf8]).expect("set");
        set.insert(&[
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None])) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), Some("c")])) as ArrayRef,
        ])
        .expect("insert");
        assert_eq!(set.len(), 2);
        let rows = [
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(1),
                Some(2),
                None,
                Some(3),
            ])) as ArrayRef,
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b"),
                Some("b"),
                Some("c"),
                None,
            ])) as ArrayRef,
        ];
        assert_eq!(found(&set, &rows), vec![true, false, true, false, false]);
    }

    #[test]
    fn an_integer_key_matches_across_widths_and_null_is_never_in() {
        let mut set = KeySet::new(vec![DataType::Int64]).expect("set");
        set.insert(&[Arc::new(Int64Array::from(vec![Some(-7), Some(40), None])) as ArrayRef])
            .expect("insert");
        // An older data file of a table whose key column was widened holds Int32.
        let rows =
            [Arc::new(Int32Array::from(vec![Some(-7), Some(7), None, Some(40)])) as ArrayRef];
        assert_eq!(found(&set, &rows), vec![true, false, false, true]);
    }

    #[test]
    fn a_value_that_does_not_convert_is_an_error_not_a_miss() {
        let set = KeySet::new(vec![DataType::Int32]).expect("set");
        let rows = [Arc::new(Int64Array::from(vec![i64::MAX])) as ArrayRef];
        assert!(set.contains(&rows).is_err());
        assert!(set.contains(&[]).is_err());
    }
}
