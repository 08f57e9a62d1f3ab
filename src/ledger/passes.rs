//! Passes: each one started, finished with its counts, or found interrupted by a death.

use chrono::Utc;

use super::{Ledger, LedgerError, query_err, rfc3339};

/// A finished pass, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PassRow {
    pub id: i64,
    pub account: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub reports: i64,
    pub fetched: i64,
    pub skipped: i64,
    pub pending: i64,
    pub failed: i64,
    pub cloud_failed: i64,
    pub bytes: i64,
    pub outcome: String,
    pub error: Option<String>,
}

/// The counts a pass ends with.
#[derive(Debug, Clone, Default)]
pub struct PassTotals {
    pub reports: i64,
    pub fetched: i64,
    pub skipped: i64,
    pub pending: i64,
    pub failed: i64,
    pub cloud_failed: i64,
    pub bytes: i64,
    pub outcome: &'static str,
    pub error: Option<String>,
}

impl Ledger {
    /// Passes still marked running belong to a process that died; says how many there were.
    pub async fn mark_interrupted_passes(&self) -> Result<u64, LedgerError> {
        let done = sqlx::query(
            "UPDATE passes SET outcome = 'interrupted', finished_at = ? WHERE outcome = 'running'",
        )
        .bind(rfc3339(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(query_err("mark interrupted passes"))?;
        Ok(done.rows_affected())
    }

    pub async fn start_pass(&self, account: &str) -> Result<i64, LedgerError> {
        let id: (i64,) = sqlx::query_as(
            "INSERT INTO passes (account, started_at, outcome) VALUES (?, ?, 'running')
             RETURNING id",
        )
        .bind(account)
        .bind(rfc3339(Utc::now()))
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("start pass"))?;
        Ok(id.0)
    }

    pub async fn finish_pass(&self, id: i64, totals: &PassTotals) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE passes SET finished_at = ?, reports = ?, fetched = ?, skipped = ?,
                pending = ?, failed = ?, cloud_failed = ?, bytes = ?, outcome = ?, error = ?
             WHERE id = ?",
        )
        .bind(rfc3339(Utc::now()))
        .bind(totals.reports)
        .bind(totals.fetched)
        .bind(totals.skipped)
        .bind(totals.pending)
        .bind(totals.failed)
        .bind(totals.cloud_failed)
        .bind(totals.bytes)
        .bind(totals.outcome)
        // Server text: secrets out, escaped, capped (it is shown by whoever reads the row).
        .bind(
            totals
                .error
                .as_deref()
                .map(|e| crate::untrusted::sanitize(e, crate::untrusted::STORED_MAX)),
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(query_err("finish pass"))?;
        Ok(())
    }

    pub async fn passes(&self) -> Result<Vec<PassRow>, LedgerError> {
        sqlx::query_as(
            "SELECT id, account, started_at, finished_at, reports, fetched, skipped, pending,
                failed, cloud_failed, bytes, outcome, error FROM passes ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list passes"))
    }
}
