//! No silent narrowing: a value the contract's type cannot hold exactly goes to quarantine as
//! `<column>.type`, from text and from typed Arrow input (Parquet, a model's output).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    Decimal256Array, Float32Array, Float64Array, Int32Array, Int64Array, LargeStringArray,
    RecordBatch, StringArray, StringViewArray, TimestampMicrosecondArray, TimestampNanosecondArray,
    UInt64Array,
};
use arrow::datatypes::{
    Date32Type, Decimal128Type, Field, Float64Type, Int64Type, Schema, TimestampMicrosecondType,
    i256,
};
use weir_ingest::SourceBatch;
use weir_model::parse_contract;
use weir_quality::{ParseOptions, Validated, Validator};

/// Validates `input` as the only column, `c`, of a contract with `logicalType: logical` (and
/// `physicalType: physical`).
fn validate(logical: &str, physical: Option<&str>, input: ArrayRef) -> Validated {
    let physical = physical
        .map(|p| format!("        physicalType: {p}\n"))
        .unwrap_or_default();
    let text = format!(
        "apiVersion: v3.1.0\nkind: DataContract\nid: c1\nversion: 1.0.0\nstatus: active\n\
         schema:\n  - name: t\n    properties:\n      - name: c\n        logicalType: {logical}\n{physical}"
    );
    let (contract, diagnostics) = parse_contract(Path::new("c.yaml"), &text);
    let Some(contract) = contract else {
        panic!("contract: {diagnostics:?}");
    };
    let validator = Validator::new("t", &contract, ParseOptions::default()).expect("validator");
    let n = input.len();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "c",
        input.data_type().clone(),
        true,
    )]));
    let source = SourceBatch {
        batch: RecordBatch::try_new(schema, vec![input]).expect("batch"),
        positions: (1..=n as u64).collect(),
        raw_lines: None,
        rejects: Vec::new(),
        bytes: 0,
    };
    validator.validate(&source).expect("validate")
}

/// The positions quarantined, each under `c.type`, and their reasons.
fn quarantined(v: &Validated) -> Vec<(u64, String)> {
    for q in &v.quarantined {
        assert_eq!(q.rule_id, "c.type", "{q:?}");
    }
    v.quarantined
        .iter()
        .map(|q| (q.position, q.reason.clone()))
        .collect()
}

fn positions(v: &Validated) -> Vec<u64> {
    quarantined(v).into_iter().map(|(p, _)| p).collect()
}

fn stored<T: arrow::datatypes::ArrowPrimitiveType>(v: &Validated) -> Vec<Option<T::Native>> {
    v.good.column(0).as_primitive::<T>().iter().collect()
}

#[test]
fn float64_with_a_fraction_is_not_an_integer() {
    let input = Float64Array::from(vec![
        Some(94.7),
        Some(3.0),
        Some(-0.0),
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(-2.5),
        None,
        Some(-2.0),
        Some(1e20),
    ]);
    let v = validate("integer", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1, 4, 5, 6, 9]);
    assert_eq!(q[0].1, "`c`: \"94.7\" is not an integer");
    // The raw record keeps the original value.
    assert_eq!(v.quarantined[0].raw, r#"{"c":94.7}"#);
    assert_eq!(q[1].1, "`c`: \"NaN\" is not an integer");
    assert!(q[4].1.contains("out of range for integer"), "{}", q[4].1);
    assert_eq!(
        stored::<Int64Type>(&v),
        vec![Some(3), Some(0), None, Some(-2)]
    );
    assert_eq!(v.rule_counts.get("c.type"), Some(&5));
}

#[test]
fn float32_with_a_fraction_is_not_an_integer() {
    let input = Float32Array::from(vec![2.5_f32, 7.0]);
    let v = validate("integer", None, Arc::new(input));
    assert_eq!(positions(&v), vec![1]);
    assert_eq!(stored::<Int64Type>(&v), vec![Some(7)]);
}

#[test]
fn decimal_with_a_fraction_is_not_an_integer() {
    let input = Decimal128Array::from(vec![250, 300, -100])
        .with_precision_and_scale(10, 2)
        .expect("decimal");
    let v = validate("integer", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1]);
    assert_eq!(q[0].1, "`c`: \"2.50\" is not an integer");
    assert_eq!(stored::<Int64Type>(&v), vec![Some(3), Some(-1)]);
}

#[test]
fn uint64_beyond_i64_is_out_of_range() {
    let input = UInt64Array::from(vec![u64::MAX, 5, i64::MAX as u64]);
    let v = validate("integer", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1]);
    assert!(q[0].1.contains("out of range for integer"), "{}", q[0].1);
    assert_eq!(stored::<Int64Type>(&v), vec![Some(5), Some(i64::MAX)]);
}

#[test]
fn narrower_integers_are_stored_unchanged() {
    let input = Int32Array::from(vec![i32::MIN, 0, i32::MAX]);
    let v = validate("integer", None, Arc::new(input));
    assert!(v.quarantined.is_empty());
    assert_eq!(
        stored::<Int64Type>(&v),
        vec![
            Some(i64::from(i32::MIN)),
            Some(0),
            Some(i64::from(i32::MAX))
        ]
    );
}

#[test]
fn text_integers_are_exact() {
    let input = StringArray::from(vec!["2.50", " 42 ", "9223372036854775808", "-7"]);
    let v = validate("integer", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1, 3]);
    assert_eq!(q[0].1, "`c`: \"2.50\" is not an integer");
    assert!(q[1].1.contains("out of range for integer"), "{}", q[1].1);
    assert_eq!(stored::<Int64Type>(&v), vec![Some(42), Some(-7)]);
}

#[test]
fn integer_text_in_another_notation_cannot_be_read() {
    let input = StringArray::from(vec!["1e3"]);
    let v = validate("integer", None, Arc::new(input));
    assert_eq!(
        quarantined(&v),
        vec![(1, "`c`: cannot read \"1e3\" as integer".to_string())]
    );
}

#[test]
fn dictionaries_are_read_as_their_values() {
    use arrow::array::DictionaryArray;
    use arrow::datatypes::Int32Type;
    let text: DictionaryArray<Int32Type> = vec!["1.005", "2.50", "1.005"].into_iter().collect();
    let v = validate("number", Some("decimal(10,2)"), Arc::new(text));
    assert_eq!(positions(&v), vec![1, 3]);
    assert_eq!(stored::<Decimal128Type>(&v), vec![Some(250)]);

    let values = Float64Array::from(vec![94.7, 3.0]);
    let keys = arrow::array::Int32Array::from(vec![0, 1, 0]);
    let floats = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).expect("dict");
    let v = validate("integer", None, Arc::new(floats));
    assert_eq!(positions(&v), vec![1, 3]);
    assert_eq!(stored::<Int64Type>(&v), vec![Some(3)]);
}

#[test]
fn other_text_arrays_are_read_like_utf8() {
    let view = StringViewArray::from(vec![" 42 ", "2.5"]);
    let v = validate("integer", None, Arc::new(view));
    assert_eq!(positions(&v), vec![2]);
    assert_eq!(stored::<Int64Type>(&v), vec![Some(42)]);

    // Arrow's own string cast would round 1.005 to 1.01.
    let view = StringViewArray::from(vec!["1.005", "1.5"]);
    let v = validate("number", Some("decimal(10,2)"), Arc::new(view));
    assert_eq!(positions(&v), vec![1]);
    assert_eq!(stored::<Decimal128Type>(&v), vec![Some(150)]);

    let large = LargeStringArray::from(vec!["1.005", "0.25"]);
    let v = validate("number", Some("decimal(10,2)"), Arc::new(large));
    assert_eq!(positions(&v), vec![1]);
    assert_eq!(stored::<Decimal128Type>(&v), vec![Some(25)]);
}

#[test]
fn text_decimals_are_never_rounded() {
    let input = StringArray::from(vec![
        "1.005",
        "1.50",
        "123456789.00",
        "12345678.99",
        "1.500000",
        "-0.01",
        "2.5e1",
        "1e-3",
    ]);
    let v = validate("number", Some("decimal(10,2)"), Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1, 3, 8]);
    assert_eq!(
        q[0].1,
        "`c`: \"1.005\" has more than 2 decimal places: decimal(10,2) would round it"
    );
    assert!(q[1].1.contains("too large for decimal(10,2)"), "{}", q[1].1);
    assert_eq!(
        stored::<Decimal128Type>(&v),
        vec![
            Some(150),
            Some(1_234_567_899),
            Some(150),
            Some(-1),
            Some(2500)
        ]
    );
}

#[test]
fn floats_that_need_rounding_do_not_fit_a_decimal() {
    let input = Float64Array::from(vec![1.005, 2.675, 0.1, f64::NAN, 1e9, 94.7, -0.0]);
    let v = validate("number", Some("decimal(10,2)"), Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1, 2, 4, 5]);
    assert_eq!(
        q[0].1,
        "`c`: \"1.005\" has more than 2 decimal places: decimal(10,2) would round it"
    );
    assert_eq!(q[2].1, "`c`: \"NaN\" is not a decimal number");
    assert!(q[3].1.contains("too large"), "{}", q[3].1);
    assert_eq!(
        stored::<Decimal128Type>(&v),
        vec![Some(10), Some(9470), Some(0)]
    );
}

#[test]
fn decimal_rescale_must_not_round() {
    let input = Decimal128Array::from(vec![1005, 1500, 99_999_999_999])
        .with_precision_and_scale(12, 3)
        .expect("decimal");
    let v = validate("number", Some("decimal(10,2)"), Arc::new(input));
    assert_eq!(positions(&v), vec![1, 3]);
    assert_eq!(stored::<Decimal128Type>(&v), vec![Some(150)]);

    // Widening the scale is lossless: 1.50 → 1.5000.
    let input = Decimal128Array::from(vec![150, -1])
        .with_precision_and_scale(10, 2)
        .expect("decimal");
    let v = validate("number", Some("decimal(12,4)"), Arc::new(input));
    assert!(v.quarantined.is_empty());
    assert_eq!(stored::<Decimal128Type>(&v), vec![Some(15000), Some(-100)]);
}

#[test]
fn decimal256_and_integers_into_a_decimal() {
    let input = Decimal256Array::from(vec![i256::from_i128(1005), i256::from_i128(1230)])
        .with_precision_and_scale(40, 3)
        .expect("decimal");
    let v = validate("number", Some("decimal(10,2)"), Arc::new(input));
    assert_eq!(positions(&v), vec![1]);
    assert_eq!(stored::<Decimal128Type>(&v), vec![Some(123)]);

    let input = Int64Array::from(vec![1_000_000_000, 5]);
    let v = validate("number", Some("decimal(10,2)"), Arc::new(input));
    assert_eq!(positions(&v), vec![1]);
    assert_eq!(stored::<Decimal128Type>(&v), vec![Some(500)]);
}

#[test]
fn integers_and_decimals_a_double_cannot_hold_are_quarantined() {
    let input = Int64Array::from(vec![9_007_199_254_740_993, 42, 9_007_199_254_740_992]);
    let v = validate("number", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1]);
    assert!(q[0].1.contains("cannot be stored exactly"), "{}", q[0].1);
    assert_eq!(
        stored::<Float64Type>(&v),
        vec![Some(42.0), Some(9_007_199_254_740_992.0)]
    );

    let input = Decimal128Array::from(vec![9470, 123_456_789_012_345_678_901_234_567])
        .with_precision_and_scale(38, 2)
        .expect("decimal");
    let v = validate("number", None, Arc::new(input));
    assert_eq!(positions(&v), vec![2]);
    assert_eq!(stored::<Float64Type>(&v), vec![Some(94.7)]);
}

#[test]
fn only_zero_and_one_are_booleans() {
    let input = Int64Array::from(vec![0, 1, 2, -1]);
    let v = validate("boolean", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![3, 4]);
    assert!(q[0].1.contains("is not a boolean"), "{}", q[0].1);
    let good: Vec<Option<bool>> = v.good.column(0).as_boolean().iter().collect();
    assert_eq!(good, vec![Some(false), Some(true)]);

    let input = Float64Array::from(vec![0.5, 1.0, f64::NAN]);
    let v = validate("boolean", None, Arc::new(input));
    assert_eq!(positions(&v), vec![1, 3]);

    let input = BooleanArray::from(vec![true]);
    let v = validate("boolean", None, Arc::new(input));
    assert!(v.quarantined.is_empty());
}

#[test]
fn nanoseconds_are_quarantined_only_when_not_zero() {
    let input =
        TimestampNanosecondArray::from(vec![1_000_000, 1_000_001, 1_700_000_000_123_456_000]);
    let v = validate("timestamp", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![2]);
    assert!(q[0].1.contains("fraction of a microsecond"), "{}", q[0].1);
    assert_eq!(
        stored::<TimestampMicrosecondType>(&v),
        vec![Some(1_000), Some(1_700_000_000_123_456)]
    );

    let input = StringArray::from(vec![
        "1970-01-01T00:00:00.000000500Z",
        "1970-01-01T00:00:00.123456000Z",
        "1970-01-01T00:00:01Z",
    ]);
    let v = validate("timestamp", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1]);
    assert!(q[0].1.contains("fraction of a microsecond"), "{}", q[0].1);
    assert_eq!(
        stored::<TimestampMicrosecondType>(&v),
        vec![Some(123_456), Some(1_000_000)]
    );
}

#[test]
fn coarser_timestamps_and_dates_are_stored_unchanged() {
    let input = Date32Array::from(vec![19_000]);
    let v = validate("timestamp", None, Arc::new(input));
    assert!(v.quarantined.is_empty());
    assert_eq!(
        stored::<TimestampMicrosecondType>(&v),
        vec![Some(19_000 * 86_400_000_000)]
    );
}

#[test]
fn a_time_of_day_is_not_a_date() {
    let day = 86_400_000_i64;
    let input = Date64Array::from(vec![day + 5, 2 * day]);
    let v = validate("date", None, Arc::new(input));
    let q = quarantined(&v);
    assert_eq!(positions(&v), vec![1]);
    assert!(q[0].1.contains("has a time of day"), "{}", q[0].1);
    assert_eq!(stored::<Date32Type>(&v), vec![Some(2)]);

    let input = TimestampMicrosecondArray::from(vec![86_400_000_000, 86_400_000_001]);
    let v = validate("date", None, Arc::new(input));
    assert_eq!(positions(&v), vec![2]);
    assert_eq!(stored::<Date32Type>(&v), vec![Some(1)]);
}
