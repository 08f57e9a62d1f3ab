//! The service commands: `run` (the scheduler until a stop signal), `once` (one pass, or
//! its plan with `--dry-run`), `check-config` and `health` (probe a running daemon).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::failure::Failure;
use super::output::{emit, exit_code, render_summary};
use super::setup::{build_daemon, load, shutdown_signal};
use crate::app::{Daemon, Mode};
use crate::pass::PassReport;
use crate::progress::Progress;
use crate::server;
use crate::untrusted::cell;

pub async fn run(config_path: Option<&Path>, run_at_start: bool) -> Result<ExitCode, Failure> {
    let config = load(config_path)?;
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

pub async fn once(
    config_path: Option<&Path>,
    dry_run: bool,
    account: Option<&str>,
) -> Result<ExitCode, Failure> {
    let config = load(config_path)?;
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
    // Through `emit`: `once | head` ends quietly, not with a broken-pipe panic.
    if dry_run {
        emit(&render_plan(&reports))?;
    } else {
        emit(&render_summary(&reports))?;
    }
    Ok(exit_code(&reports))
}

/// Prints the effective settings, secrets masked.
pub fn check_config(config_path: Option<&Path>) -> Result<ExitCode, Failure> {
    let config = load(config_path)?;
    let toml = config.effective_toml();
    print!("{toml}");
    if !toml.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 0 when the daemon at `url` says it is healthy, 1 when not; prints what it said.
pub async fn health(url: &str, timeout: Duration) -> Result<ExitCode, Failure> {
    let (healthy, body) = server::probe(url, timeout)
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
