//! `reports`: the reports each account's API client can see, their settings, and how much
//! of each the ledger holds. Needs the config: it asks the cloud. The work lives in the
//! crate's `reports` module.

use std::path::Path;
use std::process::ExitCode;

use super::failure::Failure;
use super::output::{emit, emit_json};
use super::setup::{Location, build_daemon, resolve};
use crate::app::Mode;

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
    let daemon = build_daemon(config, Mode::DryRun, account).await?;
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
