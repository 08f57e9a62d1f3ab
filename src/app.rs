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
use crate::archive::{Archive, ArchiveError};
use crate::config::{Account, Config};
use crate::instance::{InstanceError, InstanceLock};
use crate::ledger::{Ledger, LedgerError};
use crate::locations::{self, LocationError};
use crate::monitor::Monitor;
use crate::notify::NotifyError;
use crate::pass::{
    Observers, PassContext, PassMode, PassObserver, PassReport, PassSettings, run_pass,
};
use crate::progress::Progress;
use crate::reconcile::{ReconcileError, reconcile};
use crate::retention::{RetentionError, run_daily};
use crate::scheduler::{SchedulerError, run_scheduled};
use crate::server::{self, ServerError};
use crate::store::{Store, StoreError};
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
    Store(#[from] StoreError),
    #[error(transparent)]
    Location(#[from] LocationError),
}

impl AppError {
    /// The configuration asks for something that cannot be: fixing it is the operator's.
    #[must_use]
    pub fn is_config(&self) -> bool {
        match self {
            Self::Store(e) => e.is_config(),
            // `.partial` or `.quarantine` is a link or a file: only the operator can fix it.
            Self::Archive(e) => e.is_config(),
            // A path the config names cannot be used as it is: a typo, a file, permissions.
            Self::Location(_) => true,
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
    /// Where the archive is kept: what retention prunes and what is cleared at shutdown.
    store: Store,
}

impl Daemon {
    pub async fn build(config: Config, mode: Mode) -> Result<Self, AppError> {
        let settings = &config.settings;
        let dry_run = mode == Mode::DryRun;
        let (lock, ledger, store) = if dry_run {
            let ledger = Ledger::open_read_only(&settings.ledger.path).await?;
            // Not to upload (a dry run writes nothing) but so the pass knows the archived
            // files are objects and does not count them missing from the staging folder.
            let store = Store::view(&config, ledger.as_ref())?;
            (None, ledger, store)
        } else {
            let Opened {
                lock,
                ledger,
                store,
            } = open_for_writing(&config).await?;
            if mode == Mode::Service {
                reconcile_at_start(&ledger, &store).await?;
            }
            (Some(lock), Some(ledger), store)
        };
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
        // What the passes may write, decided once: a dry run reads the ledger (if there is
        // one yet) and writes nothing.
        let pass_mode = match ledger.clone() {
            Some(ledger) if !dry_run => PassMode::Archive { ledger },
            ledger => PassMode::DryRun { ledger },
        };
        let observer = monitor.health.clone();
        let contexts = pass_contexts(&config, &store, &pass_mode, observer, &cancel)?;
        Ok(Self {
            _lock: lock,
            config,
            ledger,
            contexts,
            cancel,
            monitor,
            dry_run,
            listener,
            store,
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
        let retention = self.start_retention()?;
        let stop_background = CancellationToken::new();
        if let Some(listener) = self.listener {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving /healthz and /metrics");
            }
            let settings = &self.config.settings;
            let volumes = vec![
                server::Volume {
                    name: "archive",
                    path: settings.archive.dir.clone(),
                },
                server::Volume {
                    name: "ledger",
                    path: settings.ledger.path.clone(),
                },
            ];
            let router = server::router(self.monitor.clone(), self.ledger.clone(), volumes);
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
        let cleared = self.store.clear_partial().await.map(|_| ());
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
        let keep = *keep;
        let stop = CancellationToken::new();
        let job = tokio::spawn(run_daily(
            ledger.clone(),
            self.store.clone(),
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

/// One API client per account of `config`, in its order, each behaving as `[http]` says.
/// What a pass needs to reach the cloud, and all `reports` needs.
pub fn cloud_clients(config: &Config) -> Result<Vec<(&Account, CloudClient)>, AppError> {
    let options = config.settings.http.options();
    let mut clients = Vec::new();
    for account in &config.accounts {
        let client = CloudClient::new(
            account.base_url.as_str(),
            &account.client_id,
            account.client_secret.clone(),
            options,
        )
        .map_err(|source| AppError::Client {
            account: account.name.clone(),
            source,
        })?;
        clients.push((account, client));
    }
    Ok(clients)
}

/// What a writing run holds: the archive's lock, the ledger, the store.
pub struct Opened {
    /// Held for the run's life.
    pub lock: InstanceLock,
    pub ledger: Ledger,
    pub store: Store,
}

/// One pass context per account of `config`, each with its own client.
pub fn pass_contexts(
    config: &Config,
    store: &Store,
    mode: &PassMode,
    observer: Arc<dyn PassObserver>,
    cancel: &CancellationToken,
) -> Result<Vec<PassContext>, AppError> {
    let max_file_size = config.settings.archive.max_file_size;
    let contexts = cloud_clients(config)?
        .into_iter()
        .map(|(account, client)| PassContext {
            account: account.clone(),
            client: Arc::new(client),
            store: store.clone(),
            cancel: cancel.clone(),
            mode: mode.clone(),
            settings: PassSettings {
                reports: account.reports.clone(),
                formats: account.formats.clone(),
                concurrency: account.concurrency,
                max_file_size,
                failure_backoff: account.failure_backoff,
            },
            observer: observer.clone(),
        })
        .collect();
    Ok(contexts)
}

/// The whole archive against the whole ledger costs time in proportion to years of
/// reports: the service does it once as it starts; a one-shot run, started often, leaves it
/// to `verify`, and every pass still restores the files of the items the cloud lists.
async fn reconcile_at_start(ledger: &Ledger, store: &Store) -> Result<(), AppError> {
    let found = reconcile(ledger, store).await?;
    if !found.missing.is_empty() || !found.untracked.is_empty() {
        tracing::warn!(
            missing = found.missing.len(),
            untracked = found.untracked.len(),
            "the archive and the ledger disagreed; see the warnings above"
        );
    }
    Ok(())
}

/// What every writing run opens first, in this order: the places on disk (checked, and
/// created as far as `[daemon] create_dirs` allows), the instance lock (before anything is
/// touched: opening the archive clears `.partial/`, which would break a daemon already
/// running on it; both the ledger and the archive, since one archive belongs to one daemon
/// whichever ledger it was given), the store (a `.partial` or `.quarantine` that is not its
/// own folder stops the start before the ledger is created), the ledger, and the store's
/// start-up checks.
pub async fn open_for_writing(config: &Config) -> Result<Opened, AppError> {
    let settings = &config.settings;
    // Before the lock, which would create the ledger's folder: a missing one is a typo
    // until the operator says otherwise.
    locations::prepare(settings)?;
    let lock = InstanceLock::acquire(&settings.ledger.path, &settings.archive.dir)?;
    // Opened without the bucket first: the bucket's client needs the ledger.
    let folder = Archive::open(&settings.archive.dir, settings.archive.keep_compressed).await?;
    let ledger = Ledger::open(&settings.ledger.path, settings.ledger.busy_timeout).await?;
    let interrupted = ledger.mark_interrupted_passes().await?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "the previous run stopped in the middle of a pass; its items are fetched again as needed"
        );
    }
    let store = Store::with_folder(folder, config, &ledger)?;
    store.prepare().await?;
    Ok(Opened {
        lock,
        ledger,
        store,
    })
}
