-- Runs: one materialisation of one asset.
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    asset            TEXT NOT NULL,
    trigger          TEXT NOT NULL,
    status           TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    ended_at         TEXT,
    rows_in          INTEGER NOT NULL DEFAULT 0,
    rows_stored      INTEGER NOT NULL DEFAULT 0,
    rows_quarantined INTEGER NOT NULL DEFAULT 0,
    bytes_in         INTEGER NOT NULL DEFAULT 0,
    table_version    INTEGER,
    txn_version      INTEGER,
    contract_version TEXT,
    checks           TEXT NOT NULL DEFAULT '[]',
    error            TEXT
);
CREATE INDEX runs_by_asset ON runs (asset, started_at);

-- The file ledger: each file (path + content hash) is ingested exactly once per asset.
-- Rows are written only after the Delta commit that holds the file's rows.
CREATE TABLE file_ledger (
    asset            TEXT NOT NULL,
    path             TEXT NOT NULL,
    content_hash     TEXT NOT NULL,
    size_bytes       INTEGER NOT NULL,
    rows_in          INTEGER NOT NULL,
    rows_stored      INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    run_id           TEXT NOT NULL,
    txn_version      INTEGER NOT NULL,
    ingested_at      TEXT NOT NULL,
    PRIMARY KEY (asset, path, content_hash)
);
