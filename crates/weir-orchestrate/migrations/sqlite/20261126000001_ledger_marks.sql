-- Which Delta table, at which `txn` version and with how many files, each asset's ledger was
-- last known to agree with. Anything else (a deleted, emptied or swapped state store, a lost
-- journal, a rebuilt table) makes the next run check the ledger against the Delta log.
CREATE TABLE ledger_marks (
    asset       TEXT PRIMARY KEY,
    table_id    TEXT NOT NULL,
    txn_version INTEGER,
    files       INTEGER NOT NULL
);
