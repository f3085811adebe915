//! The rows of a partitioned model's output, by partition: which partition each row is in,
//! the filter that keeps one partition, and the order that keeps each partition's rows
//! together so that each goes to data files of its own (tagged `partition:<key>`).

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, SortExpr, cast};
use datafusion::prelude::{DataFrame, ident, lit};
use weir_model::{Grain, PartitionKey, Partitioning};

/// The origin tag of a partition's files.
pub(crate) fn origin(key: Option<PartitionKey>) -> String {
    match key {
        Some(key) => format!("partition:{key}"),
        // A NULL in the partition column: in no partition, replaced only by a full refresh.
        None => "partition:none".into(),
    }
}

/// The type of the partition column in the query's output, if it is one a partition can be
/// read from.
fn column_type(df: &DataFrame, partitioning: &Partitioning) -> Result<DataType, String> {
    let field = df
        .schema()
        .fields()
        .iter()
        .find(|f| f.name() == &partitioning.column)
        .ok_or_else(|| {
            format!(
                "the query does not produce the partition column `{}`",
                partitioning.column
            )
        })?;
    let data_type = field.data_type().clone();
    match (&data_type, partitioning.grain) {
        (DataType::Timestamp(_, _), _) | (DataType::Date32 | DataType::Date64, Grain::Day) => {
            Ok(data_type)
        }
        _ => Err(format!(
            "the partition column `{}` is {data_type} in the query's output; {} partitions need {} (CAST it in the SELECT)",
            partitioning.column,
            partitioning.grain.as_str(),
            match partitioning.grain {
                Grain::Day => "a DATE or TIMESTAMP",
                Grain::Hour => "a TIMESTAMP",
            }
        )),
    }
}

/// The query's output restricted to partition `key` (`start <= column < end`) and to the rows
/// in no partition (a NULL in the column): those belong to no partition a run could name, so
/// every partition run recomputes them, and a backfill leaves them current too.
pub(crate) fn only(
    df: DataFrame,
    partitioning: &Partitioning,
    key: PartitionKey,
) -> Result<DataFrame, String> {
    let data_type = column_type(&df, partitioning)?;
    let bound = |micros: i64| -> Expr {
        match &data_type {
            DataType::Timestamp(_, tz) => cast(
                lit(ScalarValue::TimestampMicrosecond(Some(micros), tz.clone())),
                data_type.clone(),
            ),
            _ => {
                let days = micros.div_euclid(Grain::Day.micros());
                cast(
                    lit(ScalarValue::Date32(i32::try_from(days).ok())),
                    data_type.clone(),
                )
            }
        }
    };
    let column = ident(partitioning.column.as_str());
    let predicate = column
        .clone()
        .gt_eq(bound(key.start_micros()))
        .and(column.clone().lt(bound(key.end_micros())))
        .or(column.is_null());
    df.filter(predicate).map_err(|e| e.to_string())
}

/// The query's output ordered by the partition column (NULLs first), so that each
/// partition's rows arrive together.
pub(crate) fn grouped(df: DataFrame, partitioning: &Partitioning) -> Result<DataFrame, String> {
    column_type(&df, partitioning)?;
    let order: Vec<SortExpr> = vec![ident(partitioning.column.as_str()).sort(true, true)];
    df.sort(order).map_err(|e| e.to_string())
}

/// The partition of each row of `batch`.
pub(crate) fn keys(
    batch: &RecordBatch,
    partitioning: &Partitioning,
) -> Result<Vec<Option<PartitionKey>>, String> {
    let column = batch
        .column_by_name(&partitioning.column)
        .ok_or_else(|| format!("no partition column `{}`", partitioning.column))?;
    let grain = partitioning.grain;
    let day = Grain::Day.micros();
    let micros: Vec<Option<i64>> = match column.data_type() {
        DataType::Date32 => column
            .as_primitive::<Date32Type>()
            .iter()
            .map(|d| d.map(|d| i64::from(d) * day))
            .collect(),
        DataType::Date64 => column
            .as_primitive::<Date64Type>()
            .iter()
            .map(|ms| ms.map(|ms| ms.div_euclid(86_400_000) * day))
            .collect(),
        DataType::Timestamp(_, tz) => {
            // A change of unit keeps the instant (the zone only labels it).
            let as_micros = arrow::compute::cast(
                column,
                &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            )
            .map_err(|e| e.to_string())?;
            as_micros
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .collect()
        }
        other => {
            return Err(format!(
                "the partition column `{}` is {other}",
                partitioning.column
            ));
        }
    };
    Ok(micros
        .into_iter()
        .map(|m| m.and_then(|m| PartitionKey::of_micros(grain, m)))
        .collect())
}

/// `batch` cut into runs of rows of one partition: `(partition, offset, length)`.
pub(crate) fn runs(keys: &[Option<PartitionKey>]) -> Vec<(Option<PartitionKey>, usize, usize)> {
    let mut runs: Vec<(Option<PartitionKey>, usize, usize)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match runs.last_mut() {
            Some((last, _, len)) if last == key => *len += 1,
            _ => runs.push((*key, i, 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_where_the_partition_changes() {
        let day = |d: &str| Some(PartitionKey::parse(Grain::Day, d).expect("day"));
        let keys = [
            None,
            day("2026-11-01"),
            day("2026-11-01"),
            day("2026-11-02"),
            day("2026-11-02"),
            day("2026-11-02"),
        ];
        assert_eq!(
            runs(&keys),
            vec![
                (None, 0, 1),
                (day("2026-11-01"), 1, 2),
                (day("2026-11-02"), 3, 3)
            ]
        );
        assert!(runs(&[]).is_empty());
    }
}
