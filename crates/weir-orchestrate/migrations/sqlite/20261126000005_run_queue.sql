-- The durable run queue of `weir serve`: every run it is asked for (a schedule tick, a file
-- arrival, the API), with its state machine (queued -> running -> succeeded / failed /
-- cancelled, and retrying between attempts) and the lease of the process executing it.
-- Timestamps are RFC 3339 UTC with microseconds, so they compare as text.
CREATE TABLE run_queue (
    id TEXT PRIMARY KEY,
    selection TEXT NOT NULL,
    trigger TEXT NOT NULL,
    full_refresh INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    timeout_secs INTEGER,
    not_before TEXT NOT NULL,
    enqueued_at TEXT NOT NULL,
    claimed_by TEXT,
    lease_until TEXT,
    started_at TEXT,
    ended_at TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX run_queue_ready ON run_queue (status, priority, not_before);

-- Every transition of a queued run, in order.
CREATE TABLE run_queue_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX run_queue_events_run ON run_queue_events (queue_id, seq);

-- One row per schedule tick enqueued, keyed by the tick's instant: a tick is enqueued once,
-- whatever the wall clock does afterwards.
CREATE TABLE schedule_ticks (
    job TEXT NOT NULL,
    tick TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    PRIMARY KEY (job, tick)
);

-- The asset runs one queued run made (trigger `serve:<queue id>`).
CREATE INDEX runs_by_trigger ON runs (trigger);
