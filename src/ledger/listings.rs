//! Report listings: when each report's stored list was last read, whether the report was
//! finished then, and its schedule type once known. The pass reads them to list a finished
//! one-time report about daily instead of every pass.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Ledger, LedgerError, query_err, rfc3339};

/// What the ledger remembers of one report's last listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// `schedule.type` (`once`, `monthly`, ...), if it was asked.
    pub schedule: Option<String>,
    pub listed_at: DateTime<Utc>,
    /// Every item was saved and archived then, nothing waiting or failing.
    pub finished: bool,
}

impl Ledger {
    /// The account's listings, by report id. A `listed_at` that does not parse (an edited
    /// ledger) drops the row: the report is then listed as if new, which is always safe.
    pub async fn listings(&self, account: &str) -> Result<HashMap<String, Listing>, LedgerError> {
        let rows: Vec<(String, Option<String>, String, bool)> = sqlx::query_as(
            "SELECT report_id, schedule, listed_at, finished FROM report_listings
             WHERE account = ?",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("report listings"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(report_id, schedule, listed_at, finished)| {
                let listed_at = DateTime::parse_from_rfc3339(&listed_at)
                    .ok()?
                    .with_timezone(&Utc);
                Some((
                    report_id,
                    Listing {
                        schedule,
                        listed_at,
                        finished,
                    },
                ))
            })
            .collect())
    }

    /// Records that these reports were listed now, in one statement (one commit, one fsync
    /// for a tenant's thousands of reports; the rows travel as one JSON array, so the
    /// ledger's connection is taken once, not once per report): (report id, schedule type
    /// if known, finished). A schedule of `None` keeps the one known.
    pub async fn record_listings(
        &self,
        account: &str,
        listed: &[(String, Option<String>, bool)],
    ) -> Result<(), LedgerError> {
        if listed.is_empty() {
            return Ok(());
        }
        let rows = serde_json::to_string(listed).map_err(|e| LedgerError::Query {
            what: "record report listings",
            source: sqlx::Error::Encode(Box::new(e)),
        })?;
        sqlx::query(RECORD_LISTINGS)
            .bind(account)
            .bind(rfc3339(Utc::now()))
            .bind(rows)
            .execute(&self.pool)
            .await
            .map_err(query_err("record report listings"))?;
        Ok(())
    }

    /// Per account (those with any), the finished one-time reports not recorded as gone:
    /// the ones a pass lists about daily instead of every pass (`pass/listings.rs`; the
    /// `report_archiver_reports_resting` gauge). One row per report, read at each scrape.
    pub async fn resting_reports(&self) -> Result<Vec<(String, i64)>, LedgerError> {
        // 'once': the schedule type that rests, as `pass::listings` names it.
        sqlx::query_as(
            "SELECT l.account, COUNT(*) FROM report_listings l
             WHERE l.finished = 1 AND l.schedule = 'once'
               AND NOT EXISTS (SELECT 1 FROM gone_reports g
                               WHERE g.account = l.account AND g.report_id = l.report_id)
             GROUP BY l.account",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("resting reports"))
    }
}

/// [`Ledger::record_listings`]: each `[report id, schedule or null, finished]` of the
/// array inserted or updated. `WHERE true` tells SQLite's parser the `ON CONFLICT` belongs
/// to the upsert.
const RECORD_LISTINGS: &str = "INSERT INTO report_listings
        (account, report_id, schedule, listed_at, finished)
    SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?2,
        json_extract(value, '$[2]')
    FROM json_each(?3) WHERE true
    ON CONFLICT (account, report_id) DO UPDATE SET
        schedule = COALESCE(excluded.schedule, report_listings.schedule),
        listed_at = excluded.listed_at, finished = excluded.finished";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listing_is_recorded_and_keeps_its_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.db"), super::super::DEFAULT_BUSY_TIMEOUT)
            .await
            .unwrap();
        let once = [("r1".to_owned(), Some("once".to_owned()), true)];
        ledger.record_listings("a", &once).await.unwrap();
        let again = [("r1".to_owned(), None, false)];
        ledger.record_listings("a", &again).await.unwrap();
        let listings = ledger.listings("a").await.unwrap();
        assert_eq!(listings["r1"].schedule.as_deref(), Some("once"));
        assert!(!listings["r1"].finished);
        assert!(ledger.listings("b").await.unwrap().is_empty());
        ledger.close().await;
    }

    #[tokio::test]
    async fn finished_once_reports_rest_unless_gone_and_others_never() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.db"), super::super::DEFAULT_BUSY_TIMEOUT)
            .await
            .unwrap();
        let listed = |id: &str, schedule: Option<&str>, finished: bool| {
            (id.to_owned(), schedule.map(str::to_owned), finished)
        };
        let rows = [
            listed("done", Some("once"), true),
            listed("deleted", Some("once"), true),
            listed("waiting", Some("once"), false),
            listed("monthly", Some("monthly"), true),
            listed("unknown", None, true),
        ];
        ledger.record_listings("a", &rows).await.unwrap();
        ledger.record_listings("b", &rows[3..]).await.unwrap();
        // One statement for them all: every field of every row read back as written.
        let a = ledger.listings("a").await.unwrap();
        assert_eq!(a.len(), 5);
        for (id, schedule, finished) in &rows {
            assert_eq!(a[id].schedule, *schedule, "{id}");
            assert_eq!(a[id].finished, *finished, "{id}");
        }
        assert_eq!(ledger.listings("b").await.unwrap().len(), 2);
        ledger.record_listings("a", &[]).await.unwrap();

        ledger
            .mark_report_gone(
                "a",
                "deleted",
                crate::ledger::NotFoundAnswer {
                    status: 404,
                    message: "gone",
                },
            )
            .await
            .unwrap();
        let resting = ledger.resting_reports().await.unwrap();
        assert_eq!(resting, vec![("a".to_owned(), 1)]);
        ledger.close().await;
    }
}
