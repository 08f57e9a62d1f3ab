//! What a command sets up before its work: the config and logging, the ledger and archive
//! it works on ([`Location`]) with the ledger opened read-only, the daemon, the stop signal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::failure::Failure;
use crate::app::{Daemon, Mode};
use crate::config::{self, Config, LogFormat};
use crate::ledger::{ArchivedRow, Ledger, ObjectRef};
use crate::locations;
use crate::telemetry;

/// Loads the config named by `--config`, `$REPORT_ARCHIVER_CONFIG` or the default path,
/// then starts logging as it says.
pub fn load(path: Option<&Path>) -> Result<Config, Failure> {
    let path = path.unwrap_or(Path::new(config::DEFAULT_CONFIG_PATH));
    let config = config::load(Some(path))
        .with_context(|| format!("invalid configuration `{}`", path.display()))
        .map_err(Failure::config)?;
    start_telemetry(config.settings.log.format, &config.settings.log.level);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// The variable `--config` is also read from (clap's `env`).
const CONFIG_ENV: &str = "REPORT_ARCHIVER_CONFIG";

/// Logs what `run` and `once` work on, and where each path came from: nothing is used
/// silently (a snippet without `[archive]` once archived into /var/lib without a word).
pub fn announce_paths(config: &Config, given: Option<&Path>) {
    let config_from = match given {
        None => "built-in default",
        Some(path) if std::env::var_os(CONFIG_ENV).is_some_and(|v| Path::new(&v) == path) => {
            "environment variable REPORT_ARCHIVER_CONFIG"
        }
        Some(_) => "--config",
    };
    let settings = &config.settings;
    let config_path = config
        .source
        .as_deref()
        .map(locations::absolute)
        .unwrap_or_default();
    let archive = locations::absolute(&settings.archive.dir);
    let ledger = locations::absolute(&settings.ledger.path);
    let archive_role = match &settings.archive.s3 {
        Some(s3) => format!("bucket s3://{}/{}, staging folder", s3.bucket, s3.prefix),
        None => "archive".to_owned(),
    };
    tracing::info!(
        config = %config_path.display(),
        archive = %archive.display(),
        ledger = %ledger.display(),
        "using config {} ({config_from}); {archive_role} {} ({}); ledger {} ({})",
        config_path.display(),
        archive.display(),
        config.origins.archive_dir,
        ledger.display(),
        config.origins.ledger_path,
    );
}

pub fn start_telemetry(format: LogFormat, level: &str) {
    if let Err(e) = telemetry::init(format, level) {
        eprintln!("warning: logging could not be set up: {e}");
    }
}

/// `-c/--config`: offered by the commands that read the config, and by their subcommands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArg {
    /// The config file to read [default: /etc/report-archiver/config.toml]
    #[arg(
        long = "config",
        short = 'c',
        global = true,
        env = "REPORT_ARCHIVER_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
}

/// Where an archive is when it is not where the config says (a copy, a restore).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Location {
    /// Ledger file to read instead of the config's `ledger.path` (verify also needs --archive)
    #[arg(long, global = true, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
    /// Archive folder to read instead of the config's `archive.dir` (needs --ledger)
    #[arg(long, global = true, value_name = "DIR", requires = "ledger")]
    pub archive: Option<PathBuf>,
}

/// The ledger and archive a command works on; the config when there is one.
pub(super) struct Resolved {
    pub(super) ledger: PathBuf,
    pub(super) archive: PathBuf,
    pub(super) config: Option<Config>,
}

pub(super) fn resolve(
    config_path: Option<&Path>,
    location: &Location,
) -> Result<Resolved, Failure> {
    match (&location.ledger, &location.archive) {
        (Some(ledger), Some(archive)) => {
            start_telemetry(LogFormat::Auto, "warn");
            return Ok(Resolved {
                ledger: ledger.clone(),
                archive: archive.clone(),
                config: None,
            });
        }
        (Some(_), None) => {
            return Err(Failure::config(anyhow::anyhow!(
                "--ledger needs --archive DIR here: this command reads the archived files too (ledger list, stats and export need only --ledger)"
            )));
        }
        _ => {}
    }
    let config = load(config_path)?;
    Ok(Resolved {
        ledger: config.settings.ledger.path.clone(),
        archive: config.settings.archive.dir.clone(),
        config: Some(config),
    })
}

/// The ledger a `ledger …` command reads: `--ledger` alone needs no archive and no config
/// (the rows are all it reads); else the config's.
pub(super) fn resolve_ledger(
    config_path: Option<&Path>,
    location: &Location,
) -> Result<PathBuf, Failure> {
    if let Some(ledger) = &location.ledger {
        start_telemetry(LogFormat::Auto, "warn");
        return Ok(ledger.clone());
    }
    Ok(load(config_path)?.settings.ledger.path)
}

/// The live rows, and with `objects` the S3 object references by path.
pub(super) async fn read_ledger(
    ledger_path: &Path,
    objects: bool,
) -> Result<(Vec<ArchivedRow>, HashMap<String, ObjectRef>), Failure> {
    let Some(ledger) = Ledger::open_read_only(ledger_path)
        .await
        .map_err(Failure::runtime)?
    else {
        return Err(no_ledger(ledger_path));
    };
    let read = async {
        // Pruned rows name files retention deleted on purpose: not part of the archive now.
        let rows = ledger.live_rows().await?;
        let refs = if objects {
            ledger.object_refs().await?
        } else {
            HashMap::new()
        };
        Ok::<_, crate::ledger::LedgerError>((rows, refs))
    };
    let result = read.await.map_err(Failure::runtime);
    ledger.close().await;
    result
}

pub(super) fn no_ledger(path: &Path) -> Failure {
    Failure::config(anyhow::anyhow!(
        "there is no ledger at `{}`; check --ledger or ledger.path (nothing has been archived there yet)",
        path.display()
    ))
}

/// Builds the daemon for a one-shot command, limited to `account` when one is named.
pub async fn build_daemon(
    config: Config,
    mode: Mode,
    account: Option<&str>,
) -> Result<Daemon, Failure> {
    let mut daemon = Daemon::build(config, mode)
        .await
        .map_err(Failure::starting)?;
    if let Some(name) = account
        && !daemon.select_account(name)
    {
        return Err(no_account(name));
    }
    Ok(daemon)
}

/// `--account` names an account the config does not have.
pub(super) fn no_account(name: &str) -> Failure {
    Failure::config(anyhow::anyhow!(
        "no account named `{name}` in the configuration"
    ))
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not
/// when the future is first polled: a SIGTERM that arrives while the daemon is still
/// starting must stop it cleanly, not kill it with the default action.
#[cfg(unix)]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(interrupt) => tracing::info!("SIGINT received"),
            _ = wait(terminate) => tracing::info!("SIGTERM received"),
        }
    }
}

#[cfg(not(unix))]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received");
    }
}
