use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::contract::{Contract, parse_contract};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model_def::ModelDef;
use crate::source::{SourceDef, toml_diagnostic};

/// `weir.toml`: the project's name, where its lake and state live, and its teams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub project: ProjectSection,
    #[serde(default)]
    pub teams: BTreeMap<String, TeamConfig>,
    /// Named selections of assets that `weir serve` runs on a schedule.
    #[serde(default)]
    pub jobs: BTreeMap<String, crate::jobs::JobConfig>,
    #[serde(default)]
    pub serve: crate::jobs::ServeConfig,
    /// Concurrency pools: how many runs of the assets in each may be in progress at once,
    /// across every process of the project.
    #[serde(default)]
    pub pools: BTreeMap<String, u32>,
    /// How unusual a run must be to open an anomaly incident.
    #[serde(default)]
    pub anomalies: crate::anomalies::AnomalyConfig,
    /// The default service-level objectives.
    #[serde(default)]
    pub slo: crate::slo_config::SloConfig,
    /// Where OpenLineage run events go.
    #[serde(default)]
    pub openlineage: crate::openlineage_config::OpenLineageConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    pub name: String,
    /// Where Delta tables live, relative to the project root.
    #[serde(default = "default_lake")]
    pub lake: String,
    /// The state store URL: `sqlite:PATH` (default `.weir/state.db`) or
    /// `postgres://USER@HOST/DATABASE` (many workers on many machines); `WEIR_STATE` in the
    /// environment overrides it.
    #[serde(default = "default_state")]
    pub state: String,
    /// What `weir run` does with an incremental model whose definition (SQL, settings or
    /// columns) changed since its table was built.
    #[serde(default)]
    pub on_definition_change: OnDefinitionChange,
    /// The default bound on the rows one source run may quarantine and still publish (a
    /// source's own `max_quarantined` wins); `"50%"` when unset.
    #[serde(default)]
    pub max_quarantined: crate::source::QuarantineLimit,
    /// After a run publishes, a table holding more than this many small data files (under
    /// 16 MiB) is compacted in the same run, as `weir optimize` would; 0 turns it off.
    #[serde(default = "default_compact_after_files")]
    pub compact_after_files: usize,
}

fn default_compact_after_files() -> usize {
    100
}

/// Rows computed by an old definition are never mixed with rows of the new one: either the
/// run stops and asks for `--full-refresh`, or the table is rebuilt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDefinitionChange {
    /// Report the model as needing a full refresh and leave its table as it is.
    #[default]
    Refuse,
    /// Rebuild the table from the new definition.
    Rebuild,
}

/// A team and where its alerts go (`slack:#channel`, `email:addr`, a webhook URL, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub description: Option<String>,
    #[serde(default)]
    pub channels: Vec<String>,
}

fn default_lake() -> String {
    "lake".into()
}
/// The environment variable that overrides `[project] state`.
pub const STATE_ENV: &str = "WEIR_STATE";

fn default_state() -> String {
    "sqlite:.weir/state.db".into()
}

/// A parsed, checked project.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: ProjectConfig,
    /// Sorted by name.
    pub assets: Vec<Asset>,
    /// Assets whose contract file did not load (already reported). What depends on them (their
    /// source or model file, models reading them) is not reported again: one root cause, one
    /// diagnostic.
    pub broken_assets: std::collections::BTreeSet<String>,
    /// Set by `weir run --env NAME` and the commands that read an environment: the tables of
    /// `Environment::assets` live in the environment's own lake, every other table is read
    /// from production, and the state store is the environment's own.
    pub environment: Option<Environment>,
}

/// An isolated namespace beside production (`weir run --env dev`): its tables, run history and
/// journal live under `.weir/envs/NAME/`, so building in it never writes production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    /// The assets whose tables the environment holds (or builds now); the others are read
    /// from production, never copied.
    pub assets: std::collections::BTreeSet<String>,
}

/// Why `name` cannot name an environment: it becomes a folder name and a table suffix
/// (`orders@dev`), so it is kept to lowercase letters, digits, `-` and `_`.
pub fn check_environment_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an environment name: use 1 to 40 lowercase letters, digits, `-` or `_`, starting with a letter"
        ))
    }
}

/// A dataset weir produces and guarantees: one producer, one contract, one owner.
#[derive(Debug, Clone)]
pub struct Asset {
    pub name: String,
    pub contract: Contract,
    pub contract_path: PathBuf,
    pub source: Option<SourceDef>,
    pub source_path: Option<PathBuf>,
    pub model: Option<ModelDef>,
}

impl Asset {
    /// `model` for an asset a SQL model produces, else `source` (what every listing calls it).
    pub fn kind(&self) -> &'static str {
        if self.model.is_some() {
            "model"
        } else {
            "source"
        }
    }

    pub fn owners(&self) -> Vec<String> {
        self.contract.owners()
    }

    pub fn team(&self) -> Option<&str> {
        self.contract.team_name()
    }

    /// How long one run of this asset may take (its source's or model's `timeout_secs`).
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.source
            .as_ref()
            .and_then(|s| s.timeout_secs)
            .or_else(|| self.model.as_ref().and_then(|m| m.timeout_secs))
            .map(std::time::Duration::from_secs)
    }

    /// The concurrency pool its runs take a slot of.
    pub fn pool(&self) -> Option<&str> {
        self.source
            .as_ref()
            .and_then(|s| s.pool.as_deref())
            .or_else(|| self.model.as_ref().and_then(|m| m.pool.as_deref()))
    }
}

impl Project {
    pub fn lake_dir(&self) -> PathBuf {
        self.root.join(&self.config.project.lake)
    }

    /// Where the run journal and the environments live: `.weir`, or the environment's own
    /// folder when one is set.
    pub fn state_dir(&self) -> PathBuf {
        match &self.environment {
            Some(env) => self.environment_dir(&env.name),
            None => self.root.join(".weir"),
        }
    }

    /// The folder of environment `name`: its lake (`lake/`), state store and journal.
    pub fn environment_dir(&self, name: &str) -> PathBuf {
        self.root.join(".weir").join("envs").join(name)
    }

    /// The lake folder `asset`'s table is in: the environment's when the environment holds
    /// it, else production's.
    pub fn lake_dir_of(&self, asset: &str) -> PathBuf {
        match &self.environment {
            Some(env) if env.assets.contains(asset) => self.environment_dir(&env.name).join("lake"),
            _ => self.lake_dir(),
        }
    }

    /// The state store URL with a relative SQLite path resolved against the project root.
    /// `WEIR_STATE` in the environment, when set, replaces `state` in weir.toml: a PostgreSQL
    /// URL with a password, or one that differs by machine, stays out of the project's files.
    pub fn state_url(&self) -> String {
        match &self.environment {
            // An environment's runs, leases and journal never touch production's store.
            Some(env) => self.environment_state_url(&env.name),
            None => self.production_state_url(),
        }
    }

    /// The state store of environment `name`: a SQLite file in its folder.
    pub fn environment_state_url(&self, name: &str) -> String {
        format!(
            "sqlite://{}",
            self.environment_dir(name).join("state.db").display()
        )
    }

    /// Production's state store, whatever environment the project is set to.
    pub fn production_state_url(&self) -> String {
        let from_env = std::env::var(STATE_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty());
        let state = from_env.as_ref().unwrap_or(&self.config.project.state);
        match state.strip_prefix("sqlite:") {
            Some(rest) => {
                let rest = rest.trim_start_matches("//");
                let path = Path::new(rest);
                let full = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    self.root.join(path)
                };
                format!("sqlite://{}", full.display())
            }
            None => state.clone(),
        }
    }

    pub fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.name == name)
    }

    pub fn team_channels(&self, team: &str) -> &[String] {
        self.config
            .teams
            .get(team)
            .map(|t| t.channels.as_slice())
            .unwrap_or(&[])
    }
}

/// Reads and checks the project in `root`, collecting every problem instead of stopping at the
/// first. The project is returned whenever `weir.toml` itself parses, so callers can show
/// partial information; it is only safe to run when the diagnostics have no errors.
pub fn load_project(root: &Path) -> (Option<Project>, Diagnostics) {
    let mut diagnostics = Diagnostics::default();
    let config_path = root.join("weir.toml");
    let text = match std::fs::read_to_string(&config_path) {
        Ok(t) => t,
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                &config_path,
                format!("cannot read project file: {e} (run `weir init` to create a project)"),
            ));
            return (None, diagnostics);
        }
    };
    let config: ProjectConfig = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            diagnostics.push(toml_diagnostic(&config_path, &text, &e));
            return (None, diagnostics);
        }
    };
    crate::jobs::check_jobs(&config_path, &config.jobs, &mut diagnostics);

    let mut contracts: BTreeMap<String, (Contract, PathBuf)> = BTreeMap::new();
    let mut broken = std::collections::BTreeSet::new();
    for path in list_files(root, "contracts", &["yaml", "yml"], &mut diagnostics) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                diagnostics.push(Diagnostic::error(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        let (contract, found) = parse_contract(&path, &text);
        diagnostics.0.extend(found);
        let Some(contract) = contract else {
            broken.insert(asset_name_of_broken_contract(&path, &text));
            continue;
        };
        let Some(name) = contract.table().map(|t| t.name.clone()) else {
            continue;
        };
        if let Some((_, other)) = contracts.get(&name) {
            diagnostics.push(
                Diagnostic::error(
                    &path,
                    format!(
                        "asset `{name}` already has a contract in {}",
                        other.display()
                    ),
                )
                .field("schema[0].name"),
            );
            continue;
        }
        if let Some(team) = contract.team_name()
            && !config.teams.contains_key(team)
        {
            diagnostics.push(
                Diagnostic::warning(
                    &path,
                    format!(
                        "team `{team}` is not declared in weir.toml; its alerts have no channel"
                    ),
                )
                .field("team.name"),
            );
        }
        contracts.insert(name, (contract, path));
    }

    let mut sources: BTreeMap<String, (SourceDef, PathBuf)> = BTreeMap::new();
    for path in list_files(root, "sources", &["toml"], &mut diagnostics) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                diagnostics.push(Diagnostic::error(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        match SourceDef::parse(&path, &text) {
            Ok(def) => {
                diagnostics
                    .0
                    .extend(def.options_that_do_not_apply(&path, &text));
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                let name = def.asset.clone().unwrap_or(stem);
                if broken.contains(&name) {
                    continue;
                }
                if !contracts.contains_key(&name) {
                    let hint = did_you_mean(&name, contracts.keys());
                    diagnostics.push(
                        Diagnostic::error(&path, format!("source feeds asset `{name}`, which has no contract in contracts/{hint}"))
                            .field("asset"),
                    );
                    continue;
                }
                if let Some((_, other)) = sources.get(&name) {
                    diagnostics.push(Diagnostic::error(
                        &path,
                        format!("asset `{name}` already has a producer: {}", other.display()),
                    ));
                    continue;
                }
                sources.insert(name, (def, path));
            }
            Err(d) => diagnostics.push(d),
        }
    }

    let mut models: BTreeMap<String, ModelDef> = BTreeMap::new();
    for path in list_files(root, "models", &["sql"], &mut diagnostics) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                diagnostics.push(Diagnostic::error(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if broken.contains(&name) {
            continue;
        }
        if !contracts.contains_key(&name) {
            let hint = did_you_mean(&name, contracts.keys());
            diagnostics.push(Diagnostic::error(
                &path,
                format!(
                    "model `{name}` has no contract in contracts/ (every asset needs one){hint}"
                ),
            ));
            continue;
        }
        if let Some((_, source_path)) = sources.get(&name) {
            diagnostics.push(Diagnostic::error(
                &path,
                format!(
                    "asset `{name}` already has a producer: {}; an asset has exactly one",
                    source_path.display()
                ),
            ));
            continue;
        }
        match ModelDef::parse(&path, &text) {
            Ok(model) => {
                models.insert(name, model);
            }
            Err(d) => diagnostics.push(d),
        }
    }

    let mut assets = Vec::new();
    for (name, (contract, contract_path)) in contracts {
        let model = models.remove(&name);
        let (source, source_path) = match sources.remove(&name) {
            Some((def, path)) => (Some(def), Some(path)),
            None if model.is_some() => (None, None),
            None => {
                diagnostics.push(Diagnostic::warning(
                    &contract_path,
                    format!(
                        "asset `{name}` has a contract but no producer (no sources/{name}.toml or models/{name}.sql)"
                    ),
                ));
                (None, None)
            }
        };
        if let Some(partition) = model.as_ref().and_then(|m| m.partition.as_ref()) {
            check_partition_column(&contract, &contract_path, partition, &mut diagnostics);
        }
        let pool = source
            .as_ref()
            .and_then(|s| s.pool.as_ref())
            .or_else(|| model.as_ref().and_then(|m| m.pool.as_ref()));
        if let Some(pool) = pool
            && config.pools.get(pool).is_none_or(|n| *n == 0)
        {
            let file = source_path
                .clone()
                .or_else(|| model.as_ref().map(|m| m.path.clone()))
                .unwrap_or_else(|| contract_path.clone());
            diagnostics.push(
                Diagnostic::error(
                    &file,
                    format!(
                        "pool `{pool}` is not declared under [pools] in weir.toml with at least one slot (e.g. `{pool} = 2`)"
                    ),
                )
                .field("pool"),
            );
        }
        if !is_valid_asset_name(&name) {
            diagnostics.push(
                Diagnostic::error(&contract_path, format!("asset name `{name}` must be lowercase letters, digits and `_`, starting with a letter"))
                    .field("schema[0].name"),
            );
        }
        assets.push(Asset {
            name,
            contract,
            contract_path,
            source,
            source_path,
            model,
        });
    }
    check_shadows(&assets, &mut diagnostics);
    crate::anomalies::check_settings(&config, &assets, &broken, &config_path, &mut diagnostics);
    let project = Project {
        root: root.to_path_buf(),
        config,
        assets,
        broken_assets: broken,
        environment: None,
    };
    (Some(project), diagnostics)
}

/// The asset a contract that did not load was meant for: its `schema[0].name` if the YAML
/// gets that far, else the file name (`orders.odcs.yaml` → `orders`).
fn asset_name_of_broken_contract(path: &Path, text: &str) -> String {
    serde_yaml::from_str::<serde_yaml::Value>(text)
        .ok()
        .and_then(|v| {
            v.get("schema")?
                .get(0)?
                .get("name")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            file.split('.').next().unwrap_or_default().to_string()
        })
}

/// `path` with `/` between its components, whatever the platform: how weir writes a file's
/// key (the ledger, the Delta log, a source's `path`).
pub fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Lowercase letters, digits and `_`, starting with a letter: a name that is safe as a table
/// directory, a SQL identifier and a selector.
pub fn is_valid_asset_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn list_files(
    root: &Path,
    dir: &str,
    extensions: &[&str],
    diagnostics: &mut Diagnostics,
) -> Vec<PathBuf> {
    let dir_path = root.join(dir);
    let entries = match std::fs::read_dir(&dir_path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            diagnostics.push(Diagnostic::error(&dir_path, format!("cannot list: {e}")));
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    let mut unread = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let read = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e));
        if read {
            files.push(path);
        } else if path.is_file() && !is_companion_file(&name) {
            unread.push(path);
        }
    }
    unread.sort();
    for path in unread {
        diagnostics.push(Diagnostic::warning(
            &path,
            format!(
                "weir does not read this file: {dir}/ holds {} files{}",
                extensions
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                match dir {
                    "sources" => " (a source is sources/<asset>.toml)",
                    "models" => " (a model is models/<asset>.sql)",
                    _ => " (a contract is contracts/<asset>.odcs.yaml)",
                }
            ),
        ));
    }
    files.sort();
    files
}

/// Files that may sit beside a project's definitions without being one: hidden files, notes,
/// and examples (`weir init --empty` writes `contracts/example.odcs.yaml.sample`).
fn is_companion_file(name: &str) -> bool {
    name.starts_with('.')
        || [".md", ".txt", ".sample", ".example", "~"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// " (did you mean `x`?)" when a known name is within a small edit distance.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> String {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A shadow (`shadow_of`) must name another asset and be compared on columns both have.
fn check_shadows(assets: &[Asset], diagnostics: &mut Diagnostics) {
    let by_name: BTreeMap<&str, &Asset> = assets.iter().map(|a| (a.name.as_str(), a)).collect();
    for asset in assets {
        let Some(model) = &asset.model else { continue };
        let Some(target) = &model.shadow_of else {
            if !model.shadow_key.is_empty() {
                diagnostics.push(
                    Diagnostic::error(&model.path, "`shadow_key` needs `shadow_of`")
                        .field("shadow_key"),
                );
            }
            continue;
        };
        let error = |message: String, field: &str| {
            Diagnostic::error(&model.path, message).field(field.to_string())
        };
        let Some(primary) = by_name
            .get(target.as_str())
            .filter(|p| p.name != asset.name)
        else {
            let names: Vec<&String> = assets.iter().map(|a| &a.name).collect();
            let hint = did_you_mean(target, names.into_iter());
            diagnostics.push(error(
                format!("`shadow_of = {target}` names no other asset of the project{hint}"),
                "shadow_of",
            ));
            continue;
        };
        let key = shadow_key(asset, primary);
        if key.is_empty() {
            diagnostics.push(error(
                format!(
                    "shadow `{}` has no key to compare with `{target}` on: set `shadow_key` (columns joined with +), or give one of them a key",
                    asset.name
                ),
                "shadow_key",
            ));
            continue;
        }
        let columns = |a: &Asset| -> Vec<String> {
            a.contract
                .schema
                .iter()
                .flat_map(|o| o.properties.iter())
                .map(|p| p.name.clone())
                .collect()
        };
        let (mine, theirs) = (columns(asset), columns(primary));
        if let Some(missing) = key
            .iter()
            .find(|k| !mine.contains(k) || !theirs.contains(k))
        {
            diagnostics.push(error(
                format!(
                    "shadow key column `{missing}` is not a column of both `{}` and `{target}`",
                    asset.name
                ),
                "shadow_key",
            ));
        }
    }
}

/// The columns shadow `asset` is compared with `primary` on: its `shadow_key`, else its
/// `unique_key`, else `primary`'s primary key.
pub fn shadow_key(asset: &Asset, primary: &Asset) -> Vec<String> {
    let Some(model) = &asset.model else {
        return Vec::new();
    };
    if !model.shadow_key.is_empty() {
        return model.shadow_key.clone();
    }
    if !model.unique_key.is_empty() {
        return model.unique_key.clone();
    }
    let mut key: Vec<(i64, String)> = primary
        .contract
        .schema
        .iter()
        .flat_map(|o| o.properties.iter())
        .filter(|p| p.primary_key)
        .enumerate()
        .map(|(i, p)| (p.primary_key_position.unwrap_or(i as i64), p.name.clone()))
        .collect();
    key.sort();
    key.into_iter().map(|(_, name)| name).collect()
}

/// A partitioned model's `partition_by` must name a `date` or `timestamp` column of its
/// contract (`hour` partitions: a `timestamp`), so that every stored row has a partition.
fn check_partition_column(
    contract: &Contract,
    contract_path: &Path,
    partition: &crate::partition::Partitioning,
    diagnostics: &mut Diagnostics,
) {
    let property = contract
        .schema
        .iter()
        .flat_map(|o| o.properties.iter())
        .find(|p| p.name == partition.column);
    let wanted = match partition.grain {
        crate::partition::Grain::Day => "a `date` or `timestamp`",
        crate::partition::Grain::Hour => "a `timestamp`",
    };
    let fits = match property.and_then(|p| p.logical_type) {
        Some(crate::contract::LogicalType::Timestamp) => true,
        Some(crate::contract::LogicalType::Date) => partition.grain == crate::partition::Grain::Day,
        _ => false,
    };
    if !fits {
        let found = match property {
            None => "is not a column of the contract".to_string(),
            Some(p) => format!(
                "has logicalType {}",
                p.logical_type
                    .map(|t| format!("{t:?}").to_lowercase())
                    .unwrap_or_else(|| "(none)".into())
            ),
        };
        diagnostics.push(
            Diagnostic::error(
                contract_path,
                format!(
                    "partition_by = {} (partition_grain = {}): the column {found}; it must be {wanted} column",
                    partition.column,
                    partition.grain.as_str()
                ),
            )
            .field(partition.column.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        let names = ["orders".to_string(), "customers".to_string()];
        assert_eq!(
            did_you_mean("order", names.iter()),
            " (did you mean `orders`?)"
        );
        assert_eq!(did_you_mean("zzz", names.iter()), "");
    }

    #[test]
    fn asset_names() {
        assert!(is_valid_asset_name("daily_revenue2"));
        assert!(!is_valid_asset_name("Orders"));
        assert!(!is_valid_asset_name("2x"));
    }
}
