//! Reading columns into the contract's types. A value that cannot be read, or only with a loss
//! (a fraction for an integer, a decimal that would need rounding, a nanosecond remainder for a
//! microsecond timestamp: see `exact.rs`), becomes null in the typed column; the caller compares
//! null masks to find (and quarantine) those rows.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    StringArray, TimestampMicrosecondArray,
};
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::exact::{cast_exact, exact_decimal};
use crate::rules::ParseOptions;

/// Reads `input` as `target`. Text (`Utf8`, and `LargeUtf8`, `Utf8View` or a dictionary of
/// text, which are read as `Utf8`) is parsed with weir's own rules (trimmed integers, exact
/// decimals, `true`/`false`/`1`/`0`/`yes`/`no`, the source's date and timestamp formats); other
/// types use Arrow's safe cast, checked for narrowing (see [`cast_exact`]). A value that cannot
/// be read, or only with a loss, is null in the result.
pub(crate) fn to_target(
    input: &ArrayRef,
    target: &DataType,
    options: &ParseOptions,
) -> Result<ArrayRef, arrow::error::ArrowError> {
    if input.data_type() == target {
        return Ok(input.clone());
    }
    if let Some(text) = input.as_string_opt::<i32>() {
        return Ok(parse_text(text, target, options));
    }
    // Other text is read as `Utf8`, never through Arrow's own string parsing (which does not
    // trim, and rounds decimals); a dictionary is read as its values.
    let plain = match input.data_type() {
        DataType::LargeUtf8 | DataType::Utf8View => Some(DataType::Utf8),
        DataType::Dictionary(_, values) => Some(values.as_ref().clone()),
        _ => None,
    };
    if let Some(plain) = plain {
        let unpacked = cast_with_options(input, &plain, &CastOptions::default())?;
        return to_target(&unpacked, target, options);
    }
    cast_exact(input, target)
}

/// Whether `t` holds text (so a failure to read it is a failure to parse, not a narrowing).
pub(crate) fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

fn parse_text(text: &StringArray, target: &DataType, options: &ParseOptions) -> ArrayRef {
    match target {
        DataType::Int64 => Arc::new(
            text.iter()
                .map(|v| v.and_then(|s| s.trim().parse::<i64>().ok()))
                .collect::<Int64Array>(),
        ),
        DataType::Float64 => Arc::new(
            text.iter()
                .map(|v| v.and_then(|s| s.trim().parse::<f64>().ok().filter(|f| f.is_finite())))
                .collect::<Float64Array>(),
        ),
        DataType::Boolean => Arc::new(
            text.iter()
                .map(|v| v.and_then(parse_bool))
                .collect::<BooleanArray>(),
        ),
        DataType::Decimal128(precision, scale) => {
            let values: Decimal128Array = text
                .iter()
                .map(|v| v.and_then(|s| exact_decimal(s.trim(), *precision, *scale)))
                .collect();
            match values.with_precision_and_scale(*precision, *scale) {
                Ok(v) => Arc::new(v),
                Err(_) => arrow::array::new_null_array(target, text.len()),
            }
        }
        DataType::Date32 => {
            let format = options.date_format.as_deref().unwrap_or("%Y-%m-%d");
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            Arc::new(
                text.iter()
                    .map(|v| {
                        v.and_then(|s| NaiveDate::parse_from_str(s.trim(), format).ok())
                            .and_then(|d| i32::try_from((d - epoch).num_days()).ok())
                    })
                    .collect::<Date32Array>(),
            )
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let format = options.timestamp_format.as_deref();
            let values: TimestampMicrosecondArray = text
                .iter()
                .map(|v| v.and_then(|s| parse_timestamp(s.trim(), format)))
                .collect();
            Arc::new(values.with_timezone_opt(tz.clone()))
        }
        _ => Arc::new(text.clone()),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Some(true),
        "false" | "f" | "0" | "no" | "n" => Some(false),
        _ => None,
    }
}

/// Microseconds since the epoch, UTC. With a format, the format decides (a zone in it is
/// honoured, otherwise UTC is assumed); without, RFC 3339 and its common relatives are read.
///
/// A timestamp with a fraction of a microsecond (`…00.000000500`) is not read: timestamps are
/// stored in microseconds (Delta's `timestamp`), and dropping the nanoseconds would be a silent
/// narrowing. Nanoseconds that are all zeros (`…00.123456000`) lose nothing and are read.
fn parse_timestamp(s: &str, format: Option<&str>) -> Option<i64> {
    match parse_timestamp_exact(s, format)? {
        ParsedTimestamp::Micros(v) => Some(v),
        ParsedTimestamp::SubMicrosecond => None,
    }
}

pub(crate) enum ParsedTimestamp {
    Micros(i64),
    /// Read, but with a fraction of a microsecond.
    SubMicrosecond,
}

pub(crate) fn parse_timestamp_exact(s: &str, format: Option<&str>) -> Option<ParsedTimestamp> {
    let utc = match format {
        Some(f) => DateTime::parse_from_str(s, f)
            .map(|d| d.to_utc())
            .or_else(|_| NaiveDateTime::parse_from_str(s, f).map(|d| d.and_utc()))
            .ok()
            .or_else(|| string_to_datetime(&Utc, s).ok()),
        None => string_to_datetime(&Utc, s).ok(),
    }?;
    if utc.timestamp_subsec_nanos() % 1_000 != 0 {
        return Some(ParsedTimestamp::SubMicrosecond);
    }
    Some(ParsedTimestamp::Micros(utc.timestamp_micros()))
}

/// A numeric view for range checks: numbers as f64, dates as days, timestamps as microseconds.
pub(crate) fn numeric_view(typed: &ArrayRef) -> Option<Float64Array> {
    let as_f64 =
        |a: &ArrayRef| cast_with_options(a, &DataType::Float64, &CastOptions::default()).ok();
    let view = match typed.data_type() {
        DataType::Int64 | DataType::Float64 | DataType::Decimal128(..) => as_f64(typed)?,
        DataType::Date32 => {
            as_f64(&cast_with_options(typed, &DataType::Int32, &CastOptions::default()).ok()?)?
        }
        DataType::Timestamp(..) => {
            as_f64(&cast_with_options(typed, &DataType::Int64, &CastOptions::default()).ok()?)?
        }
        _ => return None,
    };
    Some(view.as_primitive::<arrow::datatypes::Float64Type>().clone())
}

/// The text of each value, for pattern and valid-value checks on non-text columns.
pub(crate) fn text_view(typed: &ArrayRef) -> Option<StringArray> {
    if let Some(s) = typed.as_string_opt::<i32>() {
        return Some(s.clone());
    }
    let cast = cast_with_options(typed, &DataType::Utf8, &CastOptions::default()).ok()?;
    cast.as_string_opt::<i32>().cloned()
}

/// One value as a user would write it, for reasons in the quarantine.
pub(crate) fn display_value(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return "null".into();
    }
    let formatter =
        arrow::util::display::ArrayFormatter::try_new(array.as_ref(), &Default::default());
    match formatter {
        Ok(f) => {
            let mut s = f.value(row).to_string();
            if s.len() > 80 {
                let cut = (0..=80).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
                s.truncate(cut);
                s.push('…');
            }
            format!("{s:?}")
        }
        Err(_) => "?".into(),
    }
}

pub(crate) fn type_name(target: &DataType) -> String {
    match target {
        DataType::Int64 => "integer".into(),
        DataType::Float64 => "number".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::Utf8 => "string".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parses_into_types() {
        let input: ArrayRef = Arc::new(StringArray::from(vec![Some(" 42 "), Some("x"), None]));
        let out = to_target(&input, &DataType::Int64, &ParseOptions::default()).expect("cast");
        let out = out.as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(out.value(0), 42);
        assert!(out.is_null(1) && out.is_null(2));
    }

    #[test]
    fn timestamps_with_and_without_format() {
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:01Z", None),
            Some(1_000_000)
        );
        assert_eq!(
            parse_timestamp("01/01/1970 00:00:02", Some("%d/%m/%Y %H:%M:%S")),
            Some(2_000_000)
        );
        assert_eq!(parse_timestamp("yesterday", None), None);
    }

    #[test]
    fn decimals_keep_scale() {
        let input: ArrayRef = Arc::new(StringArray::from(vec![Some("12.34"), Some("1e999")]));
        let out = to_target(
            &input,
            &DataType::Decimal128(10, 2),
            &ParseOptions::default(),
        )
        .expect("cast");
        let out = out.as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(out.value(0), 1234);
        assert!(out.is_null(1));
    }
}
