//! Telling someone: a webhook for failures and recoveries, a healthchecks.io-style ping
//! after every pass. Neither ever touches the pass or the daemon: a request that meets a
//! network error, a 5xx, a 408 or a 429 is tried twice more (after 1 s and 5 s), and a
//! webhook message that still did not get through is sent again after the next pass, by
//! this process or the next one (the ledger records what the webhook last heard of).
//!
//! - [`Notifier`]: built from `[notify]`; [`Notifier::pass_finished`] after each pass.
//! - [`Event`]: what the webhook receives (JSON, with a `text` line that Slack-style
//!   incoming webhooks display as is).
//!
//! The webhook fires on changes only: an account's first failed pass (after a success, or
//! its first pass at all) and its first success after failures. The last outcome before
//! the process started comes from the ledger, so this holds across restarts and `once` runs. An outage of a day thus
//! sends two messages, not one per pass; the ping, sent after every pass, is the
//! dead-man's switch. What the cloud deleted (issue 17) is told once, by the pass that
//! found it: a report gone, an item vanished before it was archived. It rides on a failure
//! or recovery event, or goes out as a `deletion` event of its own; a `deletion` the
//! webhook missed is not sent again (the ledger keeps the facts, the log said them).
//! The URLs are secrets (they carry tokens) and never reach a log line:
//! reqwest errors are logged `without_url()`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::api::client::USER_AGENT;
use crate::config::NotifySettings;
use crate::ledger::{Ledger, rfc3339};
use crate::pass::PassReport;

/// Connecting takes at most this long (or the whole timeout, when that is shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits before the second and the third try of a notification that met a network error,
/// a 5xx, a 408 or a 429: a webhook endpoint restarting must not swallow the one message
/// of an outage.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(5)];

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot build the HTTP client for notifications: {0}")]
    Build(#[source] reqwest::Error),
}

/// The webhook's JSON body.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// `failure`, `recovery` or `deletion` (nothing failed, but the cloud deleted a
    /// report or lost an item: see `gone_reports` and `vanished`).
    pub event: &'static str,
    pub account: String,
    /// One human line, e.g. "report-archiver: account `eu2` failed: …".
    pub text: String,
    pub error: Option<String>,
    pub failed_reports: Vec<FailedReport>,
    pub fetched: u64,
    pub failed_items: u64,
    pub pending: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Reports this pass was the first to find deleted in the cloud.
    pub gone_reports: Vec<String>,
    /// Items the cloud lost before they were archived, found so in this pass.
    pub vanished: Vec<VanishedEvent>,
    /// When the pass finished (RFC 3339, UTC).
    pub at: String,
    pub version: &'static str,
}

/// An item the cloud lost before it was archived.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VanishedEvent {
    pub report_id: String,
    pub stored_id: String,
    pub format: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedReport {
    pub report_id: String,
    pub error: String,
}

pub struct Notifier {
    http: reqwest::Client,
    webhook_url: Option<SecretString>,
    ping_url: Option<SecretString>,
    /// Per account: did its last (not cancelled) pass succeed?
    last_ok: Mutex<HashMap<String, bool>>,
    /// Where a delivered announcement is recorded, so that another run knows it was heard.
    ledger: Option<Ledger>,
}

impl Notifier {
    /// `None` when `[notify]` sets no URL. `previous`: per account, whether its last pass
    /// before this process succeeded (from the ledger), so a first success after a failed
    /// run is announced as a recovery.
    pub fn new(
        settings: &NotifySettings,
        previous: impl IntoIterator<Item = (String, bool)>,
        ledger: Option<Ledger>,
    ) -> Result<Option<Self>, NotifyError> {
        if settings.webhook_url.is_none() && settings.ping_url.is_none() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(settings.timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(settings.timeout))
            // A redirect could carry the hook's path to another host; hooks do not redirect.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(NotifyError::Build)?;
        Ok(Some(Self {
            http,
            webhook_url: settings.webhook_url.clone(),
            ping_url: settings.ping_url.clone(),
            last_ok: Mutex::new(previous.into_iter().collect()),
            ledger,
        }))
    }

    /// Pings, and posts to the webhook when the account failed or recovered. Cancelled
    /// passes (shutdown) say nothing.
    pub async fn pass_finished(&self, report: &PassReport) {
        if report.cancelled {
            return;
        }
        let ok = report.succeeded();
        let previous = {
            let mut last = self.last_ok.lock().unwrap_or_else(|e| e.into_inner());
            last.insert(report.account.clone(), ok)
        };
        let change = match (ok, previous) {
            (false, None | Some(true)) => Some(event("failure", report)),
            (true, Some(false)) => Some(event("recovery", report)),
            _ => None,
        };
        let deletions = report.vanished() > 0 || report.reports.iter().any(|r| r.newly_gone);
        let event = change.or_else(|| deletions.then(|| event("deletion", report)));
        let ping = self.ping(&report.account, ok);
        let hook = async {
            let Some(event) = event else {
                return true;
            };
            let delivered = self.post(&event).await;
            if event.event == "deletion" {
                // No change of outcome, so nothing for a later run to announce again.
                return true;
            }
            // An event is a change from what the webhook believes; when it did not get
            // through, the webhook still believes the opposite, and the next run must
            // compare with that, not with this pass's outcome.
            let believed = if delivered { ok } else { !ok };
            if let Some(ledger) = &self.ledger
                && let Err(e) = ledger.record_announced(&report.account, believed).await
            {
                warn!(account = %report.account, error.message = %e, "cannot record in the ledger what the webhook was told; a later run may announce a change again or miss one");
            }
            delivered
        };
        let ((), delivered) = futures::future::join(ping, hook).await;
        if !delivered {
            // Forget this outcome so that the next pass announces it again.
            let mut last = self.last_ok.lock().unwrap_or_else(|e| e.into_inner());
            match previous {
                Some(was) => last.insert(report.account.clone(), was),
                None => last.remove(&report.account),
            };
        }
    }

    /// Sends a request, trying again after [`RETRY_DELAYS`] when the failure may pass.
    async fn send(&self, request: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Result<()> {
        let mut delays = RETRY_DELAYS.iter();
        loop {
            let result = request()
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            let e = match result {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let transient = e.status().is_none_or(|s| {
                s.is_server_error()
                    || s == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || s == reqwest::StatusCode::REQUEST_TIMEOUT
            });
            match delays.next() {
                Some(delay) if transient => {
                    debug!(error.message = %e.without_url(), retry_in = ?delay, "notification failed; trying again");
                    tokio::time::sleep(*delay).await;
                }
                _ => return Err(e),
            }
        }
    }

    async fn ping(&self, account: &str, ok: bool) {
        let Some(url) = &self.ping_url else {
            return;
        };
        let url = if ok {
            url.expose_secret().to_owned()
        } else {
            fail_url(url.expose_secret())
        };
        let result = self.send(|| self.http.get(&url)).await;
        match result {
            Ok(_) => debug!(account, ok, "ping sent"),
            Err(e) => {
                warn!(account, error.message = %e.without_url(), "cannot send the ping (notify.ping_url); the pass is not affected")
            }
        }
    }

    /// Whether the event reached the webhook (or there is no webhook to reach).
    async fn post(&self, event: &Event) -> bool {
        let Some(url) = &self.webhook_url else {
            return true;
        };
        let result = self
            .send(|| self.http.post(url.expose_secret()).json(event))
            .await;
        match result {
            Ok(()) => {
                info!(account = %event.account, event = event.event, "webhook notified");
                true
            }
            Err(e) => {
                warn!(
                    account = %event.account,
                    event = event.event,
                    error.message = %e.without_url(),
                    "cannot notify the webhook (notify.webhook_url); the pass is not affected, and the next pass tries again"
                );
                false
            }
        }
    }
}

/// healthchecks.io's failure endpoint: `<url>/fail`, keeping any query string.
fn fail_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = format!("{}/fail", base.trim_end_matches('/'));
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Server text made fit for the webhook: secrets out, escaped, capped.
fn safe(text: &str) -> String {
    crate::untrusted::sanitize(text, crate::untrusted::STORED_MAX)
}

fn event(kind: &'static str, report: &PassReport) -> Event {
    let failed_reports: Vec<FailedReport> = report
        .reports
        .iter()
        .filter_map(|r| {
            r.error.as_ref().map(|e| FailedReport {
                report_id: safe(&r.report_id),
                error: safe(e),
            })
        })
        .collect();
    let error = report.error.as_deref().map(safe);
    let gone_reports: Vec<String> = report
        .reports
        .iter()
        .filter(|r| r.newly_gone)
        .map(|r| safe(&r.report_id))
        .collect();
    let vanished: Vec<VanishedEvent> = report
        .reports
        .iter()
        .flat_map(|r| {
            r.vanished.iter().map(|v| VanishedEvent {
                report_id: safe(&r.report_id),
                stored_id: safe(&v.stored_id),
                format: safe(&v.format),
                created_at: v.created_at.clone(),
            })
        })
        .collect();
    let text = if kind == "deletion" {
        format!(
            "report-archiver: account `{}`: the cloud deleted {} report(s) and lost {} item(s) before they were archived",
            report.account,
            gone_reports.len(),
            vanished.len()
        )
    } else if kind == "recovery" {
        format!(
            "report-archiver: account `{}` recovered; {} file(s) archived in this pass",
            report.account,
            report.fetched()
        )
    } else {
        let why = error.clone().unwrap_or_else(|| {
            format!(
                "{} report(s) and {} item(s) failed",
                failed_reports.len(),
                report.failed()
            )
        });
        format!(
            "report-archiver: account `{}` pass failed: {why}",
            report.account
        )
    };
    Event {
        event: kind,
        account: report.account.clone(),
        text,
        error,
        failed_reports,
        fetched: report.fetched(),
        failed_items: report.failed(),
        pending: report.pending(),
        bytes: report.bytes(),
        seconds: report.seconds,
        gone_reports,
        vanished,
        at: rfc3339(Utc::now()),
        version: env!("CARGO_PKG_VERSION"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fail_url_keeps_the_query() {
        assert_eq!(
            fail_url("https://hc-ping.com/abc"),
            "https://hc-ping.com/abc/fail"
        );
        assert_eq!(fail_url("https://h/abc/"), "https://h/abc/fail");
        assert_eq!(fail_url("https://h/abc?rid=1"), "https://h/abc/fail?rid=1");
    }

    #[test]
    fn a_failure_event_says_which_account_and_why() {
        let report = PassReport {
            account: "eu2".into(),
            error: Some("token refused".into()),
            ..PassReport::default()
        };
        let e = event("failure", &report);
        assert_eq!(e.account, "eu2");
        assert!(e.text.contains("token refused"), "{}", e.text);
    }

    #[test]
    fn a_deletion_event_names_the_gone_reports_and_the_vanished_items() {
        use crate::pass::{ReportOutcome, VanishedItem};
        let report = PassReport {
            account: "eu2".into(),
            reports: vec![
                ReportOutcome {
                    report_id: "old".into(),
                    gone: true,
                    newly_gone: true,
                    ..ReportOutcome::default()
                },
                ReportOutcome {
                    report_id: "still-gone".into(),
                    gone: true,
                    ..ReportOutcome::default()
                },
                ReportOutcome {
                    report_id: "r".into(),
                    vanished: vec![VanishedItem {
                        stored_id: "s".into(),
                        format: "csv".into(),
                        created_at: "2026-01-01T00:00:00Z".into(),
                    }],
                    ..ReportOutcome::default()
                },
            ],
            ..PassReport::default()
        };
        let e = event("deletion", &report);
        assert_eq!(e.gone_reports, ["old"]);
        assert_eq!(e.vanished.len(), 1);
        assert_eq!(
            (
                e.vanished[0].report_id.as_str(),
                e.vanished[0].stored_id.as_str()
            ),
            ("r", "s")
        );
        assert!(
            e.text.contains("deleted 1 report(s) and lost 1 item(s)"),
            "{}",
            e.text
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["event"], "deletion");
        assert_eq!(json["vanished"][0]["format"], "csv");
    }
}
