//! Announced outcomes: what the webhook was last told of each account, so a recovery is
//! announced across a restart.

use chrono::Utc;

use super::{Ledger, LedgerError, query_err, rfc3339};

impl Ledger {
    /// Per account, what the webhook should compare the next pass with: the outcome (`ok` or
    /// `failed`) it was last told of, else (no announcement recorded yet) that of the
    /// account's latest pass that ran to its end. Lets the notifier announce a recovery
    /// across a restart or between two `once` runs.
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
}
