-- Nulls per column in the rows each run stored (a JSON object), from the statistics of the
-- data files it staged: the history null-rate anomalies are judged on.
ALTER TABLE runs ADD COLUMN null_counts TEXT NOT NULL DEFAULT '{}';
