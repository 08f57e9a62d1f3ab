//! The command line: clap definitions and dispatch.
//!
//! Exit codes: 0 success, 1 a pass failed (or another runtime failure), 2 a configuration or
//! usage error (clap's own usage errors exit 2 too).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{Daemon, Mode};
use crate::config::{Config, LogFormat};
use crate::demo;
use crate::operator::{self, LedgerCommand};
use crate::pass::PassReport;
use crate::progress::Progress;
use crate::server;

pub mod failure;
pub mod output;
pub mod setup;

use failure::Failure;
use output::{cell, exit_code, render_summary};
use setup::{Location, build_daemon, load, shutdown_signal, start_telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "report-archiver",
    version,
    about = "Keeps a complete, verified, local archive of the stored usage reports of Acronis Cyber Protect Cloud"
)]
pub struct Cli {
    /// Config file [default: /etc/report-archiver/config.toml]
    #[arg(long, short, global = true, env = "REPORT_ARCHIVER_CONFIG")]
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
    },
    /// One pass for every account, then exit: 0 all archived, 1 something failed
    Once {
        /// List what would be fetched (items, bytes) and write nothing
        #[arg(long)]
        dry_run: bool,
        /// Only this account
        #[arg(long)]
        account: Option<String>,
    },
    /// Load and validate the config, then print the effective settings (secrets masked)
    CheckConfig,
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
    /// The reports the API client can see, their settings, and how much of each is archived
    Reports {
        /// Only this account
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// What the ledger holds: list, stats, export
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
        #[command(flatten)]
        location: Location,
    },
    /// Re-hash every archived file against the ledger: 0 intact, 1 findings
    Verify {
        /// Quarantine changed files and fetch missing and changed items again
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Delete archived files older than `[archive] keep`; the ledger marks them pruned
    Prune {
        /// List what would be deleted and delete nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout
    Man,
}

pub async fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Run { no_initial_pass } => {
            let config = load(cli.config.as_deref())?;
            run(config, !no_initial_pass).await
        }
        Command::Once { dry_run, account } => {
            let config = load(cli.config.as_deref())?;
            once(config, dry_run, account.as_deref()).await
        }
        Command::CheckConfig => {
            let config = load(cli.config.as_deref())?;
            let toml = config.effective_toml();
            print!("{toml}");
            if !toml.ends_with('\n') {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::FakeCloud(args) => {
            start_telemetry(LogFormat::Auto, "info");
            let shutdown = shutdown_signal();
            demo::serve_fake_cloud(args, shutdown)
                .await
                .map_err(Failure::runtime)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            start_telemetry(LogFormat::Auto, "warn");
            let reports = demo::run_demo(args).await.map_err(Failure::runtime)?;
            Ok(exit_code(&reports))
        }
        Command::Health { url, timeout } => {
            let (healthy, body) = server::probe(&url, timeout)
                .await
                .with_context(|| format!("cannot probe {url}"))
                .map_err(Failure::runtime)?;
            println!("{body}");
            Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Reports {
            account,
            json,
            location,
        } => operator::reports(cli.config.as_deref(), &location, account.as_deref(), json).await,
        Command::Ledger { command, location } => {
            operator::ledger(cli.config.as_deref(), &location, command).await
        }
        Command::Verify {
            repair,
            json,
            location,
        } => operator::verify(cli.config.as_deref(), &location, repair, json).await,
        Command::Prune { dry_run, json } => {
            operator::prune(cli.config.as_deref(), dry_run, json).await
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "report-archiver", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .context("cannot write the man page")
                .map_err(Failure::runtime)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run(config: Config, run_at_start: bool) -> Result<ExitCode, Failure> {
    let shutdown = shutdown_signal();
    let daemon = Daemon::build(config, Mode::Service)
        .await
        .map_err(Failure::starting)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "report-archiver started"
    );
    daemon
        .run_until_stopped(run_at_start, shutdown)
        .await
        .context("the daemon failed")
        .map_err(Failure::runtime)?;
    Ok(ExitCode::SUCCESS)
}

async fn once(config: Config, dry_run: bool, account: Option<&str>) -> Result<ExitCode, Failure> {
    let mode = if dry_run { Mode::DryRun } else { Mode::Archive };
    let mut daemon = build_daemon(config, mode, account).await?;
    let progress = if dry_run {
        Progress::hidden()
    } else {
        Progress::on_terminal("archiving")
    };
    daemon.set_progress(progress.clone());
    let reports = daemon.run_once().await;
    progress.finish();
    daemon.close().await;
    if dry_run {
        print!("{}", render_plan(&reports));
    } else {
        print!("{}", render_summary(&reports));
    }
    Ok(exit_code(&reports))
}

fn render_plan(reports: &[PassReport]) -> String {
    let mut out = String::new();
    for pass in reports {
        if let Some(e) = &pass.error {
            out.push_str(&format!("{}: FAILED: {}\n", pass.account, cell(e)));
            continue;
        }
        let bytes: u64 = pass.planned.iter().filter_map(|p| p.size).sum();
        out.push_str(&format!(
            "{}: would fetch {} item(s), {} byte(s) on the wire\n",
            pass.account,
            pass.planned.len(),
            bytes
        ));
        for p in &pass.planned {
            let size = p.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
            out.push_str(&format!(
                "  {} {} {} {}\n",
                cell(&p.report_id),
                cell(&p.stored_id),
                cell(&p.format),
                size
            ));
        }
        for r in pass.reports.iter().filter(|r| r.error.is_some()) {
            out.push_str(&format!(
                "  {}: FAILED: {}\n",
                cell(&r.report_id),
                cell(r.error.as_deref().unwrap_or(""))
            ));
        }
    }
    out
}
