//! Planning a pass: which reports, and for each its stored list, what the ledger knows of
//! it, each item's [`Disposition`] acted on (counted, logged, recorded), and the downloads
//! that are left.

use std::collections::{HashMap, HashSet};

use tracing::{Instrument, debug, info, warn};

use crate::api::StoredItem;
use crate::api::StoredStatus;
use crate::api::client::ListedItem;
use crate::archive::check_component;
use crate::ledger::ItemKey;

use super::classify::{Disposition, LedgerFacts, Pending, Refusal, Unusable, classify};
use super::fetch::{download_span, record_failure};
use super::gone::{confirm_unlisted, listed_again, report_not_found};
use super::{Download, Known, PassContext, PassError, ReportOutcome};

/// The configured report ids, or every report the client can see.
pub(super) async fn which_reports(ctx: &PassContext) -> Result<Vec<String>, PassError> {
    if !ctx.settings.reports.is_empty() {
        return Ok(ctx.settings.reports.clone());
    }
    let tenant = ctx.client.tenant_id().await.map_err(PassError::Tenant)?;
    ctx.client
        .tenant_reports(&tenant)
        .await
        .map_err(|source| PassError::Reports { tenant, source })
}

/// Why a discovered report has nothing stored: a `send` report mails its results. Asked
/// only for empty lists, so a pass costs one request per report.
async fn explain_empty(ctx: &PassContext, report_id: &str, outcome: &mut ReportOutcome) {
    match ctx.client.report(report_id).await {
        Ok(r) if r.stores_nothing() => {
            info!(
                report_id,
                "report is emailed (result_action = send) and stores nothing"
            );
            outcome.note = Some("result_action is send: nothing is stored".into());
            outcome.stores_nothing = true;
        }
        Ok(_) => {}
        Err(e) => {
            debug!(report_id, error.message = %e, "cannot read the report's settings")
        }
    }
}

/// Lists one report's stored items, acts on each one's disposition, and returns the ones
/// to download. `known`: what the ledger says of the account's items and reports.
pub(super) async fn plan_report(
    ctx: &PassContext,
    report_id: &str,
    known: &Known,
    outcome: &mut ReportOutcome,
) -> Result<Vec<Download>, PassError> {
    check_component("report id", report_id)?;
    let since = known.gone.get(report_id).map(String::as_str);
    let items = match ctx.client.stored_list(report_id).await {
        Ok(items) => items,
        Err(e) if e.not_found().is_some() => {
            report_not_found(ctx, report_id, e, since, outcome).await?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    if since.is_some() {
        listed_again(ctx, report_id).await?;
    }
    if items.is_empty() && ctx.settings.reports.is_empty() {
        explain_empty(ctx, report_id, outcome).await;
    }
    let (facts, noted) = ledger_facts(ctx, report_id, &items, known).await?;
    confirm_unlisted(ctx, report_id, &items, noted, outcome).await?;
    let mut seen = HashSet::new();
    let mut todo = Vec::new();
    for listed in items {
        let disposition = classify(&listed, &facts, &ctx.settings, &mut seen);
        if let Some((stored_id, path)) = disposition.missing() {
            mark_missing(ctx, report_id, stored_id, path).await?;
        }
        outcome.count(&disposition);
        act(ctx, report_id, &listed, &disposition).await?;
        if let (Disposition::Download { stored_id, .. }, Ok(item)) = (disposition, listed) {
            let report_id = report_id.to_owned();
            todo.push(Download {
                report_id,
                stored_id,
                item,
            });
        }
    }
    Ok(todo)
}

/// What the ledger and the archive know of the listed items, and the report's items whose
/// download answered 404/410 once (see `gone.rs`).
async fn ledger_facts(
    ctx: &PassContext,
    report_id: &str,
    items: &[ListedItem],
    known: &Known,
) -> Result<(LedgerFacts, HashSet<String>), PassError> {
    let listed_ids: Vec<&str> = items
        .iter()
        .filter_map(|item| item.as_ref().ok()?.id.as_deref())
        .collect();
    let (archived, (vanished, noted)) = match ctx.mode.ledger() {
        Some(ledger) => {
            ledger
                .listed_items_facts(&ctx.account.name, report_id, &listed_ids)
                .await?
        }
        None => Default::default(),
    };
    // Only the folder is looked at; see `Store::gone`.
    let gone = ctx.store.gone(kept_files(items, &archived)).await;
    let facts = LedgerFacts {
        archived,
        gone,
        deferred: known.deferred.get(report_id).cloned().unwrap_or_default(),
        vanished,
    };
    Ok((facts, noted))
}

/// Logs and records what a disposition asks for, besides its count and its download.
async fn act(
    ctx: &PassContext,
    report_id: &str,
    listed: &ListedItem,
    disposition: &Disposition,
) -> Result<(), PassError> {
    match (disposition, listed) {
        (Disposition::Pending(Pending::Incomplete(e)), _) => {
            debug!(report_id, error.message = %e, "stored item still in progress and incomplete; looking again next pass")
        }
        (Disposition::Pending(Pending::UnknownStatus(s)), _) => {
            warn!(report_id, status = %s, "stored item has a status this version does not know; looking again next pass")
        }
        (Disposition::Failed(Unusable::Malformed(e)), _) => {
            warn!(report_id, error.message = %e, "malformed stored item")
        }
        (Disposition::Failed(Unusable::NoId), Ok(item)) => {
            let format = item.report_format.as_str();
            warn!(
                report_id,
                format, "saved item without an id cannot be downloaded"
            );
        }
        (Disposition::CloudFailed, Ok(item)) => record_cloud_failure(ctx, report_id, item).await?,
        (
            Disposition::Deferred {
                stored_id,
                next_try,
                ..
            },
            _,
        ) => {
            debug!(report_id, stored_id = %stored_id, next_try = %next_try, "item keeps failing; waiting for its next try")
        }
        (Disposition::Refused { stored_id, why, .. }, Ok(item)) => {
            refused(ctx, report_id, stored_id, item, why).await
        }
        (Disposition::Vanished, Ok(item)) => {
            let stored_id = item.id.as_deref().unwrap_or("");
            debug!(
                report_id,
                stored_id, "item the cloud lost (told when found); not asked for again"
            )
        }
        // Excluded, in progress, listed twice, skipped, or to download: the count (or the
        // download) says all there is.
        _ => {}
    }
    Ok(())
}

/// The cloud reports the item failed: recorded once (not in a dry run), never fetched.
async fn record_cloud_failure(
    ctx: &PassContext,
    report_id: &str,
    item: &StoredItem,
) -> Result<(), PassError> {
    let (Some(ledger), Some(id)) = (ctx.mode.writes(), &item.id) else {
        return Ok(());
    };
    let format = item.report_format.as_str();
    let account = &ctx.account.name;
    if ledger
        .record_cloud_failure(account, report_id, id, format, item.created_at)
        .await?
    {
        warn!(report_id, stored_id = %id, format, "the cloud reports this stored item as failed; recorded, not fetched");
    }
    Ok(())
}

/// The kept file of an archived item is gone: it is fetched again, and the ledger says
/// the file went missing (not in a dry run).
async fn mark_missing(
    ctx: &PassContext,
    report_id: &str,
    stored_id: &str,
    path: &str,
) -> Result<(), PassError> {
    warn!(report_id, stored_id = %stored_id, path = %path, "archived file is missing; fetching it again");
    if let Some(ledger) = ctx.mode.writes() {
        let key = ItemKey {
            account: &ctx.account.name,
            report_id,
            stored_id,
        };
        ledger.mark_missing(&key).await?;
    }
    Ok(())
}

/// An item refused before any request. A refused size is a failed try, recorded and
/// told as a failed download is, so an item that keeps being refused waits.
async fn refused(
    ctx: &PassContext,
    report_id: &str,
    stored_id: &str,
    item: &StoredItem,
    why: &Refusal,
) {
    match (why, ctx.mode.writes()) {
        (Refusal::Size(e), Some(ledger)) => {
            let key = ItemKey {
                account: &ctx.account.name,
                report_id,
                stored_id,
            };
            let format = item.report_format.as_str();
            let span = download_span(ctx, report_id, stored_id, format);
            record_failure(ctx, ledger, &key, e).instrument(span).await;
        }
        (Refusal::Size(e), None) => log_refused(report_id, e),
        (Refusal::Unsafe(e), _) => log_refused(report_id, e),
    }
}

fn log_refused(report_id: &str, e: &dyn std::error::Error) {
    warn!(report_id, error.message = %e, "stored item refused");
}

/// The saved items among the listed ones whose file the ledger keeps: stored id → path.
fn kept_files(
    items: &[ListedItem],
    archived: &HashMap<String, Option<String>>,
) -> Vec<(String, String)> {
    items
        .iter()
        .filter_map(|item| item.as_ref().ok())
        .filter(|item| item.status == StoredStatus::Saved)
        .filter_map(|item| {
            let id = item.id.as_ref()?;
            let path = archived.get(id)?.as_ref()?;
            Some((id.clone(), path.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::api::ReportFormat;

    fn listed(id: &str, status: StoredStatus) -> ListedItem {
        Ok(StoredItem {
            id: Some(id.to_owned()),
            report_format: ReportFormat::Csv,
            size: Some(1),
            created_at: Utc::now(),
            status,
        })
    }

    #[test]
    fn only_saved_items_with_a_kept_file_are_checked_on_disk() {
        let items = [
            listed("kept", StoredStatus::Saved),
            listed("object", StoredStatus::Saved),
            listed("new", StoredStatus::Saved),
            listed("waiting", StoredStatus::InProgress),
        ];
        let archived = HashMap::from([
            ("kept".to_owned(), Some("a/kept.csv".to_owned())),
            ("object".to_owned(), None),
            ("waiting".to_owned(), Some("a/waiting.csv".to_owned())),
        ]);
        assert_eq!(
            kept_files(&items, &archived),
            [("kept".to_owned(), "a/kept.csv".to_owned())]
        );
    }
}
