//! OpenLineage run events (spec 2-0-2): every asset run that happened (not a skipped or an
//! up-to-date one) is a job run with a `START` and a `COMPLETE` or `FAIL` event, sent to a
//! Marquez-compatible HTTP endpoint (`POST {url}/api/v1/lineage`) and/or appended to a file,
//! one JSON event per line, as `[openlineage]` in weir.toml says.
//!
//! Both events are sent when the run ends, each with its own time (the start is the end less
//! the run's duration): the run's figures exist only then, and a receiver orders events by
//! their time. The job is the asset in the project's namespace; its run id is weir's (a
//! UUID). Datasets are named by where they are (`file` namespace, the absolute path): the
//! files a source read, the upstream tables a model read, the table the run wrote. The output
//! carries the `schema` (the contract's columns), `columnLineage` (a model's, from its plan,
//! with the DIRECT/INDIRECT transformation types), `dataQualityMetrics` (rows stored, bytes,
//! nulls per column) and `dataQualityAssertions` (each contract check, passed or not)
//! facets, and `outputStatistics`; a failed run carries `errorMessage`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use weir_model::Project;
use weir_orchestrate::{AssetGraph, AssetRunReport, RunStatus, table_paths};
use weir_process::{Lineage, column_lineage};
use weir_quality::{ParseOptions, Validator};

use crate::error::ObserveError;

/// Who produced the events and facets (a URI, as the spec asks: weir and its version).
const PRODUCER: &str = concat!("urn:weir:", env!("CARGO_PKG_VERSION"));
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const FACETS: &str = "https://openlineage.io/spec/facets";

fn facet(path: &str, name: &str, body: Value) -> Value {
    let mut body = body;
    if let Value::Object(map) = &mut body {
        map.insert("_producer".into(), PRODUCER.into());
        map.insert(
            "_schemaURL".into(),
            format!("{FACETS}/{path}.json#/$defs/{name}").into(),
        );
    }
    body
}

/// Per asset, where each column comes from: models from their plans, sources from themselves
/// (each column its own, `IDENTITY`).
pub async fn all_column_lineage(
    project: &Project,
    graph: &AssetGraph,
) -> Result<BTreeMap<String, Lineage>, ObserveError> {
    let mut out = BTreeMap::new();
    for asset in &project.assets {
        out.insert(
            asset.name.clone(),
            column_lineage_of(project, graph, asset).await?,
        );
    }
    Ok(out)
}

/// Where each column of one asset comes from (see [`all_column_lineage`]).
async fn column_lineage_of(
    project: &Project,
    graph: &AssetGraph,
    asset: &weir_model::Asset,
) -> Result<Lineage, ObserveError> {
    let invalid = |e: &dyn std::fmt::Display| ObserveError::Invalid(e.to_string());
    let Some(model) = &asset.model else {
        let validator = Validator::new(&asset.name, &asset.contract, ParseOptions::default())
            .map_err(|e| invalid(&e))?;
        let columns = validator
            .column_names()
            .into_iter()
            .map(|c| weir_process::ColumnLineage {
                edges: std::collections::BTreeSet::from([weir_process::Edge {
                    table: asset.name.clone(),
                    column: c.clone(),
                    subtype: weir_process::Subtype::Identity,
                }]),
                column: c,
                unknown: false,
            })
            .collect();
        return Ok(Lineage {
            columns,
            dataset: Default::default(),
            dataset_unknown: false,
        });
    };
    let mut upstream = Vec::new();
    for name in graph.upstream.get(&asset.name).into_iter().flatten() {
        if let Some(up) = project.asset(name) {
            let schema = Validator::new(name, &up.contract, ParseOptions::default())
                .map_err(|e| invalid(&e))?
                .schema();
            upstream.push((name.clone(), schema));
        }
    }
    column_lineage(&model.sql, &upstream)
        .await
        .map_err(|e| ObserveError::Invalid(format!("{}: {}", model.path.display(), e.message)))
}

/// A dataset reference: the `file` namespace and an absolute path.
fn dataset(path: &Path) -> (String, String) {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    ("file".to_string(), absolute.display().to_string())
}

fn table_of(project: &Project, asset: &str) -> (String, String) {
    dataset(&table_paths(project, asset).0)
}

/// Whether a run that happened succeeded; `None` for one that did not happen (skipped, up to
/// date, needing a full refresh), which has no events.
fn succeeded(status: RunStatus) -> Option<bool> {
    match status {
        RunStatus::Success => Some(true),
        RunStatus::Partial | RunStatus::Failed | RunStatus::Error => Some(false),
        _ => None,
    }
}

/// The `START` and the `COMPLETE` or `FAIL` event of one asset run, or none for a run that
/// did not happen (skipped, up to date).
pub fn run_events(
    project: &Project,
    graph: &AssetGraph,
    lineage: Option<&Lineage>,
    report: &AssetRunReport,
    ended: DateTime<Utc>,
) -> Vec<Value> {
    let Some(ended_ok) = succeeded(report.status) else {
        return Vec::new();
    };
    let Some(asset) = project.asset(&report.asset) else {
        return Vec::new();
    };
    let namespace = project
        .config
        .openlineage
        .namespace
        .clone()
        .unwrap_or_else(|| project.config.project.name.clone());
    let started = ended
        - chrono::Duration::from_std(report.duration).unwrap_or_else(|_| chrono::Duration::zero());
    let mut job_facets = serde_json::Map::new();
    job_facets.insert(
        "jobType".into(),
        facet(
            "2-0-4/JobTypeJobFacet",
            "JobTypeJobFacet",
            json!({"processingType": "BATCH", "integration": "WEIR", "jobType": asset.kind().to_ascii_uppercase()}),
        ),
    );
    if let Some(model) = &asset.model {
        job_facets.insert(
            "sql".into(),
            facet(
                "1-1-0/SQLJobFacet",
                "SQLJobFacet",
                json!({"query": model.sql}),
            ),
        );
    }
    let job = json!({"namespace": namespace, "name": report.asset, "facets": job_facets});

    let inputs: Vec<Value> = if asset.model.is_some() {
        graph
            .upstream
            .get(&report.asset)
            .into_iter()
            .flatten()
            .map(|up| {
                let (ns, name) = table_of(project, up);
                json!({"namespace": ns, "name": name, "facets": {}})
            })
            .collect()
    } else {
        report
            .files
            .iter()
            .map(|f| {
                let (ns, name) = dataset(&project.root.join(f));
                json!({"namespace": ns, "name": name, "facets": {}})
            })
            .collect()
    };

    let (out_ns, out_name) = dataset(&report.table_path);
    let mut facets = serde_json::Map::new();
    let validator = Validator::new(&asset.name, &asset.contract, ParseOptions::default()).ok();
    if let Some(validator) = &validator {
        let fields: Vec<Value> = validator
            .schema()
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
            .collect();
        facets.insert(
            "schema".into(),
            facet(
                "1-2-0/SchemaDatasetFacet",
                "SchemaDatasetFacet",
                json!({ "fields": fields }),
            ),
        );
    }
    if asset.model.is_some()
        && let Some(lineage) = lineage
    {
        facets.insert(
            "columnLineage".into(),
            column_lineage_facet(project, lineage),
        );
    }
    let column_metrics: serde_json::Map<String, Value> = report
        .null_counts
        .iter()
        .map(|(c, n)| (c.clone(), json!({ "nullCount": n })))
        .collect();
    facets.insert(
        "dataQualityMetrics".into(),
        facet(
            "1-0-1/DataQualityMetricsDatasetFacet",
            "DataQualityMetricsDatasetFacet",
            json!({"rowCount": report.rows_stored, "bytes": report.stages.bytes_written, "columnMetrics": column_metrics}),
        ),
    );
    let assertions: Vec<Value> = report
        .checks
        .iter()
        .map(|c| {
            let mut a = json!({"assertion": c.id, "success": c.passed});
            if let Some(column) = &c.column {
                a["column"] = column.clone().into();
            }
            a
        })
        .collect();
    facets.insert(
        "dataQualityAssertions".into(),
        facet(
            "1-1-0/DataQualityAssertionsDatasetFacet",
            "DataQualityAssertionsDatasetFacet",
            json!({ "assertions": assertions }),
        ),
    );
    let output = json!({
        "namespace": out_ns,
        "name": out_name,
        "facets": facets,
        "outputFacets": {
            "outputStatistics": facet(
                "1-0-2/OutputStatisticsOutputDatasetFacet",
                "OutputStatisticsOutputDatasetFacet",
                json!({"rowCount": report.rows_stored, "size": report.stages.bytes_written}),
            )
        }
    });

    let event = |kind: &str, at: DateTime<Utc>, run_facets: Value, with_output: bool| {
        json!({
            "eventType": kind,
            "eventTime": at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT,
            "run": {"runId": report.run_id, "facets": run_facets},
            "job": job,
            "inputs": inputs,
            "outputs": if with_output { vec![output.clone()] } else {
                vec![json!({"namespace": out_ns, "name": out_name, "facets": {}})]
            },
        })
    };
    let end_facets = match (&report.error, ended_ok) {
        (Some(message), false) => json!({
            "errorMessage": facet(
                "1-0-1/ErrorMessageRunFacet",
                "ErrorMessageRunFacet",
                json!({"message": message, "programmingLanguage": "RUST"}),
            )
        }),
        _ => json!({}),
    };
    vec![
        event("START", started, json!({}), false),
        event(
            if ended_ok { "COMPLETE" } else { "FAIL" },
            ended,
            end_facets,
            true,
        ),
    ]
}

/// The `columnLineage` facet: each output column's input fields with how they reach it, and
/// the inputs that shape the whole dataset (filters, joins, grouping, ordering).
fn column_lineage_facet(project: &Project, lineage: &Lineage) -> Value {
    let field = |e: &weir_process::Edge| {
        let (ns, name) = table_of(project, &e.table);
        json!({
            "namespace": ns,
            "name": name,
            "field": e.column,
            "transformations": [{
                "type": e.kind().as_str(),
                "subtype": e.subtype.as_str(),
                "description": "",
                "masking": false,
            }],
        })
    };
    let fields: serde_json::Map<String, Value> = lineage
        .columns
        .iter()
        .map(|c| {
            let inputs: Vec<Value> = c.edges.iter().map(field).collect();
            (c.column.clone(), json!({ "inputFields": inputs }))
        })
        .collect();
    let dataset: Vec<Value> = lineage.dataset.iter().map(field).collect();
    facet(
        "1-2-0/ColumnLineageDatasetFacet",
        "ColumnLineageDatasetFacet",
        json!({"fields": fields, "dataset": dataset}),
    )
}

/// Where the events of a project go, and how the last sending went.
pub struct Emitter {
    url: Option<String>,
    file: Option<PathBuf>,
    client: reqwest::Client,
}

/// How long one event may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

impl Emitter {
    /// `None` when `[openlineage]` sends events nowhere.
    pub fn of(project: &Project) -> Option<Emitter> {
        let config = &project.config.openlineage;
        if !config.enabled() {
            return None;
        }
        Some(Emitter {
            url: config.url.as_ref().map(|u| {
                format!(
                    "{}/{}",
                    u.trim_end_matches('/'),
                    config.endpoint.trim_start_matches('/')
                )
            }),
            file: config.file.as_ref().map(|f| project.root.join(f)),
            client: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .build()
                .unwrap_or_default(),
        })
    }

    /// Appends the events to the file and posts each to the endpoint, in order. What could
    /// not be delivered is returned as sentences (the runs stand; lineage is told, not
    /// required).
    pub async fn send(&self, events: &[Value]) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(path) = &self.file {
            let appended = (|| -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                let mut text = String::new();
                for event in events {
                    text.push_str(&event.to_string());
                    text.push('\n');
                }
                file.write_all(text.as_bytes())?;
                file.sync_data()
            })();
            if let Err(e) = appended {
                problems.push(format!(
                    "OpenLineage events could not be appended to {}: {e}",
                    path.display()
                ));
            }
        }
        if let Some(url) = &self.url {
            for event in events {
                let sent = self
                    .client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(event.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => problems.push(format!(
                        "OpenLineage endpoint {url} answered {} to a {} event",
                        response.status(),
                        event["eventType"].as_str().unwrap_or("run")
                    )),
                    Err(e) => problems.push(format!("OpenLineage endpoint {url}: {e}")),
                }
            }
        }
        problems
    }
}

/// Sends the events of `reports` where the project says.
/// Returns what could not be delivered.
pub async fn emit_runs(
    project: &Project,
    graph: &AssetGraph,
    reports: &[AssetRunReport],
) -> Vec<String> {
    let Some(emitter) = Emitter::of(project) else {
        return Vec::new();
    };
    // Column lineage is planned for the models that ran, not for the whole project.
    let now = Utc::now();
    let mut events = Vec::new();
    for report in reports {
        let lineage = match project.asset(&report.asset) {
            Some(asset) if asset.model.is_some() && succeeded(report.status).is_some() => {
                column_lineage_of(project, graph, asset)
                    .await
                    .map_err(|e| tracing::warn!("column lineage of {}: {e}", asset.name))
                    .ok()
            }
            _ => None,
        };
        events.extend(run_events(project, graph, lineage.as_ref(), report, now));
    }
    if events.is_empty() {
        return Vec::new();
    }
    emitter.send(&events).await
}
