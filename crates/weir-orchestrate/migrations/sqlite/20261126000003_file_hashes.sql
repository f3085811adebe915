-- A cache of content hashes keyed by what the file system says about each file (size, mtime,
-- ctime, inode, device), as git's index does: a file whose stat is unchanged is not read again
-- to learn its hash. Only files that had settled (unchanged for a while) when hashed are kept.
CREATE TABLE file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    content_hash TEXT NOT NULL
);
