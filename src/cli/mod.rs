//! The command line: clap definitions and dispatch.
//!
//! Each command's handler is a module here (`service`, `check`, `demo`, `reports`, `report_admin`,
//! `ledger`, `verify`, `prune`, `docs`). What they share sits below them, in `failure`, `setup` and `output`:
//! handlers import from there, never from this dispatcher, so nothing but the binary
//! depends on the top.
//!
//! Exit codes: 0 success, 1 a pass failed (or another runtime failure), 2 a configuration or
//! usage error (clap's own usage errors exit 2 too).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

pub mod check;
pub mod demo;
pub mod docs;
pub mod failure;
pub mod ledger;
pub mod output;
pub mod prune;
pub mod report_admin;
pub mod reports;
pub mod service;
pub mod setup;
pub mod verify;

use failure::Failure;
use ledger::LedgerCommand;
use setup::{ConfigArg, Location};

#[derive(Debug, Parser)]
#[command(
    name = "report-archiver",
    version,
    about = "Keeps a complete, verified, local archive of the stored usage reports of Acronis Cyber Protect Cloud"
)]
pub struct Cli {
    /// The config file given before the command (`report-archiver --config FILE run`, as
    /// the systemd unit does). Hidden: each command that reads the config offers
    /// `-c/--config` itself, and the others refuse it here.
    #[arg(long, short, hide = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as a service: one pass per account on its cron schedule until SIGTERM/SIGINT
    Run {
        /// Wait for the first cron tick instead of passing once at start
        #[arg(long)]
        no_initial_pass: bool,
        /// Create missing parent folders of archive.dir and ledger.path (as [daemon] create_dirs)
        #[arg(long)]
        create_dirs: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// One pass for every account, then exit: 0 all archived, 1 something failed
    Once {
        /// List what would be fetched (items, bytes) and write nothing
        #[arg(long)]
        dry_run: bool,
        /// Only this account
        #[arg(long)]
        account: Option<String>,
        /// Create missing parent folders of archive.dir and ledger.path (as [daemon] create_dirs)
        #[arg(long)]
        create_dirs: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Load and validate the config, print the effective settings (secrets masked), check
    /// the archive and ledger paths; 0 good, 2 config or path wrong, 1 an account failed
    CheckConfig {
        /// Also get a token per account and count the reports it sees (asks the cloud)
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Serve the built-in fake cloud API on loopback, to try the daemon without an account
    FakeCloud(demo::FakeCloudArgs),
    /// Archive from a built-in fake cloud into ./demo-archive (config written to ./demo.toml)
    Demo(demo::DemoArgs),
    /// Probe a running daemon's /healthz (needs [server] listen): exit 0 healthy, 1 not
    Health {
        /// The /healthz URL; reads no config, so it needs no secret
        #[arg(
            long,
            env = "REPORT_ARCHIVER_HEALTH_URL",
            default_value = "http://127.0.0.1:9754/healthz"
        )]
        url: String,
        /// Give up after this long (humantime, e.g. 5s)
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// The reports the API client can see, their settings, and how much of each is archived;
    /// `reports create` makes one that stores its results, `reports delete` removes one
    Reports {
        #[command(subcommand)]
        command: Option<report_admin::ReportsCommand>,
        /// Only this account
        #[arg(long)]
        account: Option<String>,
        /// Print JSON instead of the table
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// What the ledger holds: list, stats, export
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
        #[command(flatten)]
        location: Location,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Re-hash every archived file against the ledger: 0 intact, 1 findings
    Verify {
        /// Quarantine changed files and fetch missing and changed items again
        #[arg(long)]
        repair: bool,
        /// Print the findings as JSON instead of lines
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Delete archived files older than `[archive] keep`; the ledger marks them pruned
    Prune {
        /// List what would be deleted and delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Print what was (or would be) deleted as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a shell completion script
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write one per command into a folder
    Man {
        /// Write every page (report-archiver.1, report-archiver-run.1, …) into this folder
        /// instead of printing the top one
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// The config file this command reads: `--config` before the command, else its own
    /// `-c/--config` (or `$REPORT_ARCHIVER_CONFIG`); `None` for a command that reads none.
    fn config_arg(&self) -> Option<&ConfigArg> {
        match self {
            Self::Run { config, .. }
            | Self::Once { config, .. }
            | Self::CheckConfig { config, .. }
            | Self::Reports { config, .. }
            | Self::Ledger { config, .. }
            | Self::Verify { config, .. }
            | Self::Prune { config, .. } => Some(config),
            Self::FakeCloud(_)
            | Self::Demo(_)
            | Self::Health { .. }
            | Self::Completions { .. }
            | Self::Man { .. } => None,
        }
    }
}

pub async fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    let reads = cli.command.config_arg();
    if cli.config.is_some() && reads.is_none() {
        return Err(Failure::config(anyhow::anyhow!(
            "this command reads no config file; drop --config (run, once, check-config, reports, ledger, verify and prune read one)"
        )));
    }
    let path = cli
        .config
        .clone()
        .or_else(|| reads.and_then(|r| r.config.clone()));
    let config_path = path.as_deref();
    match cli.command {
        Command::Run {
            no_initial_pass,
            create_dirs,
            ..
        } => service::run(config_path, !no_initial_pass, create_dirs).await,
        Command::Once {
            dry_run,
            account,
            create_dirs,
            ..
        } => service::once(config_path, dry_run, account.as_deref(), create_dirs).await,
        Command::CheckConfig { online, .. } => check::check_config(config_path, online).await,
        Command::FakeCloud(args) => demo::fake_cloud(args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Health { url, timeout } => service::health(&url, timeout).await,
        Command::Reports {
            command: Some(command),
            account,
            ..
        } => report_admin::run(config_path, command, account).await,
        Command::Reports {
            command: None,
            account,
            json,
            location,
            ..
        } => reports::reports(config_path, &location, account.as_deref(), json).await,
        Command::Ledger {
            command, location, ..
        } => ledger::ledger(config_path, &location, command).await,
        Command::Verify {
            repair,
            json,
            location,
            ..
        } => verify::verify(config_path, &location, repair, json).await,
        Command::Prune { dry_run, json, .. } => prune::prune(config_path, dry_run, json).await,
        Command::Completions { shell } => docs::completions(shell, Cli::command()),
        Command::Man { dir } => docs::man(Cli::command(), dir.as_deref()),
    }
}
