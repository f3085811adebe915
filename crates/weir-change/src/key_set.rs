//! `weir_in_keys(k0, k1, ...)`: whether a row's key is among a set of keys held in memory.
//!
//! The second pass of a diff reads back only the rows whose hashes differed, a few in a
//! hundred. As a semi join against a table of those keys, every column of every row is
//! decoded before the join throws almost all of them away. As a scan filter, the Parquet
//! reader (with `pushdown_filters`) decodes the key columns alone, evaluates this function on
//! them, and decodes the other columns only for the rows it keeps.
//!
//! The keys are a [`KeySet`], whose equality is SQL's: a key with a NULL is in no set.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use weir_store::KeySet;

/// The name the function is registered under.
pub const IN_KEYS: &str = "weir_in_keys";

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
    let mut keys = KeySet::new(types)?;
    for batch in batches {
        keys.insert(batch.columns())?;
    }
    Ok(ScalarUDF::from(InKeys {
        signature: Signature::variadic_any(Volatility::Immutable),
        keys: Arc::new(keys),
    }))
}

struct InKeys {
    signature: Signature,
    keys: Arc<KeySet>,
}

impl std::fmt::Debug for InKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InKeys({} keys)", self.keys.len())
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
        if arg_types.len() != self.keys.types().len() {
            return Err(DataFusionError::Plan(format!(
                "{IN_KEYS} takes the {} key column(s), given {}",
                self.keys.types().len(),
                arg_types.len()
            )));
        }
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?;
        Ok(ColumnarValue::Array(Arc::new(
            self.keys.contains(&columns)?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
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
