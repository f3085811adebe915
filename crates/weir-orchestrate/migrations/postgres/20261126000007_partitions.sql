-- See migrations/sqlite/20261126000007_partitions.sql.
ALTER TABLE run_queue ADD COLUMN partition_key TEXT COLLATE "C";
CREATE INDEX run_queue_trigger ON run_queue (trigger);
