-- A queued run may recompute one partition of partitioned models (`weir backfill`, `weir
-- trigger --partition`); a backfill's runs share one trigger, `backfill:<asset>:<from>..<to>`.
ALTER TABLE run_queue ADD COLUMN partition_key TEXT;
CREATE INDEX run_queue_trigger ON run_queue (trigger);
