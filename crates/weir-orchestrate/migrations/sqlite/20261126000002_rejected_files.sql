-- Input files a run left out whole (unreadable), as a JSON array of {path, reason}.
ALTER TABLE runs ADD COLUMN rejected_files TEXT NOT NULL DEFAULT '[]';
