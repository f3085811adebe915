//! `weir promote NAME`: publishing the tables an environment built to production.
//!
//! Each table is replaced in one Delta commit (its rows, its quarantine in a second commit,
//! and its schema when the contract changed), made exactly-once by a `txn` of
//! [`PROMOTE_APP_ID`]. Readers that go through weir see the whole set switch at once: while a
//! promotion is publishing, the state store pins every table it touches at its version from
//! before (see [`StateStore::promotion_pins`]), and the pins go in the one update that marks
//! it done. A promotion killed half-way is completed from its journal by the next command
//! (or abandoned, when it was stopped before its journal, so before any commit).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use weir_model::{Environment, Project};
use weir_quality::{ParseOptions, Validator};
use weir_store::{
    LakeTable, Publication, PublicationPart, open_quarantine, place_live_files, read_journal,
    remove_journal, rows_of, write_journal,
};

use crate::dag::AssetGraph;
use crate::error::{OrchestrateError, Result};
use crate::leases::{AssetLeases, holder, holder_is_gone};
use crate::run_model::{INPUTS_KEY, Inputs};
use crate::runner::{failpoint, table_paths};
use crate::state::{RunRecord, StateStore, now, state_err};

/// The Delta application id of promotion commits; its `txn` version grows by one per
/// promotion that touches a table.
pub const PROMOTE_APP_ID: &str = "weir:promote";

/// One table a promotion published.
#[derive(Debug, Clone, Serialize)]
pub struct PromotedTable {
    pub asset: String,
    /// Production's version before the promotion (`None`: there was no table).
    pub version_before: Option<u64>,
    /// The version holding the promoted rows.
    pub version: Option<u64>,
    pub rows: u64,
    pub quarantined: u64,
}

/// What a promotion did.
#[derive(Debug, Clone, Serialize)]
pub struct PromotionReport {
    pub id: String,
    pub environment: String,
    pub tables: Vec<PromotedTable>,
}

/// The journal of a promotion in flight: everything needed to finish it after a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    id: String,
    environment: String,
    txn: i64,
    tables: Vec<JournalTable>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalTable {
    asset: String,
    table: PublicationPart,
    quarantine: Option<PublicationPart>,
    /// The environment table's id and the version whose files were placed: what a
    /// downstream model's recorded inputs must name to be carried over.
    env_table_id: String,
    env_version: u64,
    /// What the environment table was computed from, as its last commit says.
    inputs: Option<Inputs>,
    version_before: Option<u64>,
    rows: u64,
    quarantined: u64,
}

/// A Delta table id and one of its versions.
type TableAt = (String, u64);

/// Where production keeps the journal of a promotion in flight.
pub fn promotion_journal_path(project: &Project) -> PathBuf {
    project.root.join(".weir").join("promotion.json")
}

/// Publishes every table `env` holds to production, upstream first. `project` is the
/// production project (no environment set); `env_state` the environment's state store, whose
/// last runs must all have passed. `Ok(Err(sentence))` when the promotion is refused (nothing
/// was written).
pub async fn promote(
    project: &Project,
    graph: &AssetGraph,
    state: &StateStore,
    env: &Environment,
    env_state: &StateStore,
) -> Result<std::result::Result<PromotionReport, String>> {
    if project.environment.is_some() {
        return Err(OrchestrateError::Config(
            "a promotion is made from production's view of the project, not an environment's"
                .into(),
        ));
    }
    let order: Vec<String> = graph
        .order
        .iter()
        .filter(|a| env.assets.contains(*a))
        .cloned()
        .collect();
    if order.is_empty() {
        return Ok(Err(format!(
            "environment `{}` holds no table: nothing to promote",
            env.name
        )));
    }
    if let Some(source) = order
        .iter()
        .find(|a| project.asset(a).is_some_and(|a| a.source.is_some()))
    {
        return Ok(Err(format!(
            "environment `{}` holds source table `{source}`; a source's table in production must keep matching production's record of ingested files, so it is not promoted: apply its contract and run it in production (`weir apply`, then `weir run {source}`)",
            env.name
        )));
    }
    let last: BTreeMap<String, RunRecord> = env_state
        .last_runs()
        .await?
        .into_iter()
        .map(|r| (r.asset.clone(), r))
        .collect();
    for asset in &order {
        let passed = last
            .get(asset)
            .is_some_and(|r| r.status == "success" || r.status == "up_to_date");
        if !passed {
            let what = last.get(asset).map_or("never run".to_string(), |r| {
                format!(
                    "last run {}{}",
                    r.status,
                    r.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )
            });
            return Ok(Err(format!(
                "`{asset}` in environment `{}` has not passed its checks ({what}); fix it and `weir run --env {}` again before promoting",
                env.name, env.name
            )));
        }
    }
    let leases = AssetLeases::acquire(state, &order).await?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let published = async {
        let journal = match prepare(project, state, env, &order, &id).await {
            Ok(journal) => journal,
            Err(e) => {
                // Nothing was committed: unpin the readers now rather than at the next command.
                state.finish_promotion(&id, "abandoned").await?;
                return Err(e);
            }
        };
        failpoint("promote-before-commits", &env.name);
        complete(project, state, &journal).await
    }
    .await;
    leases.release().await?;
    published.map(Ok)
}

/// Places the files, pins the readers and writes the journal; nothing is committed yet.
async fn prepare(
    project: &Project,
    state: &StateStore,
    env: &Environment,
    order: &[String],
    id: &str,
) -> Result<Journal> {
    let env_project = Project {
        environment: Some(env.clone()),
        ..project.clone()
    };
    // `project` is production's (`promote` checks it), so its paths are production's tables.
    let production = project;
    // The readers' pins first: from here on they read every table as it was.
    let mut pins: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut txn = 0;
    for asset in order {
        let (table, quarantine) = table_paths(production, asset);
        for (name, path) in [
            (asset.clone(), table),
            (format!("quarantine.{asset}"), quarantine),
        ] {
            let current = LakeTable::open(&path).await?;
            if let Some(t) = &current {
                txn = txn.max(t.txn_version(PROMOTE_APP_ID).await?.unwrap_or(0));
            }
            pins.insert(name, current.and_then(|t| t.version()));
        }
    }
    state.begin_promotion(id, &env.name, &pins).await?;
    failpoint("promote-pinned", &env.name);
    let mut tables = Vec::with_capacity(order.len());
    for name in order {
        let asset = project
            .asset(name)
            .ok_or_else(|| OrchestrateError::Config(format!("unknown asset `{name}`")))?;
        let (env_path, env_quarantine_path) = table_paths(&env_project, name);
        let (path, quarantine_path) = table_paths(production, name);
        let from = LakeTable::open(&env_path).await?.ok_or_else(|| {
            OrchestrateError::Config(format!(
                "environment `{}` lost its table `{name}` while promoting",
                env.name
            ))
        })?;
        let validator = Validator::new(&asset.name, &asset.contract, ParseOptions::default())?;
        let version_before = pins.get(name).copied().flatten();
        if LakeTable::open(&path).await?.is_none() {
            let description = asset
                .contract
                .description
                .as_ref()
                .and_then(|d| d.purpose.as_deref());
            LakeTable::open_or_create(&path, name, &validator.schema(), description).await?;
        }
        let adds = place_live_files(&from, &path, id).await?;
        let rows = adds.iter().map(rows_of).sum();
        let table = PublicationPart {
            table_path: path,
            adds,
            replace: true,
            merge_keys: Vec::new(),
            removes: Vec::new(),
            schema: Some(from.schema_json()?),
        };
        let env_quarantine = LakeTable::open(&env_quarantine_path).await?;
        let quarantine_name = format!("{name}_quarantine");
        let quarantine = match env_quarantine {
            Some(q) => {
                open_quarantine(&quarantine_path, &quarantine_name).await?;
                Some(place_live_files(&q, &quarantine_path, id).await?)
            }
            // Production's quarantine of the old table goes with it.
            None if quarantine_path.join("_delta_log").is_dir() => Some(Vec::new()),
            None => None,
        };
        let quarantined = quarantine.iter().flatten().map(rows_of).sum();
        let quarantine = quarantine.map(|adds| PublicationPart {
            table_path: quarantine_path,
            adds,
            replace: true,
            merge_keys: Vec::new(),
            removes: Vec::new(),
            schema: None,
        });
        let inputs = from
            .last_commit_value(INPUTS_KEY)
            .await?
            .and_then(|v| serde_json::from_value(v).ok());
        tables.push(JournalTable {
            asset: name.clone(),
            table,
            quarantine,
            env_table_id: from.table_id()?,
            env_version: from.version().unwrap_or(0),
            inputs,
            version_before,
            rows,
            quarantined,
        });
    }
    let journal = Journal {
        id: id.to_string(),
        environment: env.name.clone(),
        txn: txn + 1,
        tables,
    };
    write_journal(&promotion_journal_path(project), &journal)?;
    Ok(journal)
}

/// Commits every table not committed yet (idempotent), then switches the readers, records
/// the runs, drops the journal and removes the environment's folder.
async fn complete(
    project: &Project,
    state: &StateStore,
    journal: &Journal,
) -> Result<PromotionReport> {
    // Where each promoted table went: (environment id, version) → (production id, version).
    let mut moved: BTreeMap<String, (TableAt, TableAt)> = BTreeMap::new();
    let mut report = PromotionReport {
        id: journal.id.clone(),
        environment: journal.environment.clone(),
        tables: Vec::with_capacity(journal.tables.len()),
    };
    for table in &journal.tables {
        let mut metadata = BTreeMap::from([
            ("weir.operation".to_string(), serde_json::json!("promote")),
            ("weir.promotion".to_string(), serde_json::json!(journal.id)),
            (
                "weir.environment".to_string(),
                serde_json::json!(journal.environment),
            ),
        ]);
        if let Some(inputs) = carried_inputs(table.inputs.clone(), &moved) {
            metadata.insert(
                INPUTS_KEY.to_string(),
                serde_json::to_value(&inputs)
                    .map_err(|e| OrchestrateError::Config(e.to_string()))?,
            );
        }
        let publication = Publication {
            run_id: journal.id.clone(),
            app_id: PROMOTE_APP_ID.to_string(),
            version: journal.txn,
            commit_metadata: metadata,
            parts: std::iter::once(table.table.clone())
                .chain(table.quarantine.clone())
                .collect(),
            payload: serde_json::Value::Null,
        };
        publication.apply().await?;
        let committed = LakeTable::open(&table.table.table_path)
            .await?
            .ok_or_else(|| {
                OrchestrateError::Config(format!(
                    "production table `{}` vanished while promoting",
                    table.asset
                ))
            })?;
        let version = committed
            .find_txn_commit(PROMOTE_APP_ID, journal.txn)
            .await?
            .map(|c| c.version);
        if let Some(version) = version {
            moved.insert(
                table.asset.clone(),
                (
                    (table.env_table_id.clone(), table.env_version),
                    (committed.table_id()?, version),
                ),
            );
        }
        report.tables.push(PromotedTable {
            asset: table.asset.clone(),
            version_before: table.version_before,
            version,
            rows: table.rows,
            quarantined: table.quarantined,
        });
        failpoint("promote-between-tables", &table.asset);
    }
    state.finish_promotion(&journal.id, "done").await?;
    for table in &report.tables {
        if let Some(asset) = project.asset(&table.asset) {
            let mut record = RunRecord::start(
                &uuid::Uuid::now_v7().to_string(),
                asset,
                &format!("promote:{}", journal.environment),
            );
            record.status = "success".into();
            record.ended_at = Some(now());
            record.rows_in = table.rows + table.quarantined;
            record.rows_stored = table.rows;
            record.rows_quarantined = table.quarantined;
            record.table_version = table.version;
            state.insert_run(&record).await?;
        }
    }
    remove_journal(&promotion_journal_path(project))?;
    // Its tables are production's now (production holds its own links or copies of the
    // files): the next build in this environment starts from production again.
    weir_store::delete_lake(&project.environment_dir(&journal.environment)).await?;
    Ok(report)
}

/// The inputs a promoted model's commit may carry: those of its environment table, with each
/// upstream that was promoted before it renamed to its production table and version. `None`
/// (the next run recomputes it in full) when it read another version of such an upstream
/// than the one promoted.
fn carried_inputs(
    inputs: Option<Inputs>,
    moved: &BTreeMap<String, (TableAt, TableAt)>,
) -> Option<Inputs> {
    let mut inputs = inputs?;
    for (name, input) in inputs.tables.iter_mut() {
        if let Some(((env_id, env_version), (prod_id, prod_version))) = moved.get(name) {
            if &input.id != env_id || input.version != *env_version {
                return None;
            }
            input.id = prod_id.clone();
            input.version = *prod_version;
        }
    }
    Some(inputs)
}

/// Finishes what a killed promotion left: a journal is completed; a promotion marked
/// publishing by a process that is gone, with no journal, never committed anything and is
/// abandoned. One sentence per thing done.
pub async fn recover_promotion(project: &Project, state: &StateStore) -> Result<Vec<String>> {
    let mut messages = Vec::new();
    let path = promotion_journal_path(project);
    let mut completed = None;
    let journal: Option<Journal> = read_journal(&path).map_err(|e| {
        OrchestrateError::Config(format!(
            "{e}; production's tables are each whole, but the promotion it records may be half-done: compare them with `weir diff`, then remove the file"
        ))
    })?;
    if let Some(journal) = journal {
        let assets: Vec<String> = journal.tables.iter().map(|t| t.asset.clone()).collect();
        let leases = AssetLeases::acquire(state, &assets).await?;
        let done = complete(project, state, &journal).await;
        leases.release().await?;
        let report = done?;
        messages.push(format!(
            "completed the promotion of environment `{}` that was interrupted: {} published to production",
            report.environment,
            assets.join(", ")
        ));
        completed = Some(journal.id);
    }
    for (id, environment, by) in state.publishing_promotions().await? {
        if Some(&id) != completed.as_ref() && holder_is_gone(&by) {
            state.finish_promotion(&id, "abandoned").await?;
            messages.push(format!(
                "abandoned the promotion of environment `{environment}` stopped before it committed anything; production is as it was"
            ));
        }
    }
    Ok(messages)
}

impl StateStore {
    /// Records a promotion as publishing, with the versions readers are pinned to meanwhile.
    async fn begin_promotion(
        &self,
        id: &str,
        environment: &str,
        pins: &BTreeMap<String, Option<u64>>,
    ) -> Result<()> {
        let pins =
            serde_json::to_string(pins).map_err(|e| OrchestrateError::Config(e.to_string()))?;
        sqlx::query(
            "INSERT INTO promotions (id, environment, status, holder, started_at, pins)
             VALUES ($1, $2, 'publishing', $3, $4, $5)",
        )
        .bind(id)
        .bind(environment)
        .bind(holder())
        .bind(now())
        .bind(pins)
        .execute(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(())
    }

    /// Ends a promotion (`done` or `abandoned`): its pins stop applying, all at once.
    async fn finish_promotion(&self, id: &str, status: &str) -> Result<()> {
        sqlx::query(
            "UPDATE promotions SET status = $1, finished_at = $2
             WHERE id = $3 AND status = 'publishing'",
        )
        .bind(status)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(state_err)?;
        Ok(())
    }

    async fn publishing_promotions(&self) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT id, environment, holder FROM promotions WHERE status = 'publishing'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id").map_err(state_err)?,
                    r.try_get("environment").map_err(state_err)?,
                    r.try_get("holder").map_err(state_err)?,
                ))
            })
            .collect()
    }

    /// The versions readers that go through weir read while a promotion is publishing: table
    /// name (`orders`, `quarantine.orders`) → version (`None`: the table did not exist, so
    /// it is not there to read). Empty when no promotion is in flight.
    pub async fn promotion_pins(&self) -> Result<BTreeMap<String, Option<u64>>> {
        let rows = sqlx::query("SELECT pins FROM promotions WHERE status = 'publishing'")
            .fetch_all(&self.pool)
            .await
            .map_err(state_err)?;
        let mut pins = BTreeMap::new();
        for row in rows {
            let text: String = row.try_get("pins").map_err(state_err)?;
            let these: BTreeMap<String, Option<u64>> = serde_json::from_str(&text)
                .map_err(|e| OrchestrateError::State(format!("promotion pins: {e}")))?;
            pins.extend(these);
        }
        Ok(pins)
    }
}
