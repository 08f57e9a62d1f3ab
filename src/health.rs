//! What `/healthz` answers: [`Health`] remembers, per account, the last pass and the last
//! successful one; [`Health::check`] turns that into a [`HealthReport`].
//!
//! The rule: healthy while the scheduler runs and every account has had a successful pass,
//! or archived an item, within `staleness` (counted from the daemon's start until then):
//! a first pass catching up on years of reports can outlast the staleness, and a health
//! check that restarts the daemon in the middle of it would never let it finish. One failed
//! pass does not make the daemon unhealthy: a cloud hiccup heals at the next pass, and a
//! health check that flaps on it gets ignored. A failure that lasts longer than `staleness`
//! does, and the report says why (the last error). Cancelled passes (shutdown) count as
//! neither success nor failure. What the cloud deleted (issue 17) is said, not judged: a
//! gone report or a vanished item leaves the daemon healthy.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ledger::rfc3339;
use crate::pass::{PassObserver, PassReport};

#[derive(Debug, Default)]
struct AccountState {
    last_pass_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    last_success: Option<Instant>,
    last_archived_at: Option<DateTime<Utc>>,
    last_archived: Option<Instant>,
    last_error: Option<String>,
    consecutive_failures: u32,
    gone_reports: Vec<String>,
    vanished_items: u64,
    /// The last pass found nothing that stores results: unhealthy at once, as no later
    /// pass heals it by itself (`last_error` says what to do).
    nothing_to_archive: bool,
}

#[derive(Debug)]
struct State {
    scheduler_running: bool,
    accounts: BTreeMap<String, AccountState>,
}

pub struct Health {
    started: Instant,
    started_at: DateTime<Utc>,
    staleness: Duration,
    state: Mutex<State>,
}

/// The JSON body of `/healthz`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HealthReport {
    /// `ok` or `unhealthy`.
    pub status: &'static str,
    /// Empty when healthy; otherwise one line per problem.
    pub reasons: Vec<String>,
    pub staleness_secs: u64,
    pub accounts: Vec<AccountHealth>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountHealth {
    pub account: String,
    pub last_pass_at: Option<String>,
    pub last_success_at: Option<String>,
    /// When this process last archived an item of the account.
    pub last_archived_at: Option<String>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    /// The reports the last pass found deleted in the cloud (a discovered one is named by
    /// the pass that found it only: later passes no longer list it).
    pub gone_reports: Vec<String>,
    /// Items the cloud lost before they were archived, found since the daemon started.
    pub vanished_items: u64,
}

impl HealthReport {
    pub fn healthy(&self) -> bool {
        self.reasons.is_empty()
    }
}

impl Health {
    pub fn new<'a>(accounts: impl IntoIterator<Item = &'a str>, staleness: Duration) -> Self {
        let accounts = accounts
            .into_iter()
            .map(|a| (a.to_owned(), AccountState::default()))
            .collect();
        Self {
            started: Instant::now(),
            started_at: Utc::now(),
            staleness,
            state: Mutex::new(State {
                scheduler_running: false,
                accounts,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep answering.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_scheduler_running(&self, running: bool) {
        self.lock().scheduler_running = running;
    }

    /// An item of `account` reached the archive and the ledger: the daemon is making
    /// progress, even in a pass that has not ended yet.
    pub fn item_archived(&self, account: &str) {
        let mut state = self.lock();
        let a = state.accounts.entry(account.to_owned()).or_default();
        a.last_archived = Some(Instant::now());
        a.last_archived_at = Some(Utc::now());
    }

    pub fn record(&self, report: &PassReport) {
        if report.cancelled {
            return;
        }
        let now = Utc::now();
        let mut state = self.lock();
        let account = state.accounts.entry(report.account.clone()).or_default();
        account.last_pass_at = Some(now);
        // Report ids came from the config or the cloud's discovery; served as data.
        account.gone_reports = report
            .gone_reports()
            .map(|r| crate::untrusted::sanitize(&r.report_id, crate::untrusted::CELL_MAX))
            .collect();
        account.vanished_items = account.vanished_items.saturating_add(report.vanished());
        account.nothing_to_archive = report.nothing_to_archive;
        if report.succeeded() {
            account.last_success_at = Some(now);
            account.last_success = Some(Instant::now());
            account.last_error = None;
            account.consecutive_failures = 0;
        } else {
            account.consecutive_failures = account.consecutive_failures.saturating_add(1);
            // Served on /healthz to whoever can reach it: server text made safe first.
            account.last_error = Some(crate::untrusted::sanitize(
                &describe_failure(report),
                crate::untrusted::STORED_MAX,
            ));
        }
    }

    /// Per account, the Unix time its staleness is counted from: its last successful pass
    /// or archived item, else the daemon's start (the `/metrics` gauge the staleness alert
    /// reads, so that the alert and `/healthz` judge alike).
    pub fn last_progress(&self) -> Vec<(String, i64)> {
        let state = self.lock();
        state
            .accounts
            .iter()
            .map(|(name, a)| {
                let at = [a.last_success_at, a.last_archived_at]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(self.started_at);
                (name.clone(), at.timestamp())
            })
            .collect()
    }

    pub fn check(&self) -> HealthReport {
        let state = self.lock();
        let mut reasons = Vec::new();
        if !state.scheduler_running {
            reasons.push("the scheduler is not running (starting or stopping)".to_owned());
        }
        let mut accounts = Vec::new();
        for (name, a) in &state.accounts {
            if a.nothing_to_archive
                && let Some(why) = &a.last_error
            {
                reasons.push(format!("account `{name}`: {why}"));
            }
            let since = [a.last_success, a.last_archived]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(self.started);
            if since.elapsed() > self.staleness {
                let what = match a.last_success_at {
                    Some(at) => format!("no successful pass since {}", rfc3339(at)),
                    None => "no successful pass since the daemon started".to_owned(),
                };
                let what = match a.last_archived_at {
                    Some(at) => format!("{what} and no item archived since {}", rfc3339(at)),
                    None => what,
                };
                let why = a
                    .last_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default();
                reasons.push(format!(
                    "account `{name}`: {what}, longer than the staleness of {}{why}",
                    humantime::format_duration(self.staleness)
                ));
            }
            accounts.push(AccountHealth {
                account: name.clone(),
                last_pass_at: a.last_pass_at.map(rfc3339),
                last_success_at: a.last_success_at.map(rfc3339),
                last_archived_at: a.last_archived_at.map(rfc3339),
                consecutive_failures: a.consecutive_failures,
                last_error: a.last_error.clone(),
                gone_reports: a.gone_reports.clone(),
                vanished_items: a.vanished_items,
            });
        }
        HealthReport {
            status: if reasons.is_empty() {
                "ok"
            } else {
                "unhealthy"
            },
            reasons,
            staleness_secs: self.staleness.as_secs(),
            accounts,
        }
    }
}

/// A pass in progress tells of each item it archives.
impl PassObserver for Health {
    fn item_archived(&self, account: &str) {
        Health::item_archived(self, account);
    }
}

/// One line: the account's error, else the failed reports and items.
fn describe_failure(report: &PassReport) -> String {
    if let Some(e) = &report.error {
        return e.clone();
    }
    let mut parts: Vec<String> = report
        .reports
        .iter()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("report {}: {e}", r.report_id))
        })
        .collect();
    let failed = report.failed();
    if failed > 0 {
        parts.push(format!("{failed} item(s) failed to download"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::ReportOutcome;

    fn pass(account: &str, error: Option<&str>) -> PassReport {
        PassReport {
            account: account.into(),
            error: error.map(str::to_owned),
            ..PassReport::default()
        }
    }

    #[test]
    fn last_progress_counts_from_the_start_then_from_the_last_success_or_archived_item() {
        let health = Health::new(["a", "b"], Duration::from_secs(3600));
        let started = health.started_at.timestamp();
        health.record(&pass("a", Some("cloud down")));
        assert_eq!(
            health.last_progress(),
            vec![("a".to_owned(), started), ("b".to_owned(), started)]
        );
        health.item_archived("b");
        let progress = health.last_progress();
        assert!(progress[1].1 >= started, "{progress:?}");
        assert_eq!(progress[0], ("a".to_owned(), started));
    }

    #[test]
    fn a_failure_within_the_staleness_is_still_healthy_and_says_why() {
        let health = Health::new(["a"], Duration::from_secs(3600));
        health.set_scheduler_running(true);
        health.record(&pass("a", Some("cloud down")));
        let report = health.check();
        assert!(report.healthy(), "{report:?}");
        assert_eq!(report.accounts[0].consecutive_failures, 1);
        assert_eq!(report.accounts[0].last_error.as_deref(), Some("cloud down"));
    }

    #[test]
    fn no_success_past_the_staleness_is_unhealthy_naming_the_account_and_error() {
        let health = Health::new(["a"], Duration::ZERO);
        health.set_scheduler_running(true);
        health.record(&pass("a", Some("cloud down")));
        std::thread::sleep(Duration::from_millis(2));
        let report = health.check();
        assert!(!report.healthy());
        assert!(report.reasons[0].contains("account `a`"), "{report:?}");
        assert!(report.reasons[0].contains("cloud down"), "{report:?}");
    }

    #[test]
    fn a_stopped_scheduler_is_unhealthy_and_cancelled_passes_change_nothing() {
        let health = Health::new(["a"], Duration::from_secs(3600));
        assert!(!health.check().healthy());
        health.set_scheduler_running(true);
        let mut cancelled = pass("a", None);
        cancelled.cancelled = true;
        health.record(&cancelled);
        assert_eq!(health.check().accounts[0].last_pass_at, None);
        health.record(&PassReport {
            reports: vec![ReportOutcome {
                report_id: "r".into(),
                failed: 2,
                ..ReportOutcome::default()
            }],
            ..pass("a", None)
        });
        let a = &health.check().accounts[0];
        assert_eq!(
            a.last_error.as_deref(),
            Some("2 item(s) failed to download")
        );
    }

    #[test]
    fn a_gone_report_and_a_vanished_item_are_told_and_stay_healthy() {
        let health = Health::new(["a"], Duration::from_secs(3600));
        health.set_scheduler_running(true);
        let report = |gone, vanished: usize| PassReport {
            reports: vec![ReportOutcome {
                report_id: "r".into(),
                gone,
                vanished: vec![
                    crate::pass::VanishedItem {
                        stored_id: "s".into(),
                        format: "csv".into(),
                        created_at: "2026-01-01T00:00:00Z".into(),
                    };
                    vanished
                ],
                ..ReportOutcome::default()
            }],
            ..pass("a", None)
        };
        health.record(&report(true, 1));
        let checked = health.check();
        assert!(checked.healthy(), "{checked:?}");
        let a = &checked.accounts[0];
        assert_eq!(
            (a.gone_reports.as_slice(), a.vanished_items),
            (&["r".to_owned()][..], 1)
        );
        assert_eq!(a.consecutive_failures, 0);
        health.record(&report(false, 0));
        let a = &health.check().accounts[0];
        assert!(a.gone_reports.is_empty());
        assert_eq!(a.vanished_items, 1, "counted since the start");
    }

    #[test]
    fn an_account_with_nothing_to_archive_is_unhealthy_at_once_and_says_what_to_do() {
        let health = Health::new(["a"], Duration::from_secs(3600));
        health.set_scheduler_running(true);
        let mut idle = pass("a", Some("nothing to archive: create one with `x`"));
        idle.nothing_to_archive = true;
        health.record(&idle);
        let report = health.check();
        assert!(!report.healthy());
        assert_eq!(
            report.reasons,
            ["account `a`: nothing to archive: create one with `x`"]
        );
        health.record(&pass("a", None));
        assert!(health.check().healthy());
    }

    #[test]
    fn a_long_first_pass_that_keeps_archiving_stays_healthy_until_it_stalls() {
        let staleness = Duration::from_millis(200);
        let health = Health::new(["a"], staleness);
        health.set_scheduler_running(true);
        // Past the staleness with no pass finished, but items keep arriving.
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(80));
            health.item_archived("a");
            let report = health.check();
            assert!(report.healthy(), "{report:?}");
        }
        assert!(health.check().accounts[0].last_archived_at.is_some());
        // The pass stalls: no item for longer than the staleness.
        std::thread::sleep(staleness + Duration::from_millis(50));
        let report = health.check();
        assert!(!report.healthy());
        assert!(
            report.reasons[0].contains("no item archived since"),
            "{report:?}"
        );
    }
}
