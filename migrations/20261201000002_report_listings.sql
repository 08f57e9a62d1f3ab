-- When each report's stored list was last read, and whether the report was finished then,
-- so that a finished one-time report is listed about daily instead of every pass: an
-- integration that creates a `once` report a day and never deletes one makes a tenant's
-- report list grow without bound (issue 17).
CREATE TABLE report_listings (
    account    TEXT NOT NULL,
    report_id  TEXT NOT NULL,
    -- `schedule.type` of GET /reports/{id} (once, monthly, ...); NULL until it was asked.
    -- The API cannot change it (PUT may change only `schedule.enabled`), so it is asked once.
    schedule   TEXT,
    listed_at  TEXT NOT NULL,               -- RFC 3339, UTC
    -- 1: every stored item saved and archived (or excluded by format), none in progress,
    -- failing, deferred or failed in the cloud.
    finished   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, report_id)
);
