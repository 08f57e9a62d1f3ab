//! moto's S3 server (PyPI `moto[server]` 5.2.1) on 127.0.0.1, for what s3s-fs does not
//! implement: Object Lock (it enforces retention: a locked version cannot be deleted) and
//! ListMultipartUploads. It honours `If-None-Match: *` on PUT and on completion as S3 does.
//!
//! Installed once per target dir into a venv (`<target>/tools/moto`) under a file lock, as
//! test threads race for it; `.ci/run` installs it before `cargo test`. moto does not check
//! signatures, but it treats an unsigned request as anonymous (403), so the test's own
//! requests are signed with object_store's signer.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::HttpRequestBody;
use tempfile::TempDir;

use crate::s3_server::{s3_section, tools_dir};

pub const ACCESS_KEY: &str = "AKMOTO";
pub const SECRET_KEY: &str = "SKMOTO";
const VERSION: &str = "5.2.1";

pub struct MotoServer {
    child: Child,
    /// Key files, and moto's request recording (`requests.jsonl`).
    keys: TempDir,
    pub endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed request's answer.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The `moto_server` script, installed on first use.
fn moto_server() -> PathBuf {
    let tools = tools_dir();
    let venv = tools.join("moto");
    let bin = venv.join("bin").join("moto_server");
    std::fs::create_dir_all(&tools).expect("tools dir");
    let lock = std::fs::File::create(tools.join(".moto-install.lock")).expect("lock file");
    lock.lock().expect("lock the moto install");
    if !bin.exists() {
        let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        let status = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("moto[server]=={VERSION}"))
            .status()
            .expect("pip runs");
        assert!(
            status.success(),
            "pip install moto[server]=={VERSION} failed"
        );
    }
    bin
}

/// Starts moto on a free loopback port; it holds no bucket yet. It records every request
/// it gets ([`MotoServer::requests`]).
pub fn start() -> MotoServer {
    let bin = moto_server();
    let keys = tempfile::tempdir().expect("key dir");
    // The port is free when asked; another process taking it before moto binds is
    // unlikely, and then moto exits and the wait below says so.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_ENABLE_RECORDING", "true")
        .env("MOTO_RECORDER_FILEPATH", keys.path().join("requests.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("moto_server exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    MotoServer {
        child,
        keys,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

impl MotoServer {
    /// Sends a request signed as [`ACCESS_KEY`]; `path` is `/<bucket>[/<key>][?query]`.
    pub async fn signed(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let url = format!("{}{path}", self.endpoint);
        let mut builder = http::Request::builder().method(method).uri(url.as_str());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder
            .body(HttpRequestBody::from(body.clone()))
            .expect("a request");
        let credential = AwsCredential {
            key_id: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            token: None,
        };
        AwsAuthorizer::new(&credential, "s3", "us-east-1")
            .try_authorize(&mut request, None)
            .expect("signed");
        let client = reqwest::Client::new();
        let mut out = client.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("a method"),
            url.as_str(),
        );
        for (name, value) in request.headers() {
            out = out.header(name.as_str(), value.as_bytes());
        }
        let response = out.body(body).send().await.expect("moto answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        Reply {
            status,
            headers,
            text,
        }
    }

    /// Creates `bucket`, with Object Lock enabled when `object_lock` (which also turns on
    /// versioning, as on S3).
    pub async fn create_bucket(&self, bucket: &str, object_lock: bool) {
        let headers: &[(&str, &str)] = if object_lock {
            &[("x-amz-bucket-object-lock-enabled", "true")]
        } else {
            &[]
        };
        let reply = self
            .signed("PUT", &format!("/{bucket}"), headers, Vec::new())
            .await;
        assert_eq!(reply.status, 200, "create bucket: {}", reply.text);
    }

    /// The requests moto received so far, as its recorder wrote them (`method`, `url`,
    /// `headers`). Its threads append unsynchronised, so a line holding a large body can
    /// be torn by a concurrent one: torn lines are skipped.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.keys.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Keys of the multipart uploads open in `bucket`.
    pub async fn open_uploads(&self, bucket: &str) -> Vec<String> {
        let reply = self
            .signed("GET", &format!("/{bucket}?uploads"), &[], Vec::new())
            .await;
        assert_eq!(reply.status, 200, "list uploads: {}", reply.text);
        between_all(&reply.text, "<Key>", "</Key>")
    }

    /// Every object key in `bucket`.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let reply = self
            .signed("GET", &format!("/{bucket}?list-type=2"), &[], Vec::new())
            .await;
        assert_eq!(reply.status, 200, "list objects: {}", reply.text);
        let mut keys = between_all(&reply.text, "<Key>", "</Key>");
        keys.sort();
        keys
    }

    /// The `[archive.s3]` section for `bucket` on this server (keys in files, 5 MiB
    /// parts), plus `extra` lines.
    pub fn config_section(&self, bucket: &str, prefix: &str, extra: &str) -> String {
        self.config_section_at(&self.endpoint, bucket, prefix, extra)
    }

    /// [`MotoServer::config_section`] reaching the server through `endpoint` (a proxy).
    pub fn config_section_at(
        &self,
        endpoint: &str,
        bucket: &str,
        prefix: &str,
        extra: &str,
    ) -> String {
        s3_section(
            self.keys.path(),
            endpoint,
            bucket,
            prefix,
            (ACCESS_KEY, SECRET_KEY),
            extra,
        )
    }
}

/// What [`MotoServer::flaky_proxy`] fails: the kind of a request (method, path and
/// query), or `None` to pass it through.
pub type Fault = fn(&str, &str) -> Option<&'static str>;

/// A proxy on 127.0.0.1 in front of the server: the first request of each kind its
/// [`Fault`] names gets `503 SlowDown` without reaching the server; the rest are passed
/// through (moto does not check signatures, so the changed `Host` does not matter).
pub struct FlakyProxy {
    pub endpoint: String,
    /// The kinds failed so far, in order.
    pub injected: Arc<Mutex<Vec<&'static str>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    fault: Fault,
    injected: Arc<Mutex<Vec<&'static str>>>,
    client: reqwest::Client,
}

impl MotoServer {
    pub async fn flaky_proxy(&self, fault: Fault) -> FlakyProxy {
        let injected = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: self.endpoint.clone(),
            fault,
            injected: injected.clone(),
            client: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a proxy port");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FlakyProxy {
            endpoint: format!("http://{addr}"),
            injected,
            task,
        }
    }
}

async fn forward(
    axum::extract::State(state): axum::extract::State<ProxyState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if let Some(kind) = (state.fault)(method.as_str(), &path) {
        let mut injected = state.injected.lock().expect("lock");
        if !injected.contains(&kind) {
            injected.push(kind);
            let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            return (http::StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
    }
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .expect("the request body");
    let mut out = state
        .client
        .request(method.clone(), format!("{}{path}", state.upstream));
    for (name, value) in &headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            out = out.header(name, value);
        }
    }
    let reply = out.body(body).send().await.expect("moto answers the proxy");
    let status = reply.status();
    let mut reply_headers = reply.headers().clone();
    let bytes = reply.bytes().await.expect("moto's reply");
    reply_headers.remove(http::header::TRANSFER_ENCODING);
    reply_headers.remove(http::header::CONNECTION);
    if method != http::Method::HEAD {
        reply_headers.remove(http::header::CONTENT_LENGTH);
    }
    (status, reply_headers, bytes).into_response()
}

/// Every text between `open` and `close` in `xml`, in order.
pub fn between_all(xml: &str, open: &str, close: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(close) else { break };
        out.push(rest[..end].to_owned());
        rest = &rest[end + close.len()..];
    }
    out
}
