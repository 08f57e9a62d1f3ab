//! `reports`: the reports each account's API client can see, their settings, and how much
//! of each the ledger holds; `reports create` and `reports delete` (in `report_admin.rs`)
//! manage them. Needs the config: it asks the cloud. The work lives in the crate's
//! `reports` module.

use std::path::Path;
use std::process::ExitCode;

use super::failure::Failure;
use super::output::{emit, emit_json};
use super::setup::{Location, no_account, resolve};
use crate::app::cloud_clients;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::reports::ReportView;

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
    // Only what asking needs: the clients, and the ledger read-only for the archived
    // counts (none yet is no error). No archive is opened and nothing is written.
    let ledger = Ledger::open_read_only(&config.settings.ledger.path)
        .await
        .map_err(|e| Failure::starting(e.into()))?;
    let views = overviews(&config, account, ledger.as_ref()).await;
    if let Some(ledger) = &ledger {
        ledger.close().await;
    }
    let (views, failed, hints) = views?;
    if json {
        emit_json(&views)?;
    } else {
        let mut text = crate::reports::render(&views);
        for hint in hints {
            text.push_str(&format!("\n{}\n", crate::untrusted::cell(&hint)));
        }
        emit(&text)?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every selected account's reports, whether asking any account failed (said on stderr),
/// and a hint for each account that discovers its reports and finds none storing anything.
async fn overviews(
    config: &Config,
    account: Option<&str>,
    ledger: Option<&Ledger>,
) -> Result<(Vec<ReportView>, bool, Vec<String>), Failure> {
    let mut clients = cloud_clients(config).map_err(Failure::starting)?;
    if let Some(name) = account {
        clients.retain(|(a, _)| a.name == name);
        if clients.is_empty() {
            return Err(no_account(name));
        }
    }
    let mut views = Vec::new();
    let mut failed = false;
    let mut hints = Vec::new();
    for (account, client) in &clients {
        match crate::reports::overview(account, client, ledger).await {
            Ok(mut v) => {
                // Configured ids are the operator's choice, as in a pass.
                if account.reports.is_empty() {
                    hints.extend(crate::reports::nothing_to_archive(&account.name, &v));
                }
                views.append(&mut v);
            }
            Err(e) => {
                failed = true;
                crate::telemetry::print_error(&e.to_string());
            }
        }
    }
    Ok((views, failed, hints))
}
