-- One row per archived stored item. A row exists only once its file is durable on disk.
CREATE TABLE archived_items (
    account        TEXT    NOT NULL,
    report_id      TEXT    NOT NULL,
    stored_id      TEXT    NOT NULL,
    report_format  TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,   -- RFC 3339, UTC
    listed_size    INTEGER,            -- the listing's size (compressed length), when sent
    wire_bytes     INTEGER NOT NULL,   -- bytes received
    stored_bytes   INTEGER NOT NULL,   -- bytes in the archived file
    sha256         TEXT    NOT NULL,   -- of the archived file, lowercase hex
    compressed     INTEGER NOT NULL,   -- 1 when the file is kept gzip-compressed as served
    path           TEXT    NOT NULL,   -- relative to the archive dir
    fetched_at     TEXT    NOT NULL,   -- RFC 3339, UTC
    PRIMARY KEY (account, report_id, stored_id)
);

-- Stored items the cloud reported as failed: recorded, never fetched.
CREATE TABLE failed_items (
    account        TEXT NOT NULL,
    report_id      TEXT NOT NULL,
    stored_id      TEXT NOT NULL,
    report_format  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    first_seen_at  TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    PRIMARY KEY (account, report_id, stored_id)
);

CREATE TABLE passes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account       TEXT    NOT NULL,
    started_at    TEXT    NOT NULL,
    finished_at   TEXT,
    reports       INTEGER NOT NULL DEFAULT 0,
    fetched       INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    pending       INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    cloud_failed  INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT    NOT NULL,    -- running | ok | failed | cancelled | interrupted
    error         TEXT
);

CREATE INDEX passes_by_account ON passes (account, started_at);
