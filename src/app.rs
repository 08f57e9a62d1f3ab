//! `Daemon`: what `run`, `once` and `demo` share. `build` opens the ledger and the archive
//! and builds one client per account; then either one pass per account or the scheduler.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::api::CloudClient;
use crate::api::client::HttpTimeouts;
use crate::archive::{Archive, ArchiveError};
use crate::config::Config;
use crate::ledger::{Ledger, LedgerError};
use crate::pass::{PassContext, PassReport, run_pass};
use crate::scheduler::{SchedulerError, run_scheduled};

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
}

/// Whether a pass may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Archive,
    /// Lists what would be fetched; touches neither the archive nor the ledger.
    DryRun,
}

pub struct Daemon {
    config: Config,
    ledger: Option<Ledger>,
    contexts: Vec<PassContext>,
    cancel: CancellationToken,
}

impl Daemon {
    pub async fn build(config: Config, mode: Mode) -> Result<Self, AppError> {
        let settings = &config.settings;
        let dry_run = mode == Mode::DryRun;
        let (ledger, archive) = if dry_run {
            (
                Ledger::open_read_only(&settings.ledger.path).await?,
                Archive::at(&settings.archive.dir, settings.archive.keep_compressed),
            )
        } else {
            let ledger = Ledger::open(&settings.ledger.path).await?;
            let interrupted = ledger.mark_interrupted_passes().await?;
            if interrupted > 0 {
                tracing::warn!(
                    interrupted,
                    "the previous run stopped in the middle of a pass; its items are fetched again as needed"
                );
            }
            let archive =
                Archive::open(&settings.archive.dir, settings.archive.keep_compressed).await?;
            (Some(ledger), archive)
        };
        let archive = Arc::new(archive);
        let cancel = CancellationToken::new();
        let timeouts = HttpTimeouts {
            total: settings.http.timeout,
            connect: settings.http.connect_timeout,
        };
        let mut contexts = Vec::new();
        for account in &config.accounts {
            let client = CloudClient::new(
                &account.base_url,
                &account.client_id,
                account.client_secret.clone(),
                timeouts,
            )
            .map_err(|source| AppError::Client {
                account: account.name.clone(),
                source,
            })?;
            contexts.push(PassContext {
                account: account.clone(),
                client: Arc::new(client),
                ledger: ledger.clone(),
                archive: archive.clone(),
                cancel: cancel.clone(),
                dry_run,
            });
        }
        Ok(Self {
            config,
            ledger,
            contexts,
            cancel,
        })
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
        futures::future::join_all(self.contexts.iter().map(run_pass)).await
    }

    /// Runs the scheduler until `shutdown` resolves, then drains and closes the ledger.
    pub async fn run_until_stopped(
        self,
        run_at_start: bool,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), AppError> {
        let grace = self.config.settings.daemon.shutdown_grace;
        let archive = self.contexts.first().map(|c| c.archive.clone());
        run_scheduled(self.contexts, self.cancel, grace, run_at_start, shutdown).await?;
        if let Some(archive) = archive {
            archive.clear_partial().await?;
        }
        if let Some(ledger) = &self.ledger {
            ledger.close().await;
        }
        tracing::info!("stopped");
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(ledger) = &self.ledger {
            ledger.close().await;
        }
    }
}
