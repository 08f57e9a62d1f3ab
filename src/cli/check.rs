//! `check-config [--online]`: the config loaded and validated, the effective settings
//! printed (secrets masked), then what can be checked before the first pass: the places on
//! disk (`locations::check`, nothing created) and, with `--online`, each account's
//! credentials and the reports it sees. Exit 0 all good, 2 the config or a path is wrong,
//! 1 an account could not be reached or refused its credentials.

use std::path::Path;
use std::process::ExitCode;

use super::failure::Failure;
use super::output::emit;
use super::setup::load;
use crate::app::cloud_clients;
use crate::config::Config;
use crate::locations;
use crate::untrusted::cell;

pub async fn check_config(config_path: Option<&Path>, online: bool) -> Result<ExitCode, Failure> {
    let config = load(config_path)?;
    let toml = config.effective_toml();
    emit(&toml)?;
    if !toml.ends_with('\n') {
        emit("\n")?;
    }
    // Comments, so that what is printed stays a config file.
    let findings = locations::check(&config.settings).map_err(Failure::config)?;
    // With a bucket the folder only stages downloads; the checks are the same.
    let staging = if config.settings.archive.s3.is_some() {
        " (the bucket's staging folder)"
    } else {
        ""
    };
    for f in &findings {
        let role = if f.key == "archive.dir" { staging } else { "" };
        emit(&format!(
            "# {}{role}: {} ({})\n",
            f.key,
            f.path.display(),
            f.state
        ))?;
    }
    if !online {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if check_accounts(&config).await? {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A token for every account, then its reports counted; each failure said on stderr with
/// its cause. True when every account answered.
async fn check_accounts(config: &Config) -> Result<bool, Failure> {
    let clients = cloud_clients(config).map_err(Failure::starting)?;
    let mut all_ok = true;
    for (account, client) in &clients {
        if let Err(e) = client.authenticate().await {
            all_ok = false;
            crate::telemetry::print_error(&format!("account `{}`: {e}", account.name));
            continue;
        }
        match crate::reports::overview(account, client, None).await {
            Ok(views) => {
                let storing = views.iter().filter(|v| !v.stores_nothing).count();
                let saved: u64 = views.iter().map(|v| v.saved).sum();
                emit(&format!(
                    "# account {}: credentials accepted; sees {} report(s), {storing} of them store their results ({saved} saved item(s) to archive)\n",
                    cell(&account.name),
                    views.len(),
                ))?;
                if let Some(hint) = crate::reports::nothing_to_archive(&account.name, &views) {
                    emit(&format!("# {}\n", cell(&hint)))?;
                }
            }
            Err(e) => {
                all_ok = false;
                crate::telemetry::print_error(&e.to_string());
            }
        }
    }
    Ok(all_ok)
}
