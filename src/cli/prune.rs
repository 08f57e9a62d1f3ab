//! `prune [--dry-run]`: deletes archived files (or objects) older than `[archive] keep` and
//! marks their rows pruned, under the instance lock; `--dry-run` only lists them. The work
//! lives in `retention`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use super::failure::Failure;
use super::output::{emit, emit_json};
use super::setup::{load, no_ledger};
use crate::instance::InstanceLock;
use crate::ledger::Ledger;
use crate::retention;
use crate::store::Store;

pub async fn prune(
    config_path: Option<&Path>,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let config = load(config_path)?;
    let Some(keep) = config.settings.archive.keep else {
        if dry_run {
            // Asked what would go: nothing, and that is an answer, not an error.
            return nothing_to_prune(json);
        }
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

/// `prune --dry-run` without `[archive] keep`: nothing would be deleted, and why.
fn nothing_to_prune(json: bool) -> Result<ExitCode, Failure> {
    if json {
        emit_json(&retention::PruneReport {
            cutoff: "none: archive.keep is not set".to_owned(),
            dry_run: true,
            ..retention::PruneReport::default()
        })?;
    } else {
        emit(
            "nothing to prune: archive.keep is not set, so every file is kept; set e.g. keep = \"7y\" under [archive] to prune\n",
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
