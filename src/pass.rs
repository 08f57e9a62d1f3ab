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
use crate::health::Health;
use crate::ledger::{ArchivedRow, ItemKey, Ledger, LedgerError, PassTotals, rfc3339};
use crate::progress::Progress;

/// Everything a pass needs, shared by the passes of one account.
#[derive(Clone)]
pub struct PassContext {
    pub account: Account,
    pub client: Arc<CloudClient>,
    /// `None` only in a dry run on a machine without a ledger yet.
    pub ledger: Option<Ledger>,
    pub archive: Arc<Archive>,
    pub cancel: CancellationToken,
    pub dry_run: bool,
    /// `[archive] max_file_size`.
    pub max_file_size: u64,
    /// `[http] failure_backoff`.
    pub failure_backoff: Duration,
    /// The live progress bar of `once` on a terminal; hidden otherwise.
    pub progress: Arc<Progress>,
    /// Told of every archived item, so `/healthz` sees a long pass making progress.
    pub health: Option<Arc<Health>>,
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
    let span = info_span!("pass", account = %ctx.account.name, dry_run = ctx.dry_run);
    async {
        let started = Instant::now();
        let pass_id = match (&ctx.ledger, ctx.dry_run) {
            (Some(ledger), false) => match ledger.start_pass(&ctx.account.name).await {
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
        if let (Some(ledger), Some(id)) = (&ctx.ledger, pass_id)
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
    let deferred = match &ctx.ledger {
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
    let concurrency = ctx.account.concurrency.max(1);
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
                if !ctx.dry_run {
                    ctx.progress
                        .add_work(todo.len() as u64, todo.iter().map(planned_bytes).sum());
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
    if ctx.dry_run {
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
                    ctx.progress.item_done(planned_bytes(&d));
                    return (d.report_id, Err(CANCELLED.to_owned()));
                }
                let result = download_one(ctx, &d, slots).await;
                ctx.progress.item_done(planned_bytes(&d));
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

/// The configured report ids, or every report the client can see.
async fn which_reports(ctx: &PassContext) -> Result<Vec<String>, String> {
    if !ctx.account.reports.is_empty() {
        return Ok(ctx.account.reports.clone());
    }
    let tenant = ctx
        .client
        .tenant_id()
        .await
        .map_err(|e| format!("cannot find the API client's tenant: {e}"))?;
    ctx.client
        .tenant_reports(&tenant)
        .await
        .map_err(|e| format!("cannot list the reports of tenant {tenant}: {e}"))
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
        }
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(report_id, error.message = %e, "cannot read the report's settings")
        }
    }
}

/// Lists one report's stored items and returns the ones to download.
async fn plan_report(
    ctx: &PassContext,
    report_id: &str,
    deferred: &HashMap<String, HashMap<String, String>>,
    outcome: &mut ReportOutcome,
) -> Result<Vec<Download>, String> {
    check_component("report id", report_id).map_err(|e| e.to_string())?;
    let items = ctx
        .client
        .stored_list(report_id)
        .await
        .map_err(|e| e.to_string())?;
    if items.is_empty() && ctx.account.reports.is_empty() {
        explain_empty(ctx, report_id, outcome).await;
    }
    let listed_ids: Vec<&str> = items
        .iter()
        .filter_map(|item| item.as_ref().ok()?.id.as_deref())
        .collect();
    let archived = match &ctx.ledger {
        Some(ledger) => ledger
            .archived_paths(&ctx.account.name, report_id, &listed_ids)
            .await
            .map_err(|e| e.to_string())?,
        None => HashMap::new(),
    };
    let no_deferred = HashMap::new();
    let deferred = deferred.get(report_id).unwrap_or(&no_deferred);
    let gone = files_gone(ctx, &items, &archived).await;
    let mut seen = HashSet::new();
    let mut todo = Vec::new();
    for item in items {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                warn!(report_id, error.message = %e, "malformed stored item");
                outcome.failed += 1;
                continue;
            }
        };
        let format = item.report_format.as_str();
        if !ctx.account.formats.is_empty() && !ctx.account.formats.iter().any(|f| f == format) {
            outcome.excluded += 1;
            continue;
        }
        match &item.status {
            StoredStatus::Saved => {}
            StoredStatus::InProgress => {
                outcome.pending += 1;
                continue;
            }
            StoredStatus::Failed => {
                outcome.cloud_failed += 1;
                if let (Some(ledger), Some(id), false) = (&ctx.ledger, &item.id, ctx.dry_run) {
                    match ledger
                        .record_cloud_failure(
                            &ctx.account.name,
                            report_id,
                            id,
                            format,
                            item.created_at,
                        )
                        .await
                    {
                        Ok(true) => {
                            warn!(report_id, stored_id = %id, format, "the cloud reports this stored item as failed; recorded, not fetched")
                        }
                        Ok(false) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                continue;
            }
            StoredStatus::Other(s) => {
                warn!(report_id, status = %s, "stored item has a status this version does not know; looking again next pass");
                outcome.pending += 1;
                continue;
            }
        }
        let Some(stored_id) = item.id.clone() else {
            warn!(
                report_id,
                format, "saved item without an id cannot be downloaded"
            );
            outcome.failed += 1;
            continue;
        };
        if !seen.insert(stored_id.clone()) {
            continue;
        }
        if archived.contains_key(&stored_id) {
            let Some(path) = gone.get(&stored_id) else {
                outcome.skipped += 1;
                continue;
            };
            warn!(report_id, stored_id = %stored_id, path = %path, "archived file is missing; fetching it again");
            if let (Some(ledger), false) = (&ctx.ledger, ctx.dry_run) {
                let key = ItemKey {
                    account: &ctx.account.name,
                    report_id,
                    stored_id: &stored_id,
                };
                ledger.mark_missing(&key).await.map_err(|e| e.to_string())?;
            }
        }
        if let Some(next_try) = deferred.get(&stored_id) {
            tracing::debug!(report_id, stored_id = %stored_id, next_try = %next_try, "item keeps failing; waiting for its next try");
            outcome.deferred += 1;
            continue;
        }
        if let Err(e) = check_component("stored id", &stored_id)
            .and_then(|()| check_component("report format", format))
        {
            warn!(report_id, error.message = %e, "stored item refused");
            outcome.failed += 1;
            continue;
        }
        todo.push(Download {
            report_id: report_id.to_owned(),
            stored_id,
            item,
        });
    }
    Ok(todo)
}

/// The kept files, among the items the cloud lists, that are no longer in the archive
/// (stored id → relative path). Checking only what the cloud still lists keeps a pass's cost
/// independent of the ledger's size, and these are the only missing files a pass can
/// restore; `verify` and the service's start-up reconciliation look at all of them.
async fn files_gone(
    ctx: &PassContext,
    items: &[crate::api::client::ListedItem],
    archived: &HashMap<String, Option<String>>,
) -> HashMap<String, String> {
    let kept: Vec<(String, String)> = items
        .iter()
        .filter_map(|item| item.as_ref().ok())
        .filter(|item| item.status == StoredStatus::Saved)
        .filter_map(|item| {
            let id = item.id.as_ref()?;
            let path = archived.get(id)?.as_ref()?;
            Some((id.clone(), path.clone()))
        })
        .collect();
    // On the S3 target the files are objects, not files under the root; checking that they
    // are still there is `verify`'s job, not a pass's.
    if kept.is_empty() || ctx.archive.objects().is_some() {
        return HashMap::new();
    }
    let archive = Arc::clone(&ctx.archive);
    let check = tokio::task::spawn_blocking(move || {
        kept.into_iter()
            .filter(|(_, path)| {
                // Only a definite "not found" counts: an unreadable folder is not a reason to
                // download the item again.
                archive.resolve(path).is_ok_and(|p| {
                    matches!(p.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
                })
            })
            .collect::<HashMap<String, String>>()
    });
    check.await.unwrap_or_default()
}

/// Downloads, archives and records one item; returns the wire bytes.
async fn download_one(
    ctx: &PassContext,
    d: &Download,
    slots: &Arc<Semaphore>,
) -> Result<u64, String> {
    let span = info_span!("download", account = %ctx.account.name, report_id = %d.report_id, stored_id = %d.stored_id, format = %d.item.report_format.as_str());
    async {
        let started = Instant::now();
        let policy = ctx.client.retry_policy();
        let result = policy
            .run(&d.stored_id, || fetch_and_record(ctx, d, Some(slots)))
            .await;
        match result {
            Ok(row) => {
                if let Some(health) = &ctx.health {
                    health.item_archived(&ctx.account.name);
                }
                info!(
                    bytes = row.wire_bytes,
                    stored_bytes = row.stored_bytes,
                    path = %row.path,
                    seconds = started.elapsed().as_secs_f64(),
                    "archived"
                );
                Ok(row.wire_bytes as u64)
            }
            Err(e) => {
                let message = e.to_string();
                let key = ItemKey {
                    account: &ctx.account.name,
                    report_id: &d.report_id,
                    stored_id: &d.stored_id,
                };
                let attempts = match &ctx.ledger {
                    Some(ledger) => ledger
                        .record_item_failure(&key, &message, ctx.failure_backoff)
                        .await
                        .unwrap_or_else(|le| {
                            warn!(error.message = %le, "cannot record the failure in the ledger");
                            0
                        }),
                    None => 0,
                };
                warn!(error.message = %message, attempts, "download failed; left for a later pass");
                Err(message)
            }
        }
    }
    .instrument(span)
    .await
}

/// Fetches one stored item again, archives and records it exactly as a pass does, with
/// the same retries (`verify --repair`); returns the new ledger row.
pub async fn refetch(
    ctx: &PassContext,
    report_id: &str,
    item: StoredItem,
) -> Result<ArchivedRow, String> {
    check_component("report id", report_id).map_err(|e| e.to_string())?;
    let stored_id = item
        .id
        .clone()
        .ok_or_else(|| "the stored item has no id".to_owned())?;
    check_component("stored id", &stored_id).map_err(|e| e.to_string())?;
    let d = Download {
        report_id: report_id.to_owned(),
        stored_id,
        item,
    };
    let policy = ctx.client.retry_policy();
    policy
        .run(&d.stored_id, || fetch_and_record(ctx, &d, None))
        .await
        .map_err(|e| e.to_string())
}

/// Why one item could not be archived in one attempt.
#[derive(Debug, thiserror::Error)]
enum ItemError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Refused(String),
}

impl Transient for ItemError {
    fn verdict(&self) -> Verdict {
        match self {
            // The client already retried the request itself; only a body that broke in
            // transit is worth downloading again.
            Self::Archive(e) => e.verdict(),
            Self::Api(_) | Self::Ledger(_) | Self::Refused(_) => Verdict::GiveUp,
        }
    }
}

/// With `slots`, holds one of them from the request until the body has been read.
async fn fetch_and_record(
    ctx: &PassContext,
    d: &Download,
    slots: Option<&Arc<Semaphore>>,
) -> Result<ArchivedRow, ItemError> {
    let listed_size = match d.item.size {
        Some(s) if s < 0 => {
            return Err(ItemError::Refused(format!(
                "the listing gives a negative size ({s}); refused"
            )));
        }
        Some(s) if s as u64 > ctx.max_file_size => {
            return Err(ItemError::Refused(format!(
                "the listing gives {s} bytes, more than max_file_size ({}); refused",
                ctx.max_file_size
            )));
        }
        Some(s) => Some(s as u64),
        None => None,
    };
    let slot = match slots {
        // The semaphore is never closed; were it, the download would simply go unbounded.
        Some(slots) => Arc::clone(slots).acquire_owned().await.ok(),
        None => None,
    };
    let response = ctx.client.download(&d.report_id, &d.stored_id).await?;
    let gzip_header = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let info = BodyInfo {
        gzip_header,
        content_length: response.content_length(),
        listed_size,
        max_bytes: Some(ctx.max_file_size),
    };
    let target = ArchiveTarget {
        account: &ctx.account.name,
        report_id: &d.report_id,
        stored_id: &d.stored_id,
        format: &d.item.report_format,
        created_at: d.item.created_at,
    };
    let file = ctx
        .archive
        .store(
            &target,
            info,
            // The slot goes back when the archive drops the body, right after its end.
            response.bytes_stream().map(move |chunk| {
                let _slot = &slot;
                chunk
            }),
        )
        .await?;
    let row = ArchivedRow {
        account: ctx.account.name.clone(),
        report_id: d.report_id.clone(),
        stored_id: d.stored_id.clone(),
        report_format: d.item.report_format.as_str().to_owned(),
        created_at: rfc3339(d.item.created_at),
        listed_size: d.item.size,
        wire_bytes: file.wire_bytes as i64,
        stored_bytes: file.stored_bytes as i64,
        sha256: file.sha256,
        compressed: file.compressed,
        path: file.relative_path,
        fetched_at: rfc3339(Utc::now()),
    };
    if let Some(ledger) = &ctx.ledger {
        let object = file.object.map(|o| o.object);
        ledger.record_with_object(&row, object.as_ref()).await?;
    }
    Ok(row)
}
