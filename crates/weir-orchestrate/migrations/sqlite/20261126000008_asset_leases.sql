-- One writer per table: the process that holds an asset's lease is the only one that stages,
-- publishes, recovers or vacuums its tables. A holder renews its lease while it works; a
-- lease past `lease_until`, or held by a process of this machine that is gone, is free.
CREATE TABLE asset_leases (
    asset TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    lease_until TEXT NOT NULL
);
