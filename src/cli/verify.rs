//! `verify [--repair]`: every archived file, or object with `[archive.s3]`, re-hashed against
//! the ledger; with `--repair`, what is missing or changed fetched again (a changed file
//! quarantined first). Exit 0 only when clean. The work lives in the crate's `verify`
//! module and the S3 target.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use super::failure::Failure;
use super::output::{emit, emit_json};
use super::setup::{Location, no_ledger, read_rows, resolve};
use crate::app::{Daemon, Mode};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::progress::Progress;
use crate::s3::ObjectTarget;
use crate::verify;

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
