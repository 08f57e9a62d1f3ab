-- Set when start-up reconciliation finds a recorded file gone from the archive; the item is
-- then fetched again if the cloud still has it, which clears the mark.
ALTER TABLE archived_items ADD COLUMN missing_since TEXT;
