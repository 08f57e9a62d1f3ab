//! `reports create` and `reports delete`: the two commands that change what the cloud
//! holds. Only `save` reports store results the archiver can fetch, and a new tenant may
//! have none (portal-scheduled reports are e-mailed): `create` makes one as the vendor
//! documents it. `delete` clears the once-reports integrations leave behind.
//!
//! `create` prints the new report's id alone on stdout (for scripts); what it means goes
//! to stderr. Nothing is retried: a create sent twice would make two reports.

use std::path::Path;
use std::process::ExitCode;

use clap::builder::PossibleValuesParser;

use super::failure::Failure;
use super::output::emit;
use super::setup::{load, no_account};
use crate::app::cloud_clients;
use crate::config::{Account, Config};
use crate::reports::{
    BILLING_FORMATS, CreateRequest, FORMATS, KINDS, LEVELS, ReportsError, ScheduleType,
};
use crate::untrusted::cell;

#[derive(Debug, clap::Subcommand)]
pub enum ReportsCommand {
    /// Create a report that stores its results (result_action save), for the archiver to
    /// fetch; prints its id. Needs an administrator API client (not read-only)
    Create(CreateArgs),
    /// Delete a report (e.g. the once-reports an integration left); reads its version first
    Delete {
        /// The report's id (`report-archiver reports` lists them)
        id: String,
        /// The account whose API client sees it (needed when the config has several)
        #[arg(long)]
        account: Option<String>,
        /// Delete only if the report is still at this version [default: its current one]
        #[arg(long)]
        version: Option<i64>,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The account whose API client creates it (needed when the config has several)
    #[arg(long)]
    pub account: Option<String>,
    /// Formats, comma-separated [default: csv_v2_0,json_v2_0, the billing formats]
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(FORMATS))]
    pub formats: Vec<String>,
    /// `monthly`: generated every month; `once`: generated now, once
    #[arg(long, value_enum, default_value_t = Schedule::Monthly)]
    pub schedule: Schedule,
    /// What the report measures (the vendor's billing integration uses usage_current)
    #[arg(long, default_value = "usage_current", value_parser = PossibleValuesParser::new(KINDS))]
    pub kind: String,
    /// Whose usage it covers (`accounts`: every customer down to user accounts)
    #[arg(long, default_value = "accounts", value_parser = PossibleValuesParser::new(LEVELS))]
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Schedule {
    Monthly,
    Once,
}

/// `reports create` or `reports delete`; `account` is the one named before the
/// subcommand (`reports --account A create`), if any.
pub async fn run(
    config_path: Option<&Path>,
    command: ReportsCommand,
    account: Option<String>,
) -> Result<ExitCode, Failure> {
    let config = load(config_path)?;
    match command {
        ReportsCommand::Create(args) => {
            let name = args.account.clone().or(account);
            create(&config, name.as_deref(), args).await
        }
        ReportsCommand::Delete {
            id,
            account: name,
            version,
        } => delete(&config, name.or(account).as_deref(), &id, version).await,
    }
}

async fn create(
    config: &Config,
    name: Option<&str>,
    args: CreateArgs,
) -> Result<ExitCode, Failure> {
    let formats = if args.formats.is_empty() {
        BILLING_FORMATS.map(String::from).to_vec()
    } else {
        args.formats
    };
    let schedule = match args.schedule {
        Schedule::Monthly => ScheduleType::Monthly,
        Schedule::Once => ScheduleType::Once,
    };
    let request = CreateRequest {
        kind: args.kind,
        level: args.level,
        formats,
        schedule,
    };
    let clients = cloud_clients(config).map_err(Failure::starting)?;
    let (account, client) = pick(clients, name)?;
    let id = crate::reports::create(account, &client, &request)
        .await
        .map_err(failure)?;
    emit(&format!("{}\n", cell(&id)))?;
    let when = match schedule {
        ScheduleType::Once => "its items are generated now (a minute or two)",
        ScheduleType::Monthly => "the cloud generates it every month",
    };
    eprintln!(
        "created report {} for account `{}`: {} / {}, formats {}, result_action save; {when}, and the next pass archives each item once it is saved",
        cell(&id),
        cell(&account.name),
        request.kind,
        request.level,
        request.formats.join(",")
    );
    warn_if_not_archived(account, &request.formats, &id);
    Ok(ExitCode::SUCCESS)
}

/// The account's config may keep the new report from being archived: say how.
fn warn_if_not_archived(account: &Account, formats: &[String], id: &str) {
    if !account.reports.is_empty() {
        eprintln!(
            "note: account `{}` lists its reports in the config (`reports`); add {} there for the passes to archive it",
            cell(&account.name),
            cell(id)
        );
    }
    let excluded: Vec<&str> = formats
        .iter()
        .filter(|f| !account.formats.is_empty() && !account.formats.contains(f))
        .map(String::as_str)
        .collect();
    if !excluded.is_empty() {
        eprintln!(
            "note: account `{}` archives only the formats {}; {} will not be archived",
            cell(&account.name),
            cell(&account.formats.join(",")),
            excluded.join(",")
        );
    }
}

async fn delete(
    config: &Config,
    name: Option<&str>,
    id: &str,
    version: Option<i64>,
) -> Result<ExitCode, Failure> {
    let clients = cloud_clients(config).map_err(Failure::starting)?;
    let (account, client) = pick(clients, name)?;
    let deleted = crate::reports::delete(account, &client, id, version)
        .await
        .map_err(failure)?;
    emit(&format!(
        "deleted report {} (version {deleted}) of account `{}`\n",
        cell(id),
        cell(&account.name)
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The named account and its client, or the only one when none is named.
fn pick<'a, T>(
    mut clients: Vec<(&'a Account, T)>,
    name: Option<&str>,
) -> Result<(&'a Account, T), Failure> {
    match name {
        Some(name) => clients.retain(|(a, _)| a.name == name),
        None if clients.len() > 1 => {
            let names: Vec<&str> = clients.iter().map(|(a, _)| a.name.as_str()).collect();
            return Err(Failure::config(anyhow::anyhow!(
                "the config has {} accounts ({}); name one with --account",
                names.len(),
                names.join(", ")
            )));
        }
        None => {}
    }
    match (clients.pop(), name) {
        (Some(pair), _) => Ok(pair),
        (None, Some(name)) => Err(no_account(name)),
        (None, None) => Err(Failure::config(anyhow::anyhow!(
            "the config has no account"
        ))),
    }
}

/// A write that failed: exit 1, its message as the crate's error says it.
fn failure(e: ReportsError) -> Failure {
    Failure::runtime(e)
}
