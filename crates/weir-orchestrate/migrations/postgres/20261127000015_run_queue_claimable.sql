-- The runs a worker may claim, in the order it claims them. Without it each claim sorted
-- every waiting run to take the first (7 ms a claim with 10,000 runs waiting, on both
-- backends): a deep queue, such as a long backfill, was drained in quadratic time.
CREATE INDEX run_queue_claimable ON run_queue (priority DESC, not_before, enqueued_at, id)
    WHERE status IN ('queued', 'retrying') AND cancel_requested = 0;
