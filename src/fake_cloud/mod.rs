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
mod handlers;

use handlers::*;
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

/// What a stored item's listed `size` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedSize {
    /// The bytes on the wire: the documented "compressed size".
    Wire,
    /// The plain report's length, whatever is served.
    Uncompressed,
    /// This number, whatever is served.
    Exactly(u64),
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
    /// What the listing's `size` counts: the bytes served (documented), or, as a cloud that
    /// drifts from its spec might, the uncompressed report.
    pub listed_size: ListedSize,
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
            listed_size: ListedSize::Wire,
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
    /// Added to the `expires_on` the token answer states: a server whose clock is off.
    clock_skew_secs: i64,
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
        self.change_item(report_id, stored_id, |spec| {
            spec.status = st;
            spec.saved_after_listings = None;
        });
    }

    /// What the listing states as the item's `size` from now on.
    pub fn set_listed_size(&self, report_id: &str, stored_id: &str, size: ListedSize) {
        self.change_item(report_id, stored_id, |spec| spec.listed_size = size);
    }

    /// Changes one stored item's spec in place; nothing happens if there is no such item.
    fn change_item(&self, report_id: &str, stored_id: &str, change: impl FnOnce(&mut FakeStored)) {
        let mut state = self.lock();
        let item = state
            .report_mut(report_id)
            .and_then(|r| r.stored.iter_mut().find(|s| s.id == stored_id));
        if let Some(item) = item {
            change(&mut item.spec);
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

    /// The token answer's `expires_on` is off by `secs` (negative: in the past), as from a
    /// server whose clock disagrees with ours; the token itself lives its real TTL.
    pub fn set_clock_skew(&self, secs: i64) {
        self.lock().clock_skew_secs = secs;
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
mod tests;
