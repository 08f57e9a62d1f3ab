//! The stages of one pass: the listings, side by side, and (unless dry) the bounded
//! downloads they feed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use futures::channel::mpsc;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::ledger::Ledger;

use super::commit::{Committer, run_commits};
use super::fetch::download_one;
use super::listings::{Listings, due_reports, early_schedule, record_listings};
use super::plan::{plan_report, which_reports};
use super::report::VanishedItem;
use super::{
    Download, ItemError, Known, PassContext, PassError, PassMode, PassReport, PlannedItem,
    ReportOutcome,
};

/// How one planned download ended.
#[derive(Debug)]
pub(super) enum ItemOutcome {
    /// Archived and recorded; `bytes` on the wire.
    Archived { bytes: u64 },
    /// Not started: the pass was cancelled first. Left for the next pass.
    Cancelled,
    /// Logged and recorded as a failed try already; the pass only counts it, so the error
    /// stays typed for whatever reports items one by one rather than being read here.
    Failed(
        #[expect(dead_code, reason = "counted, not read: it was logged and recorded")] ItemError,
    ),
    /// The download answered 404/410 for the first time: noted, and asked once more next
    /// pass before the item is taken for lost (see `gone.rs`). Counted pending.
    NotFoundOnce,
    /// The download answered 404/410 again: the cloud lost the item before it was
    /// archived. Recorded and told once.
    Vanished(VanishedItem),
}

/// A pass without its own start and finish in the ledger. The context's mode decides, here
/// and only here, whether the listings feed downloads or a plan.
pub(super) async fn run_pass_inner(ctx: &PassContext) -> PassReport {
    let (report_ids, known, listings) = match prepare(ctx).await {
        Ok(ready) => ready,
        Err(e) => return PassReport::account_failed(&ctx.account.name, e),
    };
    let mut report = PassReport {
        account: ctx.account.name.clone(),
        ..PassReport::default()
    };
    match &ctx.mode {
        PassMode::DryRun { .. } => {
            let (outcomes, planned) = plan_only(ctx, report_ids, &known).await;
            report.planned = planned;
            report.add_reports(outcomes, Vec::new());
        }
        PassMode::Archive { ledger } => {
            let (outcomes, downloads, asked) =
                archive(ctx, ledger, report_ids, &known, &listings).await;
            report.add_reports(outcomes, downloads);
            record_listings(ctx, ledger, &report.reports, &listings, asked).await;
        }
    }
    // Configured ids are the operator's choice; only what discovery finds is judged.
    if ctx.settings.reports.is_empty() {
        report.check_archives_something();
    }
    report
}

/// The token, the reports to list (neither deleted nor resting), the items that wait for
/// their next try, the reports the cloud deleted, and the reports' last listings.
async fn prepare(ctx: &PassContext) -> Result<(Vec<String>, Known, Listings), PassError> {
    ctx.client.authenticate().await?;
    let mut report_ids = which_reports(ctx).await?;
    let known = match ctx.mode.ledger() {
        Some(ledger) => Known {
            deferred: ledger.deferred_items(&ctx.account.name).await?,
            gone: ledger.gone_reports(&ctx.account.name).await?,
        },
        None => Known::default(),
    };
    // A discovered report the cloud deleted is not listed again: the tenant's list may go
    // on naming it for ever. A configured one is: the operator asked for it by name, and
    // it is reported GONE each pass until the config drops it or it answers again.
    if ctx.settings.reports.is_empty() {
        let before = report_ids.len();
        report_ids.retain(|id| !known.gone.contains_key(id));
        let skipped = before - report_ids.len();
        if skipped > 0 {
            debug!(skipped, "reports recorded as gone are not listed");
        }
    }
    let (report_ids, listings) = due_reports(ctx, report_ids).await?;
    Ok((report_ids, known, listings))
}

/// What a listing does with its report's downloads.
enum Downloads<'a> {
    /// Hands them back with the report's outcome (a dry run's plan).
    Return,
    /// Starts them at once, and only then asks the report's schedule type where the ledger
    /// needs it ([`early_schedule`]): a first pass's downloads would otherwise wait one
    /// more round trip per report.
    Start {
        schedules: &'a Listings,
        start: &'a (dyn Fn(Vec<Download>) + Sync),
    },
}

/// Lists the reports, `concurrency` at once, and hands each report's outcome to `listed`
/// as soon as its listing is in; its downloads go where `downloads` says.
async fn list_reports(
    ctx: &PassContext,
    report_ids: Vec<String>,
    known: &Known,
    downloads: Downloads<'_>,
    mut listed: impl FnMut(ReportOutcome, Vec<Download>, Option<String>),
) {
    let downloads = &downloads;
    futures::stream::iter(report_ids)
        .map(|report_id| async move {
            let mut outcome = ReportOutcome::new(&report_id);
            let todo = match plan_report(ctx, &report_id, known, &mut outcome).await {
                Ok(todo) => todo,
                Err(e) => {
                    warn!(report_id = %report_id, error.message = %e, "report failed");
                    outcome.fail(e);
                    Vec::new()
                }
            };
            match downloads {
                Downloads::Return => (outcome, todo, None),
                Downloads::Start { schedules, start } => {
                    let count = todo.len();
                    start(todo);
                    let schedule = early_schedule(ctx, schedules, &outcome, count).await;
                    (outcome, Vec::new(), schedule)
                }
            }
        })
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .for_each(|(outcome, todo, schedule)| {
            listed(outcome, todo, schedule);
            futures::future::ready(())
        })
        .await;
}

/// A dry run: the listings alone; what they would download becomes the plan.
async fn plan_only(
    ctx: &PassContext,
    report_ids: Vec<String>,
    known: &Known,
) -> (BTreeMap<String, ReportOutcome>, Vec<PlannedItem>) {
    let mut outcomes = BTreeMap::new();
    let mut planned = Vec::new();
    list_reports(
        ctx,
        report_ids,
        known,
        Downloads::Return,
        |outcome, todo, _| {
            outcomes.insert(outcome.report_id.clone(), outcome);
            planned.extend(todo.into_iter().map(|d| PlannedItem {
                size: d.item.size.and_then(|s| u64::try_from(s).ok()),
                format: d.item.report_format.as_str().to_owned(),
                report_id: d.report_id,
                stored_id: d.stored_id,
            }));
        },
    )
    .await;
    (outcomes, planned)
}

/// Lists and downloads: each report's downloads start as soon as its listing is in.
async fn archive(
    ctx: &PassContext,
    ledger: &Ledger,
    report_ids: Vec<String>,
    known: &Known,
    listings: &Listings,
) -> (
    BTreeMap<String, ReportOutcome>,
    Vec<(String, ItemOutcome)>,
    HashMap<String, String>,
) {
    // The listings and the downloads run as separate futures joined by an unbounded
    // channel: were they one chained stream, a listing waiting on the ledger's connection
    // would not be polled while the downloads are at capacity, and the downloads would
    // wait on that same connection for ever. Unbounded, so a listing never waits on the
    // downloads; what it holds is bounded by the listings themselves.
    let (todo_tx, todo_rx) = mpsc::unbounded::<Download>();
    let listing = async move {
        let start = |todo: Vec<Download>| {
            let bytes = todo.iter().map(Download::planned_bytes).sum();
            ctx.observer.work_planned(todo.len() as u64, bytes);
            for d in todo {
                // The receiver lives until this stage ends; a failed send cannot happen.
                let _ = todo_tx.unbounded_send(d);
            }
        };
        let downloads = Downloads::Start {
            schedules: listings,
            start: &start,
        };
        let mut outcomes = BTreeMap::new();
        let mut asked = HashMap::new();
        list_reports(ctx, report_ids, known, downloads, |outcome, _, schedule| {
            if let Some(schedule) = schedule {
                asked.insert(outcome.report_id.clone(), schedule);
            }
            outcomes.insert(outcome.report_id.clone(), outcome);
        })
        .await;
        // Ends the downloads' stream once they have drained it.
        drop(todo_tx);
        (outcomes, asked)
    };
    let (committer, commits) = Committer::new();
    let downloading = async move {
        // Moved in, so that the commit stage ends once the downloads have.
        let committer = committer;
        download_all(ctx, ledger, todo_rx, &committer).await
    };
    let ((outcomes, asked), downloads, ()) =
        futures::join!(listing, downloading, run_commits(ctx, ledger, commits));
    (outcomes, downloads, asked)
}

/// Downloads what the listings send until they are done and it is drained.
async fn download_all(
    ctx: &PassContext,
    ledger: &Ledger,
    todo: mpsc::UnboundedReceiver<Download>,
    committer: &Committer,
) -> Vec<(String, ItemOutcome)> {
    // `concurrency` bounds the downloads on the wire. An item gives its slot back once
    // its body is in, so that the next request goes out while this one is fsynced and
    // kept. Into a folder up to three times as many wait for their batch (`commit.rs`),
    // so that the downloads go on while a batch is being committed; to a bucket each
    // uploads on its own, which holds memory (parts in flight), so only as many again.
    let concurrency = ctx.settings.concurrency.max(1);
    let in_flight = if ctx.store.publishes_in_batches() {
        concurrency * 4
    } else {
        concurrency * 2
    };
    let slots = Arc::new(Semaphore::new(concurrency));
    let slots = &slots;
    todo.map(|d| async move {
        // An item not started when the pass is cancelled is left for the next pass.
        let outcome = if ctx.cancel.is_cancelled() {
            ItemOutcome::Cancelled
        } else {
            download_one(ctx, ledger, &d, slots, committer).await
        };
        ctx.observer.item_done(d.planned_bytes());
        (d.report_id, outcome)
    })
    .buffer_unordered(in_flight)
    .collect()
    .await
}
