//! CLI glue for the operator's commands: `reports`, `ledger …`, `verify` and `prune`.
//!
//! Each finds the ledger and archive ([`Location`]: `--ledger PATH --archive DIR`, else the
//! config), opens the ledger read-only unless it writes, calls the library and prints a
//! table or JSON. The work itself lives in `inspect`, `reports` and `verify`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use crate::app::{Daemon, Mode};
use crate::archive::Archive;
use crate::cli::{Failure, load, start_telemetry};
use crate::config::{Config, LogFormat};
use crate::inspect::{self, ExportFormat, RowFilter};
use crate::instance::InstanceLock;
use crate::ledger::{ArchivedRow, Ledger, ObjectRef};
use crate::progress::Progress;
use crate::retention;
use crate::store::Store;
use crate::verify;

/// Where an archive is when it is not where the config says (a copy, a restore).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Location {
    /// Ledger file to read instead of the config's `ledger.path` (needs --archive)
    #[arg(long, global = true, value_name = "PATH", requires = "archive")]
    pub ledger: Option<PathBuf>,
    /// Archive folder to read instead of the config's `archive.dir` (needs --ledger)
    #[arg(long, global = true, value_name = "DIR", requires = "ledger")]
    pub archive: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// One line per archived item, oldest first within each report
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        report: Option<String>,
        /// A report format such as csv or json_v2_0
        #[arg(long)]
        format: Option<String>,
        /// Items created on or after this day (YYYY-MM-DD, UTC) or RFC 3339 time
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Files and bytes in total and per account, report and format; the last fetch
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Every row as CSV or JSON, or as a checksum list for `sha256sum -c` (run it in the archive dir)
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
    },
}

/// The ledger and archive a command works on; the config when there is one.
struct Resolved {
    ledger: PathBuf,
    archive: PathBuf,
    config: Option<Config>,
}

fn resolve(config_path: Option<&Path>, location: &Location) -> Result<Resolved, Failure> {
    if let (Some(ledger), Some(archive)) = (&location.ledger, &location.archive) {
        start_telemetry(LogFormat::Auto, "warn");
        return Ok(Resolved {
            ledger: ledger.clone(),
            archive: archive.clone(),
            config: None,
        });
    }
    let config = load(config_path)?;
    Ok(Resolved {
        ledger: config.settings.ledger.path.clone(),
        archive: config.settings.archive.dir.clone(),
        config: Some(config),
    })
}

/// The live rows, and with `objects` the S3 object references by path.
async fn read_ledger(
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

fn no_ledger(path: &Path) -> Failure {
    Failure::config(anyhow::anyhow!(
        "there is no ledger at `{}`; check --ledger or ledger.path (nothing has been archived there yet)",
        path.display()
    ))
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::runtime(
            anyhow::Error::new(e).context("cannot write to stdout"),
        )),
        _ => Ok(()),
    }
}

fn emit_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .context("cannot write JSON")
        .map_err(Failure::runtime)?;
    text.push('\n');
    emit(&text)
}

pub async fn ledger(
    config_path: Option<&Path>,
    location: &Location,
    command: LedgerCommand,
) -> Result<ExitCode, Failure> {
    let place = resolve(config_path, location)?;
    let exporting = matches!(command, LedgerCommand::Export { .. });
    let (rows, objects) = read_ledger(&place.ledger, exporting).await?;
    match command {
        LedgerCommand::List {
            account,
            report,
            format,
            since,
            json,
        } => {
            let since = since
                .as_deref()
                .map(inspect::parse_since)
                .transpose()
                .map_err(Failure::config)?;
            let filter = RowFilter {
                account,
                report,
                format,
                since,
            };
            let rows = filter.apply(rows);
            if json {
                emit_json(&rows)?;
            } else {
                emit(&inspect::render_list(&rows))?;
            }
        }
        LedgerCommand::Stats { json } => {
            let stats = inspect::stats(&rows);
            if json {
                emit_json(&stats)?;
            } else {
                emit(&inspect::render_stats(&stats))?;
            }
        }
        LedgerCommand::Export { format } => {
            let text = inspect::export(&rows, &objects, format).map_err(Failure::runtime)?;
            emit(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn verify(
    config_path: Option<&Path>,
    location: &Location,
    repair: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let place = resolve(config_path, location)?;
    if repair && place.config.is_none() {
        return Err(Failure::config(anyhow::anyhow!(
            "verify --repair fetches from the cloud and needs the config (--config FILE), not --ledger/--archive"
        )));
    }
    let Some(ledger) = Ledger::open_read_only(&place.ledger)
        .await
        .map_err(Failure::runtime)?
    else {
        return Err(no_ledger(&place.ledger));
    };
    let report = verify_with(place.config.as_ref(), &place.archive, &ledger).await;
    ledger.close().await;
    let mut report = report?;
    if let (true, Some(config)) = (repair, place.config) {
        // Takes the instance lock and aborts uploads a crash left, like any writing run.
        let daemon = Daemon::build(config, Mode::Archive)
            .await
            .map_err(repair_failure)?;
        verify::repair(&mut report, daemon.store(), daemon.contexts(), Utc::now()).await;
        daemon.close().await;
    }
    emit_verify(&report, json)
}

/// Verifies the store the config describes (folder or bucket), or without a config the
/// folder `archive`.
async fn verify_with(
    config: Option<&Config>,
    archive: &Path,
    ledger: &Ledger,
) -> Result<verify::VerifyReport, Failure> {
    let store = match config {
        Some(config) => Store::view(config, Some(ledger))
            .context("cannot set up the S3 target")
            .map_err(Failure::runtime)?,
        None => Store::local(Archive::at(archive, false)),
    };
    // Pruned rows name files retention deleted on purpose: not part of the archive now.
    let rows = ledger.live_rows().await.map_err(Failure::runtime)?;
    let progress = Progress::on_terminal("verifying");
    let report = verify::verify(&store, rows, &progress)
        .await
        .context("verify failed")
        .map_err(Failure::runtime)?;
    progress.finish();
    Ok(report)
}

/// The repair could not start: a config the archive or the bucket cannot honour exits 2,
/// as it does for `run`; the rest 1.
fn repair_failure(error: crate::app::AppError) -> Failure {
    let code = if error.is_config() { 2 } else { 1 };
    Failure {
        code,
        error: anyhow::Error::new(error).context("cannot start the repair"),
    }
}

/// Prints a verify report; exit 0 only when it is clean.
fn emit_verify(report: &verify::VerifyReport, json: bool) -> Result<ExitCode, Failure> {
    if json {
        emit_json(report)?;
    } else {
        emit(&verify::render(report))?;
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn prune(
    config_path: Option<&Path>,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let config = load(config_path)?;
    let Some(keep) = config.settings.archive.keep else {
        return Err(Failure::config(anyhow::anyhow!(
            "archive.keep is not set, so nothing is ever pruned; set e.g. keep = \"7y\" under [archive]"
        )));
    };
    let ledger_path = &config.settings.ledger.path;
    // Checked first: opening for writing would create an empty ledger (and its lock file).
    if !ledger_path.exists() {
        return Err(no_ledger(ledger_path));
    }
    // Deleting files while `run` works on the same archive is the daemon's job, not ours;
    // the archive's lock too, in case that daemon was given another ledger.
    let _lock = if dry_run {
        None
    } else {
        Some(
            InstanceLock::acquire(ledger_path, &config.settings.archive.dir)
                .map_err(Failure::runtime)?,
        )
    };
    let ledger = if dry_run {
        Ledger::open_read_only(ledger_path).await
    } else {
        Ledger::open(ledger_path, config.settings.ledger.busy_timeout)
            .await
            .map(Some)
    }
    .map_err(Failure::runtime)?;
    let Some(ledger) = ledger else {
        return Err(no_ledger(ledger_path));
    };
    // A view: prune deletes through the store's own checks and creates nothing.
    let store = Store::view(&config, Some(&ledger))
        .context("cannot set up the S3 target")
        .map_err(Failure::runtime)?;
    let report = retention::prune(&ledger, &store, keep, Utc::now(), dry_run)
        .await
        .context("prune failed")
        .map_err(Failure::runtime);
    ledger.close().await;
    let report = report?;
    if json {
        emit_json(&report)?;
    } else {
        emit(&retention::render(&report))?;
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn reports(
    config_path: Option<&Path>,
    location: &Location,
    account: Option<&str>,
    json: bool,
) -> Result<ExitCode, Failure> {
    if location.ledger.is_some() {
        return Err(Failure::config(anyhow::anyhow!(
            "reports asks the cloud and needs the config (--config FILE), not --ledger/--archive"
        )));
    }
    let place = resolve(config_path, location)?;
    let Some(config) = place.config else {
        return Err(Failure::config(anyhow::anyhow!(
            "reports needs --config FILE"
        )));
    };
    // Dry-run mode: builds the clients without opening the archive or writing anything.
    let daemon = crate::cli::build_daemon(config, Mode::DryRun, account).await?;
    let ledger = daemon.ledger().cloned();
    let mut views = Vec::new();
    let mut failed = false;
    for ctx in daemon.contexts() {
        match crate::reports::overview(&ctx.account, &ctx.client, ledger.as_ref()).await {
            Ok(mut v) => views.append(&mut v),
            Err(e) => {
                failed = true;
                crate::telemetry::print_error(&e.to_string());
            }
        }
    }
    daemon.close().await;
    if json {
        emit_json(&views)?;
    } else {
        emit(&crate::reports::render(&views))?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
