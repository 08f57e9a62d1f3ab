//! `Daemon`: what `run`, `once` and `demo` share. `build` opens the ledger and the archive,
//! builds one client per account and (for the service) binds the `/healthz` + `/metrics`
//! listener; then either one pass per account or the scheduler.
//!
//! Every finished (not dry) pass goes to the [`Monitor`]: metrics, health, notifications.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use tokio_util::sync::CancellationToken;

use crate::api::CloudClient;
use crate::api::client::HttpOptions;
use crate::api::retry::RetryPolicy;
use crate::archive::{Archive, ArchiveError};
use crate::config::Config;
use crate::instance::{InstanceError, InstanceLock};
use crate::ledger::{Ledger, LedgerError};
use crate::monitor::Monitor;
use crate::notify::NotifyError;
use crate::pass::{
    Observers, PassContext, PassMode, PassObserver, PassReport, PassSettings, run_pass,
};
use crate::progress::Progress;
use crate::reconcile::{ReconcileError, reconcile};
use crate::retention::{Keep, PruneFrom, RetentionError, run_daily};
use crate::s3::{ObjectTarget, S3Error};
use crate::scheduler::{SchedulerError, run_scheduled};
use crate::server::{self, ServerError};
use crate::systemd;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("account `{account}`: {source}")]
    Client {
        account: String,
        #[source]
        source: crate::api::ApiError,
    },
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error(transparent)]
    Objects(#[from] S3Error),
}

impl AppError {
    /// The configuration asks for something that cannot be: fixing it is the operator's.
    #[must_use]
    pub fn is_config(&self) -> bool {
        match self {
            Self::Objects(e) => e.is_config(),
            // `.partial` or `.quarantine` is a link or a file: only the operator can fix it.
            Self::Archive(e) => e.is_config(),
            _ => false,
        }
    }
}

/// Whether a pass may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Archive,
    /// Lists what would be fetched; touches neither the archive nor the ledger.
    DryRun,
    /// Archive, as the long-running service: also binds `[server] listen` when set.
    Service,
}

pub struct Daemon {
    /// Held for the daemon's life; `None` in a dry run, which writes nothing.
    _lock: Option<InstanceLock>,
    config: Config,
    ledger: Option<Ledger>,
    contexts: Vec<PassContext>,
    cancel: CancellationToken,
    monitor: Monitor,
    dry_run: bool,
    listener: Option<TcpListener>,
    /// Where prune deletes: the archive dir or the bucket.
    prune_from: PruneFrom,
}

impl Daemon {
    pub async fn build(config: Config, mode: Mode) -> Result<Self, AppError> {
        let settings = &config.settings;
        let dry_run = mode == Mode::DryRun;
        let (lock, ledger, archive) = if dry_run {
            let ledger = Ledger::open_read_only(&settings.ledger.path).await?;
            let mut archive = Archive::at(&settings.archive.dir, settings.archive.keep_compressed);
            // Not to upload (a dry run writes nothing) but so the pass knows the archived
            // files are objects and does not count them missing from the staging folder.
            if let Some(ledger) = &ledger
                && let Some(objects) = object_target(&config, ledger)?
            {
                archive = archive.with_objects(Arc::new(objects));
            }
            (None, ledger, archive)
        } else {
            // Before anything is touched: opening the archive clears `.partial/`, which
            // would break a daemon already running on it. Both the ledger and the archive:
            // one archive belongs to one daemon, whichever ledger it was given.
            let lock = InstanceLock::acquire(&settings.ledger.path, &settings.archive.dir)?;
            // The archive first: a `.partial` or `.quarantine` that is not its own folder
            // stops the start before anything else (the ledger) is created.
            // With [archive.s3] the folder only stages downloads in `.partial/`.
            let mut archive =
                Archive::open(&settings.archive.dir, settings.archive.keep_compressed).await?;
            let ledger = Ledger::open(&settings.ledger.path, settings.ledger.busy_timeout).await?;
            let interrupted = ledger.mark_interrupted_passes().await?;
            if interrupted > 0 {
                tracing::warn!(
                    interrupted,
                    "the previous run stopped in the middle of a pass; its items are fetched again as needed"
                );
            }
            if let Some(objects) = object_target(&config, &ledger)? {
                // Not fatal: an instance role may answer a moment later (exit 2 would stop
                // systemd from restarting us); uploads fail with the same words meanwhile.
                if let Err(e) = objects.check_credentials().await {
                    tracing::warn!(error.message = %e, "no S3 credentials now; uploads fail until there are");
                }
                match objects.check_object_lock().await {
                    Err(e) if e.is_config() => return Err(e.into()),
                    // Unreachable now says nothing about the bucket; a locked PUT to a
                    // bucket without Object Lock is refused by S3 all the same.
                    Err(e) => {
                        tracing::warn!(error.message = %e, "cannot check the bucket's Object Lock now; uploads go ahead and S3 refuses them if it cannot lock");
                    }
                    Ok(()) => {}
                }
                objects.abort_leftover_uploads().await?;
                archive = archive.with_objects(Arc::new(objects));
            }
            // The whole archive against the whole ledger costs time in proportion to
            // years of reports: the service does it once as it starts; a one-shot run,
            // started often, leaves it to `verify`, and every pass still restores the files
            // of the items the cloud lists. (The local walk means nothing for S3.)
            if mode == Mode::Service && archive.objects().is_none() {
                let found = reconcile(&ledger, &archive).await?;
                if !found.missing.is_empty() || !found.untracked.is_empty() {
                    tracing::warn!(
                        missing = found.missing.len(),
                        untracked = found.untracked.len(),
                        "the archive and the ledger disagreed; see the warnings above"
                    );
                }
            }
            (Some(lock), Some(ledger), archive)
        };
        let prune_from = match archive.objects() {
            Some(objects) => PruneFrom::Bucket(objects.clone()),
            None => PruneFrom::Dir(settings.archive.dir.clone()),
        };
        let archive = Arc::new(archive);
        let last_outcomes = match (&ledger, dry_run) {
            (Some(ledger), false) => ledger.last_outcomes().await?,
            _ => Vec::new(),
        };
        let announce_to = ledger.clone().filter(|_| !dry_run);
        let monitor = Monitor::new(&config, &last_outcomes, announce_to)?;
        // Only the long-running service listens: a one-shot run has no one to answer, and
        // binding a configured port there would only make it fail when the port is taken.
        let listener = match (mode, settings.server.listen) {
            (Mode::Service, Some(addr)) => Some(server::bind(addr).await?),
            _ => None,
        };
        let cancel = CancellationToken::new();
        let http = &settings.http;
        let options = HttpOptions {
            total: http.timeout,
            connect: http.connect_timeout,
            read: http.read_timeout,
            retry: RetryPolicy {
                retries: http.retries,
                max_backoff: http.max_backoff,
            },
            requests_per_second: http.requests_per_second,
            max_json: http.max_json_size,
        };
        // What the passes may write, decided once: a dry run reads the ledger (if there is
        // one yet) and writes nothing.
        let pass_mode = match ledger.clone() {
            Some(ledger) if !dry_run => PassMode::Archive { ledger },
            ledger => PassMode::DryRun { ledger },
        };
        let mut contexts = Vec::new();
        for account in &config.accounts {
            let client = CloudClient::new(
                &account.base_url,
                &account.client_id,
                account.client_secret.clone(),
                options,
            )
            .map_err(|source| AppError::Client {
                account: account.name.clone(),
                source,
            })?;
            contexts.push(PassContext {
                account: account.clone(),
                client: Arc::new(client),
                archive: archive.clone(),
                cancel: cancel.clone(),
                mode: pass_mode.clone(),
                settings: PassSettings {
                    reports: account.reports.clone(),
                    formats: account.formats.clone(),
                    concurrency: account.concurrency,
                    max_file_size: settings.archive.max_file_size,
                    failure_backoff: settings.http.failure_backoff,
                },
                observer: monitor.health.clone(),
            });
        }
        Ok(Self {
            _lock: lock,
            config,
            ledger,
            contexts,
            cancel,
            monitor,
            dry_run,
            listener,
            prune_from,
        })
    }

    /// Where `/healthz` and `/metrics` are served (the bound port when `listen` used port 0).
    pub fn server_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Shows `progress` for every account's downloads (`once` on a terminal).
    pub fn set_progress(&mut self, progress: Arc<Progress>) {
        let health: Arc<dyn PassObserver> = self.monitor.health.clone();
        let observer = Arc::new(Observers::new([health, progress]));
        for ctx in &mut self.contexts {
            ctx.observer = observer.clone();
        }
    }

    /// One pass context per selected account.
    pub fn contexts(&self) -> &[PassContext] {
        &self.contexts
    }

    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    /// Limits the daemon to one account; false when there is no such account.
    pub fn select_account(&mut self, name: &str) -> bool {
        self.contexts.retain(|c| c.account.name == name);
        !self.contexts.is_empty()
    }

    /// One pass for every account, the accounts side by side.
    pub async fn run_once(&self) -> Vec<PassReport> {
        let reports = futures::future::join_all(self.contexts.iter().map(run_pass)).await;
        if !self.dry_run {
            for report in &reports {
                self.monitor.pass_finished(report).await;
            }
        }
        reports
    }

    /// Runs the scheduler until `shutdown` resolves, then drains and closes the ledger.
    pub async fn run_until_stopped(
        self,
        run_at_start: bool,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), AppError> {
        let grace = self.config.settings.daemon.shutdown_grace;
        let archive = self.contexts.first().map(|c| c.archive.clone());
        let retention = self.start_retention()?;
        let stop_background = CancellationToken::new();
        if let Some(listener) = self.listener {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving /healthz and /metrics");
            }
            let router = server::router(self.monitor.clone(), self.ledger.clone());
            server::spawn(listener, router, stop_background.clone());
        }
        systemd::spawn_watchdog(stop_background.clone());
        let health = self.monitor.health.clone();
        let started = {
            let health = health.clone();
            let accounts = self.contexts.len();
            move || {
                health.set_scheduler_running(true);
                systemd::notify_ready(&format!("archiving {accounts} account(s)"));
            }
        };
        let shutdown = async move {
            shutdown.await;
            health.set_scheduler_running(false);
            systemd::notify_stopping();
        };
        let scheduled = run_scheduled(
            self.contexts,
            self.monitor,
            self.cancel,
            grace,
            run_at_start,
            started,
            shutdown,
        )
        .await;
        stop_background.cancel();
        if let Some((stop, job)) = retention {
            stop.cancel();
            // A prune in flight finishes its current file; its rows are already written.
            let _ = job.await;
        }
        // Clean up whether or not the scheduler failed: no temp file and no open ledger
        // outlive the daemon.
        let cleared = match archive {
            Some(archive) => archive.clear_partial().await.map(|_| ()),
            None => Ok(()),
        };
        if let Some(ledger) = &self.ledger {
            ledger.close().await;
        }
        scheduled?;
        cleared?;
        tracing::info!("stopped");
        Ok(())
    }

    /// The daily prune of `run`, when `[archive] keep` is set.
    fn start_retention(
        &self,
    ) -> Result<Option<(CancellationToken, tokio::task::JoinHandle<()>)>, AppError> {
        let (Some(keep), Some(ledger)) = (&self.config.settings.archive.keep, &self.ledger) else {
            return Ok(None);
        };
        let keep = Keep::parse(keep)?;
        let stop = CancellationToken::new();
        let job = tokio::spawn(run_daily(
            ledger.clone(),
            self.prune_from.clone(),
            keep,
            stop.clone(),
        ));
        Ok(Some((stop, job)))
    }

    pub async fn close(&self) {
        if let Some(ledger) = &self.ledger {
            ledger.close().await;
        }
    }
}

/// The S3 target `[archive.s3]` asks for, if any.
fn object_target(config: &Config, ledger: &Ledger) -> Result<Option<ObjectTarget>, S3Error> {
    let settings = &config.settings;
    settings
        .archive
        .s3
        .as_ref()
        .map(|s3| ObjectTarget::build(s3, config.s3_keys.as_ref(), &settings.http, ledger.clone()))
        .transpose()
}
