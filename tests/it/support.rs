//! `TestApp`: a fake cloud on 127.0.0.1:0, a temp dir with the archive, ledger and config,
//! and helpers to drive the library or the real binary against them.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use report_archiver::app::{Daemon, Mode};
use report_archiver::config;
use report_archiver::fake_cloud::{FakeCloud, RunningFakeCloud};
use report_archiver::ledger::{ArchivedRow, Ledger};
use report_archiver::pass::PassReport;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

pub const ACCOUNT: &str = "acme";

/// Account settings a test may change; rendered into the config file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub formats: Vec<String>,
    pub reports: Vec<String>,
    pub keep_compressed: bool,
    pub schedule: Option<String>,
    /// Lines for the `[http]` section.
    pub http: String,
    /// Lines for the `[ledger]` section, besides `path`.
    pub ledger: String,
    /// The archive somewhere else than `<tmp>/archive` (e.g. a small tmpfs).
    pub archive_dir: Option<PathBuf>,
    pub concurrency: Option<usize>,
    /// `[log] format`; default `auto`.
    pub log_format: Option<String>,
    /// Whole sections (`[server]`, `[notify]`) put before the account.
    pub extra_sections: String,
    /// `[archive] keep`, the retention span.
    pub keep: Option<String>,
}

pub struct TestApp {
    pub fake: FakeCloud,
    pub cloud: RunningFakeCloud,
    pub dir: TempDir,
    pub config_path: PathBuf,
    pub archive_dir: PathBuf,
    pub ledger_path: PathBuf,
    /// The fake cloud served again after [`TestApp::take_cloud_down`]; dropping it stops it.
    revived: Option<tokio::sync::oneshot::Sender<()>>,
}

pub async fn spawn_app(fake: FakeCloud) -> TestApp {
    spawn_app_with(fake, Options::default()).await
}

pub async fn spawn_app_with(fake: FakeCloud, options: Options) -> TestApp {
    report_archiver::telemetry::init_for_tests();
    let cloud = fake.spawn().await.expect("fake cloud starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let app = TestApp {
        config_path: dir.path().join("config.toml"),
        archive_dir: dir.path().join("archive"),
        ledger_path: dir.path().join("state").join("ledger.db"),
        fake,
        cloud,
        dir,
        revived: None,
    };
    // As a service manager would (StateDirectory=): the daemon creates no parent folder
    // unless told to.
    std::fs::create_dir(app.dir.path().join("state")).expect("state dir");
    let secret = app.dir.path().join("secret");
    std::fs::write(&secret, FakeCloud::CLIENT_SECRET).expect("secret");
    // As an operator should keep it; a looser mode is logged as a warning.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    app.write_config(&app.config_toml(&options));
    app
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

impl TestApp {
    pub fn config_toml(&self, o: &Options) -> String {
        let schedule = o.schedule.as_deref().unwrap_or("0 0 0 1 1 * 2099");
        let archive = o.archive_dir.as_ref().unwrap_or(&self.archive_dir);
        format!(
            "[archive]\ndir = {archive:?}\nkeep_compressed = {keep}\n{retention}\n\
             [ledger]\npath = {ledger:?}\n{ledger_extra}\n\n\
             [http]\n{http}\n{rate}\n\
             [defaults]\nschedule = {schedule:?}\nconcurrency = {concurrency}\n\n\
             [daemon]\nshutdown_grace = \"10s\"\n\n\
             [log]\nlevel = \"info,report_archiver=debug\"\nformat = {log_format:?}\n\n\
             {extra}\n\
             [[accounts]]\nname = {ACCOUNT:?}\nbase_url = {base:?}\nclient_id = {client:?}\n\
             client_secret_file = {secret:?}\nformats = {formats}\nreports = {reports}\n",
            archive = archive.display().to_string(),
            ledger_extra = o.ledger,
            http = o.http,
            // The fake cloud is local: no rate to be polite to, unless a test says.
            rate = if o.http.contains("requests_per_second") {
                ""
            } else {
                "requests_per_second = 0"
            },
            concurrency = o.concurrency.unwrap_or(4),
            keep = o.keep_compressed,
            retention = o
                .keep
                .as_ref()
                .map(|k| format!("keep = {k:?}\n"))
                .unwrap_or_default(),
            ledger = self.ledger_path.display().to_string(),
            base = self.cloud.base_url,
            client = FakeCloud::CLIENT_ID,
            secret = self.dir.path().join("secret").display().to_string(),
            formats = toml_list(&o.formats),
            reports = toml_list(&o.reports),
            log_format = o.log_format.as_deref().unwrap_or("auto"),
            extra = o.extra_sections,
        )
    }

    pub fn write_config(&self, toml: &str) {
        std::fs::write(&self.config_path, toml).expect("write config");
    }

    /// Takes the fake cloud off its port (connections are refused) and returns the address,
    /// for [`TestApp::bring_cloud_back`]. An idle spare fake takes `cloud`'s place.
    pub async fn take_cloud_down(&mut self) -> SocketAddr {
        let spare = FakeCloud::new().spawn().await.expect("spare fake starts");
        let addr = self.cloud.addr;
        std::mem::replace(&mut self.cloud, spare).stop().await;
        addr
    }

    /// Serves the same fake (same state) on `addr` again.
    pub async fn bring_cloud_back(&mut self, addr: SocketAddr) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the fake cloud's port is free again");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(self.fake.clone().serve(listener, async move {
            let _ = rx.await;
        }));
        self.revived = Some(tx);
    }

    /// One pass per account through the library, as `once` does.
    pub async fn run_once(&self) -> Vec<PassReport> {
        self.run_mode(Mode::Archive).await
    }

    pub async fn run_mode(&self, mode: Mode) -> Vec<PassReport> {
        let config = config::load(Some(&self.config_path)).expect("config loads");
        let daemon = Daemon::build(config, mode).await.expect("daemon builds");
        let reports = daemon.run_once().await;
        daemon.close().await;
        reports
    }

    pub async fn ledger_rows(&self) -> Vec<ArchivedRow> {
        let ledger = Ledger::open(&self.ledger_path, std::time::Duration::from_secs(10))
            .await
            .expect("ledger opens");
        let rows = ledger.archived_rows().await.expect("rows");
        ledger.close().await;
        rows
    }

    /// Every file under the archive dir outside `.partial/`, relative, sorted.
    pub fn archived_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.archive_dir, &self.archive_dir, &mut out);
        out.retain(|p| !p.starts_with(".partial/"));
        out.sort();
        out
    }

    pub fn partial_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        let partial = self.archive_dir.join(".partial");
        walk(&partial, &partial, &mut out);
        out
    }

    /// The real binary with this app's config.
    pub fn bin(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_report-archiver"));
        cmd.arg("--config").arg(&self.config_path).args(args);
        cmd.env_remove("RUST_LOG");
        cmd
    }
}

/// The real binary with no config at all (for `--ledger PATH --archive DIR`).
pub fn bin_without_config(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_report-archiver"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("REPORT_ARCHIVER_CONFIG");
    cmd
}

/// Runs the binary and returns (exit code, stdout, stdout and stderr).
pub fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        output_text(&out),
    )
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
