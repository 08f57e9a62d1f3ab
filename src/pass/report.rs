//! What a pass did: one [`ReportOutcome`] per report, summed up in the [`PassReport`] that
//! the CLI, the metrics, `/healthz`, the notifications and the ledger's totals read.

use std::collections::BTreeMap;

use tracing::{info, warn};

use crate::ledger::PassTotals;

use super::PassError;
use super::classify::Disposition;
use super::run::ItemOutcome;

/// What one report's part of a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportOutcome {
    pub report_id: String,
    /// Items archived in this pass.
    pub fetched: u64,
    /// Items already in the ledger.
    pub skipped: u64,
    /// Items not ready yet (`in_progress`, unknown status, left by a shutdown, or whose
    /// download answered 404/410 for the first time).
    pub pending: u64,
    /// Items whose download or handling failed in this pass.
    pub failed: u64,
    /// Items the cloud itself reports as failed (recorded, never fetched).
    pub cloud_failed: u64,
    /// Items in formats the configuration does not want.
    pub excluded: u64,
    /// Items that failed several passes in a row and wait for their next try.
    pub deferred: u64,
    /// Wire bytes downloaded.
    pub bytes: u64,
    /// The cloud deleted the report: its stored list and its settings answered 404/410.
    /// Not a failure; the note says since when.
    pub gone: bool,
    /// This pass is the first to find the report gone (the webhook tells it then).
    pub newly_gone: bool,
    /// Items the cloud lost before they were archived, found so in this pass (each is
    /// told once: later passes no longer ask for it).
    pub vanished: Vec<VanishedItem>,
    /// Why the report as a whole failed (its list could not be read).
    pub error: Option<String>,
    /// Something worth telling that is not a failure (e.g. a `send` report).
    pub note: Option<String>,
    /// The report is e-mailed (`result_action = send`) and stores nothing to archive.
    pub stores_nothing: bool,
}

impl ReportOutcome {
    pub(super) fn new(report_id: &str) -> Self {
        Self {
            report_id: report_id.to_owned(),
            ..Self::default()
        }
    }

    /// Counts a listed item's disposition; a download counts once it is over.
    pub(super) fn count(&mut self, disposition: &Disposition) {
        let counter = match disposition {
            Disposition::Pending(_) => &mut self.pending,
            Disposition::Failed(_) | Disposition::Refused { .. } => &mut self.failed,
            Disposition::Excluded => &mut self.excluded,
            Disposition::CloudFailed => &mut self.cloud_failed,
            Disposition::Skipped => &mut self.skipped,
            Disposition::Deferred { .. } => &mut self.deferred,
            Disposition::Duplicate | Disposition::Download { .. } | Disposition::Vanished => {
                return;
            }
        };
        *counter += 1;
    }

    /// Counts a download that is over; true when it never started (the pass was
    /// cancelled first).
    pub(super) fn count_download(&mut self, item: &ItemOutcome) -> bool {
        match item {
            ItemOutcome::Archived { bytes } => {
                self.fetched += 1;
                self.bytes += bytes;
            }
            ItemOutcome::Cancelled => {
                self.pending += 1;
                return true;
            }
            ItemOutcome::Failed(_) => self.failed += 1,
            // Asked once more next pass before it is taken for lost.
            ItemOutcome::NotFoundOnce => self.pending += 1,
            ItemOutcome::Vanished(item) => self.vanished.push(item.clone()),
        }
        false
    }

    /// The report as a whole failed: what is counted so far stays.
    pub(super) fn fail(&mut self, error: PassError) {
        self.error = Some(error.into_text());
    }
}

/// A stored item the cloud lost before it was archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VanishedItem {
    pub stored_id: String,
    pub format: String,
    /// The listing's `created_at`, RFC 3339.
    pub created_at: String,
}

/// An item a dry run would fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    pub report_id: String,
    pub stored_id: String,
    pub format: String,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub account: String,
    pub reports: Vec<ReportOutcome>,
    /// Why the account as a whole failed (token, discovery).
    pub error: Option<String>,
    pub planned: Vec<PlannedItem>,
    pub cancelled: bool,
    pub seconds: f64,
    /// Every report the account sees stores nothing (all `send`, or none at all): no pass
    /// will ever archive anything until a `save` report exists. `error` says what to do.
    pub nothing_to_archive: bool,
}

impl PassReport {
    /// A pass that failed as a whole before any report.
    pub(super) fn account_failed(account: &str, error: PassError) -> Self {
        Self {
            account: account.to_owned(),
            error: Some(error.into_text()),
            ..Self::default()
        }
    }

    /// The reports' outcomes, in report id order, with the downloads counted in.
    pub(super) fn add_reports(
        &mut self,
        mut outcomes: BTreeMap<String, ReportOutcome>,
        downloads: Vec<(String, ItemOutcome)>,
    ) {
        for (report_id, item) in downloads {
            if let Some(outcome) = outcomes.get_mut(&report_id) {
                self.cancelled |= outcome.count_download(&item);
            }
        }
        self.reports.extend(outcomes.into_values());
    }

    /// An account that discovers its reports and finds none that stores anything
    /// archives nothing, now or later: made the pass's error (so `once` exits 1 and
    /// `/healthz` says it), naming the command that creates a `save` report.
    pub(super) fn check_archives_something(&mut self) {
        if self.error.is_some() || !self.reports.iter().all(|r| r.stores_nothing) {
            return;
        }
        self.nothing_to_archive = true;
        let error = PassError::NothingToArchive {
            account: self.account.clone(),
            reports: self.reports.len(),
        };
        self.error = Some(error.into_text());
    }

    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self
                .reports
                .iter()
                .all(|r| r.error.is_none() && r.failed == 0 && r.deferred == 0)
    }

    fn sum(&self, f: impl Fn(&ReportOutcome) -> u64) -> u64 {
        self.reports.iter().map(f).sum()
    }

    pub fn fetched(&self) -> u64 {
        self.sum(|r| r.fetched)
    }
    pub fn skipped(&self) -> u64 {
        self.sum(|r| r.skipped)
    }
    pub fn pending(&self) -> u64 {
        self.sum(|r| r.pending)
    }
    pub fn failed(&self) -> u64 {
        self.sum(|r| r.failed)
    }
    pub fn deferred(&self) -> u64 {
        self.sum(|r| r.deferred)
    }
    pub fn cloud_failed(&self) -> u64 {
        self.sum(|r| r.cloud_failed)
    }
    /// Items found vanished in this pass.
    pub fn vanished(&self) -> u64 {
        self.sum(|r| r.vanished.len() as u64)
    }
    /// Reports the cloud deleted, as seen by this pass.
    pub fn gone_reports(&self) -> impl Iterator<Item = &ReportOutcome> {
        self.reports.iter().filter(|r| r.gone)
    }
    pub fn bytes(&self) -> u64 {
        self.sum(|r| r.bytes)
    }

    pub(super) fn totals(&self) -> PassTotals {
        let failed_reports = self.reports.iter().filter(|r| r.error.is_some()).count();
        let error = self
            .error
            .clone()
            .or_else(|| (failed_reports > 0).then(|| format!("{failed_reports} report(s) failed")));
        PassTotals {
            reports: self.reports.len() as i64,
            fetched: self.fetched() as i64,
            skipped: self.skipped() as i64,
            pending: self.pending() as i64,
            failed: (self.failed() + self.deferred()) as i64,
            cloud_failed: self.cloud_failed() as i64,
            bytes: self.bytes() as i64,
            outcome: if self.cancelled {
                "cancelled"
            } else if self.succeeded() {
                "ok"
            } else {
                "failed"
            },
            error,
        }
    }

    /// The pass's closing log line.
    pub(super) fn log(&self) {
        let (fetched, skipped, pending) = (self.fetched(), self.skipped(), self.pending());
        let (failed, cloud_failed, bytes) = (self.failed(), self.cloud_failed(), self.bytes());
        let (seconds, vanished) = (self.seconds, self.vanished());
        let gone = self.gone_reports().count();
        if let Some(e) = &self.error {
            warn!(error.message = %e, seconds, "pass failed");
        } else if self.succeeded() {
            info!(
                fetched,
                skipped, pending, cloud_failed, vanished, gone, bytes, seconds, "pass finished"
            );
        } else {
            warn!(
                fetched,
                skipped,
                pending,
                failed,
                cloud_failed,
                vanished,
                gone,
                bytes,
                seconds,
                "pass finished with failures"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::ItemError;
    use crate::pass::classify::{Pending, Refusal, Unusable};

    #[test]
    fn each_disposition_counts_where_the_report_shows_it() {
        let mut o = ReportOutcome::new("r");
        for d in [
            Disposition::Pending(Pending::InProgress),
            Disposition::Failed(Unusable::NoId),
            Disposition::Refused {
                stored_id: "a".into(),
                why: Refusal::Size(ItemError::NegativeSize(-1)),
                missing: None,
            },
            Disposition::Excluded,
            Disposition::CloudFailed,
            Disposition::Skipped,
            Disposition::Deferred {
                stored_id: "b".into(),
                next_try: "later".into(),
                missing: None,
            },
            Disposition::Duplicate,
            Disposition::Download {
                stored_id: "c".into(),
                missing: None,
            },
        ] {
            o.count(&d);
        }
        let expected = ReportOutcome {
            pending: 1,
            failed: 2,
            excluded: 1,
            cloud_failed: 1,
            skipped: 1,
            deferred: 1,
            ..ReportOutcome::new("r")
        };
        assert_eq!(o, expected);
    }

    #[test]
    fn downloads_count_into_their_report_and_a_cancelled_one_is_pending() {
        let outcomes = BTreeMap::from([
            ("a".to_owned(), ReportOutcome::new("a")),
            ("b".to_owned(), ReportOutcome::new("b")),
        ]);
        let mut report = PassReport::default();
        report.add_reports(
            outcomes,
            vec![
                ("a".into(), ItemOutcome::Archived { bytes: 10 }),
                ("a".into(), ItemOutcome::Archived { bytes: 5 }),
                ("b".into(), ItemOutcome::Failed(ItemError::NoId)),
                ("b".into(), ItemOutcome::Cancelled),
            ],
        );
        assert!(report.cancelled);
        assert_eq!((report.fetched(), report.bytes()), (2, 15));
        assert_eq!((report.failed(), report.pending()), (1, 1));
        assert_eq!(report.reports[0].report_id, "a");
        assert_eq!(report.totals().outcome, "cancelled");
    }

    #[test]
    fn an_account_whose_every_report_is_send_or_that_sees_none_archives_nothing() {
        let send = ReportOutcome {
            stores_nothing: true,
            ..ReportOutcome::new("s")
        };
        for reports in [vec![], vec![send.clone()], vec![send.clone(), send.clone()]] {
            let mut report = PassReport {
                account: "acme".into(),
                reports,
                ..PassReport::default()
            };
            report.check_archives_something();
            assert!(report.nothing_to_archive && !report.succeeded());
            let error = report.error.unwrap_or_default();
            assert!(
                error.contains("report-archiver reports create --account acme"),
                "{error}"
            );
        }
        let mut mixed = PassReport {
            reports: vec![send, ReportOutcome::new("saves")],
            ..PassReport::default()
        };
        mixed.check_archives_something();
        assert!(!mixed.nothing_to_archive && mixed.succeeded());
    }
}
