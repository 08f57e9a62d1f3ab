//! Prometheus metrics for `/metrics`, fed once per finished pass from its [`PassReport`].
//!
//! - [`Metrics`]: the registry and every metric; [`Metrics::observe_pass`] and
//!   [`Metrics::render`] (OpenMetrics text, which Prometheus scrapes natively), or
//!   [`Metrics::render_classic`] (the classic text format 0.0.4, for `curl`, `promtool check
//!   metrics` and older scrapers that do not ask for OpenMetrics).
//! - What a pass does not know is set when `/metrics` is scraped: the ledger's size and
//!   newest row, each account's last progress (what `/healthz` judges), the free space of
//!   the archive's and the ledger's filesystems.
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

mod classic;
pub use classic::CLASSIC_CONTENT_TYPE;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VolumeLabels {
    /// `archive` (the folder, or the S3 target's staging folder) or `ledger`.
    volume: String,
    path: String,
}

/// A series with no labels that exists only once set (a plain `Gauge` always shows, as 0).
type OptionalGauge = Family<Vec<(String, String)>, Gauge>;

/// The size and free space of one filesystem, as `statvfs` tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilesystemSpace {
    /// Bytes an unprivileged process may still write (`f_bavail`): what the daemon gets.
    pub avail_bytes: u64,
    pub size_bytes: u64,
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
    deferred: Family<ReportLabels, Gauge>,
    failed_in_a_row: Family<AccountLabels, Gauge>,
    last_progress: Family<AccountLabels, Gauge>,
    resting: Family<AccountLabels, Gauge>,
    staleness: Gauge,
    ledger_newest: OptionalGauge,
    fs_avail: Family<VolumeLabels, Gauge>,
    fs_size: Family<VolumeLabels, Gauge>,
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
            deferred: Family::default(),
            failed_in_a_row: Family::default(),
            last_progress: Family::default(),
            resting: Family::default(),
            staleness: Gauge::default(),
            ledger_newest: Family::default(),
            fs_avail: Family::default(),
            fs_size: Family::default(),
        };
        metrics.register_all();
        metrics.register_more();
        metrics
    }

    /// The metrics added for the alert rules and the dashboard (deploy/prometheus,
    /// deploy/grafana), after the first ones so that their order on `/metrics` stays.
    fn register_more(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "report_archiver_items_deferred",
            "Stored items that failed several passes in a row and wait for their next try (the failure backoff), at the last pass",
            self.deferred.clone(),
        );
        registry.register(
            "report_archiver_consecutive_failed_passes",
            "Passes of this account that failed in a row, up to the last one (0 after a success; cancelled passes do not count)",
            self.failed_in_a_row.clone(),
        );
        registry.register(
            "report_archiver_last_progress_timestamp_seconds",
            "Unix time of this account's last successful pass or archived item, or of the daemon's start before either: what /healthz compares with the staleness",
            self.last_progress.clone(),
        );
        registry.register(
            "report_archiver_reports_resting",
            "Finished one-time reports (every item archived), listed about daily instead of every pass; their per-report gauges change only then",
            self.resting.clone(),
        );
        registry.register(
            "report_archiver_staleness_seconds",
            "[server] staleness: how long an account may go without progress before /healthz says unhealthy",
            self.staleness.clone(),
        );
        registry.register(
            "report_archiver_ledger_newest_row_timestamp_seconds",
            "Unix time the newest ledger row was archived (absent while the ledger is empty)",
            self.ledger_newest.clone(),
        );
        registry.register(
            "report_archiver_filesystem_avail_bytes",
            "Bytes the daemon may still write on the filesystem holding the archive folder or the ledger",
            self.fs_avail.clone(),
        );
        registry.register(
            "report_archiver_filesystem_size_bytes",
            "Size of the filesystem holding the archive folder or the ledger",
            self.fs_size.clone(),
        );
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
        let in_a_row = self.failed_in_a_row.get_or_create(&AccountLabels {
            account: account.clone(),
        });
        // A cancelled pass (shutdown) says nothing of the cloud: the count stays.
        if outcome == "ok" {
            in_a_row.set(0);
        } else if outcome == "failed" {
            in_a_row.inc();
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
            self.deferred
                .get_or_create(&labels)
                .set(i64::try_from(r.deferred).unwrap_or(i64::MAX));
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

    /// The newest ledger row's archive time (Unix seconds); `None`: the ledger is empty.
    pub fn set_ledger_newest_row(&self, at: Option<i64>) {
        match at {
            Some(at) => {
                self.ledger_newest.get_or_create(&Vec::new()).set(at);
            }
            None => self.ledger_newest.clear(),
        }
    }

    pub fn set_staleness(&self, staleness: std::time::Duration) {
        self.staleness
            .set(i64::try_from(staleness.as_secs()).unwrap_or(i64::MAX));
    }

    /// Per account, the Unix time of its last progress (see `Health::last_progress`).
    pub fn set_last_progress(&self, progress: &[(String, i64)]) {
        for (account, at) in progress {
            self.last_progress
                .get_or_create(&AccountLabels {
                    account: account.clone(),
                })
                .set(*at);
        }
    }

    /// Per account, its resting reports (see `Ledger::resting_reports`).
    pub fn set_resting_reports(&self, resting: &[(String, i64)]) {
        for (account, n) in resting {
            self.resting
                .get_or_create(&AccountLabels {
                    account: account.clone(),
                })
                .set(*n);
        }
    }

    /// The filesystem holding `volume` (`archive`, `ledger`) at `path`. `None` (it could
    /// not be read) drops the series, so that no stale number stands in for it.
    pub fn set_filesystem(&self, volume: &str, path: &str, space: Option<FilesystemSpace>) {
        let labels = VolumeLabels {
            volume: volume.to_owned(),
            path: path.to_owned(),
        };
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        match space {
            Some(space) => {
                self.fs_avail
                    .get_or_create(&labels)
                    .set(as_i64(space.avail_bytes));
                self.fs_size
                    .get_or_create(&labels)
                    .set(as_i64(space.size_bytes));
            }
            None => {
                self.fs_avail.remove(&labels);
                self.fs_size.remove(&labels);
            }
        }
    }

    /// The OpenMetrics text exposition, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error.message = %e, "cannot encode the metrics");
        }
        out
    }

    /// The classic text format (0.0.4) of the same metrics: what Prometheus's own clients
    /// serve by default. It names a counter's family with its `_total` suffix, and has no
    /// `# EOF` or `# UNIT` lines; otherwise prometheus-client's OpenMetrics output is valid
    /// classic text (same escaping, same sample lines).
    pub fn render_classic(&self) -> String {
        classic::from_openmetrics(&self.render())
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

    #[test]
    fn the_classic_format_names_counters_with_total_and_has_no_eof() {
        let metrics = Metrics::new();
        metrics.observe_pass(&PassReport {
            account: "eu2".into(),
            reports: vec![ReportOutcome {
                report_id: "r1".into(),
                deferred: 2,
                ..ReportOutcome::default()
            }],
            ..PassReport::default()
        });
        metrics.set_ledger_newest_row(Some(1_700_000_000));
        metrics.set_filesystem(
            "archive",
            "/a",
            Some(FilesystemSpace {
                avail_bytes: 5,
                size_bytes: 10,
            }),
        );
        let text = metrics.render_classic();
        for line in [
            "# TYPE report_archiver_files_archived_total counter",
            "# HELP report_archiver_files_archived_total Files archived",
            "# TYPE report_archiver_ledger_rows gauge",
            "report_archiver_items_deferred{account=\"eu2\",report=\"r1\"} 2",
            "report_archiver_consecutive_failed_passes{account=\"eu2\"} 1",
            "report_archiver_ledger_newest_row_timestamp_seconds 1700000000",
            "report_archiver_filesystem_avail_bytes{volume=\"archive\",path=\"/a\"} 5",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        metrics.set_ledger_newest_row(None);
        metrics.set_filesystem("archive", "/a", None);
        let text = metrics.render();
        assert!(!text.contains("report_archiver_ledger_newest_row_timestamp_seconds "));
        assert!(!text.contains("report_archiver_filesystem_avail_bytes{"));
    }
}
