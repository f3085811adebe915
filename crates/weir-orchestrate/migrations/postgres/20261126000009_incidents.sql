-- See migrations/sqlite/20261126000009_incidents.sql.
CREATE TABLE incidents (
    id BIGSERIAL PRIMARY KEY,
    root_asset TEXT COLLATE "C" NOT NULL,
    team TEXT COLLATE "C",
    status TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    title TEXT NOT NULL,
    started_at TEXT COLLATE "C" NOT NULL,
    detected_at TEXT COLLATE "C" NOT NULL,
    notified_at TEXT COLLATE "C",
    acknowledged_at TEXT COLLATE "C",
    acknowledged_by TEXT,
    resolved_at TEXT COLLATE "C",
    resolved_by TEXT,
    owners TEXT NOT NULL DEFAULT '[]',
    affected TEXT NOT NULL DEFAULT '[]',
    opened_by TEXT NOT NULL
);
CREATE UNIQUE INDEX incidents_one_unresolved ON incidents (root_asset) WHERE status <> 'resolved';
CREATE INDEX incidents_by_detection ON incidents (detected_at);

CREATE TABLE incident_events (
    incident_id BIGINT NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C",
    run_id TEXT COLLATE "C",
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, at);

CREATE TABLE alerts (
    id TEXT COLLATE "C" PRIMARY KEY,
    incident_id BIGINT NOT NULL,
    event TEXT COLLATE "C" NOT NULL,
    channel TEXT NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    last_error TEXT,
    created_at TEXT COLLATE "C" NOT NULL,
    delivered_at TEXT COLLATE "C",
    UNIQUE (incident_id, event, channel)
);
CREATE INDEX alerts_due ON alerts (status, next_attempt_at);
