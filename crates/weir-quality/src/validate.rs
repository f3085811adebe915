//! The row pass: every incoming row is either stored (typed, in contract order) or
//! quarantined with the first rule it broke. Rule counts include every failure, so a row that
//! breaks two rules counts for both.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use weir_ingest::SourceBatch;
use weir_model::{Contract, Unit};

use crate::check::{CheckResult, CheckScope};
use crate::convert::{display_value, numeric_view, text_view, to_target};
use crate::error::Result;
use crate::exact::type_failure;
use crate::rules::{CompiledContract, DatasetRule, KeyRule, ParseOptions, ValueCheckKind, compile};

const OK: u32 = u32::MAX;

/// A contract ready to check batches against.
pub struct Validator {
    compiled: CompiledContract,
    options: ParseOptions,
    schema: SchemaRef,
}

/// One row set aside, with why and where from.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedRow {
    pub position: u64,
    pub rule_id: String,
    pub reason: String,
    pub raw: String,
    /// The record's exact bytes when they are not valid UTF-8 (`raw` is then lossy).
    pub raw_bytes: Option<Vec<u8>>,
}

/// The outcome of checking one batch.
pub struct Validated {
    /// Rows that passed, in the contract's types and order.
    pub good: RecordBatch,
    /// The position in its unit of each row of `good`.
    pub good_positions: Vec<u64>,
    pub quarantined: Vec<QuarantinedRow>,
    /// Failures per row-level rule id, counting every rule a row broke.
    pub rule_counts: BTreeMap<String, u64>,
}

impl Validator {
    pub fn new(asset: &str, contract: &Contract, options: ParseOptions) -> Result<Validator> {
        let compiled = compile(asset, contract)?;
        let fields: Vec<Field> = compiled
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.target.clone(), c.required_rule.is_none()))
            .collect();
        Ok(Validator {
            compiled,
            options,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The schema stored rows have: the Delta table's schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.compiled
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// The columns the contract requires (`required` or `primaryKey`), in contract order: a
    /// file without one of them cannot be read.
    pub fn required_column_names(&self) -> Vec<String> {
        self.compiled
            .columns
            .iter()
            .filter(|c| c.required_rule.is_some())
            .map(|c| c.name.clone())
            .collect()
    }

    /// Every dataset rule of the contract, including the duplicate checks `unique` and
    /// `primaryKey` become (a model run audits them on the post-publish view).
    pub fn dataset_rules(&self) -> &[DatasetRule] {
        &self.compiled.dataset_rules
    }

    /// The dataset rules left once `unique` and `primaryKey` are enforced row by row by a
    /// [`crate::KeyGuard`] (a source run): the table is then unique by construction.
    pub fn dataset_rules_without_keys(&self) -> Vec<DatasetRule> {
        self.compiled
            .dataset_rules
            .iter()
            .filter(|r| !self.compiled.key_rules.iter().any(|k| k.id == r.id))
            .cloned()
            .collect()
    }

    /// The keys the contract declares unique: each `unique` column, and the `primaryKey`.
    pub fn key_rules(&self) -> &[KeyRule] {
        &self.compiled.key_rules
    }

    /// The results of the key rules enforced row by row: how many rows each refused, as
    /// duplicates of a row earlier in the run or already in the table. They never block: the
    /// refused rows are quarantined, so the table stays unique whatever the count
    /// (`max_quarantined` bounds how many a run may refuse).
    pub fn key_checks(&self, quarantine_by_rule: &BTreeMap<String, u64>) -> Vec<CheckResult> {
        self.compiled
            .key_rules
            .iter()
            .map(|k| {
                let refused = quarantine_by_rule
                    .get(&k.quarantine_rule)
                    .copied()
                    .unwrap_or(0);
                CheckResult {
                    id: k.id.clone(),
                    metric: "duplicateValues".into(),
                    column: Some(k.columns.join("+")),
                    scope: CheckScope::Run,
                    value: refused as f64,
                    threshold: "mustBe 0".into(),
                    unit: "rows",
                    passed: refused == 0,
                    severity: weir_model::Severity::Warning,
                }
            })
            .collect()
    }

    pub fn validate(&self, source: &SourceBatch) -> Result<Validated> {
        let batch = &source.batch;
        let n = batch.num_rows();
        let mut tracker = Tracker {
            first: vec![OK; n],
            reasons: HashMap::new(),
            counts: vec![0; self.compiled.rule_ids.len()],
        };
        let mut typed_columns: Vec<ArrayRef> = Vec::with_capacity(self.compiled.columns.len());
        for (idx, spec) in self.compiled.columns.iter().enumerate() {
            let input = batch.column(idx);
            let typed = to_target(input, &spec.target, &self.options)?;
            if typed.null_count() > input.null_count() {
                for row in 0..n {
                    if input.is_valid(row) && typed.is_null(row) {
                        tracker.fail(row, spec.type_rule, || {
                            format!(
                                "`{}`: {}",
                                spec.name,
                                type_failure(input, row, &spec.target, &self.options)
                            )
                        });
                    }
                }
            }
            if let Some(rule) = spec.required_rule
                && input.null_count() > 0
            {
                for row in 0..n {
                    if input.is_null(row) {
                        tracker.fail(row, rule, || {
                            format!("`{}` is required but missing", spec.name)
                        });
                    }
                }
            }
            for check in &spec.checks {
                self.run_check(&mut tracker, check.rule, &check.kind, &spec.name, &typed);
            }
            typed_columns.push(typed);
        }
        let typed = RecordBatch::try_new_with_options(
            self.schema.clone(),
            typed_columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
        );
        let bad: Vec<u32> = (0..n as u32)
            .filter(|&i| tracker.first[i as usize] != OK)
            .collect();
        // Typed columns of required fields may hold nulls of failed rows: filter before the
        // non-null schema is enforced.
        let good = if bad.is_empty() {
            typed?
        } else {
            let keep: BooleanArray = tracker.first.iter().map(|f| Some(*f == OK)).collect();
            let relaxed = Arc::new(Schema::new(
                self.schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
            ));
            let columns = match typed {
                Ok(b) => b.columns().to_vec(),
                Err(_) => self.retype(batch)?,
            };
            let filtered = filter_record_batch(&RecordBatch::try_new(relaxed, columns)?, &keep)?;
            RecordBatch::try_new(self.schema.clone(), filtered.columns().to_vec())?
        };
        let mut quarantined = self.quarantine_rows(source, &bad, &tracker)?;
        for reject in &source.rejects {
            quarantined.push(QuarantinedRow {
                position: reject.position,
                rule_id: reject.rule.to_string(),
                reason: reject.reason.clone(),
                raw: reject.raw.clone(),
                raw_bytes: reject.raw_bytes.clone(),
            });
        }
        let mut rule_counts = BTreeMap::new();
        for (idx, count) in tracker.counts.iter().enumerate() {
            if *count > 0 {
                rule_counts.insert(self.compiled.rule_ids[idx].clone(), *count);
            }
        }
        for reject in &source.rejects {
            *rule_counts.entry(reject.rule.to_string()).or_insert(0) += 1;
        }
        let good_positions = source
            .positions
            .iter()
            .zip(&tracker.first)
            .filter(|(_, f)| **f == OK)
            .map(|(p, _)| *p)
            .collect();
        Ok(Validated {
            good,
            good_positions,
            quarantined,
            rule_counts,
        })
    }

    /// Typed columns again, for the rare batch whose failed rows break the non-null schema.
    fn retype(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let mut out = Vec::new();
        for (idx, spec) in self.compiled.columns.iter().enumerate() {
            out.push(to_target(batch.column(idx), &spec.target, &self.options)?);
        }
        Ok(out)
    }

    fn run_check(
        &self,
        tracker: &mut Tracker,
        rule: usize,
        kind: &ValueCheckKind,
        column: &str,
        typed: &ArrayRef,
    ) {
        match kind {
            ValueCheckKind::Minimum { bound, exclusive }
            | ValueCheckKind::Maximum { bound, exclusive } => {
                let is_min = matches!(kind, ValueCheckKind::Minimum { .. });
                let Some(values) = numeric_view(typed) else {
                    return;
                };
                for row in 0..values.len() {
                    if values.is_null(row) {
                        continue;
                    }
                    let v = values.value(row);
                    let ok = match (is_min, exclusive) {
                        (true, false) => v >= *bound,
                        (true, true) => v > *bound,
                        (false, false) => v <= *bound,
                        (false, true) => v < *bound,
                    };
                    if !ok {
                        let word = match (is_min, exclusive) {
                            (true, false) => "below the minimum",
                            (true, true) => "not above the exclusive minimum",
                            (false, false) => "above the maximum",
                            (false, true) => "not below the exclusive maximum",
                        };
                        tracker.fail(row, rule, || {
                            format!(
                                "`{column}`: {} is {word} {}",
                                display_value(typed, row),
                                bound_text(typed, *bound)
                            )
                        });
                    }
                }
            }
            _ => {
                let Some(text) = text_view(typed) else { return };
                // A clone of the regex has a cache pool of its own: batches validated on
                // several threads at once then never contend for one regex's cache.
                let regex = match kind {
                    ValueCheckKind::Pattern(re) | ValueCheckKind::Format(_, re) => Some(re.clone()),
                    ValueCheckKind::InvalidValues { pattern, .. } => pattern.clone(),
                    _ => None,
                };
                let matches = |v: &str| regex.as_ref().is_none_or(|re| re.is_match(v));
                for row in 0..text.len() {
                    if text.is_null(row) {
                        continue;
                    }
                    let v = text.value(row);
                    let failure = match kind {
                        ValueCheckKind::MinLength(n) => (v.chars().count() < *n as usize)
                            .then(|| format!("shorter than {n} characters")),
                        ValueCheckKind::MaxLength(n) => (v.chars().count() > *n as usize)
                            .then(|| format!("longer than {n} characters")),
                        ValueCheckKind::Pattern(re) => (!matches(v))
                            .then(|| format!("does not match pattern `{}`", re.as_str())),
                        ValueCheckKind::Format(name, _) => {
                            (!matches(v)).then(|| format!("is not a valid {name}"))
                        }
                        ValueCheckKind::InvalidValues { valid, pattern } => {
                            if valid.as_ref().is_some_and(|set| !set.contains(v)) {
                                Some("is not one of the valid values".to_string())
                            } else {
                                pattern
                                    .as_ref()
                                    .filter(|_| !matches(v))
                                    .map(|re| format!("does not match pattern `{}`", re.as_str()))
                            }
                        }
                        ValueCheckKind::Minimum { .. } | ValueCheckKind::Maximum { .. } => None,
                    };
                    if let Some(why) = failure {
                        tracker.fail(row, rule, || {
                            format!("`{column}`: {} {why}", display_value(typed, row))
                        });
                    }
                }
            }
        }
    }

    fn quarantine_rows(
        &self,
        source: &SourceBatch,
        bad: &[u32],
        tracker: &Tracker,
    ) -> Result<Vec<QuarantinedRow>> {
        if bad.is_empty() {
            return Ok(Vec::new());
        }
        let raws: Vec<String> = match &source.raw_lines {
            Some(lines) => bad
                .iter()
                .map(|&i| lines.value(i as usize).to_string())
                .collect(),
            None => {
                let rows = take_record_batch(&source.batch, &UInt32Array::from(bad.to_vec()))?;
                let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
                writer.write(&rows)?;
                writer.finish()?;
                let text = String::from_utf8_lossy(&writer.into_inner()).into_owned();
                text.lines().map(str::to_string).collect()
            }
        };
        Ok(bad
            .iter()
            .zip(raws)
            .map(|(&row, raw)| {
                let row = row as usize;
                let rule = tracker.first[row] as usize;
                QuarantinedRow {
                    position: source.positions.get(row).copied().unwrap_or(0),
                    rule_id: self.compiled.rule_ids[rule].clone(),
                    reason: tracker.reasons.get(&row).cloned().unwrap_or_default(),
                    raw,
                    raw_bytes: None,
                }
            })
            .collect())
    }

    /// Results of the rules measured on this run's rows (`invalidValues`), from the rule
    /// counts summed over all batches of the run.
    pub fn run_checks(
        &self,
        rows_in: u64,
        rule_counts: &BTreeMap<String, u64>,
    ) -> Vec<CheckResult> {
        self.compiled
            .run_rules
            .iter()
            .map(|r| {
                let failures = rule_counts.get(&r.id).copied().unwrap_or(0) as f64;
                let value = match r.unit {
                    Unit::Rows => failures,
                    Unit::Percent if rows_in == 0 => 0.0,
                    Unit::Percent => failures * 100.0 / rows_in as f64,
                };
                CheckResult {
                    id: r.id.clone(),
                    metric: "invalidValues".into(),
                    column: Some(r.column.clone()),
                    scope: CheckScope::Run,
                    value,
                    threshold: r.operator.to_string(),
                    unit: unit_name(r.unit),
                    passed: r.operator.holds(value),
                    severity: r.severity,
                }
            })
            .collect()
    }
}

pub(crate) fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Rows => "rows",
        Unit::Percent => "percent",
    }
}

fn bound_text(typed: &ArrayRef, bound: f64) -> String {
    match typed.data_type() {
        arrow::datatypes::DataType::Date32 => chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|e| e.checked_add_signed(chrono::Duration::days(bound as i64)))
            .map(|d| d.to_string())
            .unwrap_or_else(|| bound.to_string()),
        arrow::datatypes::DataType::Timestamp(..) => {
            chrono::DateTime::from_timestamp_micros(bound as i64)
                .map(|d| d.to_rfc3339())
                .unwrap_or_else(|| bound.to_string())
        }
        _ => bound.to_string(),
    }
}

struct Tracker {
    /// The first rule each row broke, or `OK`.
    first: Vec<u32>,
    reasons: HashMap<usize, String>,
    counts: Vec<u64>,
}

impl Tracker {
    fn fail(&mut self, row: usize, rule: usize, reason: impl FnOnce() -> String) {
        self.counts[rule] += 1;
        if self.first[row] == OK {
            self.first[row] = rule as u32;
            self.reasons.insert(row, reason());
        }
    }
}
