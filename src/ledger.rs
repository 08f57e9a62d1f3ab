//! The SQLite ledger: what was archived, what the cloud reported failed, and every pass.
//!
//! Opened once with WAL and `synchronous=FULL` and the embedded migrations applied. Rows in
//! `archived_items` are written only after the file is durable (invariant 2); the key is
//! (account, report_id, stored_id) (invariant 3).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "cannot open the ledger `{path}`: {source}; check the path, its permissions, and that no other program holds the database locked"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot bring the ledger `{path}` up to date: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("ledger query failed ({what}): {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

fn query_err(what: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError {
    move |source| LedgerError::Query { what, source }
}

/// One archived item, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ArchivedRow {
    pub account: String,
    pub report_id: String,
    pub stored_id: String,
    pub report_format: String,
    pub created_at: String,
    pub listed_size: Option<i64>,
    pub wire_bytes: i64,
    pub stored_bytes: i64,
    pub sha256: String,
    pub compressed: bool,
    pub path: String,
    pub fetched_at: String,
}

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

/// Names one stored item.
#[derive(Debug, Clone, Copy)]
pub struct ItemKey<'a> {
    pub account: &'a str,
    pub report_id: &'a str,
    pub stored_id: &'a str,
}

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

#[derive(Debug, Clone)]
pub struct Ledger {
    pool: SqlitePool,
}

const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Ledger {
    /// Opens (creating if missing) and migrates the ledger.
    pub async fn open(path: &Path, busy_timeout: Duration) -> Result<Self, LedgerError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| LedgerError::Open {
                path: path.to_owned(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let options = Self::options(path, busy_timeout)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = Self::pool(path, options).await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| LedgerError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self { pool })
    }

    /// Opens an existing ledger without writing to it; `None` when there is none yet.
    pub async fn open_read_only(path: &Path) -> Result<Option<Self>, LedgerError> {
        if !path.exists() {
            return Ok(None);
        }
        let options = Self::options(path, DEFAULT_BUSY_TIMEOUT)?.read_only(true);
        Ok(Some(Self {
            pool: Self::pool(path, options).await?,
        }))
    }

    fn options(path: &Path, busy_timeout: Duration) -> Result<SqliteConnectOptions, LedgerError> {
        Ok(SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| LedgerError::Open {
                path: path.to_owned(),
                source,
            })?
            .filename(path)
            .busy_timeout(busy_timeout))
    }

    async fn pool(path: &Path, options: SqliteConnectOptions) -> Result<SqlitePool, LedgerError> {
        // One connection: writes are a handful of rows per pass, and a single writer
        // never meets SQLITE_BUSY from itself.
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| LedgerError::Open {
                path: path.to_owned(),
                source,
            })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The stored ids of one report already archived, pruned ones included (retention
    /// deleted their files on purpose; fetching them again would undo it).
    pub async fn archived_ids(
        &self,
        account: &str,
        report_id: &str,
    ) -> Result<HashSet<String>, LedgerError> {
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT stored_id FROM archived_items
             WHERE account = ? AND report_id = ? AND missing_since IS NULL",
        )
        .bind(account)
        .bind(report_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("archived ids"))?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// Which of `stored_ids` are archived (as [`Ledger::archived_ids`] counts them), each
    /// with its file's path while the file is kept (`None` once retention pruned it). One
    /// query per report, one primary-key probe per id: the cost follows what the cloud
    /// lists, not the years of rows behind it.
    pub async fn archived_paths(
        &self,
        account: &str,
        report_id: &str,
        stored_ids: &[&str],
    ) -> Result<HashMap<String, Option<String>>, LedgerError> {
        if stored_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids = serde_json::to_string(stored_ids).map_err(|e| LedgerError::Query {
            what: "archived paths",
            source: sqlx::Error::Encode(Box::new(e)),
        })?;
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT stored_id, path, pruned_at FROM archived_items
             WHERE account = ? AND report_id = ? AND missing_since IS NULL
               AND stored_id IN (SELECT value FROM json_each(?))",
        )
        .bind(account)
        .bind(report_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("archived paths"))?;
        Ok(rows
            .into_iter()
            .map(|(id, path, pruned)| (id, pruned.is_none().then_some(path)))
            .collect())
    }

    /// Records an archived item and forgets its past failures. Call only once its file is
    /// durable.
    pub async fn record(&self, row: &ArchivedRow) -> Result<(), LedgerError> {
        self.record_with_object(row, None).await
    }

    /// [`Ledger::record`] for an item uploaded to the S3 target: also keeps the object's
    /// ETag and version id. Call only once the upload completed.
    pub async fn record_with_object(
        &self,
        row: &ArchivedRow,
        object: Option<&ObjectRef>,
    ) -> Result<(), LedgerError> {
        let object = object.cloned().unwrap_or_default();
        let mut tx = self.pool.begin().await.map_err(query_err("begin record"))?;
        sqlx::query(
            "INSERT INTO archived_items (account, report_id, stored_id, report_format, created_at,
                listed_size, wire_bytes, stored_bytes, sha256, compressed, path, fetched_at,
                e_tag, version_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (account, report_id, stored_id) DO UPDATE SET
                report_format = excluded.report_format, created_at = excluded.created_at,
                listed_size = excluded.listed_size, wire_bytes = excluded.wire_bytes,
                stored_bytes = excluded.stored_bytes, sha256 = excluded.sha256,
                compressed = excluded.compressed, path = excluded.path,
                fetched_at = excluded.fetched_at, missing_since = NULL,
                e_tag = excluded.e_tag, version_id = excluded.version_id",
        )
        .bind(&row.account)
        .bind(&row.report_id)
        .bind(&row.stored_id)
        .bind(&row.report_format)
        .bind(&row.created_at)
        .bind(row.listed_size)
        .bind(row.wire_bytes)
        .bind(row.stored_bytes)
        .bind(&row.sha256)
        .bind(row.compressed)
        .bind(&row.path)
        .bind(&row.fetched_at)
        .bind(object.e_tag)
        .bind(object.version_id)
        .execute(&mut *tx)
        .await
        .map_err(query_err("record archived item"))?;
        sqlx::query(
            "DELETE FROM item_failures WHERE account = ? AND report_id = ? AND stored_id = ?",
        )
        .bind(&row.account)
        .bind(&row.report_id)
        .bind(&row.stored_id)
        .execute(&mut *tx)
        .await
        .map_err(query_err("clear item failure"))?;
        tx.commit().await.map_err(query_err("commit record"))?;
        Ok(())
    }

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

    /// Marks a recorded item whose file is gone, so the next pass fetches it again.
    pub async fn mark_missing(&self, key: &ItemKey<'_>) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE archived_items SET missing_since = COALESCE(missing_since, ?)
             WHERE account = ? AND report_id = ? AND stored_id = ?",
        )
        .bind(rfc3339(Utc::now()))
        .bind(key.account)
        .bind(key.report_id)
        .bind(key.stored_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("mark missing"))?;
        Ok(())
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

    /// Every archived row, ordered by account, report and creation time.
    pub async fn archived_rows(&self) -> Result<Vec<ArchivedRow>, LedgerError> {
        sqlx::query_as(
            "SELECT account, report_id, stored_id, report_format, created_at, listed_size,
                wire_bytes, stored_bytes, sha256, compressed, path, fetched_at
             FROM archived_items ORDER BY account, report_id, created_at, report_format",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list archived items"))
    }

    /// Archived rows whose files are still kept (not pruned), ordered as
    /// [`Ledger::archived_rows`]: what `ledger`, `verify` and `prune` work on.
    pub async fn live_rows(&self) -> Result<Vec<ArchivedRow>, LedgerError> {
        sqlx::query_as(
            "SELECT account, report_id, stored_id, report_format, created_at, listed_size,
                wire_bytes, stored_bytes, sha256, compressed, path, fetched_at
             FROM archived_items WHERE pruned_at IS NULL
             ORDER BY account, report_id, created_at, report_format",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list kept items"))
    }

    /// Marks an item's file as deleted by retention. The row stays, so `archived_ids`
    /// still holds it and no later pass fetches the item again.
    pub async fn mark_pruned(
        &self,
        account: &str,
        report_id: &str,
        stored_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE archived_items SET pruned_at = ?
             WHERE account = ? AND report_id = ? AND stored_id = ?",
        )
        .bind(rfc3339(at))
        .bind(account)
        .bind(report_id)
        .bind(stored_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("mark item pruned"))?;
        Ok(())
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

    pub async fn passes(&self) -> Result<Vec<PassRow>, LedgerError> {
        sqlx::query_as(
            "SELECT id, account, started_at, finished_at, reports, fetched, skipped, pending,
                failed, cloud_failed, bytes, outcome, error FROM passes ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list passes"))
    }

    /// Per account, the outcome (`ok` or `failed`) of its latest pass that ran to its end;
    /// lets the notifier announce a recovery across a restart or between two `once` runs.
    /// Per account, what the webhook should compare the next pass with: the outcome it
    /// was last told of, else (no announcement recorded yet) the last finished pass's.
    pub async fn last_outcomes(&self) -> Result<Vec<(String, String)>, LedgerError> {
        sqlx::query_as(
            "SELECT account, outcome FROM announced_outcomes
             UNION ALL
             SELECT account, outcome FROM passes WHERE id IN
                (SELECT MAX(id) FROM passes WHERE outcome IN ('ok', 'failed') GROUP BY account)
                AND account NOT IN (SELECT account FROM announced_outcomes)",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("last pass outcomes"))
    }

    /// Records what the webhook now believes of `account`: ok or failed.
    pub async fn record_announced(&self, account: &str, ok: bool) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO announced_outcomes (account, outcome, announced_at) VALUES (?, ?, ?)
             ON CONFLICT (account) DO UPDATE SET
                outcome = excluded.outcome, announced_at = excluded.announced_at",
        )
        .bind(account)
        .bind(if ok { "ok" } else { "failed" })
        .bind(rfc3339(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(query_err("record announced outcome"))?;
        Ok(())
    }

    /// Rows in `archived_items` (the `report_archiver_ledger_rows` gauge).
    pub async fn archived_count(&self) -> Result<i64, LedgerError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM archived_items")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("count archived items"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    #[tokio::test]
    async fn archived_paths_answers_for_the_listed_ids_only_with_pruned_files_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.db"), DEFAULT_BUSY_TIMEOUT)
            .await
            .unwrap();
        for (report, id) in [
            ("r", "kept"),
            ("r", "pruned"),
            ("r", "gone"),
            ("r", "unlisted"),
            ("q", "kept"),
        ] {
            let row = ArchivedRow {
                account: "a".into(),
                report_id: report.into(),
                stored_id: id.into(),
                report_format: "csv".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                listed_size: None,
                wire_bytes: 1,
                stored_bytes: 1,
                sha256: "00".into(),
                compressed: false,
                path: format!("a/{report}/{id}.csv"),
                fetched_at: "2026-01-01T00:00:00Z".into(),
            };
            ledger.record(&row).await.unwrap();
        }
        ledger
            .mark_pruned("a", "r", "pruned", Utc::now())
            .await
            .unwrap();
        let gone = ItemKey {
            account: "a",
            report_id: "r",
            stored_id: "gone",
        };
        ledger.mark_missing(&gone).await.unwrap();

        let found = ledger
            .archived_paths("a", "r", &["kept", "pruned", "gone", "new", "it's \"odd\""])
            .await
            .unwrap();
        let expected: HashMap<String, Option<String>> = [
            ("kept".to_owned(), Some("a/r/kept.csv".to_owned())),
            ("pruned".to_owned(), None),
        ]
        .into();
        assert_eq!(found, expected);
        assert!(
            ledger
                .archived_paths("a", "r", &[])
                .await
                .unwrap()
                .is_empty()
        );
    }
}
