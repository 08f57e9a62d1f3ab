//! An in-process fake of the Acronis Account Management API v2: the token endpoint, client and
//! tenant look-ups, report configs, stored-report listings and downloads, as Acronis's
//! public API reference describes them. It is a real HTTP server so the archiver's whole HTTP stack (auth, raw
//! gzip bodies, `size` checks) is exercised; `demo`, `fake-cloud`, the integration tests and
//! the benchmark share it. Knobs inject the faults the archiver must survive.
//!
//! This file holds the state every clone shares and the helpers the handlers use; beside it:
//! `model.rs` (what a test describes: reports, stored items, their shapes), `data.rs`
//! (filling the cloud and changing what it holds), `knobs.rs` (how it misbehaves: tokens,
//! clock, latency, faults), `readback.rs` (what a test reads back: items and counters),
//! `server.rs` (the router and serving) and `handlers.rs` (the endpoints); `faults.rs`,
//! `content.rs` and `scenario.rs` say their own.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use tokio::time::Instant;

mod content;
mod data;
mod faults;
mod handlers;
mod knobs;
mod manage;
mod model;
mod readback;
mod server;

pub mod scenario;

use content::SplitMix64;
use faults::ActiveFaults;
pub use faults::{FaultKind, FaultPlan};
pub use model::{BodyShape, FakeReport, FakeStatus, FakeStored, ListedSize, StoredView};
pub use server::RunningFakeCloud;

const SHAPES: [BodyShape; 3] = [
    BodyShape::GzipWithHeader,
    BodyShape::GzipNoHeader,
    BodyShape::Plain,
];

struct StoredEntry {
    id: String,
    spec: FakeStored,
    /// Shared, so serving a 1 GiB body copies nothing.
    wire: bytes::Bytes,
    /// Still listed, but its download answers 404 ([`FakeCloud::remove_item`]).
    removed: bool,
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
    /// Deleted ([`FakeCloud::delete_report`]): still named by the tenant's report list,
    /// but its settings, stored list and downloads answer 404.
    deleted: bool,
    /// Deleted once its stored list has been served this many times.
    deleted_after_listings: Option<u32>,
    /// Incremented by every change; `PUT` and `DELETE` must name the current one.
    version: i64,
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
    /// The error body is an HTML page instead of the API's JSON.
    html: bool,
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
    /// The API client is a read-only administrator: it may read, not create or change.
    read_only: bool,
    plan: Option<ActiveFaults>,
    latency: Duration,
    /// Requests whose path ends with this wait until the sender says `true`
    /// (`hold_requests_ending`): a test sees what the client does meanwhile.
    held: Option<(String, tokio::sync::watch::Receiver<bool>)>,
    release: Option<tokio::sync::watch::Sender<bool>>,
    downloads: HashMap<String, u32>,
    download_requests: u32,
    token_requests: u32,
    listing_requests: u32,
    /// `GET /reports/{id}` requests (a report's settings: its schedule type).
    report_requests: u32,
    /// Stored-list requests by report id, whatever their outcome.
    listing_requests_by_report: HashMap<String, u32>,
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

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
