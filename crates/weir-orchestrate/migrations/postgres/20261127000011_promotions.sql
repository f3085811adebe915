-- See migrations/sqlite/20261127000011_promotions.sql.
CREATE TABLE promotions (
    id TEXT COLLATE "C" PRIMARY KEY,
    environment TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    holder TEXT COLLATE "C" NOT NULL,
    started_at TEXT COLLATE "C" NOT NULL,
    finished_at TEXT COLLATE "C",
    pins TEXT NOT NULL
);
CREATE INDEX promotions_status ON promotions (status);
