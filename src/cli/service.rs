//! The service commands: `run` (the scheduler until a stop signal), `once` (one pass, or
//! its plan with `--dry-run`) and `health` (probe a running daemon).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::failure::Failure;
use super::output::{emit, exit_code, render_summary};
use super::setup::{announce_paths, build_daemon, load, shutdown_signal};
use crate::app::{Daemon, Mode};
use crate::config::Config;
use crate::pass::PassReport;
use crate::progress::Progress;
use crate::server;
use crate::untrusted::{LOG_FIELD_MAX, cell, sanitize};

pub async fn run(
    config_path: Option<&Path>,
    run_at_start: bool,
    create_dirs: bool,
) -> Result<ExitCode, Failure> {
    let config = load_to_write(config_path, create_dirs)?;
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
    create_dirs: bool,
) -> Result<ExitCode, Failure> {
    let config = load_to_write(config_path, create_dirs)?;
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

/// The config of a command that archives, `--create-dirs` folded in; the paths it names
/// (and where they came from) logged before anything is opened.
fn load_to_write(config_path: Option<&Path>, create_dirs: bool) -> Result<Config, Failure> {
    let mut config = load(config_path)?;
    config.settings.daemon.create_dirs |= create_dirs;
    announce_paths(&config, config_path);
    Ok(config)
}

/// Exit 0 when the daemon at `url` says it is healthy, 1 when not; prints what it said.
pub async fn health(url: &str, timeout: Duration) -> Result<ExitCode, Failure> {
    // A URL that cannot be one is the caller's mistake (exit 2), not an unhealthy daemon.
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
        Ok(_) => {
            return Err(bad_health_url(
                url,
                "it is not http:// or https:// with a host",
            ));
        }
        Err(e) => return Err(bad_health_url(url, &e.to_string())),
    }
    let (healthy, body) = server::probe(url, timeout)
        .await
        .with_context(|| format!("cannot probe {url}"))
        .map_err(Failure::runtime)?;
    // Whatever listens at that URL wrote the body (the daemon, or whatever took its port):
    // each line is shown escaped and scrubbed, so nothing reaches the terminal raw, and
    // the daemon's own answer reads as it is.
    let lines: Vec<String> = body
        .lines()
        .map(|line| sanitize(line, LOG_FIELD_MAX))
        .collect();
    emit(&format!("{}\n", lines.join("\n")))?;
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn bad_health_url(url: &str, why: &str) -> Failure {
    Failure::config(anyhow::anyhow!(
        "--url {}: not a URL to probe ({why}); write it like http://127.0.0.1:9754/healthz",
        cell(url)
    ))
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
