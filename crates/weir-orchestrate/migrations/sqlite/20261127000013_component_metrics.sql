-- What each component (source, model, check, sink) of each run reported: the same figures
-- for every kind (Vector's component specification). `/metrics` sums them per asset and
-- component; a run that reported nothing (skipped) has no rows here.
CREATE TABLE component_metrics (
    run_id TEXT NOT NULL,
    asset TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    rows_in INTEGER NOT NULL,
    rows_out INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    rows_discarded INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    errors_receiving INTEGER NOT NULL,
    errors_processing INTEGER NOT NULL,
    errors_sending INTEGER NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, kind)
);
CREATE INDEX component_metrics_asset ON component_metrics (asset, kind);
