use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::partition::{Grain, Partitioning};

/// A SQL model: `models/<asset>.sql`, one `SELECT`, with optional settings in `-- weir:` header
/// lines, e.g. `-- weir: materialized = incremental, strategy = append, watermark = order_day`.
///
/// Dependencies are not declared: they are the tables the SQL reads (inferred by
/// `weir-process`, which owns the SQL parser).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    pub path: PathBuf,
    pub sql: String,
    pub materialization: Materialization,
    /// An event-time column, kept for documentation and future scan pruning. It never decides
    /// which rows an incremental run processes: the Delta log does (see `weir-store`'s
    /// `changes_since`), so ties, NULLs and late rows are never missed.
    pub watermark: Option<String>,
    pub unique_key: Vec<String>,
    pub tags: Vec<String>,
    /// `partition_by` (with `partition_grain`): the table is kept in time partitions that a
    /// partition run (`weir run --partition`, `weir backfill`) replaces one at a time.
    pub partition: Option<Partitioning>,
    /// `timeout_secs`: a run of this model taking longer is stopped.
    pub timeout_secs: Option<u64>,
    /// `pool`: the concurrency pool (`[pools]` in weir.toml) its runs take a slot of.
    pub pool: Option<String>,
    /// `shadow_of`: the asset this model is a new version of (a rewrite of a legacy
    /// pipeline, a new version of a model): after each run both are diffed on `shadow_key`
    /// and their agreement recorded, so a migration shows its consistency before a cut-over.
    pub shadow_of: Option<String>,
    /// `shadow_key`: the columns a shadow is compared on (joined with +); when empty, the
    /// model's `unique_key`, else the shadowed asset's primary key.
    pub shadow_key: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialization {
    /// Rebuilt every run, replaced in one atomic commit.
    Table,
    /// The query's output over the rows upstream commits added since the last run is appended.
    IncrementalAppend,
    /// The `unique_key` values that rows added upstream can affect are recomputed over the
    /// whole upstream and merged on `unique_key`: changed rows are updated, new ones inserted
    /// (Delta MERGE).
    IncrementalMerge,
}

impl Materialization {
    pub fn as_str(&self) -> &'static str {
        match self {
            Materialization::Table => "table",
            Materialization::IncrementalAppend => "incremental (append)",
            Materialization::IncrementalMerge => "incremental (merge)",
        }
    }
}

impl ModelDef {
    pub fn parse(path: &Path, text: &str) -> Result<ModelDef, Diagnostic> {
        let mut materialized = "table".to_string();
        let mut strategy = "append".to_string();
        let mut watermark = None;
        let mut unique_key = Vec::new();
        let mut tags = Vec::new();
        let mut partition_by: Option<String> = None;
        let mut grain = Grain::Day;
        let mut timeout_secs = None;
        let mut pool = None;
        let mut shadow_of = None;
        let mut shadow_key = Vec::new();
        for (idx, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            let Some(settings) = trimmed.strip_prefix("-- weir:") else {
                if trimmed.is_empty() || trimmed.starts_with("--") {
                    continue;
                }
                break;
            };
            for pair in settings.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let at = |message: String| Diagnostic::error(path, message).at(Some(idx + 1), None);
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(at(format!("expected `key = value`, found `{pair}`")));
                };
                let (key, value) = (key.trim(), value.trim().to_string());
                match key {
                    "materialized" => materialized = value,
                    "strategy" => strategy = value,
                    "watermark" => watermark = Some(value),
                    "unique_key" => {
                        unique_key = value.split('+').map(|s| s.trim().to_string()).collect()
                    }
                    "tags" => tags = value.split('+').map(|s| s.trim().to_string()).collect(),
                    "partition_by" => partition_by = Some(value),
                    "pool" => pool = Some(value),
                    "shadow_of" => shadow_of = Some(value),
                    "shadow_key" => {
                        shadow_key = value.split('+').map(|s| s.trim().to_string()).collect()
                    }
                    "timeout_secs" => {
                        timeout_secs = Some(value.parse::<u64>().ok().filter(|t| *t > 0).ok_or_else(
                            || {
                                at(format!(
                                    "timeout_secs must be a whole number of seconds above 0, found `{value}`"
                                ))
                                .field("timeout_secs")
                            },
                        )?)
                    }
                    "partition_grain" => {
                        grain = Grain::parse(&value).ok_or_else(|| {
                            at(format!(
                                "unknown partition_grain `{value}`; expected day or hour"
                            ))
                            .field("partition_grain")
                        })?
                    }
                    other => {
                        return Err(at(format!(
                            "unknown model setting `{other}`; expected materialized, strategy, watermark, unique_key, tags, partition_by, partition_grain, timeout_secs, pool, shadow_of or shadow_key"
                        ))
                        .field(other.to_string()));
                    }
                }
            }
        }
        let materialization = match (materialized.as_str(), strategy.as_str()) {
            ("table", _) => Materialization::Table,
            ("incremental", "append") => Materialization::IncrementalAppend,
            ("incremental", "merge") => Materialization::IncrementalMerge,
            ("incremental", other) => {
                return Err(Diagnostic::error(
                    path,
                    format!("unknown strategy `{other}`; expected append or merge"),
                )
                .field("strategy"));
            }
            (other, _) => {
                return Err(Diagnostic::error(
                    path,
                    format!("unknown materialization `{other}`; expected table or incremental"),
                )
                .field("materialized"));
            }
        };
        if materialization == Materialization::IncrementalMerge && unique_key.is_empty() {
            return Err(Diagnostic::error(
                path,
                "an incremental `merge` model needs a `unique_key` (columns joined with +)",
            )
            .field("unique_key"));
        }
        if partition_by.is_some() && materialization != Materialization::Table {
            return Err(Diagnostic::error(
                path,
                "`partition_by` needs `materialized = table`: a partition run replaces its partition's rows, which an incremental model's own strategy would contradict",
            )
            .field("partition_by"));
        }
        Ok(ModelDef {
            partition: partition_by.map(|column| Partitioning { column, grain }),
            timeout_secs,
            pool,
            shadow_of,
            shadow_key,
            path: path.to_path_buf(),
            sql: text.to_string(),
            materialization,
            watermark,
            unique_key,
            tags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_settings_parse() {
        let m = ModelDef::parse(
            Path::new("m.sql"),
            "-- daily revenue\n-- weir: materialized = incremental, watermark = day\nSELECT 1",
        )
        .expect("parses");
        assert_eq!(m.materialization, Materialization::IncrementalAppend);
        assert_eq!(m.watermark.as_deref(), Some("day"));
    }

    #[test]
    fn partition_settings_parse_and_need_a_table() {
        let m = ModelDef::parse(
            Path::new("m.sql"),
            "-- weir: partition_by = day, partition_grain = hour\nSELECT 1",
        )
        .expect("parses");
        assert_eq!(
            m.partition,
            Some(Partitioning {
                column: "day".into(),
                grain: Grain::Hour
            })
        );
        let e = ModelDef::parse(
            Path::new("m.sql"),
            "-- weir: materialized = incremental, partition_by = day\nSELECT 1",
        )
        .expect_err("rejected");
        assert_eq!(e.field.as_deref(), Some("partition_by"));
        let e = ModelDef::parse(
            Path::new("m.sql"),
            "-- weir: partition_grain = week\nSELECT 1",
        )
        .expect_err("rejected");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn unknown_setting_names_line() {
        let e = ModelDef::parse(Path::new("m.sql"), "\n-- weir: colour = red\nSELECT 1")
            .expect_err("rejected");
        assert_eq!(e.line, Some(2));
    }
}
