-- See migrations/sqlite/20261127000012_shadow_comparisons.sql.
CREATE TABLE shadow_comparisons (
    id BIGSERIAL PRIMARY KEY,
    asset TEXT COLLATE "C" NOT NULL,
    shadow_of TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C",
    compared_at TEXT COLLATE "C" NOT NULL,
    compared BIGINT NOT NULL,
    rows_primary BIGINT NOT NULL,
    rows_shadow BIGINT NOT NULL,
    identical BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    only_in_primary BIGINT NOT NULL,
    only_in_shadow BIGINT NOT NULL,
    agreement DOUBLE PRECISION,
    note TEXT
);
CREATE INDEX shadow_comparisons_asset ON shadow_comparisons (asset, compared_at);
