-- Items whose download failed: attempts, the last error and when to try again, so an item
-- that keeps failing backs off instead of hammering the server. Removed once archived.
CREATE TABLE item_failures (
    account          TEXT    NOT NULL,
    report_id        TEXT    NOT NULL,
    stored_id        TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT    NOT NULL,
    last_attempt_at  TEXT    NOT NULL,   -- RFC 3339, UTC
    next_try_at      TEXT    NOT NULL,   -- RFC 3339, UTC
    PRIMARY KEY (account, report_id, stored_id)
);
