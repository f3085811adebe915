//! Row-by-row uniqueness: the first row of a key in a run wins, later ones are refused, and a
//! unit (file) that fails takes its keys back out, on both key stores (one integer column,
//! and any other key as row-format bytes).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use weir_ingest::SourceBatch;
use weir_model::parse_contract;
use weir_quality::{KeyGuard, ParseOptions, Validated, Validator};

fn validator(key_type: &str) -> Validator {
    let text = format!(
        "apiVersion: v3.1.0\nkind: DataContract\nid: k\nversion: 1.0.0\nstatus: active\n\
         schema:\n  - name: t\n    properties:\n      - name: id\n        logicalType: {key_type}\n        primaryKey: true\n        required: true\n"
    );
    let (contract, diagnostics) = parse_contract(Path::new("k.yaml"), &text);
    let Some(contract) = contract else {
        panic!("contract: {diagnostics:?}");
    };
    Validator::new("t", &contract, ParseOptions::default()).expect("validator")
}

fn batch(validator: &Validator, ids: &[&str]) -> Validated {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
    let column: ArrayRef = Arc::new(StringArray::from(ids.to_vec()));
    let source = SourceBatch {
        bytes: 0,
        positions: (1..=ids.len() as u64).collect(),
        batch: RecordBatch::try_new(schema, vec![column]).expect("batch"),
        raw_lines: None,
        rejects: Vec::new(),
    };
    validator.validate(&source).expect("validate")
}

fn kept(validated: &Validated) -> usize {
    validated.good.num_rows()
}

#[test]
fn first_key_wins_and_a_failed_unit_takes_its_keys_back() {
    for key_type in ["integer", "string"] {
        let v = validator(key_type);
        let units = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let mut guard = KeyGuard::new(&v, units).expect("guard").expect("a key");
        // Unit 0 repeats a key: the second row is refused, naming where the first was seen.
        let mut first = batch(&v, &["1", "2", "1"]);
        guard.admit(&mut first, 0).expect("admit");
        assert_eq!(kept(&first), 2, "{key_type}");
        assert_eq!(first.quarantined.len(), 1);
        assert_eq!(first.quarantined[0].rule_id, "id.duplicate");
        assert!(
            first.quarantined[0].reason.contains("a:1"),
            "{}",
            first.quarantined[0].reason
        );
        // Unit 0 fails: its keys are forgotten, so unit 1 may use them.
        guard.abort_unit();
        let mut second = batch(&v, &["1", "3"]);
        guard.admit(&mut second, 1).expect("admit");
        assert_eq!(
            kept(&second),
            2,
            "{key_type}: keys of a failed unit are gone"
        );
        guard.commit_unit();
        // Unit 2 repeats unit 1's keys: refused, first seen in b.
        let mut third = batch(&v, &["3", "4"]);
        guard.admit(&mut third, 2).expect("admit");
        assert_eq!(kept(&third), 1, "{key_type}");
        assert!(
            third.quarantined[0].reason.contains("b:2"),
            "{}",
            third.quarantined[0].reason
        );
    }
}

/// The integer store (runs of increasing keys, a map for the rest) against an oracle, on
/// sequences mixing ascending runs with gaps, keys going back, repeats within and across units,
/// and failed units: every refusal, and where each refused key was first seen, must match.
#[test]
fn the_integer_store_refuses_exactly_what_an_oracle_refuses() {
    let v = validator("integer");
    let mut state = 7u64;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    for case in 0..200 {
        let units: Vec<String> = (0..6).map(|u| format!("u{u}")).collect();
        let mut guard = KeyGuard::new(&v, units.clone())
            .expect("guard")
            .expect("a key");
        let mut committed: std::collections::HashMap<i64, String> = Default::default();
        let mut key = next(50) as i64 - 25;
        for (unit, name) in units.iter().enumerate() {
            let mut mine: std::collections::HashMap<i64, String> = Default::default();
            let mut ids = Vec::new();
            for _ in 0..next(40) {
                key = match next(10) {
                    0..=5 => key + 1,
                    6 => key + 2 + next(5) as i64,
                    7 => key - next(30) as i64,
                    _ => key,
                };
                ids.push(key.to_string());
            }
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut validated = batch(&v, &refs);
            guard.admit(&mut validated, unit).expect("admit");
            let mut want_refused = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                let k: i64 = id.parse().expect("int");
                let at = format!("{name}:{}", i + 1);
                match committed.get(&k).or(mine.get(&k)) {
                    Some(first) => want_refused.push(format!("{k} first seen at {first}")),
                    None => {
                        mine.insert(k, at);
                    }
                }
            }
            let got_refused: Vec<String> = validated
                .quarantined
                .iter()
                .map(|q| {
                    let (k, first) = q
                        .reason
                        .trim_start_matches("duplicate key `id` = ")
                        .split_once(": first seen at ")
                        .expect("reason");
                    format!("{k} first seen at {first}")
                })
                .collect();
            assert_eq!(
                got_refused, want_refused,
                "case {case}, unit {unit}: {ids:?}"
            );
            if next(4) == 0 {
                guard.abort_unit();
            } else {
                guard.commit_unit();
                committed.extend(mine);
            }
        }
    }
}
