//! Retention (`[archive] keep`): deleting archived files older than the kept span.
//!
//! - [`Keep`]: the span, in calendar units (`"7y"`, `"18months"`, `"400d"`); humantime has
//!   no years or months, and a retention rule is written in them.
//! - [`prune`]: marks each old item pruned in the ledger, then deletes its file (or its
//!   object, [`PruneFrom::Bucket`]). The row stays, so a later pass never fetches the item
//!   again. An object still under its Object Lock retention is left for a later prune.
//! - [`run_daily`]: the job `run` starts when `keep` is set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::api::model::parse_created_at;
use crate::archive;
use crate::ledger::{ArchivedRow, Ledger, LedgerError};
use crate::s3::ObjectTarget;

/// How often `run` prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(
        "invalid retention `{0}`: use a number and a unit (y, mo/months, w, d, h), e.g. \"7y\", \"18months\", \"400d\""
    )]
    Parse(String),
    #[error("invalid retention `{0}`: `m` is ambiguous; write `mo` for months")]
    AmbiguousMinutes(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A retention span in calendar units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    pub months: u32,
    pub days: u64,
    pub hours: u64,
}

impl Keep {
    /// Parses `"7y"`, `"18months"`, `"400d"`, `"1y 6mo"`, `"2w"`, `"36h"`.
    pub fn parse(s: &str) -> Result<Self, RetentionError> {
        let bad = || RetentionError::Parse(s.to_owned());
        let mut keep = Self::default();
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = rest[digits..].trim_start();
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let unit = rest[..unit_len].to_ascii_lowercase();
            rest = rest[unit_len..].trim_start();
            let months = |k: u64| u32::try_from(n.saturating_mul(k)).map_err(|_| bad());
            match unit.as_str() {
                "y" | "yr" | "yrs" | "year" | "years" => keep.months += months(12)?,
                "mo" | "mon" | "month" | "months" => keep.months += months(1)?,
                "w" | "week" | "weeks" => keep.days += n.saturating_mul(7),
                "d" | "day" | "days" => keep.days += n,
                "h" | "hour" | "hours" => keep.hours += n,
                "m" => return Err(RetentionError::AmbiguousMinutes(s.to_owned())),
                _ => return Err(bad()),
            }
        }
        if keep == Self::default() {
            return Err(bad());
        }
        Ok(keep)
    }

    /// The end of the span begun at `from` (Object Lock's retain-until date).
    pub fn after(&self, from: DateTime<Utc>) -> DateTime<Utc> {
        let days = i64::try_from(self.days).unwrap_or(i64::MAX / 2);
        let hours = i64::try_from(self.hours).unwrap_or(i64::MAX / 2);
        from.checked_add_months(Months::new(self.months))
            .and_then(|t| t.checked_add_signed(chrono::TimeDelta::try_days(days)?))
            .and_then(|t| t.checked_add_signed(chrono::TimeDelta::try_hours(hours)?))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Items created before this time are older than the span.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let days = i64::try_from(self.days).unwrap_or(i64::MAX / 2);
        let hours = i64::try_from(self.hours).unwrap_or(i64::MAX / 2);
        now.checked_sub_months(Months::new(self.months))
            .and_then(|t| t.checked_sub_signed(chrono::TimeDelta::try_days(days)?))
            .and_then(|t| t.checked_sub_signed(chrono::TimeDelta::try_hours(hours)?))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
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

/// Where the archived reports are, so where prune deletes them.
#[derive(Debug, Clone)]
pub enum PruneFrom {
    /// `[archive] dir`.
    Dir(PathBuf),
    /// `[archive.s3]`.
    Bucket(Arc<ObjectTarget>),
}

impl PruneFrom {
    /// Whether the object of `row` may be deleted now: not while its Object Lock retention
    /// (archive time + `retain`) runs. S3 would accept the DELETE and only hide the locked
    /// version behind a delete marker, still stored and billed, while the ledger said it
    /// was gone.
    fn may_delete(&self, row: &ArchivedRow, now: DateTime<Utc>) -> bool {
        let Self::Bucket(objects) = self else {
            return true;
        };
        let Some(lock) = objects.object_lock() else {
            return true;
        };
        DateTime::parse_from_rfc3339(&row.fetched_at)
            .is_ok_and(|archived| lock.retain.after(archived.with_timezone(&Utc)) <= now)
    }

    async fn delete(&self, relative: &str) -> Result<(), String> {
        match self {
            // Never deleting through a folder linked out of the archive.
            Self::Dir(root) => archive::remove(root, relative)
                .await
                .map_err(|e| e.to_string()),
            Self::Bucket(objects) => objects.delete(relative).await.map_err(|e| e.to_string()),
        }
    }
}

/// Deletes (or lists, when `dry_run`) every kept file created before `keep.cutoff(now)`.
pub async fn prune(
    ledger: &Ledger,
    from: &PruneFrom,
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
        if !from.may_delete(&row, now) {
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
            match from.delete(&row.path).await {
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
pub async fn run_daily(ledger: Ledger, from: PruneFrom, keep: Keep, cancel: CancellationToken) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    // A suspended machine must not prune several times in a row when it wakes.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        match prune(&ledger, &from, keep, Utc::now(), false).await {
            Ok(r) if !r.items.is_empty() => {
                tracing::info!(files = r.items.len(), cutoff = %r.cutoff, "retention pruned old files")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error.message = %e, "retention failed; trying again tomorrow"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn spans_in_years_months_weeks_days_and_hours_parse() {
        assert_eq!(Keep::parse("7y").unwrap().months, 84);
        assert_eq!(Keep::parse("18months").unwrap().months, 18);
        assert_eq!(Keep::parse("400d").unwrap().days, 400);
        let k = Keep::parse("1y 6mo 2w 1d 3h").unwrap();
        assert_eq!((k.months, k.days, k.hours), (18, 15, 3));
        for bad in ["", "7", "y", "7 parsecs", "-1y", "0d", "1.5y"] {
            assert!(Keep::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Keep::parse("6m"),
            Err(RetentionError::AmbiguousMinutes(_))
        ));
    }

    #[test]
    fn the_cutoff_counts_calendar_months() {
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 12, 0, 0).unwrap();
        let cut = Keep::parse("1mo").unwrap().cutoff(now);
        assert_eq!(cut, Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap());
        let cut = Keep::parse("7y").unwrap().cutoff(now);
        assert_eq!(cut, Utc.with_ymd_and_hms(2019, 3, 31, 12, 0, 0).unwrap());
    }

    #[test]
    fn the_end_of_a_span_counts_forward_the_same_way() {
        let from = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap();
        let end = Keep::parse("1mo 1d 1h").unwrap().after(from);
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 1, 13, 0, 0).unwrap());
        let end = Keep::parse("7y").unwrap().after(from);
        assert_eq!(end, Utc.with_ymd_and_hms(2033, 1, 31, 12, 0, 0).unwrap());
    }
}
