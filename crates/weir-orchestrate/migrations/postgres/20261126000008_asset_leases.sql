-- See migrations/sqlite/20261126000008_asset_leases.sql.
CREATE TABLE asset_leases (
    asset TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT COLLATE "C" NOT NULL,
    acquired_at TEXT COLLATE "C" NOT NULL,
    lease_until TEXT COLLATE "C" NOT NULL
);
