-- Promotions of environments to production (`weir promote NAME`). While one is `publishing`,
-- readers that go through weir read each table it touches at the version in `pins` (a JSON
-- object: table name → version, null when the table did not exist), so they never see some
-- tables promoted and others not; the update to `done` switches them all at once.
-- `holder` is the process that runs it, so a promotion whose process is gone can be settled.
CREATE TABLE promotions (
    id TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    status TEXT NOT NULL,
    holder TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    pins TEXT NOT NULL
);
CREATE INDEX promotions_status ON promotions (status);
