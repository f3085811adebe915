-- See migrations/sqlite/20261127000013_component_metrics.sql.
CREATE TABLE component_metrics (
    run_id TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    recorded_at TEXT COLLATE "C" NOT NULL,
    rows_in BIGINT NOT NULL,
    rows_out BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_discarded BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    errors_receiving BIGINT NOT NULL,
    errors_processing BIGINT NOT NULL,
    errors_sending BIGINT NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, kind)
);
CREATE INDEX component_metrics_asset ON component_metrics (asset, kind);
