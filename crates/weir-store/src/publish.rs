//! Publishing a run: one atomic Delta commit per table, made exactly-once by a `txn` action,
//! and journalled so a crash between two tables' commits is completed, never doubled.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add, MetadataExt, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, MergePredicate, SaveMode};
use std::sync::Arc;

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::table::{LakeTable, keys_equal, percent_decode, quote};

/// Everything needed to make a staged run visible, written to disk before the first commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publication {
    pub run_id: String,
    /// The Delta application id (`weir:<asset>`): one monotonic sequence per asset.
    pub app_id: String,
    /// This run's position in that sequence; a table whose `txn` for `app_id` is at or past it
    /// already holds this run.
    pub version: i64,
    /// Added to each commit's `commitInfo` (run id, contract version, ...).
    pub commit_metadata: BTreeMap<String, serde_json::Value>,
    pub parts: Vec<PublicationPart>,
    /// What the orchestrator must record once the commits are in (the file ledger), so that a
    /// recovered run can record it too.
    pub payload: serde_json::Value,
}

/// One table's share of a publication.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicationPart {
    pub table_path: PathBuf,
    pub adds: Vec<Add>,
    /// Replace every row the table has (a full refresh) instead of appending.
    pub replace: bool,
    /// Merge the staged rows on these key columns (Delta MERGE: update matches, insert the
    /// rest) instead of appending them.
    #[serde(default)]
    pub merge_keys: Vec<String>,
    /// Data files (paths relative to the table, decoded) this commit removes: files whose rows `adds` rewrites
    /// (a replay marking quarantined rows as replayed).
    #[serde(default)]
    pub removes: Vec<String>,
    /// The table's schema after this commit (a Delta schema as JSON) when a `replace` brings
    /// rows of another shape (a promoted table whose contract changed): the commit then
    /// carries the new metadata too, so the rows and their schema switch together.
    #[serde(default)]
    pub schema: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PartOutcome {
    pub table_path: PathBuf,
    /// The table version holding this run.
    pub version: Option<u64>,
    /// The commit was already there (a recovered run, or a re-applied journal).
    pub already_published: bool,
}

impl Publication {
    /// Commits every part that does not hold this run yet. Safe to call any number of times.
    pub async fn apply(&self) -> Result<Vec<PartOutcome>> {
        let mut outcomes = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let (mut table, published) = self.open_part(part, "vanished before publishing").await?;
            if published {
                outcomes.push(PartOutcome {
                    table_path: part.table_path.clone(),
                    version: table.version(),
                    already_published: true,
                });
                continue;
            }
            check_part(&table, part)?;
            let version = self.commit(&mut table, part).await?;
            outcomes.push(PartOutcome {
                table_path: part.table_path.clone(),
                version: Some(version),
                already_published: false,
            });
        }
        Ok(outcomes)
    }

    /// Opens a part's table (`missing` says what it means that there is none), and whether it
    /// already holds this publication (its `txn` for the app id is at or past this version).
    async fn open_part(&self, part: &PublicationPart, missing: &str) -> Result<(LakeTable, bool)> {
        let table = LakeTable::open(&part.table_path).await?.ok_or_else(|| {
            StoreError::Other(format!("table {} {missing}", part.table_path.display()))
        })?;
        let published = table
            .txn_version(&self.app_id)
            .await?
            .is_some_and(|v| v >= self.version);
        Ok((table, published))
    }

    /// Checks, without committing, everything a part not yet committed needs: its table
    /// exists, its merge keys are columns of the table, its staged files are on disk. Done
    /// before the journal is written, so that completing a journal rarely fails.
    pub async fn validate(&self) -> Result<()> {
        for part in &self.parts {
            let (table, published) = self.open_part(part, "does not exist").await?;
            if published {
                continue;
            }
            check_part(&table, part)?;
        }
        Ok(())
    }

    /// Which parts' tables already hold this run (`true`), in part order; a missing table
    /// holds nothing.
    pub async fn committed(&self) -> Result<Vec<(PathBuf, Option<u64>, bool)>> {
        let mut out = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let Some(table) = LakeTable::open(&part.table_path).await? else {
                out.push((part.table_path.clone(), None, false));
                continue;
            };
            let holds = table
                .txn_version(&self.app_id)
                .await?
                .is_some_and(|v| v >= self.version);
            out.push((part.table_path.clone(), table.version(), holds));
        }
        Ok(out)
    }

    async fn commit(&self, table: &mut LakeTable, part: &PublicationPart) -> Result<u64> {
        if !part.merge_keys.is_empty() && !part.replace {
            return self.merge(table, part).await;
        }
        let path = table.path.clone();
        let snapshot = table.table.snapshot().map_err(StoreError::delta(&path))?;
        let mut actions: Vec<Action> = Vec::new();
        if part.replace {
            let removes: Vec<Action> = snapshot
                .snapshot()
                .file_views(table.table.log_store().as_ref(), None)
                .map_ok(|f| Action::Remove(f.remove_action(true)))
                .try_collect()
                .await
                .map_err(StoreError::delta(&path))?;
            actions.extend(removes);
        } else if !part.removes.is_empty() {
            let wanted: BTreeSet<&str> = part.removes.iter().map(String::as_str).collect();
            let removes: Vec<Action> = snapshot
                .snapshot()
                .file_views(table.table.log_store().as_ref(), None)
                .try_filter(|f| futures::future::ready(wanted.contains(f.path().as_ref())))
                .map_ok(|f| Action::Remove(f.remove_action(true)))
                .try_collect()
                .await
                .map_err(StoreError::delta(&path))?;
            if removes.len() != wanted.len() {
                return Err(StoreError::Other(format!(
                    "table {}: {} of the {} files this publication rewrites are no longer in the table",
                    path.display(),
                    wanted.len() - removes.len(),
                    wanted.len()
                )));
            }
            actions.extend(removes);
        }
        if let Some(schema) = &part.schema {
            let wanted: StructType = serde_json::from_str(schema).map_err(|e| {
                StoreError::Other(format!(
                    "table {}: the schema to publish: {e}",
                    path.display()
                ))
            })?;
            if snapshot.schema().as_ref() != &wanted {
                let metadata = snapshot
                    .metadata()
                    .clone()
                    .with_schema(&wanted)
                    .map_err(|e| StoreError::delta(&path)(e.into()))?;
                actions.push(Action::Metadata(metadata));
            }
        }
        actions.extend(part.adds.iter().cloned().map(Action::Add));
        let properties = LakeTable::commit_properties()
            .with_application_transaction(Transaction::new(&self.app_id, self.version))
            .with_metadata(self.commit_metadata.clone());
        let operation = if !part.removes.is_empty() && !part.replace {
            DeltaOperation::Update { predicate: None }
        } else {
            DeltaOperation::Write {
                mode: if part.replace {
                    SaveMode::Overwrite
                } else {
                    SaveMode::Append
                },
                partition_by: None,
                predicate: None,
            }
        };
        let finalized = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(snapshot), table.table.log_store(), operation)
            .await
            .map_err(|e| StoreError::Delta {
                path: path.clone(),
                source: e,
            })?;
        let version = finalized.version();
        table.committed(finalized.snapshot);
        Ok(version)
    }
}

impl Publication {
    /// Merges the staged files into the table in one commit carrying the same `txn` and
    /// metadata as any other publish: updates the rows whose key a staged row carries and
    /// inserts the rest.
    async fn merge(&self, table: &mut LakeTable, part: &PublicationPart) -> Result<u64> {
        if part.adds.is_empty() {
            // Nothing to merge: record the run's txn with an empty commit so it is not redone.
            let empty = PublicationPart {
                merge_keys: Vec::new(),
                ..part.clone()
            };
            return Box::pin(self.commit(table, &empty)).await;
        }
        // Boxed: both are deep DataFusion futures, and inline they made every future that
        // publishes (up to `weir serve`'s run task) big enough to overflow a worker's stack in
        // debug builds.
        if let Some(files) = crate::merge::small_file_set(table).await? {
            return Box::pin(self.merge_by_rewrite(table, part, files)).await;
        }
        Box::pin(self.merge_by_delta_merge(table, part)).await
    }

    /// The merge as one commit that rewrites the files holding a staged key (`merge.rs`).
    async fn merge_by_rewrite(
        &self,
        table: &mut LakeTable,
        part: &PublicationPart,
        files: Vec<(String, Action)>,
    ) -> Result<u64> {
        let path = table.path.clone();
        let rewrite =
            crate::merge::rewrite_matched(table, files, &part.adds, &part.merge_keys).await?;
        let snapshot = table.table.snapshot().map_err(StoreError::delta(&path))?;
        let mut actions = rewrite.removes;
        actions.extend(rewrite.adds.iter().cloned().map(Action::Add));
        actions.extend(part.adds.iter().cloned().map(Action::Add));
        let mut metadata = self.commit_metadata.clone();
        metadata.insert(
            "operationMetrics".into(),
            serde_json::to_value(&rewrite.metrics).map_err(|e| StoreError::Other(e.to_string()))?,
        );
        if let Some(read) = table.version() {
            metadata.insert("readVersion".into(), read.into());
        }
        let properties = LakeTable::commit_properties()
            .with_application_transaction(Transaction::new(&self.app_id, self.version))
            .with_metadata(metadata);
        let predicate = keys_equal(&part.merge_keys, "target", "source");
        let operation = DeltaOperation::Merge {
            predicate: None,
            merge_predicate: Some(predicate),
            matched_predicates: vec![MergePredicate {
                action_type: "update".into(),
                predicate: None,
            }],
            not_matched_predicates: vec![MergePredicate {
                action_type: "insert".into(),
                predicate: None,
            }],
            not_matched_by_source_predicates: Vec::new(),
        };
        let committed = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(snapshot), table.table.log_store(), operation)
            .await;
        match committed {
            Ok(finalized) => {
                let version = finalized.version();
                table.committed(finalized.snapshot);
                Ok(version)
            }
            Err(source) => {
                crate::table::discard_staged(&path, &rewrite.adds);
                Err(StoreError::Delta { path, source })
            }
        }
    }

    /// The merge through delta-rs's MERGE, for tables of many files. Its commit writes the
    /// staged rows again, so the staged files themselves are then unreferenced and deleted.
    async fn merge_by_delta_merge(
        &self,
        table: &mut LakeTable,
        part: &PublicationPart,
    ) -> Result<u64> {
        let path = table.path.clone();
        let ctx = SessionContext::new();
        table
            .table
            .update_datafusion_session(&ctx.state())
            .map_err(StoreError::delta(&path))?;
        let snapshot = table.table.snapshot().map_err(StoreError::delta(&path))?;
        let columns: Vec<String> = snapshot
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        let files: Vec<String> = part
            .adds
            .iter()
            .map(|a| {
                table
                    .path
                    .join(percent_decode(&a.path))
                    .display()
                    .to_string()
            })
            .collect();
        let arrow_schema = ctx
            .read_parquet(files.clone(), ParquetReadOptions::default())
            .await?
            .schema()
            .as_arrow()
            .clone();
        let source = ctx
            .read_parquet(files, ParquetReadOptions::default().schema(&arrow_schema))
            .await?;
        let predicate = keys_equal(&part.merge_keys, "target", "source");
        let properties = LakeTable::commit_properties()
            .with_application_transaction(Transaction::new(&self.app_id, self.version))
            .with_metadata(self.commit_metadata.clone());
        let update_columns = columns.clone();
        let (merged, _metrics) = table
            .table
            .clone()
            .merge(source, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_session_state(Arc::new(ctx.state()))
            .with_commit_properties(properties)
            .when_matched_update(|update| {
                update_columns.iter().fold(update, |u, c| {
                    u.update(c.as_str(), format!("source.{}", quote(c)))
                })
            })
            .map_err(StoreError::delta(&path))?
            .when_not_matched_insert(|insert| {
                columns.iter().fold(insert, |i, c| {
                    i.set(c.as_str(), format!("source.{}", quote(c)))
                })
            })
            .map_err(StoreError::delta(&path))?
            .await
            .map_err(StoreError::delta(&path))?;
        crate::table::discard_staged(&path, &part.adds);
        let version = merged.version().unwrap_or_default();
        table.table = merged;
        table.after_commit();
        Ok(version)
    }
}

/// What a part needs before it can be committed.
fn check_part(table: &LakeTable, part: &PublicationPart) -> Result<()> {
    if !part.merge_keys.is_empty() && !part.replace {
        let snapshot = table
            .table
            .snapshot()
            .map_err(StoreError::delta(&table.path))?;
        let columns: Vec<String> = snapshot
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        let unknown: Vec<&str> = part
            .merge_keys
            .iter()
            .filter(|k| !columns.contains(k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(StoreError::Other(format!(
                "table {}: merge key column(s) {} are not among its columns ({})",
                table.path.display(),
                unknown.join(", "),
                columns.join(", ")
            )));
        }
    }
    let missing: Vec<String> = part
        .adds
        .iter()
        .map(|a| percent_decode(&a.path))
        .filter(|p| !table.path.join(p).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::Other(format!(
            "table {}: {} staged file(s) to publish are missing ({}); committing would name files that do not exist",
            table.path.display(),
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Writes a journal (a run's `Publication`, a promotion's plan) atomically: a reader sees the
/// whole file or none of it.
pub fn write_journal<T: Serialize>(path: &Path, journal: &T) -> Result<()> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(journal).map_err(|e| StoreError::Journal {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub fn read_journal<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Journal {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Moves a journal that cannot be read into `broken/<stem>.<timestamp>.json` next to it, kept
/// for inspection; returns where it went.
pub fn move_journal_aside(path: &Path) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new(".")).join("broken");
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
        path: dir.clone(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "journal".into());
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let target = dir.join(format!("{stem}.{stamp}.json"));
    std::fs::rename(path, &target).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(target)
}

pub fn remove_journal(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

    use super::*;
    use crate::table::register_delta;

    fn key_value() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
        ]))
    }

    async fn stage(table: &LakeTable, rows: &[(Option<i64>, &str)]) -> Vec<Add> {
        let keys: Int64Array = rows.iter().map(|(k, _)| *k).collect();
        let values: StringArray = rows.iter().map(|(_, v)| Some(*v)).collect();
        let batch = RecordBatch::try_new(key_value(), vec![Arc::new(keys), Arc::new(values)])
            .expect("batch");
        let mut writer = table.stage().expect("stage");
        writer.write(batch).await.expect("write");
        writer.finish().await.expect("finish")
    }

    fn publication(path: &Path, version: i64, adds: Vec<Add>, merge_keys: &[&str]) -> Publication {
        Publication {
            run_id: format!("r{version}"),
            app_id: "weir:t".into(),
            version,
            commit_metadata: BTreeMap::new(),
            parts: vec![PublicationPart {
                table_path: path.to_path_buf(),
                adds,
                replace: false,
                merge_keys: merge_keys.iter().map(|k| k.to_string()).collect(),
                removes: Vec::new(),
                schema: None,
            }],
            payload: serde_json::Value::Null,
        }
    }

    /// A table of four data files: one with a key the merge updates beside keys it keeps, one
    /// it does not touch, one holding a NULL key (which matches nothing) and one whose every
    /// row the merge replaces.
    async fn four_files(path: &Path) -> LakeTable {
        let table = LakeTable::open_or_create(path, "t", &key_value(), None)
            .await
            .expect("create");
        let files: [&[(Option<i64>, &str)]; 4] = [
            &[(Some(1), "a1"), (Some(2), "a2"), (Some(3), "a3")],
            &[(Some(4), "a4"), (Some(5), "a5")],
            &[(None, "a-null"), (Some(6), "a6")],
            &[(Some(7), "a7")],
        ];
        for (i, rows) in files.into_iter().enumerate() {
            let adds = stage(&table, rows).await;
            publication(path, i as i64 + 1, adds, &[])
                .apply()
                .await
                .expect("append");
        }
        LakeTable::open(path).await.expect("open").expect("table")
    }

    async fn rows(path: &Path) -> String {
        rows_of(path, "SELECT k, v FROM t ORDER BY k NULLS FIRST, v").await
    }

    /// The rows `sql` gives over the table at `path` (as `t`), printed.
    async fn rows_of(path: &Path, sql: &str) -> String {
        let table = LakeTable::open(path).await.expect("open").expect("table");
        let ctx = SessionContext::new();
        register_delta(&ctx, "t", &table).await.expect("register");
        let batches = ctx
            .sql(sql)
            .await
            .expect("sql")
            .collect()
            .await
            .expect("collect");
        arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string()
    }

    async fn live_paths(table: &LakeTable) -> BTreeSet<String> {
        let files = table.live_files().await.expect("files");
        files.into_iter().map(|f| f.path).collect()
    }

    const MERGED: &[(Option<i64>, &str)] = &[
        (Some(2), "b2"),
        (Some(7), "b7"),
        (Some(8), "b8"),
        (None, "b-null"),
    ];

    /// The merge that rewrites the files holding a staged key commits the same rows as
    /// delta-rs's MERGE on the same table, removes only the files that held a staged key,
    /// and is not applied twice.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_merge_by_rewrite_gives_the_rows_of_a_delta_merge() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (rewritten, merged) = (tmp.path().join("rewrite"), tmp.path().join("merge"));

        let mut oracle = four_files(&merged).await;
        let adds = stage(&oracle, MERGED).await;
        let by_merge = publication(&merged, 5, adds, &["k"]);
        by_merge
            .merge_by_delta_merge(&mut oracle, &by_merge.parts[0])
            .await
            .expect("delta merge");

        let table = four_files(&rewritten).await;
        let before = live_paths(&table).await;
        let adds = stage(&table, MERGED).await;
        let by_rewrite = publication(&rewritten, 5, adds.clone(), &["k"]);
        let outcome = by_rewrite.apply().await.expect("merge");
        assert!(!outcome[0].already_published);

        let expected = rows(&merged).await;
        assert_eq!(rows(&rewritten).await, expected);
        assert!(expected.contains("b-null") && expected.contains("a-null"));
        assert!(expected.contains("a1") && !expected.contains("a2") && !expected.contains("a7"));

        let table = LakeTable::open(&rewritten)
            .await
            .expect("open")
            .expect("table");
        let after = live_paths(&table).await;
        let kept: Vec<&String> = before.intersection(&after).collect();
        assert_eq!(
            kept.len(),
            2,
            "the untouched file and the NULL key's: {kept:?}"
        );
        let staged: BTreeSet<String> = adds.iter().map(|a| percent_decode(&a.path)).collect();
        assert!(
            staged.is_subset(&after),
            "the staged file is added as it is"
        );
        assert_eq!(
            after.len(),
            4,
            "kept 2 + one rewritten + one staged: {after:?}"
        );

        let metrics = table
            .last_commit_value("operationMetrics")
            .await
            .expect("commit info")
            .expect("operationMetrics");
        for (name, expected) in [
            ("num_source_rows", 4),
            ("num_target_rows_inserted", 2),
            ("num_target_rows_updated", 2),
            ("num_target_rows_copied", 2),
            ("num_output_rows", 6),
            ("num_target_files_removed", 2),
            ("num_target_files_added", 2),
        ] {
            assert_eq!(metrics[name].as_u64(), Some(expected), "{name}: {metrics}");
        }

        let again = by_rewrite.apply().await.expect("again");
        assert!(again[0].already_published);
        assert_eq!(rows(&rewritten).await, expected);
    }

    /// A table that gained a column after its files were written: the rewrite of an old file
    /// reads the new column as NULL, as delta-rs's MERGE does, and keeps the new rows' values.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_merge_by_rewrite_reads_an_added_column_as_null_in_older_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (rewritten, merged) = (tmp.path().join("rewrite"), tmp.path().join("merge"));
        let evolved: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
            Field::new("w", DataType::Utf8, true),
        ]));
        let mut tables = Vec::new();
        for path in [&merged, &rewritten] {
            four_files(path).await;
            let table = LakeTable::open_or_create_evolving(path, "t", &evolved, None)
                .await
                .expect("evolve");
            let batch = RecordBatch::try_new(
                Arc::clone(&evolved),
                vec![
                    Arc::new(Int64Array::from(vec![Some(3), Some(9)])),
                    Arc::new(StringArray::from(vec!["c3", "c9"])),
                    Arc::new(StringArray::from(vec!["w3", "w9"])),
                ],
            )
            .expect("batch");
            let mut writer = table.stage().expect("stage");
            writer.write(batch).await.expect("write");
            tables.push((table, writer.finish().await.expect("finish")));
        }
        let (mut oracle, adds) = tables.remove(0);
        let by_merge = publication(&merged, 5, adds, &["k"]);
        by_merge
            .merge_by_delta_merge(&mut oracle, &by_merge.parts[0])
            .await
            .expect("delta merge");
        let (_, adds) = tables.remove(0);
        publication(&rewritten, 5, adds, &["k"])
            .apply()
            .await
            .expect("merge");

        let all = |path: PathBuf| async move {
            rows_of(&path, "SELECT k, v, w FROM t ORDER BY k NULLS FIRST").await
        };
        let expected = all(merged).await;
        assert!(expected.contains("| 1 | a1     |    |"), "{expected}");
        assert!(expected.contains("| 3 | c3     | w3 |"), "{expected}");
        assert_eq!(all(rewritten).await, expected);
    }
}
