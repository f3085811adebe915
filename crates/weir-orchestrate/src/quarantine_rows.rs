use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use weir_quality::QuarantinedRow;

use crate::error::Result;

/// The quarantine table's rows for one batch of set-aside records, staged as `published`: a
/// run that then fails a blocking check restages them as `failed`.
pub(crate) fn quarantine_batch(
    run_id: &str,
    source: &str,
    rows: &[QuarantinedRow],
    now_micros: i64,
) -> Result<RecordBatch> {
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.rule_id.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.reason.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(StringArray::from(vec![source; n])),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.position as i64))
                .collect::<Int64Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.raw.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![now_micros; n]).with_timezone("UTC")),
        Arc::new(StringArray::from(vec![
            Some(
                weir_store::RUN_STATUS_PUBLISHED
            );
            n
        ])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(
            rows.iter()
                .map(|r| r.raw_bytes.as_deref())
                .collect::<BinaryArray>(),
        ),
    ];
    Ok(RecordBatch::try_new(
        weir_store::quarantine_schema(),
        columns,
    )?)
}
