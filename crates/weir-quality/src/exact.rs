//! No silent narrowing: a value is stored only if the contract's type holds it exactly.
//!
//! Arrow's safe cast turns a value it cannot represent into null, but it happily *narrows*:
//! float → integer truncates (`94.7` → `94`), a decimal loses digits when its scale shrinks
//! (`1.005` → `1.01`), a number becomes `true` when cast to a boolean (`2` → `true`), a
//! nanosecond timestamp loses its last digits in microseconds. [`null_lossy`] finds those
//! values by casting the result back to the input's type and comparing with the input: a value
//! that does not come back unchanged was narrowed, and is made null so that the row pass
//! quarantines it under `<column>.type`, like any value that cannot be read.
//!
//! Text does not go through a cast: `convert.rs` parses it, and decimals with
//! [`exact_decimal`], which refuses a value that would need rounding or has too many digits
//! (Arrow's own `parse_decimal` drops the extra fractional digits).

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::cmp::neq;
use arrow::compute::{CastOptions, cast_with_options, nullif};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float16Type, Float32Type, Float64Type, TimeUnit,
};
use arrow::error::ArrowError;

use crate::convert::{ParsedTimestamp, is_text, parse_timestamp_exact, type_name};
use crate::rules::ParseOptions;

fn safe() -> CastOptions<'static> {
    CastOptions {
        safe: true,
        ..Default::default()
    }
}

/// Casts that can never lose a value: the round trip is skipped for them. (A cast that
/// overflows is not in this list unless Arrow's safe cast already makes the overflow null.)
fn lossless(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match to {
        Utf8 => true,
        Int64 => matches!(from, Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32),
        Float64 => matches!(
            from,
            Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32 | Float16 | Float32
        ),
        Timestamp(TimeUnit::Microsecond, _) => matches!(
            from,
            Date32
                | Timestamp(TimeUnit::Second, _)
                | Timestamp(TimeUnit::Millisecond, _)
                | Timestamp(TimeUnit::Microsecond, _)
        ),
        _ => false,
    }
}

/// Casts `input` (not text) to `target` with Arrow's safe cast, then makes null every value the
/// cast narrowed: one that does not survive the cast back to `input`'s type unchanged. Floats
/// are compared as numbers (`-0.0` equals `0.0`; NaN equals nothing, so it never fits an
/// integer, a decimal or a boolean).
///
/// A cast Arrow cannot reverse is taken as it is; no contract type has one (every target is a
/// number, a boolean, a date, a timestamp or text, and text is never narrowed).
pub(crate) fn cast_exact(input: &ArrayRef, target: &DataType) -> Result<ArrayRef, ArrowError> {
    let cast = cast_with_options(input, target, &safe())?;
    if lossless(input.data_type(), target) || cast.null_count() == cast.len() {
        return Ok(cast);
    }
    let Ok(back) = cast_with_options(&cast, input.data_type(), &safe()) else {
        return Ok(cast);
    };
    let changed = match input.data_type() {
        DataType::Float16 => float_changed::<Float16Type>(input, &back),
        DataType::Float32 => float_changed::<Float32Type>(input, &back),
        DataType::Float64 => float_changed::<Float64Type>(input, &back),
        _ => neq(input, &back)?.values().clone(),
    };
    let cast_valid = valid_bits(&cast);
    let back_null = !&valid_bits(&back);
    let lossy = &cast_valid & &(&back_null | &changed);
    if lossy.count_set_bits() == 0 {
        return Ok(cast);
    }
    nullif(&cast, &BooleanArray::new(lossy, None))
}

fn valid_bits(array: &ArrayRef) -> BooleanBuffer {
    match array.logical_nulls() {
        Some(nulls) => nulls.inner().clone(),
        None => BooleanBuffer::new_set(array.len()),
    }
}

/// IEEE inequality per slot (the values under nulls are compared too; the caller masks them).
fn float_changed<T: ArrowPrimitiveType>(a: &ArrayRef, b: &ArrayRef) -> BooleanBuffer
where
    T::Native: PartialEq,
{
    let a: &PrimitiveArray<T> = a.as_primitive();
    let b: &PrimitiveArray<T> = b.as_primitive();
    let (a, b) = (a.values(), b.values());
    BooleanBuffer::collect_bool(a.len(), |i| a[i] != b[i])
}

/// A number written in decimal text, `[+-]digits[.digits][e[+-]digits]`, as
/// `significand × 10^exponent` with the significand's leading and trailing zeros stripped.
struct DecimalText<'a> {
    negative: bool,
    /// The mantissa as written (digits and at most one point).
    body: &'a [u8],
    /// Byte range in `body` from the first to the last non-zero digit; empty for zero.
    first: usize,
    last: usize,
    /// Digits in the significand (0 for zero).
    significant: i64,
    exponent: i64,
}

impl DecimalText<'_> {
    fn parse(s: &str) -> Option<DecimalText<'_>> {
        let bytes = s.as_bytes();
        let (negative, rest) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let end = rest
            .iter()
            .position(|c| matches!(c, b'e' | b'E'))
            .unwrap_or(rest.len());
        let (body, exp_text) = rest.split_at(end);
        let written_exponent: i64 = match exp_text.split_first() {
            None => 0,
            Some((_, digits)) => i64::from(std::str::from_utf8(digits).ok()?.parse::<i32>().ok()?),
        };
        let (mut digits, mut fraction, mut point) = (0_i64, 0_i64, false);
        let (mut first, mut last) = (None, 0);
        for (i, c) in body.iter().enumerate() {
            match c {
                b'0'..=b'9' => {
                    digits += 1;
                    fraction += i64::from(point);
                    if *c != b'0' {
                        first.get_or_insert(i);
                        last = i;
                    }
                }
                b'.' if !point => point = true,
                _ => return None,
            }
        }
        if digits == 0 {
            return None;
        }
        let Some(first) = first else {
            return Some(DecimalText {
                negative,
                body,
                first: 0,
                last: 0,
                significant: 0,
                exponent: 0,
            });
        };
        let count = |range: &[u8]| range.iter().filter(|c| c.is_ascii_digit()).count() as i64;
        let significant = count(&body[first..=last]);
        let trailing_zeros = count(&body[last + 1..]);
        Some(DecimalText {
            negative,
            body,
            first,
            last,
            significant,
            exponent: written_exponent - fraction + trailing_zeros,
        })
    }

    /// Digits after the point that are not zero-padding.
    fn fraction_digits(&self) -> i64 {
        (-self.exponent).max(0)
    }

    /// Digits before the point, without leading zeros.
    fn integer_digits(&self) -> i64 {
        (self.significant + self.exponent).max(0)
    }
}

/// Text as an unscaled `decimal(precision, scale)` value, only if it fits exactly: a value
/// with more fractional digits than `scale` (other than trailing zeros) or more integer digits
/// than `precision - scale` is `None`, never rounded or truncated.
pub(crate) fn exact_decimal(s: &str, precision: u8, scale: i8) -> Option<i128> {
    let text = DecimalText::parse(s)?;
    if text.significant == 0 {
        return Some(0);
    }
    let shift = text.exponent + i64::from(scale);
    if shift < 0 || text.significant + shift > i64::from(precision) {
        return None;
    }
    // At most `precision` (≤ 38) digits: no overflow in i128.
    let mut value: i128 = 0;
    for c in &text.body[text.first..=text.last] {
        if c.is_ascii_digit() {
            value = value * 10 + i128::from(c - b'0');
        }
    }
    let value = value.checked_mul(10_i128.checked_pow(u32::try_from(shift).ok()?)?)?;
    Some(if text.negative { -value } else { value })
}

/// Why the value at `row` of `input` was not stored as `target` (after the column name): for
/// a narrowed value, what would have been lost; otherwise that it cannot be read.
pub(crate) fn type_failure(
    input: &ArrayRef,
    row: usize,
    target: &DataType,
    options: &ParseOptions,
) -> String {
    let shown = crate::convert::display_value(input, row);
    let raw = raw_text(input, row);
    let raw = raw.as_deref().map(str::trim);
    let is_text = is_text(input.data_type());
    let number = raw.and_then(DecimalText::parse);
    let non_finite = is_float(input.data_type())
        && raw.is_some_and(|r| r.parse::<f64>().is_ok_and(|f| !f.is_finite()));
    let why = match target {
        DataType::Int64 => match number {
            _ if non_finite => Some(format!("{shown} is not an integer")),
            Some(n) if n.fraction_digits() > 0 => Some(format!("{shown} is not an integer")),
            // i64::MAX has 19 digits: a shorter whole number that failed is not written as an
            // integer (`1e3`), and cannot be read.
            Some(n) if n.integer_digits() >= 19 => Some(format!(
                "{shown} is out of range for integer (64-bit, at most 9223372036854775807)"
            )),
            _ => None,
        },
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => match number {
            _ if non_finite => Some(format!("{shown} is not a decimal number")),
            Some(n) if n.fraction_digits() > i64::from(*s) => Some(format!(
                "{shown} has more than {s} decimal places: decimal({p},{s}) would round it"
            )),
            Some(n) if n.integer_digits() > i64::from(*p) - i64::from(*s) => Some(format!(
                "{shown} is too large for decimal({p},{s}) (at most {} digits before the point)",
                i64::from(*p) - i64::from(*s)
            )),
            _ => None,
        },
        DataType::Float64 => match number {
            Some(_) if is_text => Some(format!("{shown} is out of range for number")),
            Some(_) => Some(format!(
                "{shown} cannot be stored exactly as a number (a 64-bit float): it would be rounded"
            )),
            None => None,
        },
        DataType::Boolean if (!is_text && number.is_some()) || non_finite => Some(format!(
            "{shown} is not a boolean (only 0 and 1 are read as false and true)"
        )),
        DataType::Date32
            if matches!(
                input.data_type(),
                DataType::Date64 | DataType::Timestamp(..)
            ) =>
        {
            Some(format!("{shown} is not a date: it has a time of day"))
        }
        DataType::Timestamp(..) => {
            let sub_micro = match input.data_type() {
                DataType::Timestamp(TimeUnit::Nanosecond, _) => true,
                _ if is_text => raw.is_some_and(|r| {
                    matches!(
                        parse_timestamp_exact(r, options.timestamp_format.as_deref()),
                        Some(ParsedTimestamp::SubMicrosecond)
                    )
                }),
                _ => false,
            };
            sub_micro.then(|| {
                format!(
                    "{shown} has a fraction of a microsecond: timestamps are stored in microseconds"
                )
            })
        }
        _ => None,
    };
    why.unwrap_or_else(|| format!("cannot read {shown} as {}", type_name(target)))
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

/// The value as plain text (no quotes, not cut), for reasoning about its digits.
fn raw_text(input: &ArrayRef, row: usize) -> Option<String> {
    if input.is_null(row) {
        return None;
    }
    let formatter =
        arrow::util::display::ArrayFormatter::try_new(input.as_ref(), &Default::default()).ok()?;
    Some(formatter.value(row).to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Doubles written with few decimal places (what a model computes as `19.99`) fit a
    /// decimal of that scale, and such decimals fit a double: the round trip flags none.
    #[test]
    fn short_decimals_and_doubles_round_trip() {
        use arrow::array::{Decimal128Array, Float64Array};
        use arrow::datatypes::Decimal128Type;
        for (scale, step) in [(2_i8, 7_i64), (4, 13), (6, 9_973)] {
            let ks: Vec<i64> = (-200_000..200_000).map(|i| i * step).collect();
            let div = 10_f64.powi(i32::from(scale));
            let floats: ArrayRef = Arc::new(Float64Array::from(
                ks.iter().map(|k| *k as f64 / div).collect::<Vec<_>>(),
            ));
            let target = DataType::Decimal128(18, scale);
            let out = cast_exact(&floats, &target).expect("cast");
            assert_eq!(out.null_count(), 0, "scale {scale}");
            let out = out.as_primitive::<Decimal128Type>();
            assert!(
                ks.iter()
                    .zip(out.values())
                    .all(|(k, v)| i128::from(*k) == *v)
            );

            let decimals: ArrayRef = Arc::new(
                Decimal128Array::from(ks.iter().map(|k| i128::from(*k)).collect::<Vec<_>>())
                    .with_precision_and_scale(18, scale)
                    .expect("decimal"),
            );
            let out = cast_exact(&decimals, &DataType::Float64).expect("cast");
            assert_eq!(out.null_count(), 0, "scale {scale}");
        }
    }

    #[test]
    fn exact_decimal_refuses_rounding_and_overflow() {
        assert_eq!(exact_decimal("12.34", 10, 2), Some(1234));
        assert_eq!(exact_decimal("-12.3", 10, 2), Some(-1230));
        assert_eq!(exact_decimal("1.500000", 10, 2), Some(150));
        assert_eq!(exact_decimal("0001.50", 4, 2), Some(150));
        assert_eq!(exact_decimal("1.5e2", 10, 2), Some(15000));
        assert_eq!(exact_decimal("125e-2", 10, 2), Some(125));
        assert_eq!(exact_decimal("+.5", 10, 2), Some(50));
        assert_eq!(exact_decimal("5.", 10, 2), Some(500));
        assert_eq!(exact_decimal("0.000", 1, 0), Some(0));
        assert_eq!(exact_decimal("12345678.99", 10, 2), Some(1_234_567_899));
        assert_eq!(exact_decimal("1.005", 10, 2), None);
        assert_eq!(exact_decimal("123456789.00", 10, 2), None);
        assert_eq!(exact_decimal("1e999", 10, 2), None);
        assert_eq!(exact_decimal("1e-999", 10, 2), None);
        assert_eq!(exact_decimal("1.2.3", 10, 2), None);
        assert_eq!(exact_decimal("", 10, 2), None);
        assert_eq!(exact_decimal(".", 10, 2), None);
        assert_eq!(exact_decimal("1e", 10, 2), None);
        assert_eq!(exact_decimal("NaN", 10, 2), None);
        assert_eq!(
            exact_decimal("99999999999999999999999999999999999999", 38, 0),
            Some(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        assert_eq!(
            exact_decimal("999999999999999999999999999999999999990", 38, 0),
            None
        );
    }
}
