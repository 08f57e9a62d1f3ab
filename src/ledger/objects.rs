//! The S3 target's side: the object each uploaded item went to, and multipart uploads
//! begun and not yet finished.

use std::collections::HashMap;

use chrono::Utc;

use super::{Ledger, LedgerError, query_err, rfc3339};

/// The object an item was uploaded to on the S3 target, as the store answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    /// Quotes included, as S3 sends it.
    pub e_tag: Option<String>,
    pub version_id: Option<String>,
}

/// A multipart upload begun and not yet completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenUpload {
    pub upload_id: String,
    pub object_key: String,
    pub started_at: String,
}

impl Ledger {
    /// The S3 object of every archived item uploaded to one (path → object).
    pub async fn object_refs(&self) -> Result<HashMap<String, ObjectRef>, LedgerError> {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT path, e_tag, version_id FROM archived_items
             WHERE e_tag IS NOT NULL OR version_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("object refs"))?;
        Ok(rows
            .into_iter()
            .map(|(path, e_tag, version_id)| (path, ObjectRef { e_tag, version_id }))
            .collect())
    }

    /// Notes a multipart upload just begun, so a crash before its end leaves a trace the
    /// next start aborts.
    pub async fn record_upload(
        &self,
        object_key: &str,
        upload_id: &str,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT OR REPLACE INTO multipart_uploads (upload_id, object_key, started_at)
             VALUES (?, ?, ?)",
        )
        .bind(upload_id)
        .bind(object_key)
        .bind(rfc3339(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(query_err("record multipart upload"))?;
        Ok(())
    }

    /// Forgets a multipart upload once it is completed or aborted.
    pub async fn forget_upload(&self, upload_id: &str) -> Result<(), LedgerError> {
        sqlx::query("DELETE FROM multipart_uploads WHERE upload_id = ?")
            .bind(upload_id)
            .execute(&self.pool)
            .await
            .map_err(query_err("forget multipart upload"))?;
        Ok(())
    }

    /// Multipart uploads begun and not finished, oldest first.
    pub async fn open_uploads(&self) -> Result<Vec<OpenUpload>, LedgerError> {
        sqlx::query_as(
            "SELECT upload_id, object_key, started_at FROM multipart_uploads ORDER BY started_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list multipart uploads"))
    }
}
