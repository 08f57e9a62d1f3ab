-- What the cloud deleted (issue 17). The spec declares no 404 for a report's stored list or
-- a download, so a 404 or 410 there is read as a deletion: a fact to record and report,
-- not a failure to retry for ever.

-- Reports whose stored list answered 404/410 while their settings (GET /reports/{id}, where
-- the spec does declare 404) answered 404/410 too. A discovered report here is no longer
-- listed; a configured one is still asked each pass and reported GONE. Removed when the
-- report's stored list answers 200 again.
CREATE TABLE gone_reports (
    account        TEXT    NOT NULL,
    report_id      TEXT    NOT NULL,
    status         INTEGER NOT NULL,   -- the stored list's HTTP status: 404 or 410
    message        TEXT    NOT NULL,   -- the cloud's error message, sanitized
    gone_since     TEXT    NOT NULL,   -- RFC 3339, UTC: the pass that found it gone
    last_seen_at   TEXT    NOT NULL,   -- RFC 3339, UTC: the last pass that found it gone
    PRIMARY KEY (account, report_id)
);

-- Stored items whose download answered 404/410 while they were still listed. One answer is
-- not trusted (vanished_at NULL: the next pass asks once more); the second makes the item
-- vanished: told once, never fetched again. The row of an unconfirmed item that is then
-- archived is removed.
CREATE TABLE vanished_items (
    account             TEXT    NOT NULL,
    report_id           TEXT    NOT NULL,
    stored_id           TEXT    NOT NULL,
    report_format       TEXT    NOT NULL,
    created_at          TEXT    NOT NULL,   -- the listing's, RFC 3339, UTC
    listed_size         INTEGER,
    status              INTEGER NOT NULL,   -- the download's last HTTP status: 404 or 410
    message             TEXT    NOT NULL,   -- the cloud's error message, sanitized
    first_not_found_at  TEXT    NOT NULL,   -- RFC 3339, UTC
    vanished_at         TEXT,               -- RFC 3339, UTC; NULL until a second answer
    PRIMARY KEY (account, report_id, stored_id)
);
