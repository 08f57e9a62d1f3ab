//! Retention (`[archive] keep`): deleting archived files older than the kept span.
//!
//! - The span is a [`Keep`] (`"7y"`, `"18months"`, `"400d"`), parsed with the config.
//! - [`prune`]: marks each old item pruned in the ledger, then has the [`Store`] delete its
//!   file (or object). The row stays, so a later pass never fetches the item
//!   again. An object still under its Object Lock retention is left for a later prune.
//! - [`run_daily`]: the job `run` starts when `keep` is set.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::api::model::parse_created_at;
use crate::config::Keep;
use crate::ledger::{Ledger, LedgerError};
use crate::store::Store;

/// How often `run` prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// One item retention deletes (or, in a dry run, would delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneItem {
    pub account: String,
    pub report_id: String,
    pub stored_id: String,
    pub created_at: String,
    pub path: String,
    pub bytes: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub cutoff: String,
    pub dry_run: bool,
    pub items: Vec<PruneItem>,
    /// Files that could not be deleted (their rows are marked pruned all the same).
    pub errors: Vec<String>,
    /// Items older than `keep` whose object is still under Object Lock retention: left
    /// for a prune after the lock ends.
    pub still_locked: u64,
}

/// Deletes (or lists, when `dry_run`) every kept file created before `keep.cutoff(now)`.
pub async fn prune(
    ledger: &Ledger,
    store: &Store,
    keep: Keep,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<PruneReport, RetentionError> {
    let cutoff = keep.cutoff(now);
    let mut report = PruneReport {
        cutoff: crate::ledger::rfc3339(cutoff),
        dry_run,
        ..PruneReport::default()
    };
    for row in ledger.live_rows().await? {
        if parse_created_at(&row.created_at).is_none_or(|created| created >= cutoff) {
            continue;
        }
        if !store.may_delete(&row.fetched_at, now) {
            report.still_locked += 1;
            continue;
        }
        let item = PruneItem {
            account: row.account.clone(),
            report_id: row.report_id.clone(),
            stored_id: row.stored_id.clone(),
            created_at: row.created_at.clone(),
            path: row.path.clone(),
            bytes: row.stored_bytes,
        };
        if !dry_run {
            // The row first: the ledger must never claim a file that is gone (invariant 2);
            // a crash in between leaves a file that the next prune does not see, which
            // `verify` reports as untracked.
            ledger
                .mark_pruned(&row.account, &row.report_id, &row.stored_id, now)
                .await?;
            match store.delete(&row.path).await {
                Ok(()) => tracing::info!(path = %row.path, created_at = %row.created_at, "pruned"),
                Err(e) => {
                    tracing::warn!(path = %row.path, error.message = %e, "cannot delete a pruned file");
                    report.errors.push(format!("{}: {e}", row.path));
                }
            }
        }
        report.items.push(item);
    }
    Ok(report)
}

/// The human form of a [`PruneReport`].
pub fn render(r: &PruneReport) -> String {
    let verb = if r.dry_run { "would prune" } else { "pruned" };
    let bytes: i64 = r.items.iter().map(|i| i.bytes).sum();
    let mut out = format!(
        "{verb} {} file(s), {bytes} byte(s), created before {}\n",
        r.items.len(),
        r.cutoff
    );
    // Errors may quote an S3 server: escaped, like every other table.
    let text = |s: &str| crate::untrusted::sanitize(s, crate::untrusted::STORED_MAX);
    for i in &r.items {
        out.push_str(&format!("  {}  {}\n", text(&i.created_at), text(&i.path)));
    }
    for e in &r.errors {
        out.push_str(&format!("  ERROR {}\n", text(e)));
    }
    if r.still_locked > 0 {
        out.push_str(&format!(
            "  {} older item(s) left: their objects are still under Object Lock retention\n",
            r.still_locked
        ));
    }
    out
}

/// Prunes at start and then every day until `cancel` fires (the `run` job).
pub async fn run_daily(ledger: Ledger, store: Store, keep: Keep, cancel: CancellationToken) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    // A suspended machine must not prune several times in a row when it wakes.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        match prune(&ledger, &store, keep, Utc::now(), false).await {
            Ok(r) if !r.items.is_empty() => {
                tracing::info!(files = r.items.len(), cutoff = %r.cutoff, "retention pruned old files")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error.message = %e, "retention failed; trying again tomorrow"),
        }
    }
}
