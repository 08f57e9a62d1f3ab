-- The S3 target: the object's ETag and version id as the store answered the upload (NULL
-- for files in the local archive, and version_id NULL in an unversioned bucket).
ALTER TABLE archived_items ADD COLUMN e_tag TEXT;
ALTER TABLE archived_items ADD COLUMN version_id TEXT;

-- Multipart uploads begun and not yet completed or aborted. Written right after
-- CreateMultipartUpload, removed after complete/abort; whatever is here at start was left
-- by a crash and is aborted (this works on every S3 server, unlike ListMultipartUploads).
CREATE TABLE multipart_uploads (
    upload_id   TEXT NOT NULL PRIMARY KEY,
    object_key  TEXT NOT NULL,   -- the full key, prefix included
    started_at  TEXT NOT NULL    -- RFC 3339, UTC
);
