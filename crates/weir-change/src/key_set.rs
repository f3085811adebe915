//! `weir_in_keys(k0, k1, ...)`: whether a row's key is among a set of keys held in memory.
//!
//! The second pass of a diff reads back only the rows whose hashes differed, a few in a
//! hundred. As a semi join against a table of those keys, every column of every row is
//! decoded before the join throws almost all of them away. As a scan filter, the Parquet
//! reader (with `pushdown_filters`) decodes the key columns alone, evaluates this function on
//! them, and decodes the other columns only for the rows it keeps.
//!
//! Keys compare as arrow's row format encodes them, the equality DataFusion's hash joins use;
//! a key with a NULL in any column is in no set, as no NULL is equal to anything in SQL.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, SortField};
use datafusion::common::hash_utils::RandomState;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The name the function is registered under.
pub const IN_KEYS: &str = "weir_in_keys";

/// The key's column types, and the keys.
struct KeySet {
    types: Vec<DataType>,
    keys: Keys,
}

/// A key of one integer column is held as integers, looked up without encoding each row (most
/// keys are one, and the lookup is the filter's whole cost); any other in arrow's row format.
enum Keys {
    Integers(HashSet<i64, RandomState>),
    Rows {
        converter: RowConverter,
        rows: HashSet<Box<[u8]>, RandomState>,
    },
}

impl Keys {
    fn len(&self) -> usize {
        match self {
            Keys::Integers(set) => set.len(),
            Keys::Rows { rows, .. } => rows.len(),
        }
    }
}

/// Whether every key column of row `i` holds a value.
fn all_valid(nulls: &[Option<arrow::buffer::NullBuffer>], i: usize) -> bool {
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
fn as_integers(column: &ArrayRef) -> Result<arrow::array::Int64Array> {
    Ok(cast(column, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

/// The function, over the keys of `batches` (their columns, in order, are the key's).
pub fn in_keys_udf(batches: &[RecordBatch]) -> Result<ScalarUDF> {
    let Some(first) = batches.first() else {
        return Err(DataFusionError::Internal(
            "no keys to build a key set from".into(),
        ));
    };
    let types: Vec<DataType> = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let keys = if integer_key(&types) {
        let mut set = HashSet::with_hasher(RandomState::default());
        for batch in batches {
            set.extend(as_integers(batch.column(0))?.iter().flatten());
        }
        Keys::Integers(set)
    } else {
        let converter = RowConverter::new(types.iter().cloned().map(SortField::new).collect())?;
        let mut rows = HashSet::with_hasher(RandomState::default());
        for batch in batches {
            let encoded = converter.convert_columns(batch.columns())?;
            let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
            for (i, row) in encoded.iter().enumerate() {
                if all_valid(&nulls, i) {
                    rows.insert(Box::from(row.as_ref()));
                }
            }
        }
        Keys::Rows { converter, rows }
    };
    Ok(ScalarUDF::from(InKeys {
        signature: Signature::variadic_any(Volatility::Immutable),
        keys: Arc::new(KeySet { types, keys }),
    }))
}

struct InKeys {
    signature: Signature,
    keys: Arc<KeySet>,
}

impl std::fmt::Debug for InKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InKeys({} keys)", self.keys.keys.len())
    }
}

// Two instances are the same function only when they hold the same set.
impl PartialEq for InKeys {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.keys, &other.keys)
    }
}

impl Eq for InKeys {}

impl Hash for InKeys {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.keys).hash(state);
    }
}

impl ScalarUDFImpl for InKeys {
    fn name(&self) -> &str {
        IN_KEYS
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() != self.keys.types.len() {
            return Err(DataFusionError::Plan(format!(
                "{IN_KEYS} takes the {} key column(s), given {}",
                self.keys.types.len(),
                arg_types.len()
            )));
        }
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = ColumnarValue::values_to_arrays(&args.args)?;
        let columns: Vec<ArrayRef> = columns
            .iter()
            .zip(&self.keys.types)
            .map(|(c, t)| {
                if c.data_type() == t {
                    Ok(Arc::clone(c))
                } else {
                    cast(c, t)
                }
            })
            .collect::<std::result::Result<_, _>>()?;
        let found: BooleanArray = match &self.keys.keys {
            Keys::Integers(set) => {
                let [column] = columns.as_slice() else {
                    return Err(DataFusionError::Internal(format!(
                        "{IN_KEYS}: an integer key of {} columns",
                        columns.len()
                    )));
                };
                as_integers(column)?
                    .iter()
                    .map(|v| Some(v.is_some_and(|v| set.contains(&v))))
                    .collect()
            }
            Keys::Rows { converter, rows } => {
                let encoded = converter.convert_columns(&columns)?;
                let nulls: Vec<_> = columns.iter().map(|c| c.logical_nulls()).collect();
                encoded
                    .iter()
                    .enumerate()
                    .map(|(i, row)| Some(all_valid(&nulls, i) && rows.contains(row.as_ref())))
                    .collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(found)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use datafusion::prelude::SessionContext;

    /// The rows of `rows` (table `t`) that `sql` keeps, with `keys` as the key set.
    async fn kept(keys: RecordBatch, rows: RecordBatch, sql: &str) -> Vec<RecordBatch> {
        let ctx = SessionContext::new();
        ctx.register_udf(in_keys_udf(&[keys]).expect("key set"));
        ctx.register_batch("t", rows).expect("table");
        ctx.sql(sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run")
    }

    #[tokio::test]
    async fn a_row_is_kept_exactly_when_its_whole_key_is_in_the_set() {
        let keys = RecordBatch::try_from_iter([
            (
                "k0",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])) as ArrayRef,
            ),
            (
                "k1",
                Arc::new(StringArray::from(vec![Some("a"), Some("b"), Some("c")])) as ArrayRef,
            ),
        ])
        .expect("keys");
        let rows = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(1),
                    Some(2),
                    None,
                    Some(3),
                ])) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("b"),
                    Some("c"),
                    None,
                ])) as ArrayRef,
            ),
        ])
        .expect("rows");
        let kept = kept(
            keys,
            rows,
            &format!("SELECT id, name FROM t WHERE {IN_KEYS}(id, name) ORDER BY id"),
        )
        .await;
        let text = arrow::util::pretty::pretty_format_batches(&kept)
            .expect("format")
            .to_string();
        // (1, b) is a key in neither order; (NULL, c) holds a NULL, in the set and in the row.
        assert_eq!(
            text.lines().filter(|l| l.starts_with("| ")).count(),
            3,
            "{text}"
        );
        assert!(
            text.contains("| 1  | a    |") && text.contains("| 2  | b    |"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_integer_key_is_looked_up_as_an_integer_and_null_is_never_in() {
        let keys = RecordBatch::try_from_iter([(
            "k0",
            Arc::new(arrow::array::Int32Array::from(vec![
                Some(-7),
                Some(40),
                None,
            ])) as ArrayRef,
        )])
        .expect("keys");
        let rows = RecordBatch::try_from_iter([(
            "id",
            Arc::new(arrow::array::Int32Array::from(vec![
                Some(-7),
                Some(7),
                None,
                Some(40),
                Some(41),
            ])) as ArrayRef,
        )])
        .expect("rows");
        let kept = kept(
            keys,
            rows,
            &format!("SELECT id FROM t WHERE {IN_KEYS}(id) ORDER BY id"),
        )
        .await;
        let ids: Vec<i32> = kept
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<arrow::datatypes::Int32Type>()
                    .iter()
                    .flatten()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(ids, vec![-7, 40]);
    }
}
