//! `demo` and `fake-cloud`: the built-in fake cloud, for trying the daemon without an account.
//!
//! `demo` archives from an in-process fake cloud into `<dir>/demo-archive`, with its ledger at
//! `<dir>/demo-ledger.db` and the config it used at `<dir>/demo.toml`, so every other command
//! can be tried on the result. The fake client's secret goes to a file beside it, never to
//! the terminal.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::failure::Failure;
use super::output::{exit_code, render_summary, say};
use super::setup::{shutdown_signal, start_telemetry};
use crate::app::{Daemon, Mode};
use crate::config::{self, LogFormat};
use crate::fake_cloud::{BodyShape, FakeCloud, FakeStored, scenario};
use crate::pass::PassReport;

/// Every format the API documents.
pub const ALL_FORMATS: [&str; 5] = ["csv", "csv_v2_0", "json_v1", "json_v2_0", "html"];
/// The demo's data never changes, so a second run finds everything archived.
const DEMO_SEED: u64 = 42;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder for demo-archive/, demo-ledger.db, demo.toml and demo.secret
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Reports the fake cloud holds (each with every format, three generations)
    #[arg(long, default_value_t = 4)]
    pub reports: usize,
}

#[derive(Debug, clap::Args)]
pub struct FakeCloudArgs {
    /// Address to listen on (loopback only)
    #[arg(long, default_value = "127.0.0.1:8710")]
    pub listen: SocketAddr,
    /// Reports to seed
    #[arg(long, default_value_t = 5)]
    pub reports: usize,
    /// Seed of the generated data
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Formats of every report, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = ALL_FORMATS.map(String::from))]
    pub formats: Vec<String>,
    /// Where to write the fake API client's secret, for `client_secret_file`
    #[arg(long, default_value = "fake-cloud.secret")]
    pub secret_file: PathBuf,
    /// Add a new generation of stored items to every report this often (e.g. 30s)
    #[arg(long, value_parser = humantime_duration)]
    pub add_every: Option<Duration>,
    /// The data set: `seeded` (--reports × --formats, three generations), `big` (one
    /// --big-size item served plain), `big-gz` (the same, gzip with Content-Encoding),
    /// `many` (--reports × 4 formats, 8–64 KiB each). What the real cloud may do:
    /// `uncompressed-size` (seeded, listed sizes count the plain report), `recompressed`
    /// (seeded, gzip bodies re-compressed on the way), `skewed-clock` (seeded, token
    /// `expires_on` 3 h in the past), `deleted-report` (two reports, the second deleted after
    /// its first listing: later passes find it gone), `removed-item` (one report whose newest
    /// item is listed but answers 404: vanished at the second pass), `all-send`
    /// (--reports reports, every one e-mailed, nothing stored: what `reports create` is for),
    /// `big-tenant` (2,000 reports, 1,900 of them finished `once` reports, 100 monthly; 1% of
    /// requests get a 429 without Retry-After; --reports is ignored)
    #[arg(long, value_enum, default_value_t = Scenario::Seeded)]
    pub scenario: Scenario,
    /// Size of the `big` scenarios' item, in bytes
    #[arg(long, default_value_t = 1 << 30)]
    pub big_size: usize,
    /// Added to every response (e.g. 5ms)
    #[arg(long, value_parser = humantime_duration)]
    pub latency: Option<Duration>,
    /// Write every download URL (one per line) to this file, for peers that fetch by URL
    #[arg(long)]
    pub urls_file: Option<PathBuf>,
    /// Also write the config it prints (complete: archive, ledger, account) to this file
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Seeded,
    Big,
    BigGz,
    Many,
    UncompressedSize,
    Recompressed,
    SkewedClock,
    DeletedReport,
    RemovedItem,
    AllSend,
    BigTenant,
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s).map_err(|e| e.to_string())
}

/// `fake-cloud`: serves until SIGTERM/SIGINT.
pub async fn fake_cloud(args: FakeCloudArgs) -> Result<ExitCode, Failure> {
    start_telemetry(LogFormat::Auto, "info");
    let shutdown = shutdown_signal();
    serve_fake_cloud(args, shutdown)
        .await
        .map_err(Failure::runtime)?;
    Ok(ExitCode::SUCCESS)
}

/// `demo`: exit 0 when every pass succeeded, as `once`.
pub async fn demo(args: DemoArgs) -> Result<ExitCode, Failure> {
    start_telemetry(LogFormat::Auto, "warn");
    let reports = run_demo(args).await.map_err(Failure::runtime)?;
    Ok(exit_code(&reports))
}

pub async fn serve_fake_cloud(
    args: FakeCloudArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "the fake cloud listens on loopback only, not {}",
        args.listen
    );
    let formats: Vec<&str> = args.formats.iter().map(String::as_str).collect();
    let fake = match args.scenario {
        Scenario::Seeded => FakeCloud::seeded(args.seed, args.reports, &formats),
        Scenario::Big => scenario::big(args.big_size, BodyShape::Plain),
        Scenario::BigGz => scenario::big(args.big_size, BodyShape::GzipWithHeader),
        Scenario::Many => scenario::many(args.reports, args.seed),
        Scenario::UncompressedSize => {
            scenario::uncompressed_size(args.seed, args.reports, &formats)
        }
        Scenario::Recompressed => scenario::recompressed(args.seed, args.reports, &formats),
        Scenario::SkewedClock => scenario::skewed_clock(args.seed, args.reports, &formats),
        Scenario::DeletedReport => scenario::deleted_report(),
        Scenario::RemovedItem => scenario::removed_item(),
        Scenario::AllSend => scenario::all_send(args.reports, &formats),
        Scenario::BigTenant => scenario::big_tenant(scenario::BIG_TENANT_REPORTS, args.seed),
    };
    if let Some(latency) = args.latency {
        fake.set_latency(latency);
    }
    write_secret(&args.secret_file)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("listener address")?;
    if let Some(path) = &args.urls_file {
        let urls: Vec<String> = fake
            .download_paths()
            .into_iter()
            .map(|p| format!("http://{addr}{p}\n"))
            .collect();
        std::fs::write(path, urls.concat())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let config = fake_cloud_config(addr, &args.secret_file);
    if let Some(path) = &args.write_config {
        std::fs::write(path, &config)
            .with_context(|| format!("cannot write the config to {}", path.display()))?;
    }
    say(&format!("fake cloud listening on http://{addr}\n"));
    match &args.write_config {
        Some(path) => say(&format!(
            "config written to {}; it is this:\n\n",
            absolute(path).display()
        )),
        None => say("use it with this config (a complete file):\n\n"),
    }
    say(&format!("{config}\n"));
    if let Some(every) = args.add_every {
        let fake = fake.clone();
        let formats = args.formats.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                add_generation(&fake, &formats);
            }
        });
    }
    fake.serve(listener, shutdown)
        .await
        .context("the fake cloud failed")
}

/// A config that works as is with the fake cloud at `addr`. Archive and ledger are
/// relative paths, so they land in the folder `once` or `run` is started in (the test of a
/// snippet is to run it in an empty folder); the secret file is absolute, since it stays
/// where `fake-cloud` wrote it.
pub fn fake_cloud_config(addr: SocketAddr, secret_file: &Path) -> String {
    format!(
        "# For `report-archiver fake-cloud` on {addr}. Relative paths are relative to the\n\
         # folder report-archiver is started in; `once` logs the absolute ones it uses.\n\
         [archive]\ndir = \"fake-archive\"\n\n\
         [ledger]\npath = \"fake-ledger.db\"\n\n\
         # The fake cloud is on this machine: no rate to be polite to.\n\
         [http]\nrequests_per_second = 0\n\n\
         [[accounts]]\nname = \"fake\"\nbase_url = \"http://{addr}\"\nclient_id = {client:?}\n\
         client_secret_file = {secret:?}\n",
        client = FakeCloud::CLIENT_ID,
        secret = absolute(secret_file).display().to_string(),
    )
}

/// One new stored item per format in every report that stores results.
pub fn add_generation(fake: &FakeCloud, formats: &[String]) {
    let now = chrono::Utc::now();
    for report_id in fake.report_ids() {
        if fake.stored(&report_id).is_empty() {
            continue; // `send` reports store nothing
        }
        for format in formats {
            let content = format!(
                "tenant,metric,value\ndemo,generated_at,{}\n",
                now.to_rfc3339()
            );
            let mut item = FakeStored::new(format, content.into_bytes());
            item.created_at = now;
            fake.add_stored(&report_id, item);
        }
    }
    tracing::info!("fake cloud: added a generation of stored items");
}

pub async fn run_demo(args: DemoArgs) -> anyhow::Result<Vec<PassReport>> {
    let dir = absolute(&args.dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let fake = FakeCloud::seeded(DEMO_SEED, args.reports, &ALL_FORMATS);
    let running = fake.spawn().await.context("cannot start the fake cloud")?;

    let secret_file = dir.join("demo.secret");
    write_secret(&secret_file)?;
    let config_path = dir.join("demo.toml");
    let archive_dir = dir.join("demo-archive");
    let ledger_path = dir.join("demo-ledger.db");
    let toml = format!(
        "# Written by `report-archiver demo`; try `report-archiver --config {config} ledger stats`\n\
         # and the other ledger and verify commands on it. The binary is target/release/report-archiver\n\
         # after `cargo build --release` (or `cargo run --release --`), or on your PATH after\n\
         # `cargo install --path .`. The fake cloud it names is gone once the demo exits.\n\
         [archive]\ndir = {archive:?}\n\n[ledger]\npath = {ledger:?}\n\n\
         # The fake cloud is this process: no rate to be polite to.\n\
         [http]\nrequests_per_second = 0\n\n\
         [[accounts]]\nname = \"demo\"\nbase_url = {base:?}\nclient_id = {client:?}\n\
         client_secret_file = {secret:?}\n",
        config = config_path.display(),
        archive = archive_dir.display().to_string(),
        ledger = ledger_path.display().to_string(),
        base = running.base_url,
        client = FakeCloud::CLIENT_ID,
        secret = secret_file.display().to_string(),
    );
    std::fs::write(&config_path, toml)
        .with_context(|| format!("cannot write {}", config_path.display()))?;

    let config = config::load(Some(&config_path)).context("the demo config is invalid")?;
    let daemon = Daemon::build(config, Mode::Archive).await?;
    let reports = daemon.run_once().await;
    daemon.close().await;
    running.stop().await;

    say(&render_summary(&reports));
    let fetched: u64 = reports.iter().map(PassReport::fetched).sum();
    let skipped: u64 = reports.iter().map(PassReport::skipped).sum();
    say(&format!(
        "\narchived {fetched} new file(s) ({skipped} already there) into {}\nledger: {}\nconfig: {}\n",
        archive_dir.display(),
        ledger_path.display(),
        config_path.display()
    ));
    say("\ntry next:\n");
    for command in try_next(&args.dir) {
        say(&format!("  {command}\n"));
    }
    Ok(reports)
}

/// Three commands on what the demo left, written so that they work as printed from the
/// folder the demo ran in: this very binary (by the name a shell finds it under, else its
/// path) and the config as `--dir` named it.
pub fn try_next(dir: &Path) -> [String; 3] {
    let program = program_name();
    let config = shell_word(&dir.join("demo.toml").display().to_string());
    [
        format!("{program} --config {config} ledger stats"),
        format!("{program} --config {config} verify"),
        format!("{program} --config {config} ledger list --format csv"),
    ]
}

/// `report-archiver` when that name on `$PATH` is this binary; else this binary's path,
/// relative to the working folder when it is below it (`target/release/report-archiver`).
fn program_name() -> String {
    let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "report-archiver".to_owned();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::canonicalize(dir.join("report-archiver")).is_ok_and(|found| found == exe)
        })
    });
    if on_path {
        return "report-archiver".to_owned();
    }
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize);
    let shown = match cwd.as_ref().map(|cwd| exe.strip_prefix(cwd)) {
        Ok(Ok(relative)) => format!("./{}", relative.display()),
        _ => exe.display().to_string(),
    };
    shell_word(&shown)
}

/// `word` quoted for a POSIX shell when it holds anything but plain path characters.
fn shell_word(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':'));
    if plain && !word.is_empty() {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn write_secret(path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, FakeCloud::CLIENT_SECRET)
        .with_context(|| format!("cannot write the fake client secret to {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
