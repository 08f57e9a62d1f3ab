//! A real S3-compatible server for the S3 target's tests: s3s-fs 0.14.1 on 127.0.0.1.
//!
//! The binary is installed once per target dir (`<target>/tools/bin/s3s-fs`) by `cargo
//! install`, under a file lock, since test threads (and test binaries) race for it; `.ci/run`
//! installs it before `cargo test`, so CI only finds it there. Its data are plain files:
//! `<root>/<bucket>/<key>`, and an open multipart upload is `<root>/.upload-<id>.json`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use report_archiver::api::ReportFormat;
use report_archiver::archive::{Archive, ArchiveTarget};
use report_archiver::fake_cloud::StoredView;
use tempfile::TempDir;

use crate::support::ACCOUNT;

pub const BUCKET: &str = "archive";
pub const ACCESS_KEY: &str = "AK";
pub const SECRET_KEY: &str = "SK";
const VERSION: &str = "0.14.1";

pub struct S3Server {
    child: Child,
    pub root: TempDir,
    /// The access key files the config names.
    keys: TempDir,
    port: u16,
    pub endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `<target>`: the test binary's executable lives in `<target>/debug/deps/`.
fn target_dir() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_report-archiver"));
    bin.parent()
        .and_then(Path::parent)
        .expect("the binary sits in <target>/<profile>/")
        .to_owned()
}

/// Where the test servers are installed: `<target>/tools`.
pub fn tools_dir() -> PathBuf {
    target_dir().join("tools")
}

/// The s3s-fs binary, installed on first use.
fn s3s_fs() -> PathBuf {
    let tools = tools_dir();
    let bin = tools.join("bin").join("s3s-fs");
    std::fs::create_dir_all(&tools).expect("tools dir");
    let lock = std::fs::File::create(tools.join(".install.lock")).expect("lock file");
    lock.lock().expect("lock the tools dir");
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["install", "s3s-fs", "--version", VERSION])
            .args(["--features", "binary", "--locked", "--root"])
            .arg(&tools)
            // Its own build dir: the outer `cargo test` holds the workspace target's lock.
            .env("CARGO_TARGET_DIR", tools.join("build"))
            .status()
            .expect("cargo install runs");
        assert!(status.success(), "cargo install s3s-fs {VERSION} failed");
    }
    bin
}

/// Starts s3s-fs on a free loopback port with an empty bucket [`BUCKET`].
pub fn start() -> S3Server {
    let root = tempfile::tempdir().expect("s3 root");
    std::fs::create_dir(root.path().join(BUCKET)).expect("bucket dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    S3Server {
        child: spawn(root.path(), port),
        root,
        keys: tempfile::tempdir().expect("key dir"),
        port,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

fn spawn(root: &Path, port: u16) -> Child {
    let child = Command::new(s3s_fs())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs starts");
    // Ready once it accepts connections; a bounded wait, not a fixed sleep.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl S3Server {
    /// Takes the server down: connections to its port are refused.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Serves the same data on the same port again.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.root.path(), self.port);
    }

    /// The object at `key`, read from s3s-fs's own files.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.path().join(BUCKET).join(key)).ok()
    }

    /// Puts an object behind the server's back (a foreign object already at a key).
    pub fn plant(&self, key: &str, bytes: &[u8]) {
        let path = self.root.path().join(BUCKET).join(key);
        std::fs::create_dir_all(path.parent().expect("key has a folder")).expect("mkdir");
        std::fs::write(path, bytes).expect("plant object");
    }

    /// Multipart uploads the server still holds open.
    pub fn open_uploads(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.root.path())
            .expect("s3 root")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload-") && n.ends_with(".json"))
            .collect();
        out.sort();
        out
    }

    /// Every object key in the bucket, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect(&self.root.path().join(BUCKET), "", &mut out);
        out.sort();
        out
    }

    /// The `[archive.s3]` section for this server (keys in files, 5 MiB parts).
    pub fn config_section(&self, prefix: &str) -> String {
        s3_section(
            self.keys.path(),
            &self.endpoint,
            BUCKET,
            prefix,
            (ACCESS_KEY, SECRET_KEY),
            "",
        )
    }
}

/// An `[archive.s3]` section for a test server at `endpoint`: the access key pair written to
/// files in `keys_dir` (mode 0600, as the config checks), 5 MiB parts, then `extra` lines.
pub fn s3_section(
    keys_dir: &Path,
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    (access_key, secret_key): (&str, &str),
    extra: &str,
) -> String {
    let id_file = keys_dir.join("s3-access-key-id");
    let secret_file = keys_dir.join("s3-secret-access-key");
    for (path, value) in [(&id_file, access_key), (&secret_file, secret_key)] {
        std::fs::write(path, value).expect("key file");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    format!(
        "[archive.s3]\nbucket = {bucket:?}\nprefix = {prefix:?}\nregion = \"us-east-1\"\n\
         endpoint = {endpoint:?}\naccess_key_id_file = {id:?}\nsecret_access_key_file = {secret:?}\n\
         part_size = \"5MiB\"\n{extra}\n",
        id = id_file.display().to_string(),
        secret = secret_file.display().to_string(),
    )
}

/// The full key of a stored item under `prefix`, named as the archive names it.
pub fn key_of(prefix: &str, report_id: &str, item: &StoredView) -> String {
    let format = ReportFormat::parse(&item.format);
    let target = ArchiveTarget {
        account: ACCOUNT,
        report_id,
        stored_id: &item.id,
        format: &format,
        created_at: item.created_at,
    };
    let relative = Archive::relative_path(&target, false).expect("a safe path");
    format!("{prefix}/{relative}")
}

fn collect(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if entry.path().is_dir() {
            collect(&entry.path(), &key, out);
        } else {
            out.push(key);
        }
    }
}
