//! Archived items: recording them once durable, asking which are archived, and marking
//! them missing or pruned.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Ledger, LedgerError, ObjectRef, query_err, rfc3339};

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

/// Names one stored item.
#[derive(Debug, Clone, Copy)]
pub struct ItemKey<'a> {
    pub account: &'a str,
    pub report_id: &'a str,
    pub stored_id: &'a str,
}

impl Ledger {
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
        self.record_all(&[(row, object)]).await
    }

    /// [`Ledger::record_with_object`] for several items in one transaction: one commit,
    /// so one fsync of the WAL for all of them (a pass's group commit), and three
    /// statements however many rows (they read the rows as one JSON array), so the
    /// ledger's single connection is taken for a moment per batch. All or none are
    /// recorded. Call only once every one of their files is durable.
    pub async fn record_all(
        &self,
        items: &[(&ArchivedRow, Option<&ObjectRef>)],
    ) -> Result<(), LedgerError> {
        if items.is_empty() {
            return Ok(());
        }
        let rows: Vec<RowJson<'_>> = items
            .iter()
            .map(|(row, object)| RowJson {
                row,
                e_tag: object.and_then(|o| o.e_tag.as_deref()),
                version_id: object.and_then(|o| o.version_id.as_deref()),
            })
            .collect();
        let rows = serde_json::to_string(&rows).map_err(|e| LedgerError::Query {
            what: "record archived items",
            source: sqlx::Error::Encode(Box::new(e)),
        })?;
        let mut tx = self.pool.begin().await.map_err(query_err("begin record"))?;
        // The three statements in one request to the connection's thread (each reads the
        // array as `?1`); the transaction makes them all or none.
        sqlx::query(RECORD_ALL)
            .bind(&rows)
            .execute(&mut *tx)
            .await
            .map_err(query_err("record archived items"))?;
        tx.commit().await.map_err(query_err("commit record"))?;
        Ok(())
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

    /// Rows in `archived_items` (the `report_archiver_ledger_rows` gauge).
    pub async fn archived_count(&self) -> Result<i64, LedgerError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM archived_items")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("count archived items"))
    }

    /// When the newest row was archived (`fetched_at`), `None` while the ledger is empty
    /// (the `report_archiver_ledger_newest_row_timestamp_seconds` gauge). Rows are added,
    /// updated in place or marked, never deleted, so the highest rowid is the newest row:
    /// one row read at each scrape, not the table.
    pub async fn newest_row_at(&self) -> Result<Option<DateTime<Utc>>, LedgerError> {
        let at: Option<String> =
            sqlx::query_scalar("SELECT fetched_at FROM archived_items ORDER BY rowid DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("newest archived item"))?;
        // A row this daemon wrote always parses; an edited one reads as no row.
        Ok(at
            .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
            .map(|at| at.with_timezone(&Utc)))
    }
}

/// One row of [`Ledger::record_all`]'s JSON array.
#[derive(serde::Serialize)]
struct RowJson<'a> {
    #[serde(flatten)]
    row: &'a ArchivedRow,
    e_tag: Option<&'a str>,
    version_id: Option<&'a str>,
}

/// [`Ledger::record_all`]'s three statements, each reading the rows' JSON array as `?1`:
/// the rows, inserted or (an item fetched again after its file went missing) updated (`WHERE
/// true` tells SQLite's parser the `ON CONFLICT` belongs to the upsert); their items' past
/// failures forgotten; and a 404 that came through after all no longer counted as lost.
const RECORD_ALL: &str = "INSERT INTO archived_items (account, report_id, stored_id,
        report_format, created_at, listed_size, wire_bytes, stored_bytes, sha256, compressed,
        path, fetched_at, e_tag, version_id)
    SELECT json_extract(value, '$.account'), json_extract(value, '$.report_id'),
        json_extract(value, '$.stored_id'), json_extract(value, '$.report_format'),
        json_extract(value, '$.created_at'), json_extract(value, '$.listed_size'),
        json_extract(value, '$.wire_bytes'), json_extract(value, '$.stored_bytes'),
        json_extract(value, '$.sha256'), json_extract(value, '$.compressed'),
        json_extract(value, '$.path'), json_extract(value, '$.fetched_at'),
        json_extract(value, '$.e_tag'), json_extract(value, '$.version_id')
    FROM json_each(?1) WHERE true
    ON CONFLICT (account, report_id, stored_id) DO UPDATE SET
        report_format = excluded.report_format, created_at = excluded.created_at,
        listed_size = excluded.listed_size, wire_bytes = excluded.wire_bytes,
        stored_bytes = excluded.stored_bytes, sha256 = excluded.sha256,
        compressed = excluded.compressed, path = excluded.path,
        fetched_at = excluded.fetched_at, missing_since = NULL,
        e_tag = excluded.e_tag, version_id = excluded.version_id;
    DELETE FROM item_failures
    WHERE (account, report_id, stored_id) IN (SELECT json_extract(value, '$.account'),
        json_extract(value, '$.report_id'), json_extract(value, '$.stored_id')
        FROM json_each(?1));
    DELETE FROM vanished_items
    WHERE vanished_at IS NULL
      AND (account, report_id, stored_id) IN (SELECT json_extract(value, '$.account'),
        json_extract(value, '$.report_id'), json_extract(value, '$.stored_id')
        FROM json_each(?1))";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::DEFAULT_BUSY_TIMEOUT;

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

        // The pass's single query answers what the two separate ones do.
        for (report_id, stored_id, times) in [("r", "lost", 2), ("r", "once", 1), ("q", "x", 2)] {
            let key = ItemKey {
                account: "a",
                report_id,
                stored_id,
            };
            for _ in 0..times {
                not_found(&ledger, &key).await;
            }
        }
        let ids = ["kept", "pruned", "gone", "new", "lost", "once"];
        let (paths, (vanished, noted)) = ledger.listed_items_facts("a", "r", &ids).await.unwrap();
        assert_eq!(paths, ledger.archived_paths("a", "r", &ids).await.unwrap());
        assert_eq!(
            (vanished.clone(), noted.clone()),
            ledger.not_found_items("a", "r").await.unwrap()
        );
        assert_eq!(vanished, HashSet::from(["lost".to_owned()]));
        assert_eq!(noted, HashSet::from(["once".to_owned()]));
        let (none, _) = ledger.listed_items_facts("a", "r", &[]).await.unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn newest_row_at_is_the_last_row_written_and_none_for_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.db"), DEFAULT_BUSY_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(ledger.newest_row_at().await.unwrap(), None);
        for (id, fetched_at) in [("b", "2026-02-01T00:00:00Z"), ("a", "2026-03-01T00:00:00Z")] {
            let row = ArchivedRow {
                account: "a".into(),
                report_id: "r".into(),
                stored_id: id.into(),
                report_format: "csv".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                listed_size: None,
                wire_bytes: 1,
                stored_bytes: 1,
                sha256: "00".into(),
                compressed: false,
                path: format!("a/r/{id}.csv"),
                fetched_at: fetched_at.into(),
            };
            ledger.record(&row).await.unwrap();
        }
        let newest = ledger.newest_row_at().await.unwrap().map(rfc3339);
        assert_eq!(newest.as_deref(), Some("2026-03-01T00:00:00Z"));
    }

    /// Records a 404 of `key`'s download (the first notes it, the second makes it vanished).
    async fn not_found(ledger: &Ledger, key: &ItemKey<'_>) {
        let listed = crate::ledger::ListedFacts {
            report_format: "csv",
            created_at: "2026-01-01T00:00:00Z",
            listed_size: None,
        };
        let answer = crate::ledger::NotFoundAnswer {
            status: 404,
            message: "not found",
        };
        ledger.record_not_found(key, listed, answer).await.unwrap();
    }

    #[tokio::test]
    async fn listed_items_facts_of_a_ledger_without_the_deletion_tables_finds_no_404s() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.db"), DEFAULT_BUSY_TIMEOUT)
            .await
            .unwrap();
        ledger.record(&row("x", "00")).await.unwrap();
        // What an earlier version's ledger, opened read-only and so never migrated, lacks.
        sqlx::query("DROP TABLE vanished_items")
            .execute(&ledger.pool)
            .await
            .unwrap();
        let (paths, (vanished, noted)) = ledger
            .listed_items_facts("a", "r", &["x", "y"])
            .await
            .unwrap();
        assert_eq!(
            paths,
            ledger.archived_paths("a", "r", &["x", "y"]).await.unwrap()
        );
        assert_eq!(paths.len(), 1);
        assert!(vanished.is_empty() && noted.is_empty());
        ledger.close().await;
    }

    fn row(id: &str, sha: &str) -> ArchivedRow {
        ArchivedRow {
            account: "a".into(),
            report_id: "r".into(),
            stored_id: id.into(),
            report_format: "csv".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            listed_size: Some(1234),
            wire_bytes: 1234,
            stored_bytes: 99_999_999_999,
            sha256: sha.into(),
            compressed: true,
            path: format!("a/r/{id} \"odd\".csv"),
            fetched_at: "2026-01-02T03:04:05Z".into(),
        }
    }

    #[tokio::test]
    async fn record_all_writes_every_row_exactly_and_forgets_their_failures_and_first_404s() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.db"), DEFAULT_BUSY_TIMEOUT)
            .await
            .unwrap();
        let key = |id| ItemKey {
            account: "a",
            report_id: "r",
            stored_id: id,
        };
        // x was archived and its file went missing; y kept failing; z answered 404 once.
        ledger.record(&row("x", "old")).await.unwrap();
        ledger.mark_missing(&key("x")).await.unwrap();
        for _ in 0..4 {
            let wait = std::time::Duration::from_secs(3600);
            ledger
                .record_item_failure(&key("y"), "boom", wait)
                .await
                .unwrap();
        }
        assert!(!ledger.deferred_items("a").await.unwrap().is_empty());
        not_found(&ledger, &key("z")).await;
        assert!(
            ledger
                .not_found_items("a", "r")
                .await
                .unwrap()
                .1
                .contains("z")
        );

        let object = ObjectRef {
            e_tag: Some("\"etag\"".into()),
            version_id: Some("v1".into()),
        };
        let (x, y, z) = (row("x", "new"), row("y", "why"), row("z", "zed"));
        ledger
            .record_all(&[(&x, None), (&y, None), (&z, Some(&object))])
            .await
            .unwrap();

        let mut rows = ledger.archived_rows().await.unwrap();
        rows.sort_by(|a, b| a.stored_id.cmp(&b.stored_id));
        assert_eq!(rows, vec![x.clone(), y, z.clone()], "every field as given");
        let found = ledger.archived_paths("a", "r", &["x"]).await.unwrap();
        assert_eq!(found["x"], Some(x.path), "no longer missing");
        assert!(ledger.deferred_items("a").await.unwrap().is_empty());
        assert!(ledger.not_found_items("a", "r").await.unwrap().1.is_empty());
        assert_eq!(ledger.object_refs().await.unwrap()[&z.path], object);
        ledger.record_all(&[]).await.unwrap();
    }
}
