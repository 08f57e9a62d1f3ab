//! How the cloud misbehaves: token lifetime and use limits, a skewed clock, latency, and
//! injected or random faults.

use std::time::Duration;

use super::faults::ActiveFaults;
use super::{FakeCloud, Fault, FaultPlan};

impl FakeCloud {
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
            html: false,
        });
    }

    /// The next `n` requests whose path contains `path_contains` get `status` with an HTML
    /// error page, as from a load balancer in front of the API.
    pub fn fail_next_requests_with_html(&self, path_contains: &str, status: u16, n: u32) {
        self.lock().faults.push(Fault {
            path_contains: path_contains.to_owned(),
            status,
            remaining: n,
            retry_after: None,
            html: true,
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
            html: false,
        });
    }

    /// The API client becomes a read-only administrator (or an administrator again): it
    /// may still list and download, but creating, changing or deleting a report answers 403.
    pub fn set_read_only(&self, read_only: bool) {
        self.lock().read_only = read_only;
    }

    /// Requests whose path ends with `path_end` are held, unanswered, until
    /// [`FakeCloud::release_held`]: what the client does while one waits.
    pub fn hold_requests_ending(&self, path_end: &str) {
        let (release, held) = tokio::sync::watch::channel(false);
        let mut st = self.lock();
        st.held = Some((path_end.to_owned(), held));
        st.release = Some(release);
    }

    /// Answers the held requests, and holds no more.
    pub fn release_held(&self) {
        let mut st = self.lock();
        st.held = None;
        if let Some(release) = st.release.take() {
            let _ = release.send(true);
        }
    }

    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// Injects seeded random faults into every request from now on; `None` stops them.
    pub fn set_fault_plan(&self, plan: Option<FaultPlan>) {
        self.lock().plan = plan.map(ActiveFaults::new);
    }
}
