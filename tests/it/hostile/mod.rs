//! Hostile servers: a raw HTTP/1.1 server on 127.0.0.1 whose every answer is a script of
//! bytes, pauses and hang-ups, so a test can send what no well-behaved framework would
//! (bodies cut short, drips, gigabytes, forged headers, echoed credentials).
//!
//! - [`Hostile`]: the server; its handler maps a [`Request`] to a [`Reply`].
//! - [`HostileApp`]: a temp dir with archive, ledger, secret and a config pointing at it,
//!   and the real binary to run against it.
//! - [`benign`]: the well-behaved answer of each endpoint, for a test to override one.

// Helpers are shared by the hostile test files; not every one uses each of them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod disk;
mod net;
mod text;
mod tls;

/// The client the hostile configs use, and its secret (long enough to be redacted).
pub const CLIENT_ID: &str = "hostile-client-0001";
pub const SECRET: &str = "s3cr3t-Hostile-Client-Secret-42";
/// The bearer token [`benign::token`] hands out.
pub const TOKEN: &str = "tok-Hostile-Bearer-Token-0123456789";
pub const TENANT: &str = "3f1e0c55-0000-4000-8000-000000000001";
pub const REPORT: &str = "6a7b8c9d-0000-4000-8000-000000000002";

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The raw request target, percent-encoding untouched.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One step of an answer.
#[derive(Debug, Clone)]
pub enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
    /// Writes `bytes` one at a time, `every` apart.
    Drip {
        bytes: Vec<u8>,
        every: Duration,
    },
    /// Writes `chunk` again and again until `total` bytes went out or the peer hung up.
    Repeat {
        chunk: Vec<u8>,
        total: u64,
    },
}

/// A scripted answer; the connection is closed after its last step.
#[derive(Debug, Clone, Default)]
pub struct Reply(pub Vec<Step>);

impl Reply {
    /// A complete response with Content-Length.
    pub fn full(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut head = head(status, headers);
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Self(vec![Step::Write(bytes)])
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::full(
            status,
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// Status line and headers only (end with the blank line); the steps that follow are
    /// the body, framed however the test wants.
    pub fn head(status: u16, headers: &[(&str, &str)]) -> Self {
        let mut head = head(status, headers);
        head.push_str("\r\n");
        Self(vec![Step::Write(head.into_bytes())])
    }

    #[must_use]
    pub fn then(mut self, step: Step) -> Self {
        self.0.push(step);
        self
    }
}

fn head(status: u16, headers: &[(&str, &str)]) -> String {
    let mut head = format!("HTTP/1.1 {status} Hostile\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head
}

/// One HTTP/1.1 chunk.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A hostile server on 127.0.0.1; stops when dropped.
pub struct Hostile {
    pub base_url: String,
    requests: Arc<std::sync::Mutex<Vec<Request>>>,
    served: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Hostile {
    pub async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handler: Handler = Arc::new(handler);
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let served = Arc::new(AtomicUsize::new(0));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (log, count) = (requests.clone(), served.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => return,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (handler, log, count) = (handler.clone(), log.clone(), count.clone());
                tokio::spawn(async move {
                    serve(stream, handler, log).await;
                    count.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            base_url: format!("http://{addr}"),
            requests,
            served,
            stop: Some(stop),
        }
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    /// Connections whose answer script has ended (written out or cut by the peer).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(mut stream: TcpStream, handler: Handler, log: Arc<std::sync::Mutex<Vec<Request>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    log.lock().expect("lock").push(request.clone());
    let reply = handler(&request);
    for step in reply.0 {
        let ok = match step {
            Step::Write(bytes) => stream.write_all(&bytes).await.is_ok(),
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                true
            }
            Step::Drip { bytes, every } => {
                let mut ok = true;
                for b in bytes {
                    if stream.write_all(&[b]).await.is_err() {
                        ok = false;
                        break;
                    }
                    tokio::time::sleep(every).await;
                }
                ok
            }
            Step::Repeat { chunk, total } => {
                let mut sent = 0u64;
                let mut ok = true;
                while sent < total {
                    let n = chunk.len().min((total - sent) as usize);
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        ok = false;
                        break;
                    }
                    sent += n as u64;
                }
                ok
            }
        };
        if !ok {
            return;
        }
    }
    let _ = stream.shutdown().await;
}

/// Reads one request (head and a Content-Length body); `None` if the peer went away.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while body.len() < length.min(1 << 20) {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// The well-behaved answers, for a handler to fall back on.
pub mod benign {
    use serde_json::json;

    use super::{Reply, Request, TENANT, TOKEN};

    pub fn token() -> Reply {
        Reply::json(
            200,
            &json!({"access_token": TOKEN, "expires_on": chrono::Utc::now().timestamp() + 7200}),
        )
    }

    pub fn client() -> Reply {
        Reply::json(200, &json!({"tenant_id": TENANT}))
    }

    pub fn reports(ids: &[&str]) -> Reply {
        Reply::json(200, &json!({"items": ids}))
    }

    pub fn report(id: &str) -> Reply {
        Reply::json(200, &json!({"id": id, "result_action": "save"}))
    }

    /// A stored list of saved csv items `(id, size)`; `None` leaves `size` out.
    pub fn stored(items: &[(&str, Option<u64>)]) -> Reply {
        let items: Vec<serde_json::Value> = items
            .iter()
            .enumerate()
            .map(|(i, (id, size))| {
                let mut item = json!({
                    "id": id,
                    "report_format": "csv",
                    "created_at": format!("2026-11-0{}T23:59:59Z", 1 + i % 9),
                    "status": "saved",
                });
                if let Some(size) = size {
                    item["size"] = json!(size);
                }
                item
            })
            .collect();
        Reply::json(200, &json!({"items": items}))
    }

    /// Everything but the downloads, well-behaved: a tenant with `REPORT` only.
    pub fn route(request: &Request) -> Option<Reply> {
        let path = request.path.as_str();
        if path.ends_with("/idp/token") {
            Some(token())
        } else if path.starts_with("/api/2/clients/") {
            Some(client())
        } else if path == format!("/api/2/tenants/{TENANT}/reports") {
            Some(reports(&[super::REPORT]))
        } else if let Some(id) = path.strip_prefix("/api/2/reports/")
            && !id.contains('/')
        {
            Some(report(id))
        } else {
            None
        }
    }

    /// The one report's one item, as [`cloud`] serves it.
    pub const BODY: &[u8] = b"tenant,usage\nacme,42\n";

    /// A whole well-behaved cloud: [`route`], and `REPORT` storing `item-1` ([`BODY`]).
    pub fn cloud(r: &Request) -> Reply {
        if let Some(reply) = route(r) {
            return reply;
        }
        match r.path.as_str() {
            p if p == format!("/api/2/reports/{}/stored", super::REPORT) => {
                stored(&[("item-1", Some(BODY.len() as u64))])
            }
            p if p == format!("/api/2/reports/{}/stored/item-1", super::REPORT) => {
                Reply::full(200, &[("content-type", "text/csv")], BODY)
            }
            _ => not_found(),
        }
    }

    pub fn not_found() -> Reply {
        Reply::json(
            404,
            &json!({"error": {"code": 404, "message": "not found"}}),
        )
    }
}

/// A temp dir with a config for one account at `base_url`, and the real binary.
pub struct HostileApp {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub archive_dir: PathBuf,
    pub ledger_path: PathBuf,
}

impl HostileApp {
    /// `http` goes into `[http]`, `account` into the account's table (e.g. `reports = […]`),
    /// `extra` before the account (whole sections such as `[notify]`).
    pub fn new(base_url: &str, http: &str, account: &str, extra: &str) -> Self {
        report_archiver::telemetry::init_for_tests();
        let dir = tempfile::tempdir().expect("temp dir");
        let archive_dir = dir.path().join("archive");
        let ledger_path = dir.path().join("ledger.db");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, SECRET).expect("secret");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let config_path = dir.path().join("config.toml");
        // The server is local: no rate to be polite to, unless a test says.
        let rate = if http.contains("requests_per_second") {
            ""
        } else {
            "requests_per_second = 0"
        };
        let toml = format!(
            "[archive]\ndir = {archive:?}\n\n[ledger]\npath = {ledger:?}\n\n[http]\n{http}\n{rate}\n\n\
             [log]\nlevel = \"info,report_archiver=debug\"\nformat = \"auto\"\n\n{extra}\n\
             [[accounts]]\nname = \"acme\"\nbase_url = {base_url:?}\nclient_id = {CLIENT_ID:?}\n\
             client_secret_file = {secret:?}\n{account}\n",
            archive = archive_dir.display().to_string(),
            ledger = ledger_path.display().to_string(),
            secret = secret.display().to_string(),
        );
        std::fs::write(&config_path, toml).expect("config");
        Self {
            dir,
            config_path,
            archive_dir,
            ledger_path,
        }
    }

    /// The real binary with this config.
    pub fn bin(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_report-archiver"));
        cmd.arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("REPORT_ARCHIVER_CONFIG");
        cmd
    }

    /// Every file under the archive outside the daemon's own dot folders, relative.
    pub fn archived_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.archive_dir.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let top_dot =
                    dir == self.archive_dir && entry.file_name().to_string_lossy().starts_with('.');
                if top_dot {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.archive_dir) {
                    out.push(rel.display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    /// Rows of a ledger table, each row's columns joined by `|` (via the sqlite3 CLI is not
    /// assumed: read with sqlx).
    pub async fn table_text(&self, table: &str) -> String {
        use sqlx::Row;
        let url = format!("sqlite://{}?mode=ro", self.ledger_path.display());
        let Ok(pool) = sqlx::SqlitePool::connect(&url).await else {
            return String::new();
        };
        let sql = format!("SELECT * FROM {table}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
        let mut out = String::new();
        for row in rows {
            for i in 0..row.len() {
                let text: Option<String> = row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .or_else(|| {
                        row.try_get::<Option<i64>, _>(i)
                            .ok()
                            .flatten()
                            .map(|n| n.to_string())
                    });
                out.push_str(text.as_deref().unwrap_or(""));
                out.push('|');
            }
            out.push('\n');
        }
        pool.close().await;
        out
    }
}

/// Runs `cmd` to its end under GNU time and returns (exit code, stdout, stderr, peak RSS in
/// KiB of the binary alone).
///
/// Not `wait4` on a child of ours: the child is spawned sharing (vfork) or copying (fork)
/// this test process's memory, and Linux records that memory's high-water mark as the
/// child's `ru_maxrss` at exec, so a busy test process would count as the binary's. GNU
/// time is small: what it passes on at its own fork is a megabyte or two. (The benchmarks
/// measure the same way.)
pub fn run_measured(cmd: &mut Command) -> (Option<i32>, String, String, u64) {
    let time = std::path::Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time measures peak RSS here: apt-get install time"
    );
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let mut timed = Command::new(time);
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => timed.env(key, v),
            None => timed.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    let out = timed.output().expect("GNU time runs the binary");
    let measured = std::fs::read_to_string(report.path()).expect("GNU time's report");
    // The last line is %M; GNU time writes "Command exited with non-zero status" above it.
    let rss_kib = measured
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time's report: {measured:?}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        rss_kib,
    )
}
