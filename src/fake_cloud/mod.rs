//! An in-process fake of the Acronis Account Management API v2: the token endpoint, client and
//! tenant look-ups, report configs, stored-report listings and downloads, following
//! `acronis-api.md`. It is a real HTTP server so the archiver's whole HTTP stack (auth, raw
//! gzip bodies, `size` checks) is exercised; `demo`, `fake-cloud`, the integration tests and
//! the benchmark share it. Knobs inject the faults the archiver must survive.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;

mod content;
mod faults;
pub mod scenario;

use content::{SplitMix64, sample_content};
use faults::{ActiveFaults, Endpoint, Injected};
pub use faults::{FaultKind, FaultPlan};

const SHAPES: [BodyShape; 3] = [
    BodyShape::GzipWithHeader,
    BodyShape::GzipNoHeader,
    BodyShape::Plain,
];

/// How a stored item's body goes on the wire; the docs leave open whether the real server
/// labels its gzip with `Content-Encoding`, so the fake serves every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    GzipWithHeader,
    GzipNoHeader,
    Plain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeStatus {
    InProgress,
    Saved,
    Failed,
    Other(String),
}

impl FakeStatus {
    fn as_wire(&self) -> &str {
        match self {
            Self::InProgress => "in_progress",
            Self::Saved => "saved",
            Self::Failed => "failed",
            Self::Other(s) => s,
        }
    }
}

/// One stored item as a test describes it.
#[derive(Debug, Clone)]
pub struct FakeStored {
    pub format: String,
    /// The plain (uncompressed) report.
    pub content: Vec<u8>,
    pub status: FakeStatus,
    pub shape: BodyShape,
    pub created_at: DateTime<Utc>,
    pub offset_in_created_at: bool,
    pub with_id: bool,
    pub with_size: bool,
    /// An `in_progress` item flips to `becomes` once its report's stored list was served
    /// this many times.
    pub saved_after_listings: Option<u32>,
    pub becomes: FakeStatus,
}

impl FakeStored {
    pub fn new(format: &str, content: Vec<u8>) -> Self {
        Self {
            format: format.to_owned(),
            content,
            status: FakeStatus::Saved,
            shape: BodyShape::GzipWithHeader,
            created_at: fixed_time(),
            offset_in_created_at: true,
            with_id: true,
            with_size: true,
            saved_after_listings: None,
            becomes: FakeStatus::Saved,
        }
    }
    pub fn shape(mut self, shape: BodyShape) -> Self {
        self.shape = shape;
        self
    }
    pub fn status(mut self, status: FakeStatus) -> Self {
        self.status = status;
        self
    }
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = at;
        self
    }
    /// `in_progress` now, `saved` once its report's stored list has been served `n` times.
    pub fn saved_after(mut self, n: u32) -> Self {
        self.status = FakeStatus::InProgress;
        self.saved_after_listings = Some(n);
        self.becomes = FakeStatus::Saved;
        self
    }
}

/// A report configuration as a test describes it.
#[derive(Debug, Clone)]
pub struct FakeReport {
    pub result_action: String,
    pub kind: String,
    pub level: String,
    pub formats: Vec<String>,
    pub schedule_type: String,
}

impl FakeReport {
    /// A monthly `save` report of kind `usage_summary`, level `direct_partners`.
    pub fn new(formats: &[&str]) -> Self {
        Self {
            result_action: "save".into(),
            kind: "usage_summary".into(),
            level: "direct_partners".into(),
            formats: formats.iter().map(|f| (*f).to_owned()).collect(),
            schedule_type: "monthly".into(),
        }
    }
}

/// What the server holds for one stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredView {
    pub id: String,
    pub format: String,
    pub status: FakeStatus,
    pub plain: Vec<u8>,
    /// The exact bytes served by the download endpoint.
    pub wire: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

struct StoredEntry {
    id: String,
    spec: FakeStored,
    /// Shared, so serving a 1 GiB body copies nothing.
    wire: bytes::Bytes,
}

impl StoredEntry {
    fn view(&self) -> StoredView {
        StoredView {
            id: self.id.clone(),
            format: self.spec.format.clone(),
            status: self.spec.status.clone(),
            plain: self.spec.content.clone(),
            wire: self.wire.to_vec(),
            created_at: self.spec.created_at,
        }
    }
}

struct ReportEntry {
    id: String,
    config: FakeReport,
    stored: Vec<StoredEntry>,
    /// Listing entries served verbatim after the real ones: hostile or malformed data.
    raw_items: Vec<Value>,
    listings_served: u32,
}

struct TokenEntry {
    client_id: String,
    expires_at: Instant,
    max_uses: Option<u32>,
    uses: u32,
}

struct Fault {
    path_contains: String,
    status: u16,
    remaining: u32,
    retry_after: Option<Duration>,
}

#[derive(Default)]
struct Inner {
    ids: SplitMix64,
    secrets: SplitMix64,
    reports: Vec<ReportEntry>,
    tokens: HashMap<String, TokenEntry>,
    token_ttl: Duration,
    expire_after: Option<u32>,
    faults: Vec<Fault>,
    plan: Option<ActiveFaults>,
    latency: Duration,
    downloads: HashMap<String, u32>,
    download_requests: u32,
    token_requests: u32,
    listing_requests: u32,
    requests: u32,
    downloads_in_flight: u32,
    downloads_in_flight_peak: u32,
}

impl Inner {
    fn report(&self, id: &str) -> Option<&ReportEntry> {
        self.reports.iter().find(|r| r.id == id)
    }
    fn report_mut(&mut self, id: &str) -> Option<&mut ReportEntry> {
        self.reports.iter_mut().find(|r| r.id == id)
    }
}

/// The fake cloud; clones share one state, so a test keeps a handle while the server runs.
#[derive(Clone)]
pub struct FakeCloud {
    state: Arc<Mutex<Inner>>,
}

impl Default for FakeCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCloud {
    pub const CLIENT_ID: &'static str = "demo-client";
    pub const CLIENT_SECRET: &'static str = "demo-secret-do-not-log";
    pub const TENANT_ID: &'static str = "7c0e5b52-3f1a-4d8e-9b6a-2f4c81d0e9a3";

    /// An empty cloud with one API client. Ids differ between instances so that mixing up
    /// two fakes (accounts) in one ledger shows up in tests.
    pub fn new() -> Self {
        static INSTANCES: AtomicU64 = AtomicU64::new(1);
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        Self::with_id_seed(wall_nanos() ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn with_id_seed(seed: u64) -> Self {
        let state = Inner {
            ids: SplitMix64(seed),
            secrets: SplitMix64(wall_nanos() ^ seed.rotate_left(17)),
            token_ttl: Duration::from_secs(7200),
            ..Inner::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deterministic data from `seed`: `reports` monthly save-reports with three generations
    /// each (one item per format per generation), plus a `send` report when `reports >= 3`.
    /// The first report's newest generation holds one item that is `in_progress` until the
    /// first listing; the second report holds one `failed` item.
    pub fn seeded(seed: u64, reports: usize, formats: &[&str]) -> Self {
        let cloud = Self::with_id_seed(seed);
        let mut rng = SplitMix64(seed ^ 0xA076_1D64_78BD_642F);
        let mut k = 0usize;
        for r in 0..reports {
            let report_id = cloud.add_report(FakeReport::new(formats));
            for generation in 0..3u32 {
                let month = 8 + generation;
                let (hour, minute, second) = (3 + rng.below(3), rng.below(60), rng.below(50));
                let base = Utc
                    .with_ymd_and_hms(2026, month, 2, hour as u32, minute as u32, second as u32)
                    .single()
                    .unwrap_or_else(fixed_time);
                for (f, format) in formats.iter().enumerate() {
                    let created_at = base + ChronoDuration::seconds(f as i64 * 3);
                    let content = sample_content(&mut rng, format, created_at);
                    let mut item = FakeStored::new(format, content)
                        .created_at(created_at)
                        .shape(SHAPES[k % 3]);
                    item.offset_in_created_at = k % 7 != 3;
                    if generation == 2 && f == 0 && r == 0 {
                        item = item.saved_after(1);
                    }
                    if generation == 2 && f == 0 && r == 1 {
                        item = item.status(FakeStatus::Failed);
                    }
                    cloud.add_stored(&report_id, item);
                    k += 1;
                }
            }
        }
        if reports >= 3 {
            let mut send = FakeReport::new(formats);
            send.result_action = "send".into();
            cloud.add_report(send);
        }
        cloud
    }

    pub fn add_report(&self, r: FakeReport) -> String {
        let mut st = self.lock();
        let id = st.ids.uuid();
        st.reports.push(ReportEntry {
            id: id.clone(),
            config: r,
            stored: Vec::new(),
            raw_items: Vec::new(),
            listings_served: 0,
        });
        id
    }

    /// Returns the stored id even when the listing will omit it (`with_id = false`). An
    /// unknown report drops the item with a warning rather than failing the caller.
    pub fn add_stored(&self, report_id: &str, s: FakeStored) -> String {
        // Compressed once here so the served bytes and the listed `size` never disagree.
        let wire = bytes::Bytes::from(match s.shape {
            BodyShape::Plain => s.content.clone(),
            BodyShape::GzipWithHeader | BodyShape::GzipNoHeader => gzip(&s.content),
        });
        let mut st = self.lock();
        let id = st.ids.uuid();
        match st.report_mut(report_id) {
            Some(report) => report.stored.push(StoredEntry {
                id: id.clone(),
                spec: s,
                wire,
            }),
            None => tracing::warn!(report_id, "fake cloud: add_stored to an unknown report"),
        }
        id
    }

    /// Appends `item` verbatim to the report's stored listing (it cannot be downloaded):
    /// for hostile ids, wrong types and missing fields.
    pub fn add_raw_listing_item(&self, report_id: &str, item: Value) {
        if let Some(report) = self.lock().report_mut(report_id) {
            report.raw_items.push(item);
        }
    }

    /// Sets the status outright and cancels any pending automatic flip, so it sticks.
    pub fn set_status(&self, report_id: &str, stored_id: &str, st: FakeStatus) {
        let mut state = self.lock();
        let item = state
            .report_mut(report_id)
            .and_then(|r| r.stored.iter_mut().find(|s| s.id == stored_id));
        if let Some(item) = item {
            item.spec.status = st;
            item.spec.saved_after_listings = None;
        }
    }

    /// The cloud drops one stored item (it expired, or someone deleted it).
    pub fn delete_stored(&self, report_id: &str, stored_id: &str) {
        if let Some(report) = self.lock().report_mut(report_id) {
            report.stored.retain(|s| s.id != stored_id);
        }
    }

    pub fn remove_report(&self, report_id: &str) {
        self.lock().reports.retain(|r| r.id != report_id);
    }

    pub fn set_token_ttl(&self, ttl: Duration) {
        self.lock().token_ttl = ttl;
    }

    /// A token issued while this is `Some(n)` answers 401 from its (n+1)th use on, whatever
    /// its `expires_on` says: a token that dies mid-pass.
    pub fn expire_tokens_after_requests(&self, n: Option<u32>) {
        self.lock().expire_after = n;
    }

    /// The next `n` requests whose path contains `path_contains` get `status` and the error body.
    pub fn fail_next_requests(&self, path_contains: &str, status: u16, n: u32) {
        self.lock().faults.push(Fault {
            path_contains: path_contains.to_owned(),
            status,
            remaining: n,
            retry_after: None,
        });
    }

    /// The next `n` requests whose path contains `path_contains` get a 429 with
    /// `Retry-After: <retry_after seconds>`.
    pub fn throttle_next_requests(&self, path_contains: &str, n: u32, retry_after: Duration) {
        self.lock().faults.push(Fault {
            path_contains: path_contains.to_owned(),
            status: 429,
            remaining: n,
            retry_after: Some(retry_after),
        });
    }

    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// `/api/2/...` paths of every saved item's download, for peers that fetch by URL.
    pub fn download_paths(&self) -> Vec<String> {
        let st = self.lock();
        st.reports
            .iter()
            .flat_map(|r| {
                r.stored
                    .iter()
                    .filter(|s| s.spec.status == FakeStatus::Saved)
                    .map(move |s| format!("/api/2/reports/{}/stored/{}", r.id, s.id))
            })
            .collect()
    }

    /// Injects seeded random faults into every request from now on; `None` stops them.
    pub fn set_fault_plan(&self, plan: Option<FaultPlan>) {
        self.lock().plan = plan.map(ActiveFaults::new);
    }

    /// How many faults of each kind were injected so far.
    pub fn faults_injected(&self) -> HashMap<FaultKind, u32> {
        self.lock()
            .plan
            .as_ref()
            .map(|p| p.injected.clone())
            .unwrap_or_default()
    }

    /// Downloads of this stored item whose whole body was sent (faulted ones do not count).
    pub fn download_count(&self, stored_id: &str) -> u32 {
        self.lock().downloads.get(stored_id).copied().unwrap_or(0)
    }

    /// Every request to the download endpoint, whatever its outcome.
    pub fn download_requests(&self) -> u32 {
        self.lock().download_requests
    }

    /// The most download requests this cloud was serving at one time (latency included,
    /// until the response headers go out).
    pub fn downloads_in_flight_peak(&self) -> u32 {
        self.lock().downloads_in_flight_peak
    }

    pub fn token_requests(&self) -> u32 {
        self.lock().token_requests
    }

    /// Every request to a stored-list endpoint, whatever its outcome.
    pub fn listing_requests(&self) -> u32 {
        self.lock().listing_requests
    }

    pub fn report_ids(&self) -> Vec<String> {
        self.lock().reports.iter().map(|r| r.id.clone()).collect()
    }

    pub fn stored(&self, report_id: &str) -> Vec<StoredView> {
        let st = self.lock();
        st.report(report_id)
            .map(|r| r.stored.iter().map(StoredEntry::view).collect())
            .unwrap_or_default()
    }

    pub fn saved_items(&self) -> Vec<(String, StoredView)> {
        let st = self.lock();
        st.reports
            .iter()
            .flat_map(|r| r.stored.iter().map(move |s| (r.id.clone(), s)))
            .filter(|(_, s)| s.spec.status == FakeStatus::Saved)
            .map(|(r, s)| (r, s.view()))
            .collect()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/2/idp/token", post(issue_token))
            .route("/api/2/clients/{client_id}", get(fetch_client))
            .route("/api/2/tenants/{tenant_id}/reports", get(tenant_reports))
            .route("/api/2/reports/{report_id}", get(fetch_report))
            .route("/api/2/reports/{report_id}/stored", get(list_stored))
            .route(
                "/api/2/reports/{report_id}/stored/{stored_id}",
                get(download),
            )
            .fallback(|| async { api_error(StatusCode::NOT_FOUND, "Endpoint not found") })
            .layer(middleware::from_fn_with_state(self.clone(), observe))
            // Outside the counting layer: the benchmark reads it between runs.
            .route("/_fake/stats", get(stats))
            .with_state(self.clone())
    }

    /// Every API request served so far, whatever the endpoint or outcome.
    pub fn requests(&self) -> u32 {
        self.lock().requests
    }

    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Serves on 127.0.0.1 with a port the OS picks, until the handle is stopped or dropped.
    pub async fn spawn(&self) -> std::io::Result<RunningFakeCloud> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.clone().serve(listener, async move {
            let _ = rx.await;
        }));
        Ok(RunningFakeCloud {
            addr,
            base_url: format!("http://{addr}"),
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A fake cloud serving in a tokio task; dropping it or calling [`Self::stop`] ends the server.
pub struct RunningFakeCloud {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, without `/api/2`.
    pub base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningFakeCloud {
    /// Stops accepting, lets in-flight requests finish (up to 5 s), then aborts the rest.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningFakeCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ---- HTTP side ----

/// The API client a valid bearer token belongs to.
struct Caller {
    client_id: String,
}

impl FromRequestParts<FakeCloud> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, cloud: &FakeCloud) -> Result<Self, Response> {
        let unauthorized = |message| api_error(StatusCode::UNAUTHORIZED, message);
        let token = auth_param(&parts.headers, "bearer")
            .ok_or_else(|| unauthorized("Authorization header is missing"))?;
        let mut st = cloud.lock();
        let Some(entry) = st.tokens.get_mut(token) else {
            return Err(unauthorized("Access token is invalid"));
        };
        entry.uses = entry.uses.saturating_add(1);
        if Instant::now() >= entry.expires_at || entry.max_uses.is_some_and(|n| entry.uses > n) {
            return Err(unauthorized("Access token has expired"));
        }
        Ok(Self {
            client_id: entry.client_id.clone(),
        })
    }
}

/// Latency, request counters and injected faults, for every request including rejected ones.
async fn observe(State(cloud): State<FakeCloud>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let (latency, fault, random, endpoint) = {
        let mut st = cloud.lock();
        st.requests += 1;
        let segments: Vec<&str> = path.trim_start_matches("/api/2/").split('/').collect();
        let endpoint = match segments.as_slice() {
            ["idp", "token"] => {
                st.token_requests += 1;
                Endpoint::Token
            }
            ["reports", _, "stored"] => {
                st.listing_requests += 1;
                Endpoint::Listing
            }
            ["reports", _, "stored", _] => {
                st.download_requests += 1;
                st.downloads_in_flight += 1;
                st.downloads_in_flight_peak =
                    st.downloads_in_flight_peak.max(st.downloads_in_flight);
                Endpoint::Download
            }
            _ => Endpoint::Json,
        };
        let random = st.plan.as_mut().and_then(|p| {
            let stall = p.plan.stall;
            let retry_after = p.plan.retry_after;
            p.draw(endpoint).map(|kind| (kind, stall, retry_after))
        });
        if let Some((FaultKind::TokenExpired, _, _)) = random
            && let Some(token) = auth_param(req.headers(), "bearer")
        {
            st.tokens.remove(token);
        }
        let fault = st
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.contains(&f.path_contains))
            .map(|f| {
                f.remaining -= 1;
                (f.status, f.retry_after)
            });
        st.faults.retain(|f| f.remaining > 0);
        (st.latency, fault, random, endpoint)
    };
    let _in_flight = matches!(endpoint, Endpoint::Download).then(|| InFlight(cloud.clone()));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some((_, Some(retry_after))) => return faults::too_many_requests(retry_after),
        Some((code, None)) => {
            return api_error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "Injected failure",
            );
        }
        None => {}
    }
    match random {
        Some((FaultKind::TooManyRequests, _, retry_after)) => {
            faults::too_many_requests(retry_after)
        }
        Some((FaultKind::Unavailable, _, _)) => faults::unavailable(),
        Some((FaultKind::Reset, _, _)) => faults::reset(),
        Some((FaultKind::NotJson, _, _)) => faults::not_json(),
        Some((
            kind @ (FaultKind::Truncated | FaultKind::Stall | FaultKind::SizeMismatch),
            stall,
            _,
        )) => {
            req.extensions_mut().insert(Injected(kind, stall));
            next.run(req).await
        }
        Some((FaultKind::TokenExpired, _, _)) | None => next.run(req).await,
    }
}

/// Counts a download request as served when `observe` returns, however it returns.
struct InFlight(FakeCloud);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.downloads_in_flight = st.downloads_in_flight.saturating_sub(1);
    }
}

/// The credentials after `scheme` in the Authorization header.
fn auth_param<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let (given, param) = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| param.trim())
}

/// `errorScheme`, the body every non-idp endpoint uses for errors.
pub(crate) fn api_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {
        "code": status.as_u16(), "domain": "PlatformAccountServer", "message": message, "details": {"info": null},
    }});
    (status, Json(body)).into_response()
}

/// The flat OAuth-style body of the idp endpoints.
fn idp_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn issue_token(
    State(cloud): State<FakeCloud>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let invalid_request = |why| idp_error(StatusCode::BAD_REQUEST, "invalid_request", why);
    // Basic only: the fake's client is registered with the default `client_secret_basic`.
    let credentials = auth_param(&headers, "basic")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some((id, secret)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return invalid_request("Authorization header value is not recognized");
    };
    if id != FakeCloud::CLIENT_ID || secret != FakeCloud::CLIENT_SECRET {
        let why = "Client authentication failed";
        return idp_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    }
    // No percent-decoding needed: every encoder sends this pair verbatim.
    let body = std::str::from_utf8(&body).unwrap_or_default();
    if !body
        .split('&')
        .any(|pair| pair == "grant_type=client_credentials")
    {
        return invalid_request("grant_type must be client_credentials");
    }
    let mut st = cloud.lock();
    let access_token = format!("{:016x}{:016x}", st.secrets.next(), st.secrets.next());
    let id_token = format!("fake-id.{:016x}", st.secrets.next());
    let ttl = st.token_ttl;
    let max_uses = st.expire_after;
    st.tokens.insert(
        access_token.clone(),
        TokenEntry {
            client_id: id.to_owned(),
            expires_at: Instant::now() + ttl,
            max_uses,
            uses: 0,
        },
    );
    Json(json!({
        "access_token": access_token, "token_type": "bearer", "id_token": id_token,
        "expires_in": ttl.as_secs(), "expires_on": Utc::now().timestamp() + ttl.as_secs() as i64,
    }))
    .into_response()
}

async fn fetch_client(caller: Caller, Path(client_id): Path<String>) -> Response {
    if client_id != FakeCloud::CLIENT_ID {
        return api_error(StatusCode::NOT_FOUND, "Client not found");
    }
    if client_id != caller.client_id {
        return api_error(StatusCode::FORBIDDEN, "Access denied");
    }
    Json(json!({"id": client_id, "tenant_id": FakeCloud::TENANT_ID, "type": "api_client", "status": "enabled"}))
        .into_response()
}

async fn tenant_reports(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path(tenant_id): Path<String>,
) -> Response {
    // Every report of this fake belongs to the one client's tenant; others are not visible.
    if tenant_id != FakeCloud::TENANT_ID {
        return api_error(StatusCode::FORBIDDEN, "Access to the tenant is denied");
    }
    Json(json!({ "items": cloud.report_ids() })).into_response()
}

async fn fetch_report(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path(report_id): Path<String>,
) -> Response {
    let st = cloud.lock();
    let Some(report) = st.report(&report_id) else {
        return api_error(StatusCode::NOT_FOUND, "Report not found");
    };
    // The period is the calendar month before the newest generation, as for monthly usage reports.
    let generated = report
        .stored
        .iter()
        .map(|s| s.spec.created_at)
        .max()
        .unwrap_or_else(fixed_time)
        .date_naive();
    let first_this = generated.with_day(1).unwrap_or(generated);
    let end = first_this.pred_opt().unwrap_or(first_this);
    let start = end.with_day(1).unwrap_or(end);
    let c = &report.config;
    Json(json!({
        "id": report.id, "version": 1, "result_action": c.result_action, "recipients": [],
        "parameters": {
            "tenant_id": FakeCloud::TENANT_ID, "kind": c.kind, "level": c.level, "formats": c.formats,
            "period": {"start": day(start), "end": day(end)}, "hide_zero_usage": false, "show_skus": false,
        },
        "schedule": {"enabled": true, "type": c.schedule_type},
        "generation_date": day(generated),
    }))
    .into_response()
}

fn apply_flips(report: &mut ReportEntry) {
    for item in &mut report.stored {
        let due = item
            .spec
            .saved_after_listings
            .is_some_and(|n| report.listings_served >= n);
        if item.spec.status == FakeStatus::InProgress && due {
            item.spec.status = item.spec.becomes.clone();
        }
    }
}

async fn list_stored(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path(report_id): Path<String>,
    injected: Option<Extension<Injected>>,
) -> Response {
    let mut st = cloud.lock();
    let Some(report) = st.report_mut(&report_id) else {
        return api_error(StatusCode::NOT_FOUND, "Report not found");
    };
    apply_flips(report);
    let mut entries: Vec<&StoredEntry> = report.stored.iter().collect();
    entries.sort_by_key(|s| s.spec.created_at);
    let mut items: Vec<Value> = entries.into_iter().map(listing_item).collect();
    items.extend(report.raw_items.iter().cloned());
    if let Some(Extension(Injected(FaultKind::SizeMismatch, _))) = injected
        && let Some(item) = items.iter_mut().find(|i| i.get("size").is_some())
        && let Some(size) = item.get("size").and_then(Value::as_u64)
    {
        item["size"] = json!(size + 1);
    }
    report.listings_served = report.listings_served.saturating_add(1);
    apply_flips(report);
    Json(json!({ "items": items })).into_response()
}

fn listing_item(s: &StoredEntry) -> Value {
    let mut item = serde_json::Map::new();
    if s.spec.with_id {
        item.insert("id".into(), json!(s.id));
    }
    item.insert("report_format".into(), json!(s.spec.format));
    if s.spec.with_size {
        item.insert("size".into(), json!(s.wire.len()));
    }
    let pattern = if s.spec.offset_in_created_at {
        "%Y-%m-%dT%H:%M:%S+00:00"
    } else {
        "%Y-%m-%dT%H:%M:%S"
    };
    item.insert(
        "created_at".into(),
        json!(s.spec.created_at.format(pattern).to_string()),
    );
    item.insert("status".into(), json!(s.spec.status.as_wire()));
    Value::Object(item)
}

async fn download(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path((report_id, stored_id)): Path<(String, String)>,
    injected: Option<Extension<Injected>>,
) -> Response {
    let st = cloud.lock();
    let Some(report) = st.report(&report_id) else {
        return api_error(StatusCode::NOT_FOUND, "Report not found");
    };
    let Some(item) = report
        .stored
        .iter()
        .find(|s| s.id == stored_id && s.spec.status == FakeStatus::Saved)
    else {
        return api_error(StatusCode::NOT_FOUND, "Stored report not found");
    };
    let (wire, shape) = (item.wire.clone(), item.spec.shape);
    drop(st);
    let length = wire.len();
    let body = match injected {
        Some(Extension(Injected(FaultKind::Truncated, _))) => faults::truncated(wire),
        Some(Extension(Injected(FaultKind::Stall, stall))) => faults::stalled(wire, stall),
        _ => counted_body(cloud.clone(), stored_id, wire),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if shape == BodyShape::GzipWithHeader {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Request counters, for tools outside the process (the benchmark).
async fn stats(State(cloud): State<FakeCloud>) -> Response {
    let st = cloud.lock();
    Json(json!({
        "requests": st.requests,
        "token_requests": st.token_requests,
        "listing_requests": st.listing_requests,
        "download_requests": st.download_requests,
        "downloads_in_flight_peak": st.downloads_in_flight_peak,
    }))
    .into_response()
}

/// The body in 256 KiB chunks; the download counts when the last chunk is handed over, so a
/// client that gives up half-way through a large body is not counted as served.
fn counted_body(cloud: FakeCloud, stored_id: String, wire: bytes::Bytes) -> axum::body::Body {
    const CHUNK: usize = 256 * 1024;
    if wire.is_empty() {
        *cloud.lock().downloads.entry(stored_id).or_insert(0) += 1;
        return axum::body::Body::empty();
    }
    let stream = futures::stream::unfold(0usize, move |offset| {
        let (cloud, stored_id, wire) = (cloud.clone(), stored_id.clone(), wire.clone());
        async move {
            if offset >= wire.len() {
                return None;
            }
            let end = (offset + CHUNK).min(wire.len());
            if end == wire.len() {
                *cloud.lock().downloads.entry(stored_id).or_insert(0) += 1;
            }
            Some((Ok::<_, std::io::Error>(wire.slice(offset..end)), end))
        }
    });
    axum::body::Body::from_stream(stream)
}

// ---- helpers ----

/// 2026-08-02T03:00:00Z: the default `created_at`, on the day monthly reports are generated.
fn fixed_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_785_639_600, 0).unwrap_or_default()
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn wall_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    // Benchmark-sized bodies (1 GiB) would take half a minute at the default level.
    let level = if plain.len() > 64 << 20 {
        flate2::Compression::fast()
    } else {
        flate2::Compression::default()
    };
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
    // Writing into a Vec cannot fail.
    enc.write_all(plain)
        .and_then(|()| enc.finish())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// A running fake, its `/api/2` URL and a fresh bearer token.
    async fn start(cloud: &FakeCloud) -> (RunningFakeCloud, String, String) {
        let server = cloud.spawn().await.unwrap();
        let api = format!("{}/api/2", server.base_url);
        let token = token_request(&api, FakeCloud::CLIENT_SECRET).await;
        let body: Value = token.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        (server, api, token)
    }

    async fn token_request(api: &str, secret: &str) -> reqwest::Response {
        let request = reqwest::Client::new().post(format!("{api}/idp/token"));
        let request = request.basic_auth(FakeCloud::CLIENT_ID, Some(secret));
        let form = [("grant_type", "client_credentials")];
        request.form(&form).send().await.unwrap()
    }

    async fn get(url: &str, token: &str) -> reqwest::Response {
        let request = reqwest::Client::new().get(url).bearer_auth(token);
        request.send().await.unwrap()
    }

    async fn get_json(url: &str, token: &str) -> Value {
        get(url, token).await.json().await.unwrap()
    }

    #[tokio::test]
    async fn basic_credentials_get_a_bearer_token_with_expiry() {
        let server = FakeCloud::new().spawn().await.unwrap();
        let api = format!("{}/api/2", server.base_url);
        let response = token_request(&api, FakeCloud::CLIENT_SECRET).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 7200);
        assert!(body["expires_on"].as_i64().unwrap() > Utc::now().timestamp() + 7000);
        assert!(body["access_token"].is_string() && body["id_token"].is_string());
    }

    #[tokio::test]
    async fn bad_or_missing_credentials_get_the_flat_idp_error() {
        let (_server, api, _) = start(&FakeCloud::new()).await;
        let wrong = token_request(&api, "nope").await;
        assert_eq!(wrong.status(), 401);
        let body: Value = wrong.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert!(body["error_description"].is_string());
        let form = [("grant_type", "client_credentials")];
        let missing = reqwest::Client::new()
            .post(format!("{api}/idp/token"))
            .form(&form);
        let missing = missing.send().await.unwrap();
        assert_eq!(missing.status(), 400);
        assert_eq!(
            missing.json::<Value>().await.unwrap()["error"],
            "invalid_request"
        );
        let password = [("grant_type", "password")];
        let request = reqwest::Client::new().post(format!("{api}/idp/token"));
        let request = request.basic_auth(FakeCloud::CLIENT_ID, Some(FakeCloud::CLIENT_SECRET));
        assert_eq!(request.form(&password).send().await.unwrap().status(), 400);
        let anonymous = reqwest::Client::new()
            .get(format!("{api}/reports/x"))
            .send();
        let anonymous = anonymous.await.unwrap();
        assert_eq!(anonymous.status(), 401);
        let body: Value = anonymous.json().await.unwrap();
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["domain"], "PlatformAccountServer");
    }

    #[tokio::test]
    async fn listed_size_is_the_wire_length_for_every_shape_and_gzip_inflates_to_content() {
        let cloud = FakeCloud::new();
        let report = cloud.add_report(FakeReport::new(&["csv"]));
        let content = b"tenant_name,metric,value\nAcme,servers,3\n".repeat(50);
        for shape in SHAPES {
            cloud.add_stored(
                &report,
                FakeStored::new("csv", content.clone()).shape(shape),
            );
        }
        let (_server, api, token) = start(&cloud).await;
        let listing = get_json(&format!("{api}/reports/{report}/stored"), &token).await;
        let items = listing["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        for (item, shape) in items.iter().zip(SHAPES) {
            let id = item["id"].as_str().unwrap();
            let response = get(&format!("{api}/reports/{report}/stored/{id}"), &token).await;
            assert_eq!(response.status(), 200);
            let headers = response.headers().clone();
            let wire = response.bytes().await.unwrap();
            assert_eq!(
                item["size"].as_u64().unwrap(),
                wire.len() as u64,
                "{shape:?}"
            );
            assert_eq!(
                headers[header::CONTENT_LENGTH],
                wire.len().to_string().as_str()
            );
            let encoding = headers.get(header::CONTENT_ENCODING);
            assert_eq!(encoding.is_some(), shape == BodyShape::GzipWithHeader);
            let mut plain = wire.to_vec();
            if shape != BodyShape::Plain {
                plain.clear();
                let mut gz = flate2::read::GzDecoder::new(wire.as_ref());
                gz.read_to_end(&mut plain).unwrap();
                assert!(wire.len() < content.len());
            }
            assert_eq!(plain, content);
            assert_eq!(cloud.download_count(id), 1);
        }
    }

    #[tokio::test]
    async fn in_progress_item_is_saved_after_one_listing() {
        let cloud = FakeCloud::new();
        let report = cloud.add_report(FakeReport::new(&["html"]));
        let item = FakeStored::new("html", b"<p>x</p>".to_vec()).saved_after(1);
        let id = cloud.add_stored(&report, item);
        let (_server, api, token) = start(&cloud).await;
        let (list, download) = (
            format!("{api}/reports/{report}/stored"),
            format!("{api}/reports/{report}/stored/{id}"),
        );
        assert_eq!(get(&download, &token).await.status(), 404);
        assert_eq!(
            get_json(&list, &token).await["items"][0]["status"],
            "in_progress"
        );
        assert_eq!(get_json(&list, &token).await["items"][0]["status"], "saved");
        assert_eq!(get(&download, &token).await.status(), 200);
        assert_eq!(
            (cloud.listing_requests(), cloud.download_requests()),
            (2, 2)
        );
    }

    #[tokio::test]
    async fn a_token_limited_to_n_requests_is_refused_on_the_next() {
        let cloud = FakeCloud::new();
        let report = cloud.add_report(FakeReport::new(&["csv"]));
        cloud.expire_tokens_after_requests(Some(2));
        let (server, api, token) = start(&cloud).await;
        let url = format!("{api}/reports/{report}");
        assert_eq!(get(&url, &token).await.status(), 200);
        assert_eq!(get(&url, &token).await.status(), 200);
        let third = get(&url, &token).await;
        assert_eq!(third.status(), 401);
        assert_eq!(third.json::<Value>().await.unwrap()["error"]["code"], 401);
        cloud.expire_tokens_after_requests(None);
        let (_, _, fresh) = start(&cloud).await;
        assert_eq!(get(&url, &fresh).await.status(), 200);
        server.stop().await;
    }

    #[tokio::test]
    async fn injected_failures_hit_the_next_matching_requests_only() {
        let cloud = FakeCloud::new();
        let report = cloud.add_report(FakeReport::new(&["csv"]));
        cloud.fail_next_requests("/stored", 503, 1);
        let (_server, api, token) = start(&cloud).await;
        let url = format!("{api}/reports/{report}/stored");
        assert_eq!(get_json(&url, &token).await["error"]["code"], 503);
        assert_eq!(get(&url, &token).await.status(), 200);
    }

    #[tokio::test]
    async fn seeded_data_is_deterministic_and_has_the_documented_mix() {
        let formats = ["csv", "json_v2_0", "html"];
        let (a, b) = (
            FakeCloud::seeded(7, 3, &formats),
            FakeCloud::seeded(7, 3, &formats),
        );
        assert_eq!(a.report_ids(), b.report_ids());
        let ((_sa, api_a, ta), (_sb, api_b, tb)) = (start(&a).await, start(&b).await);
        let client = get_json(&format!("{api_a}/clients/{}", FakeCloud::CLIENT_ID), &ta).await;
        assert_eq!(client["tenant_id"], FakeCloud::TENANT_ID);
        assert_eq!(
            get(&format!("{api_a}/clients/other"), &ta).await.status(),
            404
        );
        let tenant = format!("{api_a}/tenants/{}/reports", FakeCloud::TENANT_ID);
        assert_eq!(get_json(&tenant, &ta).await["items"], json!(a.report_ids()));
        let mut statuses = Vec::new();
        for report in a.report_ids() {
            let listing = get_json(&format!("{api_a}/reports/{report}/stored"), &ta).await;
            let again = get_json(&format!("{api_b}/reports/{report}/stored"), &tb).await;
            assert_eq!(listing, again);
            statuses.extend(
                listing["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["status"].clone()),
            );
        }
        assert_eq!(
            statuses.len(),
            27,
            "3 reports x 3 generations x 3 formats, send has none"
        );
        assert_eq!(statuses.iter().filter(|s| *s == "in_progress").count(), 1);
        assert_eq!(statuses.iter().filter(|s| *s == "failed").count(), 1);
        let send = get_json(&format!("{api_a}/reports/{}", a.report_ids()[3]), &ta).await;
        assert_eq!(send["result_action"], "send");
        let first = a.report_ids()[0].clone();
        assert_eq!(a.stored(&first), b.stored(&first));
        assert!(
            a.stored(&first)
                .iter()
                .all(|v| (1024..16_384).contains(&v.plain.len()))
        );
    }
}
