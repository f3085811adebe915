//! `weir trigger` and `weir cancel`: the run queue of `weir serve`, from a terminal, through
//! the local state store or a server's HTTP API.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};
use weir_orchestrate::{NewRun, QueuedRun, StateStore};

use crate::Outcome;
use crate::output::{print_json, user_error};

pub struct TriggerRequest {
    pub selectors: Vec<String>,
    pub full_refresh: bool,
    pub priority: i64,
}

pub async fn trigger(
    root: &Path,
    request: TriggerRequest,
    server: Option<&str>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let run: QueuedRun = match server {
        Some(server) => {
            let body = json!({
                "select": request.selectors,
                "full_refresh": request.full_refresh,
                "priority": request.priority,
            });
            let Some(doc) = call(server, reqwest::Method::POST, "/runs", Some(body)).await? else {
                return Ok(Outcome::BadInput);
            };
            serde_json::from_value(doc["run"].clone())
                .with_context(|| format!("{server} answered with no run: {doc}"))?
        }
        None => {
            let Some((project, _, _)) =
                super::load_selection(root, &request.selectors, json, false)
            else {
                return Ok(Outcome::BadInput);
            };
            let state = StateStore::connect(&project.state_url()).await?;
            let id = state
                .enqueue(&NewRun {
                    selection: request.selectors,
                    trigger: "cli".into(),
                    full_refresh: request.full_refresh,
                    priority: request.priority,
                    max_attempts: 1,
                    timeout_secs: None,
                    delay: std::time::Duration::ZERO,
                    partition: None,
                })
                .await?;
            let run = state.queued_run(&id).await?;
            state.close().await;
            run.context("the queued run vanished")?
        }
    };
    if json {
        print_json(json!({ "run": run }));
    } else {
        println!(
            "queued run {} ({}); `weir serve` runs it",
            run.id,
            run.selection.join(" ")
        );
    }
    Ok(Outcome::Ok)
}

pub async fn cancel(
    root: &Path,
    id: &str,
    server: Option<&str>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let status = match server {
        Some(server) => {
            let path = format!("/runs/{id}/cancel");
            let Some(doc) = call(server, reqwest::Method::POST, &path, None).await? else {
                return Ok(Outcome::BadInput);
            };
            doc["status"].as_str().unwrap_or("unknown").to_string()
        }
        None => {
            let Some(project) = super::load(root, json, false) else {
                return Ok(Outcome::BadInput);
            };
            let state = StateStore::connect(&project.state_url()).await?;
            let status = state.cancel_run(id).await?;
            state.close().await;
            let Some(status) = status else {
                user_error("unknown_run", format!("no queued run `{id}`"));
                return Ok(Outcome::BadInput);
            };
            status
        }
    };
    if json {
        print_json(json!({ "id": id, "status": status }));
    } else if status == "running" {
        println!("run {id}: cancel asked; it stops at its next heartbeat and publishes nothing");
    } else {
        println!("run {id}: {status}");
    }
    Ok(Outcome::Ok)
}

/// Calls a `weir serve` API with the token in WEIR_API_TOKEN. None after printing the
/// server's refusal (an unknown asset, a missing token): the caller exits 2.
async fn call(
    server: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Option<Value>> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .header("content-type", "application/json");
    if let Ok(token) = std::env::var("WEIR_API_TOKEN") {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the weir server at {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(Some(doc));
    }
    let kind = doc["error"]["kind"].as_str().unwrap_or("server");
    let message = doc["error"]["message"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| format!("{url} answered {status}: {text}"));
    user_error(kind, message);
    Ok(None)
}
