//! CLI glue for the operator's commands: `reports`, `ledger …`, `verify` and `prune`.
//!
//! Each finds the ledger and archive ([`Location`]: `--ledger PATH --archive DIR`, else the
//! config), opens the ledger read-only unless it writes, calls the library and prints a
//! table or JSON. The work itself lives in `inspect`, `reports` and `verify`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;

use crate::app::{Daemon, Mode};
use crate::cli::failure::Failure;
use crate::cli::output::{emit, emit_json};
use crate::cli::setup::{Location, load, no_ledger, read_ledger, read_rows, resolve};
use crate::config::Config;
use crate::inspect::{self, ExportFormat, RowFilter};
use crate::instance::InstanceLock;
use crate::ledger::Ledger;
use crate::progress::Progress;
use crate::retention::{self, Keep, PruneFrom};
use crate::s3::ObjectTarget;
use crate::verify;

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
    let on_s3 = place
        .config
        .as_ref()
        .is_some_and(|c| c.settings.archive.s3.is_some());
    if on_s3 && let Some(config) = place.config {
        return verify_objects(config, &place.ledger, repair, json).await;
    }
    if repair && place.config.is_none() {
        return Err(Failure::config(anyhow::anyhow!(
            "verify --repair fetches from the cloud and needs the config (--config FILE), not --ledger/--archive"
        )));
    }
    let rows = read_rows(&place.ledger).await?;
    let progress = Progress::on_terminal("verifying");
    let mut report = verify::verify(&place.archive, rows, &progress)
        .await
        .context("verify failed")
        .map_err(Failure::runtime)?;
    progress.finish();
    if let (true, Some(config)) = (repair, place.config) {
        let daemon = Daemon::build(config, Mode::Archive)
            .await
            .map_err(repair_failure)?;
        verify::repair(&mut report, &place.archive, daemon.contexts(), Utc::now()).await;
        daemon.close().await;
    }
    emit_verify(&report, json)
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

/// `verify` on the S3 target: the same report, from the bucket.
async fn verify_objects(
    config: Config,
    ledger_path: &Path,
    repair: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let Some(s3) = &config.settings.archive.s3 else {
        return Err(Failure::config(anyhow::anyhow!("[archive.s3] is not set")));
    };
    let Some(ledger) = Ledger::open_read_only(ledger_path)
        .await
        .map_err(Failure::runtime)?
    else {
        return Err(no_ledger(ledger_path));
    };
    let rows = ledger.live_rows().await.map_err(Failure::runtime)?;
    let objects = ObjectTarget::build(s3, config.s3_keys.as_ref(), &config.settings.http, ledger)
        .context("cannot set up the S3 target")
        .map_err(Failure::runtime)?;
    let progress = Progress::on_terminal("verifying");
    let mut report = objects
        .verify(rows, &progress)
        .await
        .context("verify failed")
        .map_err(Failure::runtime)?;
    progress.finish();
    if repair {
        // Takes the instance lock and aborts uploads a crash left, like any writing run.
        let daemon = Daemon::build(config, Mode::Archive)
            .await
            .map_err(repair_failure)?;
        verify::repair_objects(&mut report, daemon.contexts()).await;
        daemon.close().await;
        objects.repair_locks(&mut report).await;
    }
    emit_verify(&report, json)
}

pub async fn prune(
    config_path: Option<&Path>,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let config = load(config_path)?;
    let Some(keep) = config.settings.archive.keep.as_deref() else {
        return Err(Failure::config(anyhow::anyhow!(
            "archive.keep is not set, so nothing is ever pruned; set e.g. keep = \"7y\" under [archive]"
        )));
    };
    let keep = Keep::parse(keep).map_err(Failure::config)?;
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
    let from = match &config.settings.archive.s3 {
        Some(s3) => PruneFrom::Bucket(Arc::new(
            ObjectTarget::build(
                s3,
                config.s3_keys.as_ref(),
                &config.settings.http,
                ledger.clone(),
            )
            .context("cannot set up the S3 target")
            .map_err(Failure::runtime)?,
        )),
        None => PruneFrom::Dir(config.settings.archive.dir.clone()),
    };
    let report = retention::prune(&ledger, &from, keep, Utc::now(), dry_run)
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
    let daemon = crate::cli::setup::build_daemon(config, Mode::DryRun, account).await?;
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
