-- Per account, the outcome (`ok`/`failed`) the webhook last heard of. The webhook fires on
-- changes; a change it never heard of (the endpoint was down) is announced again by the
-- next run, `once` runs included, instead of being lost with the process.
CREATE TABLE announced_outcomes (
    account       TEXT PRIMARY KEY,
    outcome       TEXT NOT NULL,    -- ok | failed
    announced_at  TEXT NOT NULL     -- RFC 3339, UTC
);
