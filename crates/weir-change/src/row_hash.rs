//! `weir_row_hash(c1, c2, ...)`: one 64-bit hash of a row's compared columns, so a diff can
//! join two tables on the key and a hash (16 bytes a row) and compare in full only the rows
//! whose hashes differ. Two rows with equal values always hash alike; two that differ hash
//! alike with a chance of about 2⁻⁶⁴, the price of not holding whole rows in the join.
//!
//! Each column is hashed on its own by DataFusion's `create_hashes` (the hash its joins use)
//! and folded in by position through a strong mixer, with a marker of its own for NULL: so
//! NULLs in different columns, or values swapped between columns, never hash alike by
//! construction (`create_hashes` over several columns leaves a NULL's row hash unchanged and
//! combines strings linearly, which would).

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt64Array};
use arrow::datatypes::DataType;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The name the function is registered under.
pub const ROW_HASH: &str = "weir_row_hash";

/// Fixed, so both sides of a diff hash alike in any process.
const STATE: RandomState = RandomState::with_seed(0x7765_6972_5f64_6966);

/// Whether a column of this type can be hashed: the types whose equality is their values'.
pub fn hashable(t: &DataType) -> bool {
    t.is_primitive()
        || matches!(
            t,
            DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
}

/// The row hash as a function DataFusion can call.
pub fn row_hash_udf() -> ScalarUDF {
    ScalarUDF::from(RowHash {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RowHash {
    signature: Signature,
}

/// MurmurHash3's 64-bit finalizer: every input bit reaches every output bit.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Folds each column's hashes into `rows`, by position.
fn hash_rows(columns: &[ArrayRef], rows: &mut [u64]) -> Result<()> {
    let mut column_hashes = vec![0u64; rows.len()];
    for (position, column) in columns.iter().enumerate() {
        column_hashes.fill(0);
        create_hashes([column], &STATE, &mut column_hashes)?;
        let null = mix(0x6e75_6c6c ^ ((position as u64) << 32));
        let nulls = column.logical_nulls();
        for (row, (acc, &h)) in rows.iter_mut().zip(&column_hashes).enumerate() {
            let h = match &nulls {
                Some(n) if n.is_null(row) => null,
                _ => h,
            };
            *acc = mix(acc.rotate_left(29) ^ h ^ position as u64);
        }
    }
    Ok(())
}

impl ScalarUDFImpl for RowHash {
    fn name(&self) -> &str {
        ROW_HASH
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = ColumnarValue::values_to_arrays(&args.args)?;
        let mut rows = vec![0x5745_4952u64; args.number_rows];
        hash_rows(&columns, &mut rows)?;
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::from(rows))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};

    fn hashes(columns: Vec<ArrayRef>) -> Vec<u64> {
        let mut rows = vec![0u64; columns[0].len()];
        hash_rows(&columns, &mut rows).expect("hashable columns");
        rows
    }

    #[test]
    fn equal_rows_hash_alike_and_differing_rows_do_not() {
        let a = hashes(vec![
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
        ]);
        let b = hashes(vec![
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            Arc::new(StringArray::from(vec![Some("x"), Some(""), Some("z")])),
        ]);
        assert_eq!(a[0], b[0]);
        assert_ne!(a[1], b[1], "NULL and the empty string differ");
        assert_eq!(a[2], b[2]);
    }

    #[test]
    fn nulls_in_different_columns_and_swapped_values_differ() {
        let two = |x: Vec<Option<i64>>, y: Vec<Option<i64>>| {
            hashes(vec![
                Arc::new(Int64Array::from(x)),
                Arc::new(Int64Array::from(y)),
            ])
        };
        let h = two(vec![None, Some(7), Some(3)], vec![Some(7), None, Some(4)]);
        assert_ne!(h[0], h[1], "(NULL, 7) and (7, NULL)");
        let swapped = two(vec![Some(4)], vec![Some(3)]);
        assert_ne!(h[2], swapped[0], "(3, 4) and (4, 3)");
        let floats = hashes(vec![Arc::new(Float64Array::from(vec![0.1, 0.1 + 1e-15]))]);
        assert_ne!(floats[0], floats[1]);
    }
}
