//! What changed between two versions of a contract, each change classified by who it can
//! break. **Breaking**: a reader or a producer that worked before may fail or read different
//! data (a column removed, a type narrowed or changed, a length or range reduced, nullability
//! or uniqueness tightened, the primary key changed, allowed values removed, a blocking rule
//! added or tightened). **Non-breaking**: everything that worked still works (an optional
//! column added, a type widened, a constraint relaxed, a warning rule added). **Metadata**:
//! nothing about the data changes (descriptions, owners, SLAs, tags, the version label).

use std::collections::BTreeMap;

use arrow::datatypes::DataType;
use serde::Serialize;

use crate::contract::{Contract, LogicalTypeOptions, QualityRule, SchemaProperty, Severity};
use crate::types::arrow_type;

/// Who a change can break, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeClass {
    Metadata,
    NonBreaking,
    Breaking,
}

impl ChangeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeClass::Metadata => "metadata",
            ChangeClass::NonBreaking => "non_breaking",
            ChangeClass::Breaking => "breaking",
        }
    }
}

/// One change, with the column it is about (none for the whole table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub class: ChangeClass,
    pub column: Option<String>,
    pub what: String,
}

fn change(class: ChangeClass, column: Option<&str>, what: String) -> Change {
    Change {
        class,
        column: column.map(str::to_string),
        what,
    }
}

/// Every change from `old` to `new`, breaking ones first.
pub fn diff_contracts(old: &Contract, new: &Contract) -> Vec<Change> {
    let mut out = Vec::new();
    let props = |c: &Contract| -> BTreeMap<String, SchemaProperty> {
        c.table()
            .map(|t| {
                t.properties
                    .iter()
                    .map(|p| (p.name.clone(), p.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (before, after) = (props(old), props(new));
    for (name, p) in &before {
        match after.get(name) {
            None => out.push(change(
                ChangeClass::Breaking,
                Some(name),
                format!("column `{name}` removed"),
            )),
            Some(q) => diff_property(p, q, &mut out),
        }
    }
    for (name, q) in &after {
        if before.contains_key(name) {
            continue;
        }
        if q.required || q.primary_key {
            out.push(change(
                ChangeClass::Breaking,
                Some(name),
                format!("required column `{name}` added: data without it is refused"),
            ));
        } else {
            out.push(change(
                ChangeClass::NonBreaking,
                Some(name),
                format!("optional column `{name}` added"),
            ));
        }
    }
    fn keys(m: &BTreeMap<String, SchemaProperty>) -> Vec<&String> {
        m.iter()
            .filter(|(_, p)| p.primary_key)
            .map(|(n, _)| n)
            .collect()
    }
    let (old_key, new_key) = (keys(&before), keys(&after));
    if old_key != new_key {
        // Said of each column that joins or leaves the key: readers of those columns (joins,
        // lookups by key) are the ones it reaches.
        let what = format!(
            "primary key changed from ({}) to ({})",
            join(&old_key),
            join(&new_key)
        );
        for column in old_key.iter().filter(|c| !new_key.contains(c)) {
            out.push(change(ChangeClass::Breaking, Some(column), what.clone()));
        }
        for column in new_key.iter().filter(|c| !old_key.contains(c)) {
            out.push(change(ChangeClass::Breaking, Some(column), what.clone()));
        }
    }
    let table_rules = |c: &Contract| c.table().map(|t| t.quality.clone()).unwrap_or_default();
    diff_rules(None, &table_rules(old), &table_rules(new), &mut out);
    diff_metadata(old, new, &mut out);
    out.sort_by_key(|c| std::cmp::Reverse(c.class));
    out
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn diff_property(p: &SchemaProperty, q: &SchemaProperty, out: &mut Vec<Change>) {
    let name = p.name.as_str();
    let (was, is) = (arrow_type(p), arrow_type(q));
    if was != is {
        let class = if widens(&was, &is) {
            ChangeClass::NonBreaking
        } else {
            ChangeClass::Breaking
        };
        let how = if class == ChangeClass::NonBreaking {
            "widened"
        } else {
            "changed"
        };
        out.push(change(
            class,
            Some(name),
            format!("type of `{name}` {how} from {was} to {is}"),
        ));
    }
    let required = |p: &SchemaProperty| p.required || p.primary_key;
    if required(p) != required(q) {
        out.push(if required(q) {
            change(
                ChangeClass::Breaking,
                Some(name),
                format!("`{name}` made required: rows with no value are refused"),
            )
        } else {
            change(
                ChangeClass::NonBreaking,
                Some(name),
                format!("`{name}` may now be null"),
            )
        });
    }
    if p.unique != q.unique {
        out.push(if q.unique {
            change(
                ChangeClass::Breaking,
                Some(name),
                format!("`{name}` made unique"),
            )
        } else {
            change(
                ChangeClass::NonBreaking,
                Some(name),
                format!("`{name}` no longer unique"),
            )
        });
    }
    let empty = LogicalTypeOptions::default();
    let o = p.logical_type_options.as_ref().unwrap_or(&empty);
    let n = q.logical_type_options.as_ref().unwrap_or(&empty);
    for (key, was, is, tighter) in [
        ("maxLength", o.max_length, n.max_length, Tighter::Lower),
        ("minLength", o.min_length, n.min_length, Tighter::Higher),
    ] {
        bound(name, key, was, is, tighter, out);
    }
    let number = |v: &Option<serde_yaml::Value>| v.as_ref().and_then(|v| v.as_f64());
    for (key, was, is, tighter) in [
        ("maximum", &o.maximum, &n.maximum, Tighter::Lower),
        ("minimum", &o.minimum, &n.minimum, Tighter::Higher),
        (
            "exclusiveMaximum",
            &o.exclusive_maximum,
            &n.exclusive_maximum,
            Tighter::Lower,
        ),
        (
            "exclusiveMinimum",
            &o.exclusive_minimum,
            &n.exclusive_minimum,
            Tighter::Higher,
        ),
    ] {
        bound(name, key, number(was), number(is), tighter, out);
    }
    for (key, was, is) in [
        ("pattern", &o.pattern, &n.pattern),
        ("format", &o.format, &n.format),
    ] {
        if was != is {
            let class = if is.is_none() {
                ChangeClass::NonBreaking
            } else {
                ChangeClass::Breaking
            };
            out.push(change(
                class,
                Some(name),
                format!(
                    "{key} of `{name}` {}",
                    match (was, is) {
                        (None, Some(v)) => format!("set to `{v}`"),
                        (Some(_), None) => "removed".to_string(),
                        (Some(a), Some(b)) => format!("changed from `{a}` to `{b}`"),
                        (None, None) => String::new(),
                    }
                ),
            ));
        }
    }
    if let (was, Some(is)) = (p.enum_strings(), q.enum_strings()) {
        let dropped: Vec<&String> = match &was {
            Some(was) => was.iter().filter(|v| !is.contains(v)).collect(),
            None => Vec::new(),
        };
        if was.is_none() {
            out.push(change(
                ChangeClass::Breaking,
                Some(name),
                format!("`{name}` limited to {} value(s)", is.len()),
            ));
        } else if !dropped.is_empty() {
            out.push(change(
                ChangeClass::Breaking,
                Some(name),
                format!("value(s) {} no longer allowed in `{name}`", join(&dropped)),
            ));
        } else if was.as_ref().is_some_and(|w| w.len() != is.len()) {
            out.push(change(
                ChangeClass::NonBreaking,
                Some(name),
                format!("more values allowed in `{name}`"),
            ));
        }
    } else if p.enum_values.is_some() && q.enum_values.is_none() {
        out.push(change(
            ChangeClass::NonBreaking,
            Some(name),
            format!("any value allowed in `{name}`"),
        ));
    }
    diff_rules(Some(name), &p.quality, &q.quality, out);
    let described = |p: &SchemaProperty| {
        format!(
            "{:?}{:?}{:?}{:?}{:?}",
            p.description, p.business_name, p.tags, p.classification, p.examples
        )
    };
    if described(p) != described(q) {
        out.push(change(
            ChangeClass::Metadata,
            Some(name),
            format!("description or labels of `{name}` changed"),
        ));
    }
}

/// Which way a bound tightens.
#[derive(Clone, Copy)]
enum Tighter {
    Lower,
    Higher,
}

fn bound<T: PartialOrd + std::fmt::Display>(
    column: &str,
    key: &str,
    was: Option<T>,
    is: Option<T>,
    tighter: Tighter,
    out: &mut Vec<Change>,
) {
    let text = |v: &Option<T>| v.as_ref().map_or("none".to_string(), |v| v.to_string());
    let tightened = match (&was, &is) {
        (None, None) => return,
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) if a == b => return,
        (Some(a), Some(b)) => match tighter {
            Tighter::Lower => b < a,
            Tighter::Higher => b > a,
        },
    };
    out.push(change(
        if tightened {
            ChangeClass::Breaking
        } else {
            ChangeClass::NonBreaking
        },
        Some(column),
        format!(
            "{key} of `{column}` {} from {} to {}",
            if tightened { "tightened" } else { "relaxed" },
            text(&was),
            text(&is)
        ),
    ));
}

/// A type every value of the old one converts to: integer to number (as ODCS widens), a
/// decimal with no fewer integer digits and no fewer decimal places.
fn widens(was: &DataType, is: &DataType) -> bool {
    use DataType::*;
    match (was, is) {
        (Int64, Float64) => true,
        (Decimal128(p, s), Decimal128(p2, s2)) => {
            s2 >= s && (*p2 as i16 - *s2 as i16) >= (*p as i16 - *s as i16)
        }
        (Decimal128(..), Float64) => true,
        _ => false,
    }
}

/// A rule's identity across versions: its name, id or what it measures.
fn rule_key(rule: &QualityRule) -> String {
    rule.name
        .clone()
        .or_else(|| rule.id.clone())
        .unwrap_or_else(|| {
            format!(
                "{}{}{}",
                rule.metric.as_deref().unwrap_or_default(),
                rule.rule.as_deref().unwrap_or_default(),
                rule.query.as_deref().unwrap_or_default()
            )
        })
}

fn diff_rules(
    column: Option<&str>,
    old: &[QualityRule],
    new: &[QualityRule],
    out: &mut Vec<Change>,
) {
    let on = column.map(|c| format!(" on `{c}`")).unwrap_or_default();
    let by_key = |rules: &[QualityRule]| -> BTreeMap<String, QualityRule> {
        rules.iter().map(|r| (rule_key(r), r.clone())).collect()
    };
    let (before, after) = (by_key(old), by_key(new));
    for (key, rule) in &after {
        let blocking = rule.severity() == Severity::Error;
        match before.get(key) {
            None => out.push(change(
                if blocking {
                    ChangeClass::Breaking
                } else {
                    ChangeClass::NonBreaking
                },
                column,
                format!(
                    "{} rule `{key}` added{on}",
                    if blocking { "blocking" } else { "warning" }
                ),
            )),
            Some(was) if format!("{was:?}") != format!("{rule:?}") => {
                let relaxed = relaxes(was, rule);
                let class = if relaxed || !blocking {
                    ChangeClass::NonBreaking
                } else {
                    ChangeClass::Breaking
                };
                out.push(change(
                    class,
                    column,
                    format!(
                        "rule `{key}`{on} {}",
                        if relaxed { "relaxed" } else { "changed" }
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        out.push(change(
            ChangeClass::NonBreaking,
            column,
            format!("rule `{key}`{on} removed"),
        ));
    }
}

/// The same rule with only its threshold moved the permissive way.
fn relaxes(was: &QualityRule, is: &QualityRule) -> bool {
    let mut same = is.clone();
    same.must_be_less_than = was.must_be_less_than;
    same.must_be_less_or_equal_to = was.must_be_less_or_equal_to;
    same.must_be_greater_than = was.must_be_greater_than;
    same.must_be_greater_or_equal_to = was.must_be_greater_or_equal_to;
    same.must_be_between = was.must_be_between;
    if format!("{same:?}") != format!("{was:?}") || is.severity() > was.severity() {
        return false;
    }
    let up = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => b >= a,
        (None, None) => true,
        _ => false,
    };
    let down = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => b <= a,
        (None, None) => true,
        _ => false,
    };
    let between = match (was.must_be_between, is.must_be_between) {
        (Some([lo, hi]), Some([lo2, hi2])) => lo2 <= lo && hi2 >= hi,
        (None, None) => true,
        _ => false,
    };
    up(was.must_be_less_than, is.must_be_less_than)
        && up(was.must_be_less_or_equal_to, is.must_be_less_or_equal_to)
        && down(was.must_be_greater_than, is.must_be_greater_than)
        && down(
            was.must_be_greater_or_equal_to,
            is.must_be_greater_or_equal_to,
        )
        && between
}

fn diff_metadata(old: &Contract, new: &Contract, out: &mut Vec<Change>) {
    let fields: [(&str, String, String); 6] = [
        (
            "description",
            format!("{:?}", old.description),
            format!("{:?}", new.description),
        ),
        (
            "team and owners",
            format!("{:?}", old.team),
            format!("{:?}", new.team),
        ),
        (
            "SLA properties",
            format!("{:?}", old.sla_properties),
            format!("{:?}", new.sla_properties),
        ),
        ("version", old.version.clone(), new.version.clone()),
        ("status", old.status.clone(), new.status.clone()),
        (
            "tags and support channels",
            format!("{:?}{:?}", old.tags, old.support),
            format!("{:?}{:?}", new.tags, new.support),
        ),
    ];
    for (what, a, b) in fields {
        if a != b {
            out.push(change(
                ChangeClass::Metadata,
                None,
                format!("{what} changed"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::contract::parse_contract;

    const BASE: &str = "apiVersion: v3.1.0
kind: DataContract
id: orders
version: 1.0.0
status: active
description:
  purpose: Orders.
schema:
  - name: orders
    properties:
      - name: order_id
        logicalType: integer
        primaryKey: true
      - name: amount
        logicalType: number
        logicalTypeOptions:
          minimum: 0
      - name: note
        logicalType: string
        logicalTypeOptions:
          maxLength: 200
      - name: qty
        logicalType: integer
        physicalType: int32
        quality:
          - name: qty_positive
            metric: invalidValues
            arguments:
              validValues: [1, 2, 3]
            mustBeLessOrEqualTo: 5
            unit: percent
";

    fn contract(text: &str) -> Contract {
        let (c, d) = parse_contract(Path::new("orders.odcs.yaml"), text);
        c.unwrap_or_else(|| panic!("{d:?}"))
    }

    fn diff(new: &str) -> Vec<(ChangeClass, String)> {
        diff_contracts(&contract(BASE), &contract(new))
            .into_iter()
            .map(|c| (c.class, c.what))
            .collect()
    }

    #[test]
    fn the_same_contract_has_no_change() {
        assert!(diff(BASE).is_empty());
    }

    #[test]
    fn a_removed_column_is_breaking_and_an_optional_one_added_is_not() {
        let removed = BASE.replace(
            "      - name: note\n        logicalType: string\n        logicalTypeOptions:\n          maxLength: 200\n",
            "",
        );
        assert_eq!(
            diff(&removed),
            [(ChangeClass::Breaking, "column `note` removed".to_string())]
        );
        let added = format!("{BASE}      - name: channel\n        logicalType: string\n");
        assert_eq!(
            diff(&added),
            [(
                ChangeClass::NonBreaking,
                "optional column `channel` added".to_string()
            )]
        );
        let required = format!(
            "{BASE}      - name: channel\n        logicalType: string\n        required: true\n"
        );
        assert_eq!(diff(&required)[0].0, ChangeClass::Breaking);
    }

    #[test]
    fn narrowing_is_breaking_and_widening_is_not() {
        let narrowed = BASE.replace(
            "        logicalType: number\n",
            "        logicalType: integer\n",
        );
        assert_eq!(
            diff(&narrowed)[0].0,
            ChangeClass::Breaking,
            "{:?}",
            diff(&narrowed)
        );
        let money = |t: &str| {
            BASE.replace(
                "        logicalType: number\n",
                &format!("        logicalType: number\n        physicalType: {t}\n"),
            )
        };
        let wider = diff_contracts(
            &contract(&money("decimal(12,2)")),
            &contract(&money("decimal(14,3)")),
        );
        assert_eq!(wider.len(), 1, "{wider:?}");
        assert_eq!(wider[0].class, ChangeClass::NonBreaking);
        assert_eq!(
            wider[0].what,
            "type of `amount` widened from Decimal128(12, 2) to Decimal128(14, 3)"
        );
        let fewer_places = diff_contracts(
            &contract(&money("decimal(12,2)")),
            &contract(&money("decimal(12,1)")),
        );
        assert_eq!(fewer_places[0].class, ChangeClass::Breaking);
        let widened = BASE.replace(
            "        logicalType: integer\n        physicalType: int32\n",
            "        logicalType: number\n",
        );
        assert_eq!(
            diff(&widened),
            [(
                ChangeClass::NonBreaking,
                "type of `qty` widened from Int64 to Float64".to_string()
            )]
        );
        let shorter = BASE.replace("maxLength: 200", "maxLength: 100");
        assert_eq!(
            diff(&shorter),
            [(
                ChangeClass::Breaking,
                "maxLength of `note` tightened from 200 to 100".to_string()
            )]
        );
        let longer = BASE.replace("maxLength: 200", "maxLength: 400");
        assert_eq!(diff(&longer)[0].0, ChangeClass::NonBreaking);
        let min = BASE.replace("minimum: 0", "minimum: 1");
        assert_eq!(diff(&min)[0].0, ChangeClass::Breaking);
    }

    #[test]
    fn nullability_keys_and_rules() {
        let required = BASE.replace(
            "      - name: note\n        logicalType: string\n",
            "      - name: note\n        logicalType: string\n        required: true\n",
        );
        assert_eq!(diff(&required)[0].0, ChangeClass::Breaking);
        let key = BASE.replace("        primaryKey: true\n", "");
        assert!(
            diff(&key)
                .iter()
                .any(|(c, w)| *c == ChangeClass::Breaking && w.starts_with("primary key changed")),
            "{:?}",
            diff(&key)
        );
        let tighter = BASE.replace("mustBeLessOrEqualTo: 5", "mustBeLessOrEqualTo: 1");
        assert_eq!(
            diff(&tighter),
            [(
                ChangeClass::Breaking,
                "rule `qty_positive` on `qty` changed".to_string()
            )]
        );
        let looser = BASE.replace("mustBeLessOrEqualTo: 5", "mustBeLessOrEqualTo: 10");
        assert_eq!(
            diff(&looser),
            [(
                ChangeClass::NonBreaking,
                "rule `qty_positive` on `qty` relaxed".to_string()
            )]
        );
        let warning = BASE.replace(
            "            unit: percent\n",
            "            unit: percent\n            severity: warning\n",
        );
        assert_eq!(diff(&warning)[0].0, ChangeClass::NonBreaking);
    }

    #[test]
    fn descriptions_and_versions_are_metadata() {
        let text = BASE
            .replace("purpose: Orders.", "purpose: Every order of the shop.")
            .replace("version: 1.0.0", "version: 1.0.1");
        let d = diff(&text);
        assert!(!d.is_empty());
        assert!(d.iter().all(|(c, _)| *c == ChangeClass::Metadata), "{d:?}");
    }
}
