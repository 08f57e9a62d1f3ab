//! Deletions (issue 17): reports the cloud deleted (`gone_reports`) and stored items it lost
//! before they were archived (`vanished_items`). Facts, not failures: recorded once and
//! reported, never retried for ever.

use std::collections::{HashMap, HashSet};

use chrono::Utc;

use super::{ItemKey, Ledger, LedgerError, query_err, rfc3339};

/// Archived items by stored id, each with its file's path while the file is kept.
pub type ArchivedPaths = HashMap<String, Option<String>>;
/// Items that answered 404/410: (vanished ones, ones noted once).
pub type NotFound = (HashSet<String>, HashSet<String>);

/// A 404 or 410 from the cloud, as recorded: its status and its (server's) message.
#[derive(Debug, Clone, Copy)]
pub struct NotFoundAnswer<'a> {
    pub status: u16,
    pub message: &'a str,
}

/// The listing's facts about an item whose download answered 404/410.
#[derive(Debug, Clone, Copy)]
pub struct ListedFacts<'a> {
    pub report_format: &'a str,
    /// RFC 3339, UTC.
    pub created_at: &'a str,
    pub listed_size: Option<i64>,
}

/// What the ledger made of a download's 404/410.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFoundVerdict {
    /// The first such answer: noted, and the item is asked for once more next pass.
    FirstAnswer,
    /// The second: the item is vanished from now on.
    Vanished,
}

/// A vanished item, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct VanishedRow {
    pub account: String,
    pub report_id: String,
    pub stored_id: String,
    pub report_format: String,
    pub created_at: String,
    pub listed_size: Option<i64>,
    pub status: i64,
    pub message: String,
    pub first_not_found_at: String,
    pub vanished_at: Option<String>,
}

/// Server text bound for a row that is shown later: secrets out, escaped, capped.
fn stored_text(message: &str) -> String {
    crate::untrusted::sanitize(message, crate::untrusted::STORED_MAX)
}

/// A ledger written by an earlier version and opened read-only (a dry run, `reports`) is
/// not migrated and has no deletion tables yet: as far as it knows, nothing was deleted.
fn none_before_migration<T: Default>(result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
    match result {
        Err(e) if before_migration(&e) => Ok(T::default()),
        other => other,
    }
}

/// Whether `e` says a table is missing: a ledger from before the deletion tables.
fn before_migration(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(e) if e.message().contains("no such table"))
}

impl Ledger {
    /// Records that `report_id`'s stored list (and its settings) answered 404/410; true
    /// when the report was not gone before (the pass that tells it once).
    pub async fn mark_report_gone(
        &self,
        account: &str,
        report_id: &str,
        answer: NotFoundAnswer<'_>,
    ) -> Result<bool, LedgerError> {
        let now = rfc3339(Utc::now());
        let updated = sqlx::query(
            "UPDATE gone_reports SET last_seen_at = ?, status = ?, message = ?
             WHERE account = ? AND report_id = ?",
        )
        .bind(&now)
        .bind(i64::from(answer.status))
        .bind(stored_text(answer.message))
        .bind(account)
        .bind(report_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("update gone report"))?;
        if updated.rows_affected() > 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO gone_reports (account, report_id, status, message, gone_since,
                last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(account)
        .bind(report_id)
        .bind(i64::from(answer.status))
        .bind(stored_text(answer.message))
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await
        .map_err(query_err("record gone report"))?;
        Ok(true)
    }

    /// The report's stored list answered 200: it is not gone (any more). True when it was.
    pub async fn clear_report_gone(
        &self,
        account: &str,
        report_id: &str,
    ) -> Result<bool, LedgerError> {
        let done = sqlx::query("DELETE FROM gone_reports WHERE account = ? AND report_id = ?")
            .bind(account)
            .bind(report_id)
            .execute(&self.pool)
            .await
            .map_err(query_err("clear gone report"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The account's gone reports: report id → since when (RFC 3339). Read once per pass.
    pub async fn gone_reports(
        &self,
        account: &str,
    ) -> Result<HashMap<String, String>, LedgerError> {
        let rows: Vec<(String, String)> = none_before_migration(
            sqlx::query_as("SELECT report_id, gone_since FROM gone_reports WHERE account = ?")
                .bind(account)
                .fetch_all(&self.pool)
                .await,
        )
        .map_err(query_err("gone reports"))?;
        Ok(rows.into_iter().collect())
    }

    /// Records a download's 404/410. The first answer is noted; a second one (a later
    /// pass: one pass asks once) makes the item vanished.
    pub async fn record_not_found(
        &self,
        key: &ItemKey<'_>,
        listed: ListedFacts<'_>,
        answer: NotFoundAnswer<'_>,
    ) -> Result<NotFoundVerdict, LedgerError> {
        let now = rfc3339(Utc::now());
        let confirmed = sqlx::query(
            "UPDATE vanished_items SET vanished_at = COALESCE(vanished_at, ?), status = ?,
                message = ?
             WHERE account = ? AND report_id = ? AND stored_id = ?",
        )
        .bind(&now)
        .bind(i64::from(answer.status))
        .bind(stored_text(answer.message))
        .bind(key.account)
        .bind(key.report_id)
        .bind(key.stored_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("confirm vanished item"))?;
        if confirmed.rows_affected() > 0 {
            return Ok(NotFoundVerdict::Vanished);
        }
        sqlx::query(
            "INSERT INTO vanished_items (account, report_id, stored_id, report_format,
                created_at, listed_size, status, message, first_not_found_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key.account)
        .bind(key.report_id)
        .bind(key.stored_id)
        // An unknown format is the server's word; the key columns are allow-listed.
        .bind(crate::untrusted::sanitize(
            listed.report_format,
            crate::untrusted::CELL_MAX,
        ))
        .bind(listed.created_at)
        .bind(listed.listed_size)
        .bind(i64::from(answer.status))
        .bind(stored_text(answer.message))
        .bind(&now)
        .execute(&self.pool)
        .await
        .map_err(query_err("record not found item"))?;
        Ok(NotFoundVerdict::FirstAnswer)
    }

    /// A noted (not yet vanished) item is no longer listed: that is the second answer, and
    /// it is vanished now. Its format and `created_at` when it was noted and unconfirmed.
    pub async fn confirm_vanished(
        &self,
        key: &ItemKey<'_>,
    ) -> Result<Option<(String, String)>, LedgerError> {
        sqlx::query_as(
            "UPDATE vanished_items SET vanished_at = ?
             WHERE account = ? AND report_id = ? AND stored_id = ? AND vanished_at IS NULL
             RETURNING report_format, created_at",
        )
        .bind(rfc3339(Utc::now()))
        .bind(key.account)
        .bind(key.report_id)
        .bind(key.stored_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("confirm unlisted vanished item"))
    }

    /// [`Ledger::archived_paths`] and [`Ledger::not_found_items`] of one report in one
    /// query: a pass asks both of every report it lists, and each query is a round trip
    /// to the ledger's thread.
    pub async fn listed_items_facts(
        &self,
        account: &str,
        report_id: &str,
        stored_ids: &[&str],
    ) -> Result<(ArchivedPaths, NotFound), LedgerError> {
        let ids = serde_json::to_string(stored_ids).map_err(|e| LedgerError::Query {
            what: "listed items",
            source: sqlx::Error::Encode(Box::new(e)),
        })?;
        let rows: Result<Vec<(i64, String, Option<String>)>, sqlx::Error> = sqlx::query_as(
            "SELECT 0, stored_id, CASE WHEN pruned_at IS NULL THEN path END FROM archived_items
             WHERE account = ?1 AND report_id = ?2 AND missing_since IS NULL
               AND stored_id IN (SELECT value FROM json_each(?3))
             UNION ALL
             SELECT 1, stored_id, vanished_at FROM vanished_items
             WHERE account = ?1 AND report_id = ?2",
        )
        .bind(account)
        .bind(report_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await;
        let rows = match rows {
            // An unmigrated ledger opened read-only: the two queries, the second answering
            // that nothing was deleted.
            Err(e) if before_migration(&e) => {
                let archived = self.archived_paths(account, report_id, stored_ids).await?;
                return Ok((archived, self.not_found_items(account, report_id).await?));
            }
            other => other.map_err(query_err("listed items"))?,
        };
        let mut archived = ArchivedPaths::new();
        let (mut vanished, mut noted) = NotFound::default();
        for (kind, id, text) in rows {
            match (kind, text) {
                (0, path) => {
                    archived.insert(id, path);
                }
                (_, Some(_vanished_at)) => {
                    vanished.insert(id);
                }
                // A 404 noted once, asked for once more.
                (_, None) => {
                    noted.insert(id);
                }
            }
        }
        Ok((archived, (vanished, noted)))
    }

    /// One report's items that answered 404/410: (vanished ones, ones noted once).
    pub async fn not_found_items(
        &self,
        account: &str,
        report_id: &str,
    ) -> Result<(HashSet<String>, HashSet<String>), LedgerError> {
        let rows: Vec<(String, Option<String>)> = none_before_migration(
            sqlx::query_as(
                "SELECT stored_id, vanished_at FROM vanished_items
                 WHERE account = ? AND report_id = ?",
            )
            .bind(account)
            .bind(report_id)
            .fetch_all(&self.pool)
            .await,
        )
        .map_err(query_err("not found items"))?;
        let (vanished, noted): (Vec<_>, Vec<_>) =
            rows.into_iter().partition(|(_, at)| at.is_some());
        Ok((
            vanished.into_iter().map(|(id, _)| id).collect(),
            noted.into_iter().map(|(id, _)| id).collect(),
        ))
    }

    /// Every vanished item (confirmed), ordered by account, report and creation time.
    pub async fn vanished_rows(&self) -> Result<Vec<VanishedRow>, LedgerError> {
        sqlx::query_as(
            "SELECT account, report_id, stored_id, report_format, created_at, listed_size,
                status, message, first_not_found_at, vanished_at FROM vanished_items
             WHERE vanished_at IS NOT NULL ORDER BY account, report_id, created_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list vanished items"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ArchivedRow, DEFAULT_BUSY_TIMEOUT};

    const ANSWER: NotFoundAnswer<'static> = NotFoundAnswer {
        status: 404,
        message: "Stored report not found (code 404)",
    };

    async fn ledger(dir: &tempfile::TempDir) -> Ledger {
        Ledger::open(&dir.path().join("l.db"), DEFAULT_BUSY_TIMEOUT)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_report_is_gone_once_until_its_list_answers_again() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        assert!(ledger.mark_report_gone("a", "r", ANSWER).await.unwrap());
        assert!(!ledger.mark_report_gone("a", "r", ANSWER).await.unwrap());
        assert!(ledger.gone_reports("a").await.unwrap().contains_key("r"));
        assert!(ledger.gone_reports("b").await.unwrap().is_empty());
        assert!(ledger.clear_report_gone("a", "r").await.unwrap());
        assert!(!ledger.clear_report_gone("a", "r").await.unwrap());
        assert!(ledger.gone_reports("a").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_item_vanishes_at_the_second_answer_and_an_archived_one_is_forgiven() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        let listed = ListedFacts {
            report_format: "csv",
            created_at: "2026-01-01T00:00:00Z",
            listed_size: Some(3),
        };
        let key = |stored_id| ItemKey {
            account: "a",
            report_id: "r",
            stored_id,
        };
        let first = ledger.record_not_found(&key("s"), listed, ANSWER).await;
        assert_eq!(first.unwrap(), NotFoundVerdict::FirstAnswer);
        let noted = ledger.not_found_items("a", "r").await.unwrap();
        assert!(noted.0.is_empty() && noted.1.contains("s"));
        assert!(ledger.vanished_rows().await.unwrap().is_empty());
        let second = ledger.record_not_found(&key("s"), listed, ANSWER).await;
        assert_eq!(second.unwrap(), NotFoundVerdict::Vanished);
        let rows = ledger.vanished_rows().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].stored_id.as_str(), rows[0].status), ("s", 404));
        // Noted once, then no longer listed: vanished as well.
        ledger
            .record_not_found(&key("t"), listed, ANSWER)
            .await
            .unwrap();
        let confirmed = ledger.confirm_vanished(&key("t")).await.unwrap();
        assert_eq!(
            confirmed,
            Some(("csv".into(), "2026-01-01T00:00:00Z".into()))
        );
        assert_eq!(ledger.confirm_vanished(&key("t")).await.unwrap(), None);
        // Noted once, then archived after all: the note goes.
        ledger
            .record_not_found(&key("u"), listed, ANSWER)
            .await
            .unwrap();
        let row = ArchivedRow {
            account: "a".into(),
            report_id: "r".into(),
            stored_id: "u".into(),
            report_format: "csv".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            listed_size: Some(3),
            wire_bytes: 3,
            stored_bytes: 3,
            sha256: "00".into(),
            compressed: false,
            path: "a/r/u.csv".into(),
            fetched_at: "2026-01-01T00:00:00Z".into(),
        };
        ledger.record(&row).await.unwrap();
        let (vanished, noted) = ledger.not_found_items("a", "r").await.unwrap();
        assert_eq!(vanished.len(), 2);
        assert!(noted.is_empty(), "{noted:?}");
    }
}
