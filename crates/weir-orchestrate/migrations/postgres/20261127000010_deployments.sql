-- See migrations/sqlite/20261127000010_deployments.sql.
CREATE TABLE deployed_assets (
    asset TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    contract_path TEXT COLLATE "C" NOT NULL,
    contract_text TEXT NOT NULL,
    definition_path TEXT COLLATE "C",
    definition_text TEXT,
    fingerprint TEXT COLLATE "C" NOT NULL,
    parents TEXT NOT NULL,
    parents_fingerprint TEXT COLLATE "C" NOT NULL,
    apply_id TEXT COLLATE "C" NOT NULL,
    applied_at TEXT COLLATE "C" NOT NULL
);
