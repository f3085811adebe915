//! A profile of a sample of rows, column by column: what a first contract is written from.
//!
//! It counts nulls and distinct values, takes numeric ranges, lists the values of
//! low-cardinality text columns and recognises common text formats (the `logicalTypeOptions`
//! formats weir enforces). Everything here describes the sample only: the contract writer
//! turns it into suggestions, not into rules that would quarantine the next file's new value.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};

use crate::rules::format_regex;

/// At most this many distinct values make a text column a `validValues` candidate.
pub const LOW_CARDINALITY: usize = 10;
/// Distinct values are counted up to this many.
const DISTINCT_CAP: usize = 100_000;
/// The formats tried on text columns, in order.
const FORMATS: [&str; 4] = ["email", "uuid", "uri", "ipv4"];

/// What a sample says about one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnProfile {
    pub name: String,
    pub data_type: DataType,
    pub rows: usize,
    pub nulls: usize,
    /// Distinct non-null values, counted up to a cap (`distinct_capped` then).
    pub distinct: usize,
    pub distinct_capped: bool,
    /// The range of a numeric column.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Every distinct value of a text column with at most [`LOW_CARDINALITY`] of them.
    pub values: Option<Vec<String>>,
    /// A format every non-null value of a text column has.
    pub format: Option<&'static str>,
    /// For a text column: how many values read as each of `integer`, `number`, `date`
    /// (`YYYY-MM-DD`) and `timestamp` (RFC 3339), the types text is parsed into.
    pub parses_as: Vec<(&'static str, usize)>,
}

impl ColumnProfile {
    /// The narrowest type that at least `share` of a text column's non-null values read as.
    pub fn text_reads_as(&self, share: f64) -> Option<(&'static str, usize)> {
        let non_null = self.rows - self.nulls;
        if non_null == 0 {
            return None;
        }
        self.parses_as
            .iter()
            .find(|(_, n)| *n as f64 >= share * non_null as f64)
            .map(|(t, n)| (*t, non_null - n))
    }

    /// Non-null and distinct in every sampled row: a primary key candidate.
    pub fn is_unique(&self) -> bool {
        self.rows > 0 && self.nulls == 0 && !self.distinct_capped && self.distinct == self.rows
    }
}

/// Profiles every column of `batches` (all of one schema).
pub fn profile(schema: &arrow::datatypes::Schema, batches: &[RecordBatch]) -> Vec<ColumnProfile> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let columns: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            profile_column(field.name(), field.data_type(), &columns)
        })
        .collect()
}

fn profile_column(name: &str, data_type: &DataType, columns: &[&dyn Array]) -> ColumnProfile {
    let rows = columns.iter().map(|c| c.len()).sum();
    let nulls = columns.iter().map(|c| c.null_count()).sum();
    let mut distinct: BTreeSet<String> = BTreeSet::new();
    let mut capped = false;
    let text = matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    let mut formats: Vec<(&'static str, regex::Regex)> = if text {
        FORMATS.iter().filter_map(|f| format_regex(f)).collect()
    } else {
        Vec::new()
    };
    let (mut min, mut max) = (None::<f64>, None::<f64>);
    let mut parses = [
        ("integer", 0usize),
        ("number", 0),
        ("date", 0),
        ("timestamp", 0),
    ];
    let numeric = data_type.is_numeric();
    for column in columns {
        if let Ok(strings) = arrow::compute::cast(*column, &DataType::Utf8) {
            for value in strings.as_string::<i32>().iter().flatten() {
                if text {
                    formats.retain(|(_, re)| re.is_match(value));
                    let value = value.trim();
                    let reads = [
                        value.parse::<i64>().is_ok(),
                        value.parse::<f64>().is_ok_and(f64::is_finite),
                        chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
                        chrono::DateTime::parse_from_rfc3339(value).is_ok(),
                    ];
                    for (count, read) in parses.iter_mut().zip(reads) {
                        count.1 += usize::from(read);
                    }
                }
                if distinct.len() <= DISTINCT_CAP {
                    distinct.insert(value.to_string());
                } else {
                    capped = true;
                }
            }
        }
        if numeric && let Ok(floats) = arrow::compute::cast(*column, &DataType::Float64) {
            for value in floats.as_primitive::<Float64Type>().iter().flatten() {
                min = Some(min.map_or(value, |m| m.min(value)));
                max = Some(max.map_or(value, |m| m.max(value)));
            }
        }
    }
    let non_null = rows - nulls;
    ColumnProfile {
        name: name.to_string(),
        data_type: data_type.clone(),
        rows,
        nulls,
        distinct: distinct.len(),
        distinct_capped: capped,
        min,
        max,
        values: (text && !distinct.is_empty() && distinct.len() <= LOW_CARDINALITY)
            .then(|| distinct.into_iter().collect()),
        format: formats
            .first()
            .filter(|_| text && non_null > 0)
            .map(|(f, _)| *f),
        parses_as: if text { parses.to_vec() } else { Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn profiles_nulls_ranges_values_and_formats() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("status", DataType::Utf8, true),
            Field::new("email", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![3, 1, 2])),
                Arc::new(StringArray::from(vec![Some("paid"), None, Some("paid")])),
                Arc::new(StringArray::from(vec!["a@x.io", "b@y.org", "c@z.com"])),
            ],
        )
        .expect("batch");
        let p = profile(&schema, &[batch]);
        assert!(p[0].is_unique());
        assert_eq!((p[0].min, p[0].max), (Some(1.0), Some(3.0)));
        assert_eq!(p[1].nulls, 1);
        assert_eq!(p[1].values, Some(vec!["paid".to_string()]));
        assert!(!p[1].is_unique());
        assert_eq!(p[2].format, Some("email"));
        assert_eq!(p[1].format, None);
        assert_eq!(p[1].text_reads_as(0.9), None);
        let mixed = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("at", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![
                "2026-01-01T10:00:00Z",
                "2026-01-02T10:00:00+01:00",
                "yesterday",
            ]))],
        )
        .expect("batch");
        let at = &profile(&mixed.schema(), std::slice::from_ref(&mixed))[0];
        assert_eq!(at.text_reads_as(0.6), Some(("timestamp", 1)));
        assert_eq!(at.text_reads_as(0.9), None);
    }
}
