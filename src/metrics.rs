//! Prometheus metrics for `/metrics`, fed once per finished pass from its [`PassReport`].
//!
//! - [`Metrics`]: the registry and every metric; [`Metrics::observe_pass`] and
//!   [`Metrics::render`] (OpenMetrics text, which Prometheus scrapes natively).
//!
//! Counters start at 0 with the process, as Prometheus expects; the ledger keeps the
//! history. The report label only ever holds report ids the config or the cloud named, so
//! cardinality stays at accounts × reports.

use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::pass::PassReport;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Pass durations: a quiet pass takes well under a second, a first full archive can take hours.
const PASS_SECONDS_BUCKETS: [f64; 11] = [
    0.1,
    0.5,
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    account: String,
    report: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    account: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    account: String,
    /// `account` (token, discovery, ledger), `report` (its stored list), `item` (a download).
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

type HistogramFamily = Family<AccountLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    files: Family<ReportLabels, Counter>,
    bytes: Family<ReportLabels, Counter>,
    passes: Family<OutcomeLabels, Counter>,
    pending: Family<ReportLabels, Gauge>,
    cloud_failed: Family<ReportLabels, Gauge>,
    gone: Family<ReportLabels, Gauge>,
    vanished: Family<ReportLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: HistogramFamily,
    last_success: Family<ReportLabels, Gauge>,
    ledger_rows: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
            files: Family::default(),
            bytes: Family::default(),
            passes: Family::default(),
            pending: Family::default(),
            cloud_failed: Family::default(),
            gone: Family::default(),
            vanished: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(PASS_SECONDS_BUCKETS)),
            last_success: Family::default(),
            ledger_rows: Gauge::default(),
        };
        metrics.register_all();
        metrics
    }

    /// Names and describes every metric in the registry, in the order `/metrics` lists
    /// them, then sets the constant `build_info`.
    fn register_all(&mut self) {
        let registry = &mut self.registry;
        // The encoder appends `_total` to counters.
        registry.register(
            "report_archiver_files_archived",
            "Files archived (downloaded, checked, stored and recorded) since start",
            self.files.clone(),
        );
        registry.register(
            "report_archiver_bytes_archived",
            "Bytes archived since start, as received on the wire (the listing's compressed size)",
            self.bytes.clone(),
        );
        registry.register(
            "report_archiver_passes",
            "Passes finished since start, by outcome (ok, failed, cancelled)",
            self.passes.clone(),
        );
        registry.register(
            "report_archiver_items_pending",
            "Stored items not ready yet (in progress) at the end of the last pass",
            self.pending.clone(),
        );
        registry.register(
            "report_archiver_items_cloud_failed",
            "Stored items the cloud itself reports as failed, at the last pass",
            self.cloud_failed.clone(),
        );
        registry.register(
            "report_archiver_report_gone",
            "1 when the last pass found this report deleted in the cloud (its stored list and settings answer 404/410), else 0; not a failure",
            self.gone.clone(),
        );
        registry.register(
            "report_archiver_items_vanished",
            "Stored items the cloud lost before they were archived (their download answered 404/410 on two passes), since start; each counted once",
            self.vanished.clone(),
        );
        registry.register(
            "report_archiver_failures",
            "Failures since start by kind: account (token, discovery), report (stored list), item (download)",
            self.failures.clone(),
        );
        registry.register(
            "report_archiver_pass_duration_seconds",
            "How long passes take",
            self.duration.clone(),
        );
        registry.register(
            "report_archiver_last_success_timestamp_seconds",
            "Unix time of the last pass that read this report's list and archived all it wanted",
            self.last_success.clone(),
        );
        registry.register(
            "report_archiver_ledger_rows",
            "Archived items recorded in the ledger (all time)",
            self.ledger_rows.clone(),
        );
        let build_info = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "report_archiver_build_info",
            "Always 1; the version label says which build runs",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
    }

    /// Folds one finished pass in. Dry runs are not passed here.
    pub fn observe_pass(&self, report: &PassReport) {
        let account = report.account.clone();
        let outcome = if report.cancelled {
            "cancelled"
        } else if report.succeeded() {
            "ok"
        } else {
            "failed"
        };
        self.passes
            .get_or_create(&OutcomeLabels {
                account: account.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&AccountLabels {
                account: account.clone(),
            })
            .observe(report.seconds);
        if report.error.is_some() {
            self.fail(&account, "account", 1);
        }
        let now = Utc::now().timestamp();
        for r in &report.reports {
            let labels = ReportLabels {
                account: account.clone(),
                report: r.report_id.clone(),
            };
            self.files.get_or_create(&labels).inc_by(r.fetched);
            self.bytes.get_or_create(&labels).inc_by(r.bytes);
            self.pending
                .get_or_create(&labels)
                .set(i64::try_from(r.pending).unwrap_or(i64::MAX));
            self.cloud_failed
                .get_or_create(&labels)
                .set(i64::try_from(r.cloud_failed).unwrap_or(i64::MAX));
            self.gone.get_or_create(&labels).set(i64::from(r.gone));
            self.vanished
                .get_or_create(&labels)
                .inc_by(r.vanished.len() as u64);
            if r.error.is_some() {
                self.fail(&account, "report", 1);
            }
            self.fail(&account, "item", r.failed);
            // A gone report's list was not read: its last success stays where it was.
            if report.error.is_none() && r.error.is_none() && r.failed == 0 && !r.gone {
                self.last_success.get_or_create(&labels).set(now);
            }
        }
    }

    fn fail(&self, account: &str, kind: &str, n: u64) {
        let counter = self.failures.get_or_create(&FailureLabels {
            account: account.to_owned(),
            kind: kind.to_owned(),
        });
        // Touching the series even for 0 makes every kind visible from the first pass.
        counter.inc_by(n);
    }

    pub fn set_ledger_rows(&self, rows: i64) {
        self.ledger_rows.set(rows);
    }

    /// The OpenMetrics text exposition, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error.message = %e, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::ReportOutcome;

    #[test]
    fn a_pass_shows_up_in_counters_gauges_and_the_histogram() {
        let metrics = Metrics::new();
        metrics.observe_pass(&PassReport {
            account: "eu2".into(),
            reports: vec![ReportOutcome {
                report_id: "r1".into(),
                fetched: 3,
                bytes: 300,
                pending: 1,
                failed: 1,
                ..ReportOutcome::default()
            }],
            seconds: 0.2,
            ..PassReport::default()
        });
        let text = metrics.render();
        for line in [
            "report_archiver_files_archived_total{account=\"eu2\",report=\"r1\"} 3",
            "report_archiver_bytes_archived_total{account=\"eu2\",report=\"r1\"} 300",
            "report_archiver_passes_total{account=\"eu2\",outcome=\"failed\"} 1",
            "report_archiver_items_pending{account=\"eu2\",report=\"r1\"} 1",
            "report_archiver_failures_total{account=\"eu2\",kind=\"item\"} 1",
            "report_archiver_pass_duration_seconds_count{account=\"eu2\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("report_archiver_last_success_timestamp_seconds{"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_gone_report_and_vanished_items_show_without_a_failure() {
        let metrics = Metrics::new();
        let vanished = crate::pass::VanishedItem {
            stored_id: "s".into(),
            format: "csv".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        metrics.observe_pass(&PassReport {
            account: "eu2".into(),
            reports: vec![
                ReportOutcome {
                    report_id: "gone".into(),
                    gone: true,
                    ..ReportOutcome::default()
                },
                ReportOutcome {
                    report_id: "r1".into(),
                    vanished: vec![vanished.clone(), vanished],
                    ..ReportOutcome::default()
                },
            ],
            ..PassReport::default()
        });
        let text = metrics.render();
        for line in [
            "report_archiver_report_gone{account=\"eu2\",report=\"gone\"} 1",
            "report_archiver_report_gone{account=\"eu2\",report=\"r1\"} 0",
            "report_archiver_items_vanished_total{account=\"eu2\",report=\"r1\"} 2",
            "report_archiver_passes_total{account=\"eu2\",outcome=\"ok\"} 1",
            "report_archiver_last_success_timestamp_seconds{account=\"eu2\",report=\"r1\"}",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains(
            "report_archiver_last_success_timestamp_seconds{account=\"eu2\",report=\"gone\"}"
        ));
    }
}
