//! The HTTP API (JSON). Reads list assets and runs; writes trigger and cancel runs and need
//! the bearer token (compared in constant time, never logged). The shapes are documented in
//! `openapi.json`, served at `GET /openapi.json`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use weir_orchestrate::{NewRun, StateStore};

pub struct Api {
    pub state: StateStore,
    pub root: PathBuf,
    pub token: Option<String>,
    pub token_env: String,
    pub open_reads: bool,
    pub ready: Arc<AtomicBool>,
    /// Wakes the service loop, so a queued run starts without waiting for the next poll.
    pub wake: Arc<tokio::sync::Notify>,
}

type Shared = Arc<Api>;

pub fn router(api: Shared) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi))
        .route("/assets", get(assets))
        .route("/metrics", get(metrics))
        .route("/runs", get(list_runs).post(trigger))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/backfills", post(backfill))
        .route("/incidents", get(list_incidents))
        .route("/slo", get(slo))
        .route("/incidents/{id}", get(get_incident))
        .route("/overview", get(overview))
        .route("/assets/{name}", get(get_asset))
        .route("/lineage", get(lineage))
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .with_state(api)
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": { "kind": kind, "message": message.into() } })),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

/// The refusal of a request without the token; reads pass without one when `open_reads` is set.
fn denied(api: &Api, headers: &HeaderMap, write: bool) -> Option<Response> {
    if !write && api.open_reads {
        return None;
    }
    let Some(expected) = &api.token else {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!(
                "this server has no API token: set the environment variable {} before `weir serve` (or `open_reads = true` under [serve] for the read endpoints)",
                api.token_env
            ),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        None
    } else {
        Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` header is required",
        ))
    }
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(api): State<Shared>) -> Response {
    if api.ready.load(Ordering::SeqCst) {
        Json(json!({ "ready": true })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false })),
        )
            .into_response()
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; the API is described at GET /openapi.json",
    )
}

/// For a read that needs the project: the refusal without the token, or the project as it
/// is on disk now, or the error response saying why it does not load.
fn readable_project(api: &Api, headers: &HeaderMap) -> Result<weir_model::Project, Box<Response>> {
    if let Some(r) = denied(api, headers, false) {
        return Err(Box::new(r));
    }
    let (project, diagnostics) = weir_model::load_project(&api.root);
    project.ok_or_else(|| {
        let errors: Vec<String> = diagnostics.errors().map(|d| d.to_string()).collect();
        Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "project",
            errors.join("; "),
        ))
    })
}

/// `GET /metrics`: the Prometheus exposition (a read: behind the token unless `open_reads`).
async fn metrics(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let project = match readable_project(&api, &headers) {
        Ok(project) => project,
        Err(r) => return *r,
    };
    match crate::metrics::render(&project, &api.state).await {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => internal(e),
    }
}

async fn assets(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let project = match readable_project(&api, &headers) {
        Ok(project) => project,
        Err(r) => return *r,
    };
    let mut list = Vec::new();
    for asset in &project.assets {
        let last = match api.state.runs(Some(&asset.name), 1).await {
            Ok(mut runs) => runs.pop(),
            Err(e) => return internal(e),
        };
        list.push(json!({
            "name": asset.name,
            "kind": asset.kind(),
            "owners": asset.contract.owners(),
            "team": asset.contract.team_name(),
            "last_run": last.map(|r| json!({
                "id": r.id,
                "status": r.status,
                "trigger": r.trigger,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "rows_stored": r.rows_stored,
                "rows_quarantined": r.rows_quarantined,
                "table_version": r.table_version,
            })),
        }));
    }
    Json(json!({ "assets": list })).into_response()
}

/// `GET /overview`: the dashboard's front page as JSON.
async fn overview(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let project = match readable_project(&api, &headers) {
        Ok(project) => project,
        Err(r) => return *r,
    };
    match crate::views::overview(&project, &api.state, chrono::Utc::now()).await {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => internal(e),
    }
}

/// `GET /assets/{name}`: one asset in depth.
async fn get_asset(
    State(api): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let project = match readable_project(&api, &headers) {
        Ok(project) => project,
        Err(r) => return *r,
    };
    let (graph, _) = weir_orchestrate::build_graph(&project);
    match crate::views::asset(&project, &graph, &api.state, &name, chrono::Utc::now()).await {
        Ok(Some(doc)) => Json(doc).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_asset",
            format!("no asset `{name}` in this project"),
        ),
        Err(e) => internal(e),
    }
}

/// `GET /lineage`: the asset graph with each asset's health.
async fn lineage(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let project = match readable_project(&api, &headers) {
        Ok(project) => project,
        Err(r) => return *r,
    };
    let (graph, _) = weir_orchestrate::build_graph(&project);
    match crate::views::lineage(&project, &graph, &api.state, chrono::Utc::now()).await {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct RunsQuery {
    status: Option<String>,
    limit: Option<u32>,
}

async fn list_runs(
    State(api): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<RunsQuery>,
) -> Response {
    if let Some(r) = denied(&api, &headers, false) {
        return r;
    }
    match api
        .state
        .queued_runs(q.status.as_deref(), q.limit.unwrap_or(50).min(1000))
        .await
    {
        Ok(runs) => Json(json!({ "runs": runs })).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct IncidentsQuery {
    /// Resolved incidents too.
    #[serde(default)]
    all: bool,
}

/// `GET /incidents`: the unresolved incidents (`?all=true`: every one), newest first.
async fn list_incidents(
    State(api): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<IncidentsQuery>,
) -> Response {
    if let Some(r) = denied(&api, &headers, false) {
        return r;
    }
    match api.state.incidents(query.all, None).await {
        Ok(incidents) => Json(json!({ "incidents": incidents })).into_response(),
        Err(e) => internal(e),
    }
}

/// `GET /slo`: every asset's SLOs now, as `weir slo --json` lists them.
async fn slo(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let project = match readable_project(&api, &headers) {
        Ok(project) => project,
        Err(r) => return *r,
    };
    match weir_observe::slo_statuses(&project, &api.state, chrono::Utc::now()).await {
        Ok(slos) => Json(json!({
            "window_days": project.config.slo.window_days,
            "slos": slos,
        }))
        .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("measuring SLOs: {e}"),
        ),
    }
}

/// `GET /incidents/{id}`: one incident with its timeline and notifications.
async fn get_incident(
    State(api): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Some(r) = denied(&api, &headers, false) {
        return r;
    }
    let incident = match api.state.incident(id).await {
        Ok(Some(incident)) => incident,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_incident",
                format!("no incident #{id}"),
            );
        }
        Err(e) => return internal(e),
    };
    let timeline = match api.state.incident_events(id).await {
        Ok(events) => events,
        Err(e) => return internal(e),
    };
    let notifications = match api.state.alerts_of(id).await {
        Ok(alerts) => alerts
            .into_iter()
            .map(|mut a| {
                a.channel = weir_observe::channel_label(&a.channel);
                a
            })
            .collect::<Vec<_>>(),
        Err(e) => return internal(e),
    };
    Json(json!({ "incident": incident, "timeline": timeline, "notifications": notifications }))
        .into_response()
}

async fn get_run(
    State(api): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = denied(&api, &headers, false) {
        return r;
    }
    let run = match api.state.queued_run(&id).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_run",
                format!("no run `{id}`"),
            );
        }
        Err(e) => return internal(e),
    };
    let events = match api.state.queue_events(&id).await {
        Ok(events) => events,
        Err(e) => return internal(e),
    };
    let asset_runs = match api.state.runs_by_trigger(&format!("serve:{id}")).await {
        Ok(runs) => runs,
        Err(e) => return internal(e),
    };
    let asset_runs: Vec<Value> = asset_runs
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "asset": r.asset,
                "status": r.status,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "rows_in": r.rows_in,
                "rows_stored": r.rows_stored,
                "rows_quarantined": r.rows_quarantined,
                "table_version": r.table_version,
                "error": r.error,
            })
        })
        .collect();
    Json(json!({ "run": run, "events": events, "asset_runs": asset_runs })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    select: Vec<String>,
    #[serde(default)]
    full_refresh: bool,
    #[serde(default)]
    priority: i64,
    max_attempts: Option<u32>,
    timeout_secs: Option<u64>,
    /// Only this partition of the selected (partitioned) models.
    partition: Option<String>,
}

async fn trigger(
    State(api): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = denied(&api, &headers, true) {
        return r;
    }
    let body: TriggerBody = match parse_body(&body, r#"a run request ({"select": ["asset+"]})"#) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    // The selection is checked now, so a typo is the caller's error, not a failed run later.
    let (project, _) = weir_model::load_project(&api.root);
    if let Some(project) = &project {
        let (graph, _) = weir_orchestrate::build_graph(project);
        match weir_orchestrate::select(project, &graph, &body.select) {
            Err(why) => return error(StatusCode::BAD_REQUEST, "unknown_asset", why),
            Ok(selected) => {
                if let Some(partition) = &body.partition
                    && let Err(why) =
                        weir_orchestrate::check_partition_selection(project, &selected, partition)
                {
                    return error(StatusCode::BAD_REQUEST, "bad_partition", why);
                }
            }
        }
    }
    let run = NewRun {
        selection: body.select,
        trigger: "api".into(),
        full_refresh: body.full_refresh,
        priority: body.priority,
        max_attempts: body.max_attempts.unwrap_or(1).max(1),
        timeout_secs: body.timeout_secs,
        delay: std::time::Duration::ZERO,
        partition: body.partition,
    };
    let id = match api.state.enqueue(&run).await {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    api.wake.notify_one();
    match api.state.queued_run(&id).await {
        Ok(Some(run)) => (StatusCode::CREATED, Json(json!({ "run": run }))).into_response(),
        Ok(None) => internal("the queued run vanished"),
        Err(e) => internal(e),
    }
}

async fn cancel(State(api): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = denied(&api, &headers, true) {
        return r;
    }
    match api.state.cancel_run(&id).await {
        Ok(Some(status)) => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "status": status })),
        )
            .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_run",
            format!("no run `{id}`"),
        ),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillBody {
    asset: String,
    from: String,
    to: String,
    max_attempts: Option<u32>,
}

/// Queues a backfill (one run per partition that has not succeeded); the service executes it.
async fn backfill(
    State(api): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = denied(&api, &headers, true) {
        return r;
    }
    let body: BackfillBody = match parse_body(
        &body,
        r#"a backfill request ({"asset": "daily_orders", "from": "2026-11-01", "to": "2026-11-30"})"#,
    ) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (project, diagnostics) = weir_model::load_project(&api.root);
    let Some(project) = project.filter(|_| !diagnostics.has_errors()) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "project",
            "the project does not load (run `weir check`)",
        );
    };
    let request = crate::backfill::BackfillRequest {
        asset: body.asset,
        from: body.from,
        to: body.to,
        enqueue_only: true,
        max_attempts: body.max_attempts.unwrap_or(3),
    };
    let queued = match crate::backfill::enqueue(&project, &api.state, &request).await {
        Ok(q) => q,
        Err(crate::ServeError::Request(why)) => {
            return error(StatusCode::BAD_REQUEST, "bad_backfill", why);
        }
        Err(e) => return internal(e),
    };
    api.wake.notify_one();
    match api.state.runs_with_trigger(&queued.trigger).await {
        Ok(runs) => (
            StatusCode::CREATED,
            Json(json!({
                "trigger": queued.trigger,
                "partitions": queued.partitions.len(),
                "queued_now": queued.queued_now,
                "runs": runs,
            })),
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

/// A JSON request body, or the 400 that says it is not `what` and why.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not {what}: {e}"),
        ))
    })
}
