//! `verify [--repair]`: every archived file, or object with `[archive.s3]`, re-hashed against
//! the ledger; with `--repair`, what is missing or changed fetched again (a changed file
//! quarantined first). Exit 0 only when clean. The work lives in the crate's `verify`
//! module and the store.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::failure::Failure;
use super::output::{emit, emit_json};
use super::setup::{Location, no_ledger, resolve};
use crate::app;
use crate::archive::Archive;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::pass::{Observers, PassMode};
use crate::progress::Progress;
use crate::store::Store;
use crate::verify;

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
        repair_with(&config, &mut report).await?;
    }
    emit_verify(&report, json)
}

/// `--repair`: opens what a writing run opens (the instance lock, the ledger, the store
/// with its start-up checks, e.g. aborting uploads a crash left) and one client per
/// account; no scheduler, listener or notifier.
async fn repair_with(config: &Config, report: &mut verify::VerifyReport) -> Result<(), Failure> {
    let opened = app::open_for_writing(config)
        .await
        .map_err(repair_failure)?;
    let mode = PassMode::Archive {
        ledger: opened.ledger.clone(),
    };
    let unobserved = Arc::new(Observers::default());
    let contexts = app::pass_contexts(
        config,
        &opened.store,
        &mode,
        unobserved,
        &CancellationToken::new(),
    )
    .map_err(repair_failure)?;
    verify::repair(report, &opened.store, &contexts, Utc::now()).await;
    opened.ledger.close().await;
    Ok(())
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
    let report = verify::verify(&store, rows, &progress).await;
    progress.finish();
    report.context("verify failed").map_err(Failure::runtime)
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
