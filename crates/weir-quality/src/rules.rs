//! A contract compiled into the checks weir runs: per-column value checks for the row pass,
//! and dataset rules for the audit.

use std::collections::HashSet;

use arrow::datatypes::DataType;
use chrono::NaiveDate;
use regex::Regex;
use serde_yaml::Value;
use weir_model::{Contract, Operator, RuleKind, SchemaProperty, Severity, Unit, arrow_type};

use crate::error::{QualityError, Result};

/// How text is read into dates and timestamps (from the source definition).
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    pub timestamp_format: Option<String>,
    pub date_format: Option<String>,
}

pub(crate) struct ColumnSpec {
    pub name: String,
    pub target: DataType,
    pub type_rule: usize,
    pub required_rule: Option<usize>,
    pub checks: Vec<ValueCheck>,
}

pub(crate) struct ValueCheck {
    pub rule: usize,
    pub kind: ValueCheckKind,
}

pub(crate) enum ValueCheckKind {
    MinLength(u64),
    MaxLength(u64),
    Pattern(Regex),
    Format(&'static str, Regex),
    Minimum {
        bound: f64,
        exclusive: bool,
    },
    Maximum {
        bound: f64,
        exclusive: bool,
    },
    /// ODCS `invalidValues`: a value is invalid when it is outside `valid` or does not
    /// match `pattern` (either may be absent); one failure per row, whichever it broke.
    InvalidValues {
        valid: Option<HashSet<String>>,
        pattern: Option<Regex>,
    },
}

/// A rule measured over the rows of one run (`invalidValues`): its failing rows are
/// quarantined, and the count or share of them is held against the rule's operator.
pub(crate) struct RunRule {
    pub id: String,
    pub column: String,
    pub operator: Operator,
    pub unit: Unit,
    pub severity: Severity,
}

/// A rule measured over the whole table as it will be after publishing.
#[derive(Debug, Clone)]
pub struct DatasetRule {
    pub id: String,
    pub column: Option<String>,
    pub kind: DatasetRuleKind,
    pub operator: Operator,
    pub unit: Unit,
    pub severity: Severity,
}

#[derive(Debug, Clone)]
pub enum DatasetRuleKind {
    NullValues(String),
    MissingValues(String, Vec<Option<String>>),
    DuplicateValues(Vec<String>),
    RowCount,
    Sql(String),
}

impl DatasetRule {
    /// A SQL rule's query with its placeholders filled in for `table`, as the audit runs it.
    pub fn sql_for(&self, table: &str) -> Option<String> {
        match &self.kind {
            DatasetRuleKind::Sql(query) => Some(crate::audit::substitute(
                query,
                table,
                self.column.as_deref(),
            )),
            _ => None,
        }
    }
}

impl DatasetRuleKind {
    pub fn metric(&self) -> &'static str {
        match self {
            DatasetRuleKind::NullValues(_) => "nullValues",
            DatasetRuleKind::MissingValues(..) => "missingValues",
            DatasetRuleKind::DuplicateValues(_) => "duplicateValues",
            DatasetRuleKind::RowCount => "rowCount",
            DatasetRuleKind::Sql(_) => "sql",
        }
    }
}

/// A key the contract declares unique: a `unique` column (`<column>.unique`) or the
/// `primaryKey` (over its columns in `primaryKeyPosition` order). A source run enforces it row
/// by row: a row whose key is already in the table, or earlier in the run, is quarantined
/// under `quarantine_rule` (`<column>.duplicate` for one column, `primaryKey.duplicate` for a
/// composite key).
#[derive(Debug, Clone)]
pub struct KeyRule {
    pub id: String,
    pub columns: Vec<String>,
    pub quarantine_rule: String,
}

pub(crate) struct CompiledContract {
    pub columns: Vec<ColumnSpec>,
    pub key_rules: Vec<KeyRule>,
    /// Row-level rule ids, indexed by the `rule` fields above.
    pub rule_ids: Vec<String>,
    pub run_rules: Vec<RunRule>,
    pub dataset_rules: Vec<DatasetRule>,
}

pub(crate) fn compile(asset: &str, contract: &Contract) -> Result<CompiledContract> {
    let err = |message: String| QualityError::Contract {
        asset: asset.to_string(),
        message,
    };
    let table = contract
        .table()
        .ok_or_else(|| err("no schema object".into()))?;
    let mut rule_ids: Vec<String> = Vec::new();
    let mut new_rule = |id: String| {
        rule_ids.push(id);
        rule_ids.len() - 1
    };
    let mut columns = Vec::new();
    let mut run_rules = Vec::new();
    let mut dataset_rules = Vec::new();
    let mut key_rules = Vec::new();
    for prop in &table.properties {
        let target = arrow_type(prop);
        let type_rule = new_rule(format!("{}.type", prop.name));
        let required_rule = (prop.required || prop.primary_key)
            .then(|| new_rule(format!("{}.required", prop.name)));
        let mut checks = Vec::new();
        if let Some(options) = &prop.logical_type_options {
            if let Some(n) = options.min_length {
                checks.push(ValueCheck {
                    rule: new_rule(format!("{}.minLength", prop.name)),
                    kind: ValueCheckKind::MinLength(n),
                });
            }
            if let Some(n) = options.max_length {
                checks.push(ValueCheck {
                    rule: new_rule(format!("{}.maxLength", prop.name)),
                    kind: ValueCheckKind::MaxLength(n),
                });
            }
            if let Some(p) = &options.pattern {
                let re = Regex::new(p)
                    .map_err(|e| err(format!("property `{}`: invalid pattern: {e}", prop.name)))?;
                checks.push(ValueCheck {
                    rule: new_rule(format!("{}.pattern", prop.name)),
                    kind: ValueCheckKind::Pattern(re),
                });
            }
            if let Some(format) = options.format.as_deref()
                && target == DataType::Utf8
                && let Some((name, re)) = format_regex(format)
            {
                checks.push(ValueCheck {
                    rule: new_rule(format!("{}.format", prop.name)),
                    kind: ValueCheckKind::Format(name, re),
                });
            }
            for (key, value, exclusive, is_min) in [
                ("minimum", &options.minimum, false, true),
                ("exclusiveMinimum", &options.exclusive_minimum, true, true),
                ("maximum", &options.maximum, false, false),
                ("exclusiveMaximum", &options.exclusive_maximum, true, false),
            ] {
                let Some(value) = value else { continue };
                let bound = bound_value(&target, value).ok_or_else(|| {
                    err(format!(
                        "property `{}`: `{key}` {value:?} does not fit its type",
                        prop.name
                    ))
                })?;
                let rule = new_rule(format!("{}.{key}", prop.name));
                let kind = if is_min {
                    ValueCheckKind::Minimum { bound, exclusive }
                } else {
                    ValueCheckKind::Maximum { bound, exclusive }
                };
                checks.push(ValueCheck { rule, kind });
            }
        }
        if let Some(valid) = prop.enum_strings() {
            checks.push(ValueCheck {
                rule: new_rule(format!("{}.enum", prop.name)),
                kind: ValueCheckKind::InvalidValues {
                    valid: Some(valid.into_iter().collect()),
                    pattern: None,
                },
            });
        }
        for (idx, q) in prop.quality.iter().enumerate() {
            let kind = q.kind(Some(&prop.name)).map_err(err)?;
            let operator = single_operator(asset, q.operators())?;
            let id =
                q.id.clone()
                    .unwrap_or_else(|| format!("{}.quality[{idx}]", prop.name));
            match kind {
                RuleKind::InvalidValues {
                    column,
                    valid_values,
                    pattern,
                } => {
                    let rule = new_rule(id.clone());
                    let pattern = pattern
                        .map(|p| {
                            Regex::new(&p)
                                .map_err(|e| err(format!("rule `{id}`: invalid pattern: {e}")))
                        })
                        .transpose()?;
                    let valid = valid_values.map(|v| v.into_iter().collect());
                    checks.push(ValueCheck {
                        rule,
                        kind: ValueCheckKind::InvalidValues { valid, pattern },
                    });
                    run_rules.push(RunRule {
                        id,
                        column,
                        operator,
                        unit: q.unit(),
                        severity: q.severity(),
                    });
                }
                other => {
                    let kind = dataset_kind(other)
                        .ok_or_else(|| err(format!("rule `{id}` cannot be measured on a table")))?;
                    dataset_rules.push(DatasetRule {
                        id,
                        column: Some(prop.name.clone()),
                        kind,
                        operator,
                        unit: q.unit(),
                        severity: q.severity(),
                    });
                }
            }
        }
        if prop.unique && !prop.primary_key {
            key_rules.push(KeyRule {
                id: format!("{}.unique", prop.name),
                columns: vec![prop.name.clone()],
                quarantine_rule: format!("{}.duplicate", prop.name),
            });
            dataset_rules.push(DatasetRule {
                id: format!("{}.unique", prop.name),
                column: Some(prop.name.clone()),
                kind: DatasetRuleKind::DuplicateValues(vec![prop.name.clone()]),
                operator: Operator::MustBe(0.0),
                unit: Unit::Rows,
                severity: Severity::Error,
            });
        }
        columns.push(ColumnSpec {
            name: prop.name.clone(),
            target,
            type_rule,
            required_rule,
            checks,
        });
    }
    let mut key: Vec<&SchemaProperty> = table.properties.iter().filter(|p| p.primary_key).collect();
    key.sort_by_key(|p| p.primary_key_position.unwrap_or(i64::MAX));
    if !key.is_empty() {
        key_rules.push(KeyRule {
            id: "primaryKey".into(),
            columns: key.iter().map(|p| p.name.clone()).collect(),
            quarantine_rule: match key.as_slice() {
                [one] => format!("{}.duplicate", one.name),
                _ => "primaryKey.duplicate".into(),
            },
        });
        dataset_rules.push(DatasetRule {
            id: "primaryKey".into(),
            column: None,
            kind: DatasetRuleKind::DuplicateValues(key.iter().map(|p| p.name.clone()).collect()),
            operator: Operator::MustBe(0.0),
            unit: Unit::Rows,
            severity: Severity::Error,
        });
    }
    for (idx, q) in table.quality.iter().enumerate() {
        let kind = q.kind(None).map_err(err)?;
        let operator = single_operator(asset, q.operators())?;
        let id =
            q.id.clone()
                .unwrap_or_else(|| format!("{}.quality[{idx}]", table.name));
        let kind = dataset_kind(kind)
            .ok_or_else(|| err(format!("rule `{id}` must sit under a property")))?;
        dataset_rules.push(DatasetRule {
            id,
            column: None,
            kind,
            operator,
            unit: q.unit(),
            severity: q.severity(),
        });
    }
    Ok(CompiledContract {
        columns,
        key_rules,
        rule_ids,
        run_rules,
        dataset_rules,
    })
}

/// The table-level form of a rule; `invalidValues` has none (it is measured in the row pass).
fn dataset_kind(kind: RuleKind) -> Option<DatasetRuleKind> {
    match kind {
        RuleKind::NullValues { column } => Some(DatasetRuleKind::NullValues(column)),
        RuleKind::MissingValues { column, missing } => {
            Some(DatasetRuleKind::MissingValues(column, missing))
        }
        RuleKind::DuplicateValues { columns } => Some(DatasetRuleKind::DuplicateValues(columns)),
        RuleKind::RowCount => Some(DatasetRuleKind::RowCount),
        RuleKind::Sql { query } => Some(DatasetRuleKind::Sql(query)),
        RuleKind::InvalidValues { .. } => None,
    }
}

fn single_operator(asset: &str, ops: Vec<Operator>) -> Result<Operator> {
    match ops.as_slice() {
        [op] => Ok(*op),
        _ => Err(QualityError::Contract {
            asset: asset.to_string(),
            message: "every quality rule needs exactly one operator (run `weir check`)".into(),
        }),
    }
}

/// Bounds live in the same numeric space as [`crate::convert::numeric_view`]: numbers as
/// themselves, dates as days since 1970-01-01, timestamps as microseconds since the epoch.
fn bound_value(target: &DataType, value: &Value) -> Option<f64> {
    match (target, value) {
        (DataType::Date32, Value::String(s)) => {
            let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
            Some((date - epoch).num_days() as f64)
        }
        (DataType::Timestamp(..), Value::String(s)) => {
            let ts =
                arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, s).ok()?;
            Some(ts.timestamp_micros() as f64)
        }
        (DataType::Utf8, _) => None,
        (_, Value::Number(n)) => n.as_f64(),
        (_, Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

pub(crate) fn format_regex(format: &str) -> Option<(&'static str, Regex)> {
    let (name, pattern) = match format {
        "email" => ("email", r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        "uuid" => (
            "uuid",
            r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        ),
        "uri" | "url" => ("uri", r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+$"),
        "hostname" => (
            "hostname",
            r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$",
        ),
        "ipv4" => (
            "ipv4",
            r"^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$",
        ),
        "ipv6" => ("ipv6", r"^[0-9a-fA-F:]+$"),
        _ => return None,
    };
    Regex::new(pattern).ok().map(|re| (name, re))
}
