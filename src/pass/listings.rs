//! Which discovered reports a pass lists, and what it remembers of each listing.
//!
//! Integrations such as the vendor's WHMCS module create a `once` report a day and never
//! delete one, so a tenant's report list grows without bound. A one-time report generates
//! once: when every stored item is saved and archived, its list can only shrink. Such a
//! *finished* `once` report is listed again [`RELIST_AFTER`] after its last listing plus a
//! stable per-report offset below [`RELIST_SPREAD`], so the thousands a tenant collects do
//! not all come due in one pass. Every other report (monthly, unfinished, schedule unknown,
//! never listed) is listed every pass.
//!
//! The tenant's report list holds only ids (API §2.1), so the schedule type comes from
//! `GET /reports/{id}`, asked once per report, when a listing first finds it finished (the
//! only case where the answer changes anything), and kept in the ledger: the API cannot
//! change a report's schedule type (a PUT may change only `schedule.enabled`).
//!
//! Configured report ids (`reports = [...]`) are listed every pass: the operator named
//! them, so the list is short, and a named report is one someone watches.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::{debug, info, warn};

use crate::ledger::{Ledger, Listing};

use super::{PassContext, PassError, ReportOutcome};

/// The account's listings as the pass started, by report id.
pub(super) type Listings = HashMap<String, Listing>;

/// A finished one-time report is listed again this long after its last listing (plus its
/// offset): a stored item that vanishes, or a file that goes missing from the archive, is
/// then noticed within a day and a half.
pub const RELIST_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// The per-report offsets spread over this span: with hourly passes, a tenant's finished
/// reports come due about a twelfth at a time instead of all in one pass.
pub const RELIST_SPREAD: chrono::TimeDelta = chrono::TimeDelta::hours(12);

/// The schedule type of a report that generates once.
const ONCE: &str = "once";

/// A stable offset in `[0, RELIST_SPREAD)` for `report_id`: FNV-1a of the id, so it is the
/// same in every pass and every process, and ids that differ by a character land apart.
pub fn relist_offset(report_id: &str) -> chrono::TimeDelta {
    let hash = report_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let spread = RELIST_SPREAD.num_seconds().unsigned_abs().max(1);
    chrono::TimeDelta::seconds(i64::try_from(hash % spread).unwrap_or(0))
}

/// When `report_id` must be listed again; `None`: every pass.
pub fn relist_at(report_id: &str, last: Option<&Listing>) -> Option<DateTime<Utc>> {
    let last = last?;
    (last.finished && last.schedule.as_deref() == Some(ONCE))
        .then(|| last.listed_at + RELIST_AFTER + relist_offset(report_id))
}

/// Whether `report_id` is listed in a pass that starts at `now`.
pub fn is_due(report_id: &str, last: Option<&Listing>, now: DateTime<Utc>) -> bool {
    relist_at(report_id, last).is_none_or(|at| at <= now)
}

/// Whether a listing found the report finished: items listed, every one archived (or not
/// wanted in this format), none waiting, failing, deferred or failed in the cloud.
pub fn is_finished(outcome: &ReportOutcome) -> bool {
    finishes_with(outcome, outcome.fetched)
}

/// [`is_finished`] once `archived` items are archived in this pass (fetched, or, before
/// the downloads, still to download).
fn finishes_with(outcome: &ReportOutcome, archived: u64) -> bool {
    outcome.error.is_none()
        && archived + outcome.skipped > 0
        && outcome.pending + outcome.failed + outcome.deferred + outcome.cloud_failed == 0
}

/// The reports this pass lists, and the listings the ledger had. Only discovered reports
/// rest; a dry run rests the same ones, as it reads the same ledger.
pub(super) async fn due_reports(
    ctx: &PassContext,
    report_ids: Vec<String>,
) -> Result<(Vec<String>, Listings), PassError> {
    let listings = match ctx.mode.ledger() {
        Some(ledger) if ctx.settings.reports.is_empty() => {
            ledger.listings(&ctx.account.name).await?
        }
        _ => Listings::new(),
    };
    let now = Utc::now();
    let total = report_ids.len();
    let due: Vec<String> = report_ids
        .into_iter()
        .filter(|id| is_due(id, listings.get(id), now))
        .collect();
    if due.len() < total {
        info!(
            listed = due.len(),
            resting = total - due.len(),
            "finished one-time reports are listed about daily; the resting ones are not listed this pass"
        );
    }
    Ok((due, listings))
}

/// The schedule type of a discovered report whose listing says it will be finished once
/// its downloads are done, when the ledger does not know it yet: asked right after the
/// listing, beside the downloads, rather than after them (`record_listings` asks only
/// for what this missed). A first pass over a tenant would otherwise end with a request
/// per report.
pub(super) async fn early_schedule(
    ctx: &PassContext,
    known: &Listings,
    outcome: &ReportOutcome,
    downloads: usize,
) -> Option<String> {
    let may_finish = finishes_with(outcome, downloads as u64);
    let unknown = known
        .get(&outcome.report_id)
        .is_none_or(|l| l.schedule.is_none());
    if !ctx.settings.reports.is_empty() || !may_finish || !unknown {
        return None;
    }
    schedule_type(ctx, &outcome.report_id).await
}

/// Records this pass's listings: when, whether finished, and the schedule type of a
/// finished report whose type is not known yet (one `GET /reports/{id}` each, ever; those
/// in `asked` were asked by [`early_schedule`]). A failure is logged, not the pass's: an
/// unrecorded report is listed next pass, as today.
pub(super) async fn record_listings(
    ctx: &PassContext,
    ledger: &Ledger,
    outcomes: &[ReportOutcome],
    known: &Listings,
    asked: HashMap<String, String>,
) {
    // A cancelled pass stops asking the cloud; what it leaves unrecorded is listed next pass.
    if !ctx.settings.reports.is_empty() || ctx.cancel.is_cancelled() {
        return;
    }
    let mut rows: Vec<(String, Option<String>, bool)> = Vec::new();
    let mut ask = Vec::new();
    for o in outcomes.iter().filter(|o| o.error.is_none()) {
        let finished = is_finished(o);
        let schedule = known
            .get(&o.report_id)
            .and_then(|l| l.schedule.clone())
            .or_else(|| asked.get(&o.report_id).cloned());
        if schedule.is_none() && finished {
            ask.push(o.report_id.clone());
        }
        rows.push((o.report_id.clone(), schedule, finished));
    }
    // Owned ids in, owned pairs out: the stream borrows nothing but the context.
    let late: HashMap<String, String> = futures::stream::iter(ask)
        .map(|id| async move {
            let schedule = schedule_type(ctx, &id).await;
            (id, schedule)
        })
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .filter_map(|(id, schedule)| futures::future::ready(schedule.map(|s| (id, s))))
        .collect()
        .await;
    for (id, schedule, _) in &mut rows {
        if schedule.is_none() {
            *schedule = late.get(id).cloned();
        }
    }
    if let Err(e) = ledger.record_listings(&ctx.account.name, &rows).await {
        warn!(error.message = %e, "cannot record the reports' listings; every report is listed next pass");
    }
}

/// `schedule.type` of the report, or `None` (asked again the next time it is finished).
async fn schedule_type(ctx: &PassContext, report_id: &str) -> Option<String> {
    match ctx.client.report(report_id).await {
        Ok(report) => report.schedule.and_then(|s| s.kind),
        Err(e) => {
            debug!(report_id, error.message = %e, "cannot read the report's schedule; listing it every pass for now");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn listing(schedule: Option<&str>, finished: bool, listed_at: DateTime<Utc>) -> Listing {
        Listing {
            schedule: schedule.map(str::to_owned),
            listed_at,
            finished,
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn a_finished_once_report_rests_a_day_plus_its_offset() {
        let last = listing(Some("once"), true, t0());
        let at = t0() + RELIST_AFTER + relist_offset("r1");
        assert_eq!(relist_at("r1", Some(&last)), Some(at));
        assert!(!is_due("r1", Some(&last), t0() + TimeDelta::hours(1)));
        assert!(!is_due("r1", Some(&last), at - TimeDelta::seconds(1)));
        assert!(is_due("r1", Some(&last), at));
        assert!(is_due(
            "r1",
            Some(&last),
            t0() + RELIST_AFTER + RELIST_SPREAD
        ));
    }

    #[test]
    fn every_other_report_is_listed_every_pass() {
        let soon = t0() + TimeDelta::minutes(1);
        assert!(is_due("r", None, soon));
        for last in [
            listing(Some("once"), false, t0()),
            listing(Some("monthly"), true, t0()),
            listing(None, true, t0()),
            listing(Some("weekly"), true, t0()),
        ] {
            assert_eq!(relist_at("r", Some(&last)), None, "{last:?}");
            assert!(is_due("r", Some(&last), soon), "{last:?}");
        }
    }

    #[test]
    fn offsets_are_stable_and_spread_over_the_span() {
        assert_eq!(relist_offset("abc"), relist_offset("abc"));
        let offsets: Vec<TimeDelta> = (0..1000)
            .map(|i| relist_offset(&format!("6f1c2a7e-0000-4000-8000-{i:012}")))
            .collect();
        assert!(
            offsets
                .iter()
                .all(|o| *o >= TimeDelta::zero() && *o < RELIST_SPREAD)
        );
        // Each twelfth of the span holds some, none holds most.
        for hour in 0..12 {
            let n = offsets.iter().filter(|o| o.num_hours() == hour).count();
            assert!((20..200).contains(&n), "hour {hour}: {n}");
        }
    }

    #[test]
    fn finished_means_archived_and_nothing_waiting() {
        let done = ReportOutcome {
            report_id: "r".into(),
            skipped: 3,
            fetched: 1,
            excluded: 2,
            ..ReportOutcome::default()
        };
        assert!(is_finished(&done));
        assert!(
            !is_finished(&ReportOutcome::default()),
            "nothing listed yet"
        );
        for not in [
            ReportOutcome {
                pending: 1,
                ..done.clone()
            },
            ReportOutcome {
                failed: 1,
                ..done.clone()
            },
            ReportOutcome {
                deferred: 1,
                ..done.clone()
            },
            ReportOutcome {
                cloud_failed: 1,
                ..done.clone()
            },
            ReportOutcome {
                error: Some("x".into()),
                ..done.clone()
            },
        ] {
            assert!(!is_finished(&not), "{not:?}");
        }
    }
}
