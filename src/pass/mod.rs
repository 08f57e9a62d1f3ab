//! One account's pass: which reports, their stored lists, what is new, bounded downloads,
//! and the [`PassReport`] that says what happened.
//!
//! One failure never stops the rest (invariant 5): a report whose list fails is reported
//! and the others go on; an item whose download fails is reported and the others go on.
//!
//! - [`classify`]: what to do with one listed item, decided from plain data.
//! - [`listings`]: which reports a pass lists (a finished one-time report about daily).
//! - `plan`: lists a report, gathers what the ledger knows, acts on each item's decision.
//! - `run`: the listing and download stages of a pass, dry or archiving.
//! - `fetch`: one download, archived and recorded; [`refetch`] for `verify --repair`.
//! - `gone`: what the cloud deleted (a report's list or a download answering 404/410),
//!   recorded and told once instead of failing every pass.
//! - [`PassObserver`]: what the pass tells the progress bar and the health state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use crate::api::{CloudClient, StoredItem};
use crate::config::Account;
use crate::ledger::Ledger;
use crate::store::Store;

pub mod classify;
mod commit;
mod error;
mod fetch;
mod gone;
pub mod listings;
mod observe;
mod plan;
mod report;
mod run;

pub use error::{ItemError, PassError};
pub use fetch::refetch;
pub use observe::{Observers, PassObserver};
pub use report::{PassReport, PlannedItem, ReportOutcome, VanishedItem};

/// The name of the one INFO event per archived file. Logging tells it apart by this name:
/// on a terminal, where thousands of them would bury the progress bar, it shows only at
/// debug verbosity (`telemetry`); JSON logs and non-terminals keep every one.
pub const FILE_ARCHIVED_EVENT: &str = "file archived";

/// Everything a pass needs, shared by the passes of one account.
#[derive(Clone)]
pub struct PassContext {
    /// The account's name and cloud; `settings` holds what the pass takes from the rest.
    pub account: Account,
    pub client: Arc<CloudClient>,
    pub store: Store,
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

/// The account's items that keep failing: report id → stored id → when to try next.
type Deferred = std::collections::HashMap<String, std::collections::HashMap<String, String>>;

/// What the ledger says of the account before its reports are listed.
#[derive(Default)]
struct Known {
    /// The items that keep failing, waiting for their next try.
    deferred: Deferred,
    /// The reports the cloud deleted: report id → since when (RFC 3339).
    gone: std::collections::HashMap<String, String>,
}

/// A saved item to download.
struct Download {
    report_id: String,
    stored_id: String,
    item: StoredItem,
}

impl Download {
    /// The listing's size: what the progress bar counts for an item, done or not.
    fn planned_bytes(&self) -> u64 {
        self.item
            .size
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0)
    }
}

/// Runs one pass and records it in the ledger (unless dry).
pub async fn run_pass(ctx: &PassContext) -> PassReport {
    let dry_run = matches!(ctx.mode, PassMode::DryRun { .. });
    let span = info_span!("pass", account = %ctx.account.name, dry_run);
    async {
        let started = Instant::now();
        let pass_id = match ctx.mode.writes() {
            Some(ledger) => match ledger.start_pass(&ctx.account.name).await {
                Ok(id) => Some((ledger, id)),
                Err(e) => return PassReport::account_failed(&ctx.account.name, e.into()),
            },
            None => None,
        };
        let mut report = run::run_pass_inner(ctx).await;
        report.seconds = started.elapsed().as_secs_f64();
        if let Some((ledger, id)) = pass_id
            && let Err(e) = ledger.finish_pass(id, &report.totals()).await
        {
            report.error.get_or_insert(PassError::from(e).into_text());
        }
        report.log();
        report
    }
    .instrument(span)
    .await
}
