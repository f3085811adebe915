-- What `weir runs` shows of a run, the same as `weir run` did: the input files it read (JSON
-- array of paths) and its quarantined rows by rule (JSON object).
ALTER TABLE runs ADD COLUMN files TEXT NOT NULL DEFAULT '[]';
ALTER TABLE runs ADD COLUMN quarantine_by_rule TEXT NOT NULL DEFAULT '{}';
