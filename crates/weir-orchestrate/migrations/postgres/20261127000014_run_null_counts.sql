-- See migrations/sqlite/20261127000014_run_null_counts.sql.
ALTER TABLE runs ADD COLUMN null_counts TEXT NOT NULL DEFAULT '{}';
