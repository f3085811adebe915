//! Delivering the outbox: each notification due is claimed, rendered from its incident as it
//! is now, and sent to its channel. A channel that is down is tried again with exponential
//! backoff (capped at [`MAX_RETRY`], so a channel that comes back gets its notifications
//! within that time), and given up after [`GIVE_UP_AFTER`]: the notification is then
//! `failed`, on the incident's timeline and in `/metrics`.
//!
//! A delivery is recorded after the channel accepted it, so a process killed in between sends
//! it again once the claim expires: receivers can drop the repeat by its `Idempotency-Key`
//! header (the notification's id, also `id` in the document).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use weir_orchestrate::{Alert, Incident, StateStore};

use crate::channel::{Channel, channel_label, host_of, resolve};
use crate::error::ObserveError;
use crate::stats::seconds_between;

/// The longest wait between two attempts at a channel that is down.
pub const MAX_RETRY: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// A notification still undelivered this long after it was queued is given up.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed notification is held from other processes.
const CLAIM: Duration = Duration::from_secs(60);

/// What one round of delivery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRound {
    pub delivered: usize,
    /// Attempts that failed and will be tried again.
    pub retrying: usize,
    pub given_up: usize,
}

/// Delivers the notifications that are due, until none is or `budget` is spent.
pub async fn deliver_due(
    state: &StateStore,
    root: &Path,
    project_name: &str,
    budget: Duration,
) -> Result<DeliveryRound, ObserveError> {
    let started = Instant::now();
    let mut round = DeliveryRound::default();
    // Built at the first notification due, not every round: a client loads the system's
    // root certificates, and the service asks for due notifications every second.
    let mut client: Option<reqwest::Client> = None;
    while started.elapsed() < budget {
        let Some(alert) = state.claim_due_alert(CLAIM).await? else {
            break;
        };
        let Some(incident) = state.incident(alert.incident_id).await? else {
            let label = channel_label(&alert.channel);
            state
                .alert_failed(
                    &alert,
                    &label,
                    "its incident is gone from the state store",
                    None,
                )
                .await?;
            round.given_up += 1;
            continue;
        };
        let document = alert_document(project_name, &incident, &alert);
        let label = channel_label(&alert.channel);
        let client = match &mut client {
            Some(client) => &*client,
            None => client.insert(
                reqwest::Client::builder()
                    .timeout(ATTEMPT_TIMEOUT)
                    .build()
                    .map_err(|e| ObserveError::Invalid(format!("building the HTTP client: {e}")))?,
            ),
        };
        match send(client, root, &alert, &document).await {
            Ok(()) => {
                tracing::info!(incident = incident.id, channel = %label, event = %alert.event, "notification delivered");
                state.alert_delivered(&alert, &label).await?;
                round.delivered += 1;
            }
            Err(error) => {
                let queued = chrono::DateTime::parse_from_rfc3339(&alert.created_at)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(|_| chrono::Utc::now());
                let give_up = chrono::Utc::now() - queued > GIVE_UP_AFTER;
                tracing::warn!(incident = incident.id, channel = %label, attempt = alert.attempts + 1, "notification not delivered: {error}");
                let retry_at = (!give_up).then(|| {
                    chrono::Utc::now()
                        + chrono::Duration::from_std(retry_delay(alert.attempts + 1))
                            .unwrap_or_default()
                });
                state.alert_failed(&alert, &label, &error, retry_at).await?;
                if give_up {
                    round.given_up += 1;
                } else {
                    round.retrying += 1;
                }
            }
        }
    }
    Ok(round)
}

/// Exponential backoff with jitter: 2 s, 4 s, 8 s... up to [`MAX_RETRY`], three quarters
/// fixed and a quarter random, so the channels of many incidents are not retried together.
fn retry_delay(attempt: i64) -> Duration {
    weir_orchestrate::jittered_backoff(attempt, FIRST_RETRY, MAX_RETRY, 0.75)
}

async fn send(
    client: &reqwest::Client,
    root: &Path,
    alert: &Alert,
    document: &Value,
) -> Result<(), String> {
    match Channel::parse(&alert.channel) {
        Channel::Webhook(target) => post(client, &resolve(&target)?, alert, document).await,
        Channel::Slack(target) => {
            post(client, &resolve(&target)?, alert, &slack_payload(document)).await
        }
        Channel::Command(command) => run_command(root, &command, alert, document).await,
        Channel::Label(label) => Err(format!("`{label}` is not a channel weir delivers to")),
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    alert: &Alert,
    body: &Value,
) -> Result<(), String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("idempotency-key", &alert.id)
        .header("user-agent", concat!("weir/", env!("CARGO_PKG_VERSION")))
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("POST {}: {}", host_of(url), e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(format!("POST {} answered {status}: {text}", host_of(url)))
}

async fn run_command(
    root: &Path,
    command: &str,
    alert: &Alert,
    document: &Value,
) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .env("WEIR_ALERT_ID", &alert.id)
        .env("WEIR_ALERT_EVENT", &alert.event)
        .env("WEIR_INCIDENT_ID", alert.incident_id.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting `{command}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(document.to_string().as_bytes()).await;
    }
    let output = tokio::time::timeout(ATTEMPT_TIMEOUT * 3, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "`{command}` did not finish within {} s",
                ATTEMPT_TIMEOUT.as_secs() * 3
            )
        })?
        .map_err(|e| format!("running `{command}`: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr
        .trim()
        .chars()
        .rev()
        .take(200)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(format!("`{command}` exited with {}: {tail}", output.status))
}

/// The document every channel receives (the generic webhook as is): the incident as it is now.
pub fn alert_document(project: &str, incident: &Incident, alert: &Alert) -> Value {
    let event = format!("incident.{}", alert.event);
    let summary = match alert.event.as_str() {
        "resolved" => format!(
            "Resolved: incident #{} on {} ({})",
            incident.id, incident.root_asset, incident.title
        ),
        _ => {
            let affected = incident.affected.len();
            format!(
                "Incident #{} on {}: {}{}",
                incident.id,
                incident.root_asset,
                incident.title,
                match affected {
                    0 => String::new(),
                    1 => "; 1 downstream asset affected".into(),
                    n => format!("; {n} downstream assets affected"),
                }
            )
        }
    };
    json!({
        "schema": "weir.alert/1",
        "id": alert.id,
        "event": event,
        "project": project,
        "summary": summary,
        "incident": {
            "id": incident.id,
            "status": incident.status,
            "root_asset": incident.root_asset,
            "team": incident.team,
            "owners": incident.owners,
            "kind": incident.kind,
            "title": incident.title,
            "started_at": incident.started_at,
            "detected_at": incident.detected_at,
            "acknowledged_at": incident.acknowledged_at,
            "resolved_at": incident.resolved_at,
            "time_to_detect_seconds": seconds_between(&incident.started_at, Some(&incident.detected_at)),
            "time_to_resolve_seconds": seconds_between(&incident.started_at, incident.resolved_at.as_deref()),
            "affected": incident.affected,
        },
    })
}

/// A Slack incoming-webhook payload for a document: `text` (the fallback and the
/// notification) and `blocks` with the owners and the affected assets.
pub fn slack_payload(document: &Value) -> Value {
    let summary = document["summary"].as_str().unwrap_or("weir incident");
    let incident = &document["incident"];
    let names = |v: &Value| -> String {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let owners = names(&incident["owners"]);
    let affected: Vec<String> = incident["affected"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let owners = names(&a["owners"]);
            let asset = a["asset"].as_str().unwrap_or("?");
            if owners.is_empty() {
                format!("• `{asset}`")
            } else {
                format!("• `{asset}` (owners {owners})")
            }
        })
        .collect();
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{summary}*")}
    })];
    let mut facts = vec![format!(
        "Root asset: `{}`",
        incident["root_asset"].as_str().unwrap_or("?")
    )];
    if let Some(team) = incident["team"].as_str() {
        facts.push(format!("Team: {team}"));
    }
    if !owners.is_empty() {
        facts.push(format!("Owners: {owners}"));
    }
    facts.push(format!(
        "Started: {}",
        incident["started_at"].as_str().unwrap_or("?")
    ));
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": facts.join(" · ")}]
    }));
    if !affected.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("*Affected downstream*\n{}", affected.join("\n"))}
        }));
    }
    json!({ "text": summary, "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_orchestrate::AffectedAsset;

    fn incident() -> Incident {
        Incident {
            id: 7,
            root_asset: "orders".into(),
            team: Some("sales".into()),
            owners: vec!["ada".into()],
            status: "open".into(),
            kind: "failed".into(),
            title: "orders failed its contract checks".into(),
            started_at: "2026-11-26T10:00:00.000000Z".into(),
            detected_at: "2026-11-26T10:00:05.000000Z".into(),
            notified_at: None,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            affected: vec![AffectedAsset {
                asset: "daily_revenue".into(),
                team: Some("finance".into()),
                owners: vec!["grace".into()],
            }],
            opened_by: "weir".into(),
        }
    }

    fn alert() -> Alert {
        Alert {
            id: "a1".into(),
            incident_id: 7,
            event: "opened".into(),
            channel: "slack:$X".into(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: String::new(),
            last_error: None,
            created_at: String::new(),
            delivered_at: None,
        }
    }

    #[test]
    fn the_document_names_root_owners_and_affected() {
        let doc = alert_document("shop", &incident(), &alert());
        assert_eq!(doc["event"], "incident.opened");
        assert_eq!(doc["incident"]["time_to_detect_seconds"], 5.0);
        assert_eq!(doc["incident"]["affected"][0]["owners"][0], "grace");
        let slack = slack_payload(&doc);
        let text = slack.to_string();
        assert!(slack["text"].as_str().is_some_and(|t| t.contains("orders")));
        assert!(
            text.contains("daily_revenue") && text.contains("grace"),
            "{text}"
        );
    }

    /// Answers one HTTP request with 200 and hands back its body.
    fn receive_one(listener: std::net::TcpListener) -> std::thread::JoinHandle<String> {
        use std::io::{BufRead, Read, Write};
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().expect("length");
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .expect("answer");
            String::from_utf8(body).expect("utf-8")
        })
    }

    #[tokio::test]
    async fn slack_and_command_channels_get_their_payloads_and_a_failing_one_is_retried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let state = StateStore::connect(&url).await.expect("store");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let slack = receive_one(listener);
        let channels = vec![
            format!("slack:http://127.0.0.1:{port}/services/T0/B0/s3cret"),
            "command:cat > hook.json && test \"$WEIR_ALERT_EVENT\" = opened".to_string(),
            "command:echo 'pager is down' >&2; exit 3".to_string(),
        ];
        let new = weir_orchestrate::NewIncident {
            root_asset: "orders".into(),
            team: Some("sales".into()),
            owners: vec!["ada".into()],
            kind: "failed".into(),
            title: "orders failed its contract checks".into(),
            started_at: "2026-11-26T10:00:00.000000Z".into(),
            affected: incident().affected,
            opened_by: "weir".into(),
            run_id: None,
        };
        let (opened, _) = state.open_incident(&new, &channels).await.expect("open");
        let round = deliver_due(&state, dir.path(), "shop", Duration::from_secs(30))
            .await
            .expect("deliver");
        assert_eq!((round.delivered, round.retrying), (2, 1), "{round:?}");

        let body: Value = serde_json::from_str(&slack.join().expect("receiver")).expect("JSON");
        assert!(
            body["text"].as_str().is_some_and(|t| t.contains("orders")),
            "{body}"
        );
        assert!(
            body["blocks"].as_array().is_some_and(|b| b.len() == 3),
            "{body}"
        );
        let hook: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("hook.json")).expect("the command ran"),
        )
        .expect("JSON on stdin");
        assert_eq!(hook["event"], "incident.opened");
        assert_eq!(hook["incident"]["id"], opened.id);

        let alerts = state.alerts_of(opened.id).await.expect("alerts");
        let failing = alerts
            .iter()
            .find(|a| a.status == "pending")
            .expect("the failing channel waits for a retry");
        assert_eq!(failing.attempts, 1);
        assert!(
            failing
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("pager is down")),
            "{failing:?}"
        );
        let timeline = state.incident_events(opened.id).await.expect("events");
        let text = format!("{timeline:?}");
        assert!(text.contains("slack:http://127.0.0.1"), "{text}");
        assert!(
            !text.contains("s3cret"),
            "a webhook's secret path reached the timeline: {text}"
        );
        // Not due again before its backoff: a second round sends nothing.
        let again = deliver_due(&state, dir.path(), "shop", Duration::from_secs(5))
            .await
            .expect("deliver");
        assert_eq!(again, DeliveryRound::default());
    }

    #[test]
    fn retries_back_off_up_to_the_cap() {
        assert!(retry_delay(1) >= Duration::from_millis(1500) && retry_delay(1) <= FIRST_RETRY);
        for attempt in 5..40 {
            let delay = retry_delay(attempt);
            assert!(
                delay <= MAX_RETRY && delay >= MAX_RETRY * 3 / 4,
                "{delay:?}"
            );
        }
    }
}
