//! Failures: downloads that keep failing (counted, and deferred by a backoff) and items the
//! cloud itself reports as failed.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{ItemKey, Ledger, LedgerError, query_err, rfc3339};

/// A download that keeps failing, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemFailureRow {
    pub account: String,
    pub report_id: String,
    pub stored_id: String,
    pub attempts: i64,
    pub last_error: String,
    pub last_attempt_at: String,
    pub next_try_at: String,
}

/// Failed passes in a row that retry at once before backoff starts: a blip (a restart of
/// the cloud, a dropped connection) should not delay an item by the backoff.
pub const FREE_ATTEMPTS: i64 = 3;
const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(24 * 3600);

fn failure_backoff(attempts: i64, base: Duration) -> chrono::Duration {
    let wait = if attempts <= FREE_ATTEMPTS {
        Duration::ZERO
    } else {
        let doublings = u32::try_from(attempts - FREE_ATTEMPTS - 1).unwrap_or(u32::MAX);
        base.saturating_mul(1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX))
            .min(MAX_FAILURE_BACKOFF)
    };
    chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero())
}

impl Ledger {
    /// Counts a failed download and schedules the next try: the first
    /// [`FREE_ATTEMPTS`] failures retry on the next pass, later ones wait `base`, doubling
    /// up to a day. Returns the attempts so far.
    pub async fn record_item_failure(
        &self,
        key: &ItemKey<'_>,
        error: &str,
        base: Duration,
    ) -> Result<i64, LedgerError> {
        let previous: Option<(i64,)> = sqlx::query_as(
            "SELECT attempts FROM item_failures
             WHERE account = ? AND report_id = ? AND stored_id = ?",
        )
        .bind(key.account)
        .bind(key.report_id)
        .bind(key.stored_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read item failure"))?;
        let attempts = previous.map_or(0, |(a,)| a) + 1;
        let now = Utc::now();
        let next = now + failure_backoff(attempts, base);
        sqlx::query(
            "INSERT INTO item_failures (account, report_id, stored_id, attempts, last_error,
                last_attempt_at, next_try_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (account, report_id, stored_id) DO UPDATE SET
                attempts = excluded.attempts, last_error = excluded.last_error,
                last_attempt_at = excluded.last_attempt_at, next_try_at = excluded.next_try_at",
        )
        .bind(key.account)
        .bind(key.report_id)
        .bind(key.stored_id)
        .bind(attempts)
        // Server text: secrets out, escaped, capped (it is shown by whoever reads the row).
        .bind(crate::untrusted::sanitize(
            error,
            crate::untrusted::STORED_MAX,
        ))
        .bind(rfc3339(now))
        .bind(rfc3339(next))
        .execute(&self.pool)
        .await
        .map_err(query_err("record item failure"))?;
        Ok(attempts)
    }

    /// Items of one account that wait for a later try: report id → stored id → when.
    /// Read once per pass (the table holds only failing items, so it stays small).
    pub async fn deferred_items(
        &self,
        account: &str,
    ) -> Result<HashMap<String, HashMap<String, String>>, LedgerError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT report_id, stored_id, next_try_at FROM item_failures
             WHERE account = ? AND next_try_at > ?",
        )
        .bind(account)
        .bind(rfc3339(Utc::now()))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("deferred items"))?;
        let mut by_report: HashMap<String, HashMap<String, String>> = HashMap::new();
        for (report_id, stored_id, next_try) in rows {
            by_report
                .entry(report_id)
                .or_default()
                .insert(stored_id, next_try);
        }
        Ok(by_report)
    }

    pub async fn item_failures(&self) -> Result<Vec<ItemFailureRow>, LedgerError> {
        sqlx::query_as(
            "SELECT account, report_id, stored_id, attempts, last_error, last_attempt_at,
                next_try_at FROM item_failures ORDER BY account, report_id, stored_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list item failures"))
    }

    /// Notes a stored item the cloud reports as failed; true when it is new to the ledger.
    pub async fn record_cloud_failure(
        &self,
        account: &str,
        report_id: &str,
        stored_id: &str,
        report_format: &str,
        created_at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let now = rfc3339(Utc::now());
        let updated = sqlx::query(
            "UPDATE failed_items SET last_seen_at = ?
             WHERE account = ? AND report_id = ? AND stored_id = ?",
        )
        .bind(&now)
        .bind(account)
        .bind(report_id)
        .bind(stored_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("update failed item"))?;
        if updated.rows_affected() > 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO failed_items (account, report_id, stored_id, report_format, created_at,
                first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(account)
        .bind(report_id)
        .bind(stored_id)
        // An unknown format is the server's word; the key columns are allow-listed.
        .bind(crate::untrusted::sanitize(
            report_format,
            crate::untrusted::CELL_MAX,
        ))
        .bind(rfc3339(created_at))
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await
        .map_err(query_err("record failed item"))?;
        Ok(true)
    }

    /// Stored ids the cloud reported failed, as (account, report_id, stored_id).
    pub async fn cloud_failures(&self) -> Result<Vec<(String, String, String)>, LedgerError> {
        sqlx::query_as(
            "SELECT account, report_id, stored_id FROM failed_items
             ORDER BY account, report_id, stored_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list failed items"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ArchivedRow, DEFAULT_BUSY_TIMEOUT};

    #[test]
    fn failure_backoff_is_free_for_three_attempts_then_doubles_up_to_a_day() {
        let base = Duration::from_secs(600);
        for a in 1..=FREE_ATTEMPTS {
            assert_eq!(failure_backoff(a, base), chrono::Duration::zero());
        }
        assert_eq!(failure_backoff(4, base), chrono::Duration::seconds(600));
        assert_eq!(failure_backoff(5, base), chrono::Duration::seconds(1200));
        assert_eq!(failure_backoff(60, base), chrono::Duration::seconds(86_400));
    }

    #[tokio::test]
    async fn a_failing_item_is_deferred_after_its_free_attempts_and_cleared_when_archived() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.db"), DEFAULT_BUSY_TIMEOUT)
            .await
            .unwrap();
        let key = ItemKey {
            account: "a",
            report_id: "r",
            stored_id: "s",
        };
        for _ in 0..FREE_ATTEMPTS {
            ledger
                .record_item_failure(&key, "boom", Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert!(ledger.deferred_items("a").await.unwrap().is_empty());
        let attempts = ledger
            .record_item_failure(&key, "boom", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(attempts, FREE_ATTEMPTS + 1);
        assert!(
            ledger
                .deferred_items("a")
                .await
                .unwrap()
                .get("r")
                .is_some_and(|ids| ids.contains_key("s"))
        );
        let row = ArchivedRow {
            account: "a".into(),
            report_id: "r".into(),
            stored_id: "s".into(),
            report_format: "csv".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            listed_size: Some(3),
            wire_bytes: 3,
            stored_bytes: 3,
            sha256: "00".into(),
            compressed: false,
            path: "a/r/x.csv".into(),
            fetched_at: "2026-01-01T00:00:00Z".into(),
        };
        ledger.record(&row).await.unwrap();
        assert!(ledger.item_failures().await.unwrap().is_empty());
        assert!(ledger.archived_ids("a", "r").await.unwrap().contains("s"));
        ledger.mark_missing(&key).await.unwrap();
        assert!(ledger.archived_ids("a", "r").await.unwrap().is_empty());
        ledger.record(&row).await.unwrap();
        assert!(ledger.archived_ids("a", "r").await.unwrap().contains("s"));
    }
}
