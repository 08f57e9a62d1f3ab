//! One account's pass: which reports, their stored lists, what is new, bounded downloads,
//! and the [`PassReport`] that says what happened.
//!
//! One failure never stops the rest (invariant 5): a report whose list fails is reported
//! and the others go on; an item whose download fails is reported and the others go on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::api::retry::{Transient, Verdict};
use crate::api::{ApiError, CloudClient, StoredItem, StoredStatus};
use crate::archive::{Archive, ArchiveError, ArchiveTarget, BodyInfo, check_component};
use crate::config::Account;
use crate::ledger::{ArchivedRow, ItemKey, Ledger, LedgerError, PassTotals, rfc3339};

/// Everything a pass needs, shared by the passes of one account.
#[derive(Clone)]
pub struct PassContext {
    pub account: Account,
    pub client: Arc<CloudClient>,
    pub archive: Arc<Archive>,
    pub cancel: CancellationToken,
    /// Whether the pass writes, decided once here.
    pub mode: PassMode,
    pub settings: PassSettings,
    /// Told of the pass's progress while it runs (the progress bar, `/healthz`).
    pub observer: Arc<dyn PassObserver>,
}

/// Whether a pass writes, and the ledger it reads and writes.
#[derive(Clone)]
pub enum PassMode {
    /// Lists what would be fetched; touches neither the archive nor the ledger. The
    /// ledger, opened read-only, is `None` on a machine without one yet.
    DryRun { ledger: Option<Ledger> },
    /// Downloads, archives and records.
    Archive { ledger: Ledger },
}

impl PassMode {
    /// The ledger that tells what is archived already, if any.
    fn ledger(&self) -> Option<&Ledger> {
        match self {
            Self::DryRun { ledger } => ledger.as_ref(),
            Self::Archive { ledger } => Some(ledger),
        }
    }

    /// The ledger to record in: none in a dry run.
    fn writes(&self) -> Option<&Ledger> {
        match self {
            Self::DryRun { .. } => None,
            Self::Archive { ledger } => Some(ledger),
        }
    }
}

/// What a pass takes from the configuration.
#[derive(Debug, Clone)]
pub struct PassSettings {
    /// The account's `reports`; empty: every report its client can see.
    pub reports: Vec<String>,
    /// The account's `formats`; empty: every format.
    pub formats: Vec<String>,
    /// The account's `concurrency`: downloads on the wire at once.
    pub concurrency: usize,
    /// `[archive] max_file_size`.
    pub max_file_size: u64,
    /// `[http] failure_backoff`.
    pub failure_backoff: Duration,
}

/// What one report's part of a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportOutcome {
    pub report_id: String,
    /// Items archived in this pass.
    pub fetched: u64,
    /// Items already in the ledger.
    pub skipped: u64,
    /// Items not ready yet (`in_progress`, unknown status, or left by a shutdown).
    pub pending: u64,
    /// Items whose download or handling failed in this pass.
    pub failed: u64,
    /// Items the cloud itself reports as failed (recorded, never fetched).
    pub cloud_failed: u64,
    /// Items in formats the configuration does not want.
    pub excluded: u64,
    /// Items that failed several passes in a row and wait for their next try.
    pub deferred: u64,
    /// Wire bytes downloaded.
    pub bytes: u64,
    /// Why the report as a whole failed (its list could not be read).
    pub error: Option<String>,
    /// Something worth telling that is not a failure (e.g. a `send` report).
    pub note: Option<String>,
}

/// An item a dry run would fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    pub report_id: String,
    pub stored_id: String,
    pub format: String,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub account: String,
    pub reports: Vec<ReportOutcome>,
    /// Why the account as a whole failed (token, discovery).
    pub error: Option<String>,
    pub planned: Vec<PlannedItem>,
    pub cancelled: bool,
    pub seconds: f64,
}

impl PassReport {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self
                .reports
                .iter()
                .all(|r| r.error.is_none() && r.failed == 0 && r.deferred == 0)
    }

    fn sum(&self, f: impl Fn(&ReportOutcome) -> u64) -> u64 {
        self.reports.iter().map(f).sum()
    }

    pub fn fetched(&self) -> u64 {
        self.sum(|r| r.fetched)
    }
    pub fn skipped(&self) -> u64 {
        self.sum(|r| r.skipped)
    }
    pub fn pending(&self) -> u64 {
        self.sum(|r| r.pending)
    }
    pub fn failed(&self) -> u64 {
        self.sum(|r| r.failed)
    }
    pub fn deferred(&self) -> u64 {
        self.sum(|r| r.deferred)
    }
    pub fn cloud_failed(&self) -> u64 {
        self.sum(|r| r.cloud_failed)
    }
    pub fn bytes(&self) -> u64 {
        self.sum(|r| r.bytes)
    }

    fn totals(&self) -> PassTotals {
        let failed_reports = self.reports.iter().filter(|r| r.error.is_some()).count();
        let error = self
            .error
            .clone()
            .or_else(|| (failed_reports > 0).then(|| format!("{failed_reports} report(s) failed")));
        PassTotals {
            reports: self.reports.len() as i64,
            fetched: self.fetched() as i64,
            skipped: self.skipped() as i64,
            pending: self.pending() as i64,
            failed: (self.failed() + self.deferred()) as i64,
            cloud_failed: self.cloud_failed() as i64,
            bytes: self.bytes() as i64,
            outcome: if self.cancelled {
                "cancelled"
            } else if self.succeeded() {
                "ok"
            } else {
                "failed"
            },
            error,
        }
    }
}

/// A saved item that is not in the ledger yet.
struct Download {
    report_id: String,
    stored_id: String,
    item: StoredItem,
}

/// Runs one pass and records it in the ledger (unless dry).
pub async fn run_pass(ctx: &PassContext) -> PassReport {
    let span =
        info_span!("pass", account = %ctx.account.name, dry_run = ctx.mode.writes().is_none());
    async {
        let started = Instant::now();
        let pass_id = match ctx.mode.writes() {
            Some(ledger) => match ledger.start_pass(&ctx.account.name).await {
                Ok(id) => Some(id),
                Err(e) => {
                    return PassReport {
                        account: ctx.account.name.clone(),
                        error: Some(e.to_string()),
                        ..PassReport::default()
                    };
                }
            },
            _ => None,
        };
        let mut report = run_pass_inner(ctx).await;
        report.seconds = started.elapsed().as_secs_f64();
        if let (Some(ledger), Some(id)) = (ctx.mode.writes(), pass_id)
            && let Err(e) = ledger.finish_pass(id, &report.totals()).await
        {
            report.error.get_or_insert(e.to_string());
        }
        log_pass(&report);
        report
    }
    .instrument(span)
    .await
}

fn log_pass(report: &PassReport) {
    let fields = (
        report.fetched(),
        report.skipped(),
        report.pending(),
        report.failed(),
        report.cloud_failed(),
        report.bytes(),
    );
    if let Some(e) = &report.error {
        warn!(error.message = %e, seconds = report.seconds, "pass failed");
    } else if report.succeeded() {
        info!(
            fetched = fields.0,
            skipped = fields.1,
            pending = fields.2,
            cloud_failed = fields.4,
            bytes = fields.5,
            seconds = report.seconds,
            "pass finished"
        );
    } else {
        warn!(
            fetched = fields.0,
            skipped = fields.1,
            pending = fields.2,
            failed = fields.3,
            cloud_failed = fields.4,
            bytes = fields.5,
            seconds = report.seconds,
            "pass finished with failures"
        );
    }
}

async fn run_pass_inner(ctx: &PassContext) -> PassReport {
    let mut report = PassReport {
        account: ctx.account.name.clone(),
        ..PassReport::default()
    };
    if let Err(e) = ctx.client.authenticate().await {
        report.error = Some(e.to_string());
        return report;
    }
    let report_ids = match which_reports(ctx).await {
        Ok(ids) => ids,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let deferred = match ctx.mode.ledger() {
        Some(ledger) => match ledger.deferred_items(&ctx.account.name).await {
            Ok(d) => d,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        },
        None => HashMap::new(),
    };
    let deferred = &deferred;

    // Listings go out side by side, and each report's downloads start as soon as its
    // listing is in. The two stages run as separate futures joined by an unbounded
    // channel: were they one chained stream, a listing waiting on the ledger's connection
    // would not be polled while the downloads are at capacity, and the downloads would
    // wait on that same connection for ever.
    let concurrency = ctx.settings.concurrency.max(1);
    let outcomes: std::sync::Mutex<BTreeMap<String, ReportOutcome>> = Default::default();
    let (todo_tx, todo_rx) = futures::channel::mpsc::unbounded::<Download>();
    let outcomes_ref = &outcomes;
    let listing = async move {
        futures::stream::iter(report_ids)
            .map(|report_id| async move {
                let mut outcome = ReportOutcome {
                    report_id: report_id.clone(),
                    ..ReportOutcome::default()
                };
                match plan_report(ctx, &report_id, deferred, &mut outcome).await {
                    Ok(todo) => (outcome, todo),
                    Err(e) => {
                        warn!(report_id = %report_id, error.message = %e, "report failed");
                        outcome.error = Some(e);
                        (outcome, Vec::new())
                    }
                }
            })
            .buffer_unordered(concurrency)
            .for_each(|(outcome, todo)| {
                lock(outcomes_ref).insert(outcome.report_id.clone(), outcome);
                if ctx.mode.writes().is_some() {
                    ctx.observer
                        .work_planned(todo.len() as u64, todo.iter().map(planned_bytes).sum());
                }
                for d in todo {
                    // The receiver lives until this stage ends; a failed send cannot happen.
                    let _ = todo_tx.unbounded_send(d);
                }
                futures::future::ready(())
            })
            .await;
        drop(todo_tx);
    };
    if ctx.mode.writes().is_none() {
        let ((), downloads) = futures::join!(listing, todo_rx.collect::<Vec<Download>>());
        for d in &downloads {
            report.planned.push(PlannedItem {
                report_id: d.report_id.clone(),
                stored_id: d.stored_id.clone(),
                format: d.item.report_format.as_str().to_owned(),
                size: d.item.size.and_then(|s| u64::try_from(s).ok()),
            });
        }
    } else {
        // `concurrency` bounds the downloads on the wire. An item gives its slot back once
        // its body is in, so that the next request goes out while this one is fsynced,
        // renamed and recorded; up to as many again may be at that stage.
        let slots = Arc::new(Semaphore::new(concurrency));
        let slots = &slots;
        let downloading = todo_rx
            .map(|d| async move {
                if ctx.cancel.is_cancelled() {
                    ctx.observer.item_done(planned_bytes(&d));
                    return (d.report_id, Err(CANCELLED.to_owned()));
                }
                let result = download_one(ctx, &d, slots).await;
                ctx.observer.item_done(planned_bytes(&d));
                (d.report_id, result)
            })
            .buffer_unordered(concurrency * 2)
            .collect::<Vec<(String, Result<u64, String>)>>();
        let ((), results) = futures::join!(listing, downloading);
        let mut outcomes = lock(&outcomes);
        for (report_id, result) in results {
            let Some(outcome) = outcomes.get_mut(&report_id) else {
                continue;
            };
            match result {
                Ok(bytes) => {
                    outcome.fetched += 1;
                    outcome.bytes += bytes;
                }
                Err(e) if e == CANCELLED => {
                    outcome.pending += 1;
                    report.cancelled = true;
                }
                Err(_) => outcome.failed += 1,
            }
        }
    }
    let outcomes = std::mem::take(&mut *lock(&outcomes));
    report.reports.extend(outcomes.into_values());
    report
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The listing's size: what the progress bar counts for an item, done or not.
fn planned_bytes(d: &Download) -> u64 {
    d.item.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0)
}

const CANCELLED: &str = "shutting down; left for the next pass";

mod fetch;
mod observe;
mod plan;

pub use observe::{Observers, PassObserver};

use fetch::download_one;
pub use fetch::refetch;
use plan::{plan_report, which_reports};
