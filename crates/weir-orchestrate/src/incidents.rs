//! Incidents and their notifications in the state store: the tables `weir-observe` decides
//! over. Opening or resolving an incident and queueing its notifications happen in one
//! transaction, so a notification is never lost or queued twice; at most one incident per
//! asset is unresolved at a time.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{OrchestrateError, Result};
use crate::state::{StateStore, WriteTx, now, state_err, timestamp};

/// An asset an incident reaches: downstream of its root, with who to tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedAsset {
    pub asset: String,
    pub team: Option<String>,
    pub owners: Vec<String>,
}

/// An incident as kept in the state store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: i64,
    /// The asset whose failure is the cause.
    pub root_asset: String,
    pub team: Option<String>,
    /// The root asset's owners when it was opened.
    pub owners: Vec<String>,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    /// What went wrong first: a run status (`failed`, `error`, ...) or `manual`.
    pub kind: String,
    pub title: String,
    /// When the first bad run started (the incident's start for MTTD and MTTR).
    pub started_at: String,
    /// When weir (or a person) opened it.
    pub detected_at: String,
    /// When its first notification was delivered.
    pub notified_at: Option<String>,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    /// Every asset downstream of the root, directly or not.
    pub affected: Vec<AffectedAsset>,
    pub opened_by: String,
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub at: String,
    /// `bad_run`, `affected`, `opened`, `acknowledged`, `resolved`, `notified`, `delivery_failed`.
    pub kind: String,
    pub asset: Option<String>,
    pub run_id: Option<String>,
    pub detail: String,
}

/// An incident to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub root_asset: String,
    pub team: Option<String>,
    pub owners: Vec<String>,
    pub kind: String,
    pub title: String,
    pub started_at: String,
    pub affected: Vec<AffectedAsset>,
    pub opened_by: String,
    /// The run that revealed it, for the timeline.
    pub run_id: Option<String>,
}

/// A notification of one incident event to one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub incident_id: i64,
    /// `opened` or `resolved`.
    pub event: String,
    /// As configured for the team (`webhook:URL`, `slack:URL`, `command:CMD`).
    pub channel: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

const INCIDENT_COLUMNS: &str = "id, root_asset, team, owners, status, kind, title, started_at, detected_at, notified_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, affected, opened_by";
const ALERT_COLUMNS: &str = "id, incident_id, event, channel, status, attempts, next_attempt_at, last_error, created_at, delivered_at";

impl StateStore {
    /// Opens an incident with notifications queued to `channels`, unless one is already
    /// unresolved for its root asset: then that one is returned with `false`.
    pub async fn open_incident(
        &self,
        new: &NewIncident,
        channels: &[String],
    ) -> Result<(Incident, bool)> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let affected = to_json(&new.affected)?;
        let owners = to_json(&new.owners)?;
        // The partial unique index decides: of two processes opening one at once (two
        // PostgreSQL workers), the second inserts nothing and gets the first one's incident.
        let row = sqlx::query(&format!(
            "INSERT INTO incidents (root_asset, team, owners, status, kind, title, started_at, detected_at, affected, opened_by)
             VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9)
             ON CONFLICT (root_asset) WHERE status <> 'resolved' DO NOTHING
             RETURNING {INCIDENT_COLUMNS}"
        ))
        .bind(&new.root_asset)
        .bind(&new.team)
        .bind(owners)
        .bind(&new.kind)
        .bind(&new.title)
        .bind(&new.started_at)
        .bind(&at)
        .bind(affected)
        .bind(&new.opened_by)
        .fetch_optional(&mut *tx)
        .await
        .map_err(state_err)?;
        let Some(row) = row else {
            let existing = unresolved_of(&mut tx, &new.root_asset).await?;
            tx.rollback().await.map_err(state_err)?;
            return existing.map(|i| (i, false)).ok_or_else(|| {
                OrchestrateError::State(format!(
                    "opening an incident on {}: refused as a duplicate, yet none is unresolved",
                    new.root_asset
                ))
            });
        };
        let incident = incident_of(&row)?;
        insert_event(
            &mut tx,
            incident.id,
            "opened",
            Some(&new.root_asset),
            new.run_id.as_deref(),
            &format!("{} by {}", new.title, new.opened_by),
        )
        .await?;
        queue_alerts(&mut tx, incident.id, "opened", channels).await?;
        tx.commit().await.map_err(state_err)?;
        Ok((incident, true))
    }

    /// Incidents, newest first: the unresolved ones, or all detected since `since` (RFC 3339).
    pub async fn incidents(&self, all: bool, since: Option<&str>) -> Result<Vec<Incident>> {
        let rows = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
             WHERE ($1 = 1 OR status <> 'resolved') AND detected_at >= $2
             ORDER BY id DESC"
        ))
        .bind(i64::from(all))
        .bind(since.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter().map(incident_of).collect()
    }

    pub async fn incident(&self, id: i64) -> Result<Option<Incident>> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(state_err)?;
        row.as_ref().map(incident_of).transpose()
    }

    /// Adds a line to an incident's timeline.
    pub async fn add_incident_event(
        &self,
        id: i64,
        kind: &str,
        asset: Option<&str>,
        run_id: Option<&str>,
        detail: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_event(&mut tx, id, kind, asset, run_id, detail).await?;
        tx.commit().await.map_err(state_err)
    }

    pub async fn incident_events(&self, id: i64) -> Result<Vec<IncidentEvent>> {
        let rows = sqlx::query(
            "SELECT at, kind, asset, run_id, detail FROM incident_events WHERE incident_id = $1 ORDER BY at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter()
            .map(|r| {
                Ok(IncidentEvent {
                    at: r.try_get("at").map_err(state_err)?,
                    kind: r.try_get("kind").map_err(state_err)?,
                    asset: r.try_get("asset").map_err(state_err)?,
                    run_id: r.try_get("run_id").map_err(state_err)?,
                    detail: r.try_get("detail").map_err(state_err)?,
                })
            })
            .collect()
    }

    /// Marks an unresolved incident acknowledged; `false` when it is not unresolved.
    pub async fn acknowledge_incident(&self, id: i64, by: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let done = sqlx::query(
            "UPDATE incidents SET status = 'acknowledged', acknowledged_at = $1, acknowledged_by = $2
             WHERE id = $3 AND status = 'open'",
        )
        .bind(&at)
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(state_err)?
        .rows_affected()
            == 1;
        if done {
            insert_event(&mut tx, id, "acknowledged", None, None, &format!("by {by}")).await?;
        }
        tx.commit().await.map_err(state_err)?;
        Ok(done)
    }

    /// Resolves an unresolved incident and queues a `resolved` notification to every channel
    /// its opening was sent to; `false` when it was not unresolved.
    pub async fn resolve_incident(
        &self,
        id: i64,
        by: &str,
        run_id: Option<&str>,
        detail: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let done = sqlx::query(
            "UPDATE incidents SET status = 'resolved', resolved_at = $1, resolved_by = $2
             WHERE id = $3 AND status <> 'resolved'",
        )
        .bind(&at)
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(state_err)?
        .rows_affected()
            == 1;
        if done {
            insert_event(&mut tx, id, "resolved", None, run_id, detail).await?;
            let channels: Vec<String> = sqlx::query(
                "SELECT channel FROM alerts WHERE incident_id = $1 AND event = 'opened' ORDER BY channel",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(state_err)?
            .iter()
            .map(|r| r.try_get("channel").map_err(state_err))
            .collect::<Result<_>>()?;
            queue_alerts(&mut tx, id, "resolved", &channels).await?;
        }
        tx.commit().await.map_err(state_err)?;
        Ok(done)
    }

    pub async fn alerts_of(&self, incident_id: i64) -> Result<Vec<Alert>> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE incident_id = $1 ORDER BY created_at, channel"
        ))
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await
        .map_err(state_err)?;
        rows.iter().map(alert_of).collect()
    }

    /// Takes the oldest notification due for delivery, holding it for `hold` (a process that
    /// dies meanwhile leaves it to be taken again after that); `None` when none is due.
    pub async fn claim_due_alert(&self, hold: Duration) -> Result<Option<Alert>> {
        let at = now();
        let held_until =
            timestamp(chrono::Utc::now() + chrono::Duration::from_std(hold).unwrap_or_default());
        for _ in 0..8 {
            let row = sqlx::query(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = 'pending' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at, created_at LIMIT 1"
            ))
            .bind(&at)
            .fetch_optional(&self.pool)
            .await
            .map_err(state_err)?;
            let Some(row) = row else { return Ok(None) };
            let alert = alert_of(&row)?;
            // Taken only if nobody took it since it was read.
            let taken = sqlx::query(
                "UPDATE alerts SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3",
            )
            .bind(&held_until)
            .bind(&alert.id)
            .bind(&alert.next_attempt_at)
            .execute(&self.pool)
            .await
            .map_err(state_err)?
            .rows_affected()
                == 1;
            if taken {
                return Ok(Some(alert));
            }
        }
        Ok(None)
    }

    /// Records a delivered notification; the first one of an incident sets its `notified_at`.
    /// `channel` is how the timeline names the channel (without a URL's secret path).
    pub async fn alert_delivered(&self, alert: &Alert, channel: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let at = now();
        sqlx::query(
            "UPDATE alerts SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2",
        )
        .bind(&at)
        .bind(&alert.id)
        .execute(&mut *tx)
        .await
        .map_err(state_err)?;
        sqlx::query("UPDATE incidents SET notified_at = $1 WHERE id = $2 AND notified_at IS NULL")
            .bind(&at)
            .bind(alert.incident_id)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
        let detail = format!("{} notification delivered to {channel}", alert.event);
        insert_event(&mut tx, alert.incident_id, "notified", None, None, &detail).await?;
        tx.commit().await.map_err(state_err)
    }

    /// Records a failed delivery: tried again at `retry_at`, or given up when `None`.
    pub async fn alert_failed(
        &self,
        alert: &Alert,
        channel: &str,
        error: &str,
        retry_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (status, next) = match retry_at {
            Some(at) => ("pending", timestamp(at)),
            None => ("failed", alert.next_attempt_at.clone()),
        };
        sqlx::query(
            "UPDATE alerts SET status = $1, next_attempt_at = $2, attempts = attempts + 1, last_error = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(&next)
        .bind(error)
        .bind(&alert.id)
        .execute(&mut *tx)
        .await
        .map_err(state_err)?;
        if retry_at.is_none() {
            let detail = format!(
                "{} notification to {channel} given up: {error}",
                alert.event
            );
            insert_event(
                &mut tx,
                alert.incident_id,
                "delivery_failed",
                None,
                None,
                &detail,
            )
            .await?;
        }
        tx.commit().await.map_err(state_err)
    }

    /// Notifications by status (`pending`, `delivered`, `failed`), and how many pending ones
    /// have failed at least once (a channel that is down now).
    pub async fn alert_counts(&self) -> Result<AlertCounts> {
        let row = sqlx::query(
            "SELECT
                COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
                COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS delivered,
                COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
                COALESCE(SUM(CASE WHEN status = 'pending' AND attempts > 0 THEN 1 ELSE 0 END), 0) AS retrying
             FROM alerts",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(state_err)?;
        let get = |name: &str| -> Result<u64> {
            Ok(row.try_get::<i64, _>(name).map_err(state_err)?.max(0) as u64)
        };
        Ok(AlertCounts {
            pending: get("pending")?,
            delivered: get("delivered")?,
            failed: get("failed")?,
            retrying: get("retrying")?,
        })
    }
}

/// Notifications by delivery status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Pending after at least one failed attempt.
    pub retrying: u64,
}

async fn unresolved_of(tx: &mut WriteTx, asset: &str) -> Result<Option<Incident>> {
    let row = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE root_asset = $1 AND status <> 'resolved'"
    ))
    .bind(asset)
    .fetch_optional(&mut **tx)
    .await
    .map_err(state_err)?;
    row.as_ref().map(incident_of).transpose()
}

async fn insert_event(
    tx: &mut WriteTx,
    id: i64,
    kind: &str,
    asset: Option<&str>,
    run_id: Option<&str>,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO incident_events (incident_id, at, kind, asset, run_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(now())
    .bind(kind)
    .bind(asset)
    .bind(run_id)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map_err(state_err)?;
    Ok(())
}

async fn queue_alerts(tx: &mut WriteTx, id: i64, event: &str, channels: &[String]) -> Result<()> {
    let at = now();
    for channel in channels {
        sqlx::query(
            "INSERT INTO alerts (id, incident_id, event, channel, status, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, 'pending', $5, $5)
             ON CONFLICT (incident_id, event, channel) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(id)
        .bind(event)
        .bind(channel)
        .bind(&at)
        .execute(&mut **tx)
        .await
        .map_err(state_err)?;
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| OrchestrateError::State(e.to_string()))
}

fn incident_of(r: &AnyRow) -> Result<Incident> {
    let affected: String = r.try_get("affected").map_err(state_err)?;
    let owners: String = r.try_get("owners").map_err(state_err)?;
    Ok(Incident {
        id: r.try_get("id").map_err(state_err)?,
        root_asset: r.try_get("root_asset").map_err(state_err)?,
        team: r.try_get("team").map_err(state_err)?,
        owners: serde_json::from_str(&owners)
            .map_err(|e| OrchestrateError::State(format!("incident owners: {e}")))?,
        status: r.try_get("status").map_err(state_err)?,
        kind: r.try_get("kind").map_err(state_err)?,
        title: r.try_get("title").map_err(state_err)?,
        started_at: r.try_get("started_at").map_err(state_err)?,
        detected_at: r.try_get("detected_at").map_err(state_err)?,
        notified_at: r.try_get("notified_at").map_err(state_err)?,
        acknowledged_at: r.try_get("acknowledged_at").map_err(state_err)?,
        acknowledged_by: r.try_get("acknowledged_by").map_err(state_err)?,
        resolved_at: r.try_get("resolved_at").map_err(state_err)?,
        resolved_by: r.try_get("resolved_by").map_err(state_err)?,
        affected: serde_json::from_str(&affected)
            .map_err(|e| OrchestrateError::State(format!("incident affected list: {e}")))?,
        opened_by: r.try_get("opened_by").map_err(state_err)?,
    })
}

fn alert_of(r: &AnyRow) -> Result<Alert> {
    Ok(Alert {
        id: r.try_get("id").map_err(state_err)?,
        incident_id: r.try_get("incident_id").map_err(state_err)?,
        event: r.try_get("event").map_err(state_err)?,
        channel: r.try_get("channel").map_err(state_err)?,
        status: r.try_get("status").map_err(state_err)?,
        attempts: r.try_get("attempts").map_err(state_err)?,
        next_attempt_at: r.try_get("next_attempt_at").map_err(state_err)?,
        last_error: r.try_get("last_error").map_err(state_err)?,
        created_at: r.try_get("created_at").map_err(state_err)?,
        delivered_at: r.try_get("delivered_at").map_err(state_err)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_incident(asset: &str) -> NewIncident {
        NewIncident {
            root_asset: asset.into(),
            team: Some("sales".into()),
            owners: vec!["grace".into()],
            kind: "failed".into(),
            title: format!("{asset} failed"),
            started_at: now(),
            affected: vec![AffectedAsset {
                asset: "down".into(),
                team: None,
                owners: vec!["ada".into()],
            }],
            opened_by: "weir".into(),
            run_id: Some("r1".into()),
        }
    }

    async fn lifecycle(store: StateStore) {
        let channels = vec!["webhook:http://127.0.0.1:1/a".to_string()];
        let (first, opened) = store
            .open_incident(&new_incident("orders"), &channels)
            .await
            .expect("open");
        assert!(opened);
        // A second failure of the same asset joins the open incident: nothing new is queued.
        let (again, opened) = store
            .open_incident(&new_incident("orders"), &channels)
            .await
            .expect("open again");
        assert!(!opened);
        assert_eq!(again.id, first.id);
        assert_eq!(store.alerts_of(first.id).await.expect("alerts").len(), 1);
        assert_eq!(first.affected[0].owners, vec!["ada".to_string()]);

        // Delivery: claimed once, a second claim finds nothing while it is held.
        let alert = store
            .claim_due_alert(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("one due");
        assert!(
            store
                .claim_due_alert(Duration::from_secs(60))
                .await
                .expect("claim")
                .is_none()
        );
        store
            .alert_failed(
                &alert,
                "webhook",
                "connection refused",
                Some(chrono::Utc::now()),
            )
            .await
            .expect("failed");
        assert_eq!(store.alert_counts().await.expect("counts").retrying, 1);
        let alert = store
            .claim_due_alert(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("due again");
        store
            .alert_delivered(&alert, "webhook")
            .await
            .expect("delivered");
        let counts = store.alert_counts().await.expect("counts");
        assert_eq!((counts.delivered, counts.pending), (1, 0));

        assert!(
            store
                .acknowledge_incident(first.id, "ada")
                .await
                .expect("ack")
        );
        assert!(
            !store
                .acknowledge_incident(first.id, "ada")
                .await
                .expect("ack twice")
        );
        assert!(
            store
                .resolve_incident(first.id, "run r2", Some("r2"), "orders succeeded")
                .await
                .expect("resolve")
        );
        assert!(
            !store
                .resolve_incident(first.id, "run r2", Some("r2"), "again")
                .await
                .expect("resolve twice")
        );
        let resolved = store.incident(first.id).await.expect("get").expect("there");
        assert_eq!(resolved.status, "resolved");
        assert!(resolved.notified_at.is_some() && resolved.acknowledged_at.is_some());
        let alerts = store.alerts_of(first.id).await.expect("alerts");
        assert_eq!(
            alerts.iter().map(|a| a.event.as_str()).collect::<Vec<_>>(),
            ["opened", "resolved"]
        );
        let kinds: Vec<String> = store
            .incident_events(first.id)
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["opened", "notified", "acknowledged", "resolved"]);

        // Resolved, the asset can have a new incident.
        let (second, opened) = store
            .open_incident(&new_incident("orders"), &channels)
            .await
            .expect("open");
        assert!(opened && second.id > first.id);
        assert_eq!(
            store.incidents(false, None).await.expect("open ones").len(),
            1
        );
        assert_eq!(store.incidents(true, None).await.expect("all").len(), 2);
    }

    #[tokio::test]
    async fn an_incident_opens_once_notifies_and_resolves_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        lifecycle(StateStore::connect(&url).await.expect("store")).await;
    }

    #[tokio::test]
    async fn an_incident_opens_once_notifies_and_resolves_on_postgres() {
        let url = crate::testing::fresh_postgres_database()
            .await
            .expect("test database");
        lifecycle(StateStore::connect(&url).await.expect("store")).await;
    }
}
