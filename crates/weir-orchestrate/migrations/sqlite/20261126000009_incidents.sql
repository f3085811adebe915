-- Incidents: one per root asset that went bad, open until it recovers (or someone resolves
-- it). The assets downstream of it that fail, are skipped or go late meanwhile join it as
-- affected instead of opening their own: one incident, one alert, for one root cause.
-- At most one incident per asset is unresolved at a time (the partial unique index), so two
-- processes observing the same failure open it once.
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    root_asset TEXT NOT NULL,
    team TEXT,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    started_at TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    notified_at TEXT,
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    resolved_at TEXT,
    resolved_by TEXT,
    owners TEXT NOT NULL DEFAULT '[]',
    affected TEXT NOT NULL DEFAULT '[]',
    opened_by TEXT NOT NULL
);
CREATE UNIQUE INDEX incidents_one_unresolved ON incidents (root_asset) WHERE status <> 'resolved';
CREATE INDEX incidents_by_detection ON incidents (detected_at);

-- An incident's timeline: its runs (the bad ones, the affected ones, the one that resolved
-- it), its alerts' deliveries, acknowledgement and resolution.
CREATE TABLE incident_events (
    incident_id BIGINT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    asset TEXT,
    run_id TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, at);

-- The outbox of notifications: one row per incident, event (opened, resolved) and channel,
-- written in the transaction that opens or resolves the incident, so a notification is never
-- lost and never queued twice. Deliveries are claimed by moving `next_attempt_at` forward,
-- retried with backoff while the channel is down, and given up (`failed`, visible) after a day.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    incident_id BIGINT NOT NULL,
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    UNIQUE (incident_id, event, channel)
);
CREATE INDEX alerts_due ON alerts (status, next_attempt_at);
