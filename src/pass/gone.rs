//! What the cloud deleted (issue 17): a report whose stored list answers 404/410, a
//! download that does. Facts, not failures: recorded, told once, and the pass goes on.
//!
//! How far a 404 is trusted, for an operator who must never miss a billing report:
//! - **A report** is gone only when its stored list and its settings (`GET /reports/{id}`,
//!   the one report endpoint whose 404 the spec declares) both answer 404/410 in the same
//!   pass ([`listing_not_found`]). A discovered report that is gone is no longer listed, a
//!   door that does not reopen by itself, so one stray 404 must not close it. A stored list
//!   that answers 404 while the settings still answer fails the report for this pass, and
//!   it is asked again next pass. A configured report of which the ledger holds nothing is
//!   not gone but a failure: a mistyped id in `reports` must not pass silently.
//! - **A download**'s 404/410 is trusted only at the second answer, on a later pass (or
//!   when the listing no longer names the item by then): the first is logged, counted
//!   pending and noted in the ledger. A cloud whose listing and files disagree for a moment
//!   must not cost a billing report for ever; an item really lost costs one more request.

use std::collections::HashSet;

use chrono::Utc;
use tracing::{info, warn};

use crate::api::ApiError;
use crate::api::client::ListedItem;
use crate::ledger::{ItemKey, Ledger, ListedFacts, NotFoundAnswer, NotFoundVerdict, rfc3339};

use super::classify::{ListingNotFound, listing_not_found};
use super::report::VanishedItem;
use super::run::ItemOutcome;
use super::{Download, PassContext, PassError, ReportOutcome};

/// The report's stored list answered 404/410 (`error`). When its settings answer so too,
/// the report is gone: recorded (not in a dry run), noted GONE, and not a failure.
/// `since`: when the ledger first found it gone, if it did.
pub(super) async fn report_not_found(
    ctx: &PassContext,
    report_id: &str,
    error: ApiError,
    since: Option<&str>,
    outcome: &mut ReportOutcome,
) -> Result<(), PassError> {
    let Some((status, message)) = error.not_found().map(|(s, m)| (s, m.to_owned())) else {
        return Err(error.into());
    };
    let settings = ctx.client.report(report_id).await;
    if listing_not_found(settings.as_ref().map(|_| ())) == ListingNotFound::Unconfirmed {
        return Err(PassError::ListingNotFound(error));
    }
    let discovered = ctx.settings.reports.is_empty();
    if !discovered && since.is_none() && !archived_before(ctx, report_id).await? {
        return Err(PassError::UnknownReport(error));
    }
    let first = match ctx.mode.writes() {
        Some(ledger) => {
            let answer = NotFoundAnswer {
                status,
                message: &message,
            };
            ledger
                .mark_report_gone(&ctx.account.name, report_id, answer)
                .await?
        }
        None => since.is_none(),
    };
    let since = since.map_or_else(|| rfc3339(Utc::now()), str::to_owned);
    outcome.gone = true;
    outcome.newly_gone = first;
    outcome.note = Some(format!(
        "GONE since {since}: the cloud answers HTTP {status} for this report (deleted); its archived files are kept"
    ));
    match (first, discovered) {
        (true, true) => warn!(
            report_id,
            status,
            error.message = %message,
            "the cloud deleted this report: recorded as gone and no longer listed; its archived files are kept"
        ),
        (true, false) => warn!(
            report_id,
            status,
            error.message = %message,
            "the cloud deleted this configured report: recorded as gone, asked again each pass and reported GONE; drop it from `reports` once it is not coming back"
        ),
        (false, _) => info!(report_id, since = %since, "configured report is still gone"),
    }
    Ok(())
}

/// Whether the ledger holds anything archived of the report: a configured id that never
/// yielded a file and answers 404 is more likely mistyped than deleted.
async fn archived_before(ctx: &PassContext, report_id: &str) -> Result<bool, PassError> {
    Ok(match ctx.mode.ledger() {
        Some(ledger) => !ledger
            .archived_ids(&ctx.account.name, report_id)
            .await?
            .is_empty(),
        None => false,
    })
}

/// A report recorded as gone answered its stored list: it is not gone any more.
pub(super) async fn listed_again(ctx: &PassContext, report_id: &str) -> Result<(), PassError> {
    if let Some(ledger) = ctx.mode.writes()
        && ledger
            .clear_report_gone(&ctx.account.name, report_id)
            .await?
    {
        info!(
            report_id,
            "a report recorded as gone answers again; no longer gone"
        );
    }
    Ok(())
}

/// The report's items noted with one 404/410 that the listing no longer names: that is
/// the second answer, and they are vanished now (not in a dry run).
pub(super) async fn confirm_unlisted(
    ctx: &PassContext,
    report_id: &str,
    items: &[ListedItem],
    noted: HashSet<String>,
    outcome: &mut ReportOutcome,
) -> Result<(), PassError> {
    let Some(ledger) = ctx.mode.writes() else {
        return Ok(());
    };
    // A listing with an entry that does not parse may name the item there: no conclusion.
    if noted.is_empty() || items.iter().any(Result::is_err) {
        return Ok(());
    }
    let listed: HashSet<&str> = items
        .iter()
        .filter_map(|item| item.as_ref().ok()?.id.as_deref())
        .collect();
    for stored_id in noted.into_iter().filter(|id| !listed.contains(id.as_str())) {
        let key = ItemKey {
            account: &ctx.account.name,
            report_id,
            stored_id: &stored_id,
        };
        if let Some((format, created_at)) = ledger.confirm_vanished(&key).await? {
            warn!(
                report_id,
                stored_id = %stored_id,
                format = %format,
                "the cloud lost this stored item before it was archived: its download answered 404 and it is no longer listed; recorded as vanished"
            );
            outcome.vanished.push(VanishedItem {
                stored_id,
                format,
                created_at,
            });
        }
    }
    Ok(())
}

/// The download of `d` answered 404/410: noted the first time (asked again next pass),
/// vanished the second (told once, never asked again).
pub(super) async fn item_not_found(
    ctx: &PassContext,
    ledger: &Ledger,
    d: &Download,
    (status, message): (u16, &str),
) -> ItemOutcome {
    let key = ItemKey {
        account: &ctx.account.name,
        report_id: &d.report_id,
        stored_id: &d.stored_id,
    };
    let format = d.item.report_format.as_str();
    let created_at = rfc3339(d.item.created_at);
    let listed = ListedFacts {
        report_format: format,
        created_at: &created_at,
        listed_size: d.item.size,
    };
    let answer = NotFoundAnswer { status, message };
    match ledger.record_not_found(&key, listed, answer).await {
        Ok(NotFoundVerdict::FirstAnswer) => {
            warn!(
                status,
                error.message = %message,
                "the download answered not found although the item is listed; asking once more next pass before taking it for lost"
            );
            ItemOutcome::NotFoundOnce
        }
        Ok(NotFoundVerdict::Vanished) => {
            warn!(
                status,
                error.message = %message,
                "the cloud lost this stored item before it was archived: its download answered not found on two passes; recorded as vanished and not asked for again"
            );
            ItemOutcome::Vanished(VanishedItem {
                stored_id: d.stored_id.clone(),
                format: format.to_owned(),
                created_at,
            })
        }
        Err(e) => {
            warn!(error.message = %e, "cannot record the not-found answer in the ledger; the item is tried again next pass");
            ItemOutcome::Failed(e.into())
        }
    }
}
