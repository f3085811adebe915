-- The state store on PostgreSQL: the same tables as on SQLite (see migrations/sqlite, whose
-- files explain each), created at once. Integers are BIGINT, as SQLite's are. Text is collated
-- "C" (by bytes, as SQLite compares): timestamps are RFC 3339 UTC text and must order as
-- instants whatever the database's locale.

CREATE TABLE runs (
    id               TEXT COLLATE "C" PRIMARY KEY,
    asset            TEXT COLLATE "C" NOT NULL,
    trigger          TEXT COLLATE "C" NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    started_at       TEXT COLLATE "C" NOT NULL,
    ended_at         TEXT COLLATE "C",
    rows_in          BIGINT NOT NULL DEFAULT 0,
    rows_stored      BIGINT NOT NULL DEFAULT 0,
    rows_quarantined BIGINT NOT NULL DEFAULT 0,
    bytes_in         BIGINT NOT NULL DEFAULT 0,
    table_version    BIGINT,
    txn_version      BIGINT,
    contract_version TEXT,
    checks           TEXT NOT NULL DEFAULT '[]',
    error            TEXT,
    rejected_files   TEXT NOT NULL DEFAULT '[]',
    files            TEXT NOT NULL DEFAULT '[]',
    quarantine_by_rule TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_asset ON runs (asset, started_at);
CREATE INDEX runs_by_trigger ON runs (trigger);

CREATE TABLE file_ledger (
    asset            TEXT COLLATE "C" NOT NULL,
    path             TEXT COLLATE "C" NOT NULL,
    content_hash     TEXT COLLATE "C" NOT NULL,
    size_bytes       BIGINT NOT NULL,
    rows_in          BIGINT NOT NULL,
    rows_stored      BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    run_id           TEXT NOT NULL,
    txn_version      BIGINT NOT NULL,
    ingested_at      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (asset, path, content_hash)
);

CREATE TABLE ledger_marks (
    asset       TEXT COLLATE "C" PRIMARY KEY,
    table_id    TEXT NOT NULL,
    txn_version BIGINT,
    files       BIGINT NOT NULL
);

CREATE TABLE file_hashes (
    path TEXT COLLATE "C" PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    ctime_ns BIGINT NOT NULL,
    inode BIGINT NOT NULL,
    device BIGINT NOT NULL,
    content_hash TEXT NOT NULL
);

CREATE TABLE run_queue (
    id TEXT COLLATE "C" PRIMARY KEY,
    selection TEXT NOT NULL,
    trigger TEXT NOT NULL,
    full_refresh BIGINT NOT NULL DEFAULT 0,
    priority BIGINT NOT NULL DEFAULT 0,
    status TEXT COLLATE "C" NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL DEFAULT 1,
    timeout_secs BIGINT,
    not_before TEXT COLLATE "C" NOT NULL,
    enqueued_at TEXT COLLATE "C" NOT NULL,
    claimed_by TEXT,
    lease_until TEXT COLLATE "C",
    started_at TEXT COLLATE "C",
    ended_at TEXT COLLATE "C",
    error TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX run_queue_ready ON run_queue (status, priority, not_before);

CREATE TABLE run_queue_events (
    seq BIGSERIAL PRIMARY KEY,
    queue_id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    detail TEXT
);
CREATE INDEX run_queue_events_run ON run_queue_events (queue_id, seq);

CREATE TABLE schedule_ticks (
    job TEXT COLLATE "C" NOT NULL,
    tick TEXT COLLATE "C" NOT NULL,
    queue_id TEXT NOT NULL,
    PRIMARY KEY (job, tick)
);
