//! What a test reads back: the items the cloud holds and the requests it counted.

use std::collections::HashMap;

use super::{FakeCloud, FakeStatus, FaultKind, StoredEntry, StoredView};

impl FakeCloud {
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

    /// Every `GET /reports/{id}` (a report's settings), whatever its outcome.
    pub fn report_requests(&self) -> u32 {
        self.lock().report_requests
    }

    /// Requests to one report's stored list, whatever their outcome.
    pub fn listing_requests_of(&self, report_id: &str) -> u32 {
        let st = self.lock();
        st.listing_requests_by_report
            .get(report_id)
            .copied()
            .unwrap_or(0)
    }

    /// Every API request served so far, whatever the endpoint or outcome.
    pub fn requests(&self) -> u32 {
        self.lock().requests
    }

    /// How many times each report's stored list was served (faults not counted).
    pub fn listings_served(&self) -> HashMap<String, u32> {
        let st = self.lock();
        st.reports
            .iter()
            .map(|r| (r.id.clone(), r.listings_served))
            .collect()
    }

    /// The report's `schedule.type`, as `GET /reports/{id}` says it.
    pub fn schedule_type(&self, report_id: &str) -> Option<String> {
        let st = self.lock();
        st.report(report_id).map(|r| r.config.schedule_type.clone())
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
}
