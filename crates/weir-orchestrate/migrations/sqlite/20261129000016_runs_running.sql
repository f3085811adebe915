-- The asset runs still marked `running`: a run of many assets asks once which of its assets
-- a process that died may have left half done, instead of once per asset over its history.
CREATE INDEX runs_running ON runs (asset) WHERE status = 'running';
