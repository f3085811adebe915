-- Each comparison of a shadow asset (`shadow_of` in its model) with the asset it shadows,
-- made after a run of the shadow: the rows each held, how many agreed, changed or were on one
-- side only, and the agreement (identical rows over all compared rows). `compared` is 0 when
-- the two were computed from different upstream versions, so not compared (`note` says why).
CREATE TABLE shadow_comparisons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asset TEXT NOT NULL,
    shadow_of TEXT NOT NULL,
    run_id TEXT,
    compared_at TEXT NOT NULL,
    compared INTEGER NOT NULL,
    rows_primary INTEGER NOT NULL,
    rows_shadow INTEGER NOT NULL,
    identical INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    only_in_primary INTEGER NOT NULL,
    only_in_shadow INTEGER NOT NULL,
    agreement DOUBLE PRECISION,
    note TEXT
);
CREATE INDEX shadow_comparisons_asset ON shadow_comparisons (asset, compared_at);
