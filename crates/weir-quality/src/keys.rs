//! `unique` and `primaryKey`, row by row: the first row of a run with a key is kept, later
//! rows with the same key are refused (quarantined). Keys are remembered per unit (file)
//! tentatively, so a unit that fails part-way leaves no key behind.
//!
//! Memory grows with the distinct keys of the run's new rows, never with the table: the
//! lookup against the published table is the orchestrator's, with the run's key bounds.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};

use crate::error::Result;
use crate::rules::KeyRule;
use crate::validate::{QuarantinedRow, Validated, Validator};

/// Where a kept row came from: the index of its unit in the run, and its position there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub unit: usize,
    pub position: u64,
}

struct GuardedKey {
    rule: KeyRule,
    indices: Vec<usize>,
    /// Keys seen in this run, the current unit's included, each with its packed [`Origin`].
    store: KeyStore,
}

/// The run's keys. One `integer` column (the usual `id`) is kept as the values themselves,
/// with no allocation per key: keys arriving in increasing order (ids, as files usually list
/// them) as [`Run`]s of consecutive keys at consecutive positions, a few bytes per run; any
/// other key in a map, 16 bytes a key with its packed origin. A unit that fails takes its keys
/// back out: its runs are the last ones, and its mapped keys carry its unit. Other keys are
/// kept as their row-format bytes, with the current unit's keys listed for that.
enum KeyStore {
    Int {
        /// Keys that arrived above every key before them; sorted, disjoint, in arrival order.
        runs: Vec<Run>,
        /// Keys that arrived below the largest key seen before them.
        scattered: HashMap<i64, u64>,
        /// The unit whose keys were inserted last (the one being read).
        unit: Option<usize>,
    },
    Bytes {
        converter: RowConverter,
        seen: HashMap<Box<[u8]>, u64>,
        unit_keys: Vec<Box<[u8]>>,
    },
}

/// Keys `key..key + len` of unit `unit`, at positions `position..position + len`.
#[derive(Debug, Clone, Copy)]
struct Run {
    key: i64,
    len: u64,
    unit: usize,
    position: u64,
}

impl Run {
    /// The last key of the run.
    fn end(&self) -> i128 {
        self.key as i128 + self.len as i128 - 1
    }
}

/// The key of one row, borrowed from a batch's columns.
enum Probe<'a> {
    Int(&'a arrow::array::Int64Array),
    Bytes(arrow::row::Rows),
}

const POSITION_BITS: u32 = 32;

/// An origin in one `u64`: the unit in the top 32 bits, the position in the low 32 (lines past
/// 2^32 are shown as 2^32 - 1; only the message uses them).
fn pack(origin: Origin) -> u64 {
    let position = origin.position.min((1 << POSITION_BITS) - 1);
    let unit = (origin.unit as u64).min((1 << (64 - POSITION_BITS)) - 1);
    (unit << POSITION_BITS) | position
}

fn unpack(packed: u64) -> Origin {
    Origin {
        unit: (packed >> POSITION_BITS) as usize,
        position: packed & ((1 << POSITION_BITS) - 1),
    }
}

impl KeyStore {
    fn probe<'a>(&self, columns: &'a [ArrayRef]) -> Result<Probe<'a>> {
        Ok(match self {
            KeyStore::Int { .. } => match columns
                .first()
                .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
            {
                Some(values) => Probe::Int(values),
                None => {
                    return Err(arrow::error::ArrowError::InvalidArgumentError(
                        "internal error: an integer key column is not Int64".into(),
                    )
                    .into());
                }
            },
            KeyStore::Bytes { converter, .. } => Probe::Bytes(converter.convert_columns(columns)?),
        })
    }

    fn get(&self, probe: &Probe<'_>, row: usize) -> Option<Origin> {
        match (self, probe) {
            (
                KeyStore::Int {
                    runs, scattered, ..
                },
                Probe::Int(values),
            ) => {
                let key = values.value(row);
                // Above the last run means above every key seen (a mapped key is always
                // below some run's end): the common case of increasing ids, answered at once.
                if (key as i128) > runs.last()?.end() {
                    return None;
                }
                if let Some(packed) = scattered.get(&key) {
                    return Some(unpack(*packed));
                }
                let i = runs.partition_point(|r| r.key <= key);
                let run = runs.get(i.checked_sub(1)?)?;
                let offset = key.abs_diff(run.key);
                (offset < run.len).then_some(Origin {
                    unit: run.unit,
                    position: run.position + offset,
                })
            }
            (KeyStore::Bytes { seen, .. }, Probe::Bytes(rows)) => {
                seen.get(rows.row(row).as_ref()).copied().map(unpack)
            }
            _ => None,
        }
    }

    fn insert(&mut self, probe: &Probe<'_>, row: usize, origin: Origin) {
        match (self, probe) {
            (
                KeyStore::Int {
                    runs,
                    scattered,
                    unit,
                },
                Probe::Int(values),
            ) => {
                let key = values.value(row);
                *unit = Some(origin.unit);
                match runs.last_mut() {
                    Some(last) if (key as i128) <= last.end() => {
                        scattered.insert(key, pack(origin));
                    }
                    Some(last)
                        if last.unit == origin.unit
                            && key as i128 == last.end() + 1
                            && origin.position == last.position + last.len =>
                    {
                        last.len += 1;
                    }
                    _ => runs.push(Run {
                        key,
                        len: 1,
                        unit: origin.unit,
                        position: origin.position,
                    }),
                }
            }
            (
                KeyStore::Bytes {
                    seen, unit_keys, ..
                },
                Probe::Bytes(rows),
            ) => {
                let key: Box<[u8]> = rows.row(row).as_ref().into();
                seen.insert(key.clone(), pack(origin));
                unit_keys.push(key);
            }
            _ => {}
        }
    }

    fn commit_unit(&mut self) {
        match self {
            KeyStore::Int { unit, .. } => *unit = None,
            KeyStore::Bytes { unit_keys, .. } => unit_keys.clear(),
        }
    }

    fn abort_unit(&mut self) {
        match self {
            KeyStore::Int {
                runs,
                scattered,
                unit,
            } => {
                // Rare (a file failing part-way), so a pass over the map is fine.
                if let Some(failed) = unit.take() {
                    while runs.last().is_some_and(|r| r.unit == failed) {
                        runs.pop();
                    }
                    let failed = (failed as u64).min((1 << (64 - POSITION_BITS)) - 1);
                    scattered.retain(|_, origin| *origin >> POSITION_BITS != failed);
                }
            }
            KeyStore::Bytes {
                seen, unit_keys, ..
            } => {
                for key in unit_keys.drain(..) {
                    seen.remove(&key);
                }
            }
        }
    }
}

/// The run-wide memory of keys for the contract's [`KeyRule`]s.
pub struct KeyGuard {
    keys: Vec<GuardedKey>,
    schema: SchemaRef,
    /// Unit names (file paths), for the reasons.
    units: Vec<String>,
}

impl KeyGuard {
    /// A guard for the validator's key rules, or `None` if the contract declares no key.
    /// `units` names the run's units in the order their rows arrive.
    pub fn new(validator: &Validator, units: Vec<String>) -> Result<Option<KeyGuard>> {
        let schema = validator.schema();
        let mut keys = Vec::new();
        for rule in validator.key_rules() {
            let mut indices = Vec::new();
            let mut fields = Vec::new();
            for column in &rule.columns {
                let idx = schema.index_of(column)?;
                fields.push(SortField::new(schema.field(idx).data_type().clone()));
                indices.push(idx);
            }
            let single_int = indices.len() == 1
                && indices.first().is_some_and(|i| {
                    schema.field(*i).data_type() == &arrow::datatypes::DataType::Int64
                });
            let store = if single_int {
                KeyStore::Int {
                    runs: Vec::new(),
                    scattered: HashMap::new(),
                    unit: None,
                }
            } else {
                KeyStore::Bytes {
                    converter: RowConverter::new(fields)?,
                    seen: HashMap::new(),
                    unit_keys: Vec::new(),
                }
            };
            keys.push(GuardedKey {
                rule: rule.clone(),
                indices,
                store,
            });
        }
        Ok((!keys.is_empty()).then_some(KeyGuard {
            keys,
            schema,
            units,
        }))
    }

    pub fn rules(&self) -> impl Iterator<Item = &KeyRule> {
        self.keys.iter().map(|k| &k.rule)
    }

    /// Refuses the rows of `validated.good` (rows of unit `unit`) whose key was seen earlier
    /// in the run: they move to `validated.quarantined` under the key's quarantine rule.
    /// Rows with a null in a key column are never duplicates.
    pub fn admit(&mut self, validated: &mut Validated, unit: usize) -> Result<()> {
        let good = &validated.good;
        let n = good.num_rows();
        if n == 0 {
            return Ok(());
        }
        let mut columns_of = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            let columns: Vec<ArrayRef> = key
                .indices
                .iter()
                .map(|i| good.column(*i).clone())
                .collect();
            columns_of.push(columns);
        }
        let mut probes = Vec::with_capacity(self.keys.len());
        for (key, columns) in self.keys.iter().zip(&columns_of) {
            probes.push(key.store.probe(columns)?);
        }
        let mut keep = vec![true; n];
        let mut refused: Vec<(usize, usize, Origin)> = Vec::new();
        for (row, kept) in keep.iter_mut().enumerate() {
            let position = validated.good_positions.get(row).copied().unwrap_or(0);
            let here = Origin { unit, position };
            let mut earlier = None;
            for (k, key) in self.keys.iter().enumerate() {
                if columns_of[k].iter().any(|c| c.is_null(row)) {
                    continue;
                }
                if let Some(first) = key.store.get(&probes[k], row) {
                    earlier = Some((k, first));
                    break;
                }
            }
            if let Some((k, first)) = earlier {
                *kept = false;
                refused.push((row, k, first));
                continue;
            }
            for (k, key) in self.keys.iter_mut().enumerate() {
                if columns_of[k].iter().any(|c| c.is_null(row)) {
                    continue;
                }
                key.store.insert(&probes[k], row, here);
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        let indices = UInt32Array::from(refused.iter().map(|r| r.0 as u32).collect::<Vec<_>>());
        let raws = json_lines(&take_record_batch(good, &indices)?)?;
        for ((row, k, first), raw) in refused.iter().zip(raws) {
            let key = &self.keys[*k];
            let columns = &columns_of[*k];
            validated.quarantined.push(QuarantinedRow {
                position: validated.good_positions.get(*row).copied().unwrap_or(0),
                rule_id: key.rule.quarantine_rule.clone(),
                reason: format!(
                    "duplicate key {}: first seen at {}:{}",
                    key_text(&key.rule.columns, columns, *row)?,
                    self.units
                        .get(first.unit)
                        .map(String::as_str)
                        .unwrap_or("this run"),
                    first.position
                ),
                raw,
                raw_bytes: None,
            });
        }
        let mask = BooleanArray::from(keep.clone());
        validated.good = filter_record_batch(good, &mask)?;
        validated.good_positions = validated
            .good_positions
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(p, _)| *p)
            .collect();
        Ok(())
    }

    /// The unit being read was accepted: its keys count for the rest of the run.
    pub fn commit_unit(&mut self) {
        for key in &mut self.keys {
            key.store.commit_unit();
        }
    }

    /// The unit being read failed: forget its keys, as if it had never been read.
    pub fn abort_unit(&mut self) {
        for key in &mut self.keys {
            key.store.abort_unit();
        }
    }

    /// For rows of the run that turn out to collide with the published table (`batch` has the
    /// table's schema, and holds rows this guard kept): one quarantined row each, under rule
    /// `rule`'s quarantine rule, with the origin of each row.
    pub fn refuse_published(
        &self,
        rule: usize,
        batch: &RecordBatch,
    ) -> Result<Vec<(Origin, QuarantinedRow)>> {
        let Some(key) = self.keys.get(rule) else {
            return Ok(Vec::new());
        };
        // A query engine may hand back other physical types (string views): back to the
        // table's own.
        let mut cast = Vec::with_capacity(batch.num_columns());
        for (column, field) in batch.columns().iter().zip(self.schema.fields()) {
            cast.push(arrow::compute::cast(column, field.data_type())?);
        }
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            cast,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?;
        let columns: Vec<ArrayRef> = key
            .indices
            .iter()
            .map(|i| batch.column(*i).clone())
            .collect();
        let probe = key.store.probe(&columns)?;
        let raws = json_lines(&batch)?;
        let mut out = Vec::with_capacity(batch.num_rows());
        for (row, raw) in (0..batch.num_rows()).zip(raws) {
            let origin = key.store.get(&probe, row).unwrap_or(Origin {
                unit: usize::MAX,
                position: 0,
            });
            out.push((
                origin,
                QuarantinedRow {
                    position: origin.position,
                    rule_id: key.rule.quarantine_rule.clone(),
                    reason: format!(
                        "duplicate key {}: the table already has it",
                        key_text(&key.rule.columns, &columns, row)?
                    ),
                    raw,
                    raw_bytes: None,
                },
            ));
        }
        Ok(out)
    }

    /// The name of unit `unit`, as given to [`KeyGuard::new`].
    pub fn unit_name(&self, unit: usize) -> Option<&str> {
        self.units.get(unit).map(String::as_str)
    }
}

/// `` `id` = 3 `` or `` (`a`, `b`) = (1, x) ``.
fn key_text(names: &[String], columns: &[ArrayRef], row: usize) -> Result<String> {
    let mut values = Vec::with_capacity(columns.len());
    for c in columns {
        values.push(arrow::util::display::array_value_to_string(c, row)?);
    }
    Ok(match (names, values.as_slice()) {
        ([name], [value]) => format!("`{name}` = {value}"),
        _ => format!(
            "({}) = ({})",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            values.join(", ")
        ),
    })
}

/// Each row as one line of JSON, for the quarantine's raw record.
fn json_lines(batch: &RecordBatch) -> Result<Vec<String>> {
    let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    let text = String::from_utf8_lossy(&writer.into_inner()).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.resize(batch.num_rows(), String::new());
    Ok(lines)
}
