-- The processes executing runs (`weir serve`, `weir worker`) and when each was last seen
-- alive, for monitoring: a process that stopped cleanly removes its row.
CREATE TABLE workers (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
