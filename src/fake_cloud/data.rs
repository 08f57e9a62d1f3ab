//! Filling the cloud: an empty or a seeded one, reports and stored items added, changed
//! and removed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use serde_json::Value;

use super::content::{SplitMix64, sample_content};
use super::{
    BodyShape, FakeCloud, FakeReport, FakeStatus, FakeStored, Inner, ListedSize, ReportEntry,
    SHAPES, StoredEntry, fixed_time, gzip, wall_nanos,
};

impl FakeCloud {
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
            deleted: false,
            deleted_after_listings: None,
            version: 1,
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
                removed: false,
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

    /// Deletes a report as an operator might in the portal. What the real cloud answers
    /// then is undocumented (issue 17); the fake takes the worse case for the archiver: the
    /// tenant's report list still names it, while its settings, its stored list and its
    /// downloads answer 404 (`errorScheme`). `deleted = false` brings it back.
    pub fn delete_report(&self, report_id: &str, deleted: bool) {
        if let Some(report) = self.lock().report_mut(report_id) {
            report.deleted = deleted;
            report.deleted_after_listings = None;
        }
    }

    /// [`FakeCloud::delete_report`] once its stored list has been served `n` times: a
    /// report deleted between two passes, for `fake-cloud --scenario deleted-report`.
    pub fn delete_report_after(&self, report_id: &str, n: u32) {
        if let Some(report) = self.lock().report_mut(report_id) {
            report.deleted_after_listings = Some(n);
        }
    }

    /// The cloud loses one stored item's file: still listed as saved, but its download
    /// answers 404 (`errorScheme`), as a store whose listing and files disagree might.
    pub fn remove_item(&self, report_id: &str, stored_id: &str) {
        let mut state = self.lock();
        let item = state
            .report_mut(report_id)
            .and_then(|r| r.stored.iter_mut().find(|s| s.id == stored_id));
        if let Some(item) = item {
            item.removed = true;
        }
    }
}
