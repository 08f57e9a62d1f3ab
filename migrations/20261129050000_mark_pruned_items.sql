-- Retention (`[archive] keep`) deletes old files but keeps their rows, so a later pass
-- still finds the stored id in the ledger and never fetches the item again.
ALTER TABLE archived_items ADD COLUMN pruned_at TEXT;  -- RFC 3339, UTC; NULL while the file is kept
