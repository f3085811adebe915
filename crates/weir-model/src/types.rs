use arrow::datatypes::{DataType, TimeUnit};

use crate::contract::{LogicalType, SchemaProperty};

/// The Arrow (and so Delta) type a contract property is stored as.
///
/// `number` with a `physicalType` of `decimal(p,s)`/`numeric(p,s)` becomes a Decimal128 so money
/// stays exact; timestamps are stored as UTC microseconds, which is Delta's `timestamp`.
/// `time`, `object` and `array` are kept as their text form: Delta has no time type and nested
/// contracts are not enforced yet.
pub fn arrow_type(property: &SchemaProperty) -> DataType {
    match property.logical_type {
        Some(LogicalType::Integer) => DataType::Int64,
        Some(LogicalType::Number) => {
            match property.physical_type.as_deref().and_then(parse_decimal) {
                Some((precision, scale)) => DataType::Decimal128(precision, scale),
                None => DataType::Float64,
            }
        }
        Some(LogicalType::Boolean) => DataType::Boolean,
        Some(LogicalType::Date) => DataType::Date32,
        Some(LogicalType::Timestamp) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        Some(
            LogicalType::String | LogicalType::Time | LogicalType::Object | LogicalType::Array,
        )
        | None => DataType::Utf8,
    }
}

/// `decimal(12,2)` → (12, 2), within Delta's limit of 38 digits.
fn parse_decimal(physical: &str) -> Option<(u8, i8)> {
    let lower = physical.trim().to_ascii_lowercase();
    let inner = lower
        .strip_prefix("decimal(")
        .or_else(|| lower.strip_prefix("numeric("))?
        .strip_suffix(')')?;
    let (p, s) = inner.split_once(',')?;
    let precision: u8 = p.trim().parse().ok()?;
    let scale: i8 = s.trim().parse().ok()?;
    (1..=38).contains(&precision).then_some(())?;
    (0..=precision as i8)
        .contains(&scale)
        .then_some((precision, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse() {
        assert_eq!(parse_decimal("DECIMAL(12, 2)"), Some((12, 2)));
        assert_eq!(parse_decimal("numeric(40,2)"), None);
        assert_eq!(parse_decimal("varchar(3)"), None);
    }
}
