-- What `weir apply` recorded as deployed: one row per asset, the texts that define it (its
-- contract, its model SQL or source settings) and their fingerprints, so `weir plan` can
-- compare the working project with what runs. `apply_id` names the apply that wrote the row.
CREATE TABLE deployed_assets (
    asset TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    contract_path TEXT NOT NULL,
    contract_text TEXT NOT NULL,
    definition_path TEXT,
    definition_text TEXT,
    fingerprint TEXT NOT NULL,
    parents TEXT NOT NULL,
    parents_fingerprint TEXT NOT NULL,
    apply_id TEXT NOT NULL,
    applied_at TEXT NOT NULL
);
