//! The service's outside: `/healthz`, `/metrics` and the webhook/ping notifications, with the
//! daemon running in-process (its listener on 127.0.0.1:0) against the fake cloud.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use report_archiver::app::{Daemon, Mode};
use report_archiver::config;
use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};
use tokio::task::JoinHandle;

use crate::support::{Options, TestApp, output_text, spawn_app_with};

const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` every 50 ms until it holds; fails the test after [`WAIT`].
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the notification receiver saw: webhook bodies and ping paths, in order.
#[derive(Clone, Default)]
struct Received {
    hooks: Arc<Mutex<Vec<serde_json::Value>>>,
    pings: Arc<Mutex<Vec<String>>>,
    /// The next this-many webhook posts are answered 503 and not kept.
    refuse_hooks: Arc<AtomicU32>,
}

impl Received {
    fn hooks(&self) -> Vec<serde_json::Value> {
        self.hooks.lock().expect("lock").clone()
    }
    /// The `event` of each webhook body received, in order.
    fn events(&self) -> Vec<String> {
        self.hooks()
            .iter()
            .map(|h| h["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
    fn pings(&self) -> Vec<String> {
        self.pings.lock().expect("lock").clone()
    }
}

/// A tiny webhook + ping receiver on 127.0.0.1:0.
async fn spawn_receiver() -> (SocketAddr, Received) {
    let received = Received::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(r): State<Received>, axum::Json(body): axum::Json<serde_json::Value>| async move {
                    let refused = r
                        .refuse_hooks
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if refused {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    r.hooks.lock().expect("lock").push(body);
                    axum::http::StatusCode::OK
                },
            ),
        )
        .route(
            "/ping/{*rest}",
            get(
                |State(r): State<Received>, uri: axum::http::Uri| async move {
                    r.pings.lock().expect("lock").push(uri.path().to_owned());
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

struct RunningDaemon {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningDaemon {
    async fn start(app: &TestApp) -> Self {
        let config = config::load(Some(&app.config_path)).expect("config loads");
        let daemon = Daemon::build(config, Mode::Service)
            .await
            .expect("daemon builds");
        let addr = daemon.server_addr().expect("[server] listen is set");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            daemon
                .run_until_stopped(true, async move {
                    let _ = rx.await;
                })
                .await
                .expect("daemon runs");
        });
        Self { addr, stop, task }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .expect("endpoint answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    async fn health(&self) -> (u16, serde_json::Value) {
        let (status, body) = self.get("/healthz").await;
        (
            status,
            serde_json::from_str(&body).expect("healthz is JSON"),
        )
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("daemon stops")
            .expect("daemon task joins");
    }
}

fn every_second(extra_sections: String) -> Options {
    Options {
        schedule: Some("* * * * * *".into()),
        extra_sections,
        ..Options::default()
    }
}

/// No retries: a pass against a stopped cloud fails at once instead of backing off.
fn without_retries(options: Options) -> Options {
    Options {
        http: "retries = 0".into(),
        ..options
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_turns_503_when_the_cloud_stays_down_past_the_staleness_and_200_when_it_is_back() {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", b"a\n1\n".to_vec()));
    let (hooks, received) = spawn_receiver().await;
    let sections = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nstaleness = \"2s\"\n\n\
         [notify]\nwebhook_url = \"http://{hooks}/hook\"\nping_url = \"http://{hooks}/ping/check\"\ntimeout = \"2s\"\n"
    );
    let mut app = spawn_app_with(fake, without_retries(every_second(sections))).await;
    let daemon = RunningDaemon::start(&app).await;

    wait_until("a healthy daemon with the item archived", || async {
        app.archived_files().len() == 1 && daemon.health().await.0 == 200
    })
    .await;
    let (_, body) = daemon.health().await;
    assert_eq!(body["status"], "ok", "{body}");

    let addr = app.take_cloud_down().await;
    wait_until("/healthz to turn 503 after a failed pass", || async {
        let (status, body) = daemon.health().await;
        status == 503 && body["accounts"][0]["consecutive_failures"].as_u64() >= Some(1)
    })
    .await;
    let (_, body) = daemon.health().await;
    assert_eq!(body["status"], "unhealthy", "{body}");
    let reason = body["reasons"][0].as_str().expect("a reason");
    assert!(reason.contains("account `acme`"), "{body}");
    assert!(reason.contains("last error"), "{body}");
    assert!(
        body["accounts"][0]["consecutive_failures"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{body}"
    );

    app.bring_cloud_back(addr).await;
    wait_until("/healthz to turn 200 again", || async {
        daemon.health().await.0 == 200
    })
    .await;
    // The next passes succeed too and must not send another message.
    let pings_now = received.pings().len();
    wait_until("two more passes", || async {
        received.pings().len() >= pings_now + 2
    })
    .await;
    daemon.stop().await;

    let hooks = received.hooks();
    let events: Vec<&str> = hooks
        .iter()
        .map(|h| h["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(events, ["failure", "recovery"], "{hooks:#?}");
    assert_eq!(hooks[0]["account"], "acme");
    assert!(hooks[0]["text"].as_str().is_some_and(|t| !t.is_empty()));
    let pings = received.pings();
    assert!(pings.iter().any(|p| p == "/ping/check"), "{pings:?}");
    assert!(pings.iter().any(|p| p == "/ping/check/fail"), "{pings:?}");
}

/// A sample's value, whatever type the parser gave it.
fn value(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_count_the_files_and_bytes_archived() {
    let fake = FakeCloud::new();
    let first = fake.add_report(FakeReport::new(&["csv", "json_v2_0"]));
    let second = fake.add_report(FakeReport::new(&["csv"]));
    for (report, format, body) in [
        (&first, "csv", b"a\n1\n".to_vec()),
        (&first, "json_v2_0", b"{\"a\":1}".to_vec()),
        (&second, "csv", b"b\n2\n3\n".to_vec()),
    ] {
        fake.add_stored(report, FakeStored::new(format, body));
    }
    let sections = "[server]\nlisten = \"127.0.0.1:0\"\n".to_owned();
    let app = spawn_app_with(fake, every_second(sections)).await;
    let daemon = RunningDaemon::start(&app).await;
    wait_until("three files", || async { app.archived_files().len() == 3 }).await;
    wait_until("a finished pass in the metrics", || async {
        daemon
            .get("/metrics")
            .await
            .1
            .contains("report_archiver_passes_total{account=\"acme\",outcome=\"ok\"}")
    })
    .await;

    // Prometheus's own Accept header: OpenMetrics first.
    let response = reqwest::Client::new()
        .get(format!("http://{}/metrics", daemon.addr))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )
        .send()
        .await
        .expect("metrics answer");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");
    // Without that header (curl, promtool check metrics): the classic text format.
    let (_, classic) = daemon.get("/metrics").await;
    assert!(
        classic.contains("# TYPE report_archiver_files_archived_total counter")
            && !classic.contains("# EOF"),
        "{classic}"
    );
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the exposition parses");
    let sum = |name: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(value)
            .sum()
    };
    let rows = app.ledger_rows().await;
    let wire_bytes: i64 = rows.iter().map(|r| r.wire_bytes).sum();
    assert_eq!(sum("report_archiver_files_archived_total"), 3.0, "{text}");
    assert_eq!(
        sum("report_archiver_bytes_archived_total"),
        wire_bytes as f64,
        "{text}"
    );
    assert_eq!(sum("report_archiver_ledger_rows"), 3.0, "{text}");
    assert!(sum("report_archiver_passes_total") >= 1.0, "{text}");
    let per_report: HashMap<String, f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "report_archiver_files_archived_total")
        .map(|s| {
            (
                s.labels.get("report").unwrap_or_default().to_owned(),
                value(s),
            )
        })
        .collect();
    assert_eq!(per_report.get(&first), Some(&2.0), "{text}");
    assert_eq!(per_report.get(&second), Some(&1.0), "{text}");
    let last_success = scrape
        .samples
        .iter()
        .find(|s| s.metric == "report_archiver_last_success_timestamp_seconds")
        .expect("a last success timestamp");
    assert!(value(last_success) > 1.7e9, "{text}");
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "report_archiver_pass_duration_seconds"
                && matches!(s.value, prometheus_parse::Value::Histogram(_))),
        "{text}"
    );

    // `report-archiver health`, as a Docker HEALTHCHECK runs it.
    let url = format!("http://{}/healthz", daemon.addr);
    let probe = |url: String| async move {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_report-archiver"))
                .args(["health", "--url", &url, "--timeout", "5s"])
                .output()
        })
        .await
        .expect("joined")
        .expect("health runs")
    };
    let out = probe(url.clone()).await;
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"status\":\"ok\""));
    daemon.stop().await;
    let out = probe(url).await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
}

/// An app whose one report has one item, notifying a fresh receiver's webhook; the HTTP
/// client does not retry, so an injected cloud failure fails the pass.
async fn app_with_webhook() -> (TestApp, Received) {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", b"a\n1\n".to_vec()));
    let (hooks, received) = spawn_receiver().await;
    let sections = format!("[notify]\nwebhook_url = \"http://{hooks}/hook\"\ntimeout = \"2s\"\n");
    let app = spawn_app_with(
        fake,
        without_retries(Options {
            extra_sections: sections,
            ..Options::default()
        }),
    )
    .await;
    (app, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_is_announced_across_separate_runs_and_only_once() {
    let (app, received) = app_with_webhook().await;

    app.fake.fail_next_requests("/stored", 503, 1);
    let first = app.run_once().await;
    assert!(!first[0].succeeded(), "{first:?}");
    // Each run is a new process's worth of state: the last outcome comes from the ledger.
    assert!(app.run_once().await[0].succeeded());
    assert!(app.run_once().await[0].succeeded());

    assert_eq!(received.events(), ["failure", "recovery"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_fails_once_still_gets_the_failure() {
    let (app, received) = app_with_webhook().await;
    received.refuse_hooks.store(1, Ordering::SeqCst);

    app.fake.fail_next_requests("/stored", 503, 1);
    assert!(!app.run_once().await[0].succeeded());
    assert_eq!(
        received.events(),
        ["failure"],
        "the second try delivered it"
    );
    assert_eq!(received.refuse_hooks.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_the_webhook_never_took_is_announced_again_after_the_next_pass() {
    let (hooks, received) = spawn_receiver().await;
    // All three tries of the first announcement are refused.
    received.refuse_hooks.store(3, Ordering::SeqCst);
    let settings = config::NotifySettings {
        webhook_url: Some(format!("http://{hooks}/hook").into()),
        ping_url: None,
        timeout: Duration::from_secs(2),
        allow_http: false,
    };
    let notifier =
        report_archiver::notify::Notifier::new(&settings, [("acme".to_owned(), true)], None)
            .expect("builds")
            .expect("a webhook is set");
    let failed = report_archiver::pass::PassReport {
        account: "acme".into(),
        error: Some("the cloud is down".into()),
        ..Default::default()
    };

    notifier.pass_finished(&failed).await;
    assert!(received.hooks().is_empty());
    notifier.pass_finished(&failed).await;
    assert_eq!(received.events(), ["failure"]);
    // Delivered now: a third failed pass says nothing new.
    notifier.pass_finished(&failed).await;
    assert_eq!(received.hooks().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_one_run_could_not_announce_is_announced_by_the_next_run() {
    let (app, received) = app_with_webhook().await;

    // The first run fails and the webhook refuses every try: nothing heard.
    received.refuse_hooks.store(3, Ordering::SeqCst);
    app.fake.fail_next_requests("/stored", 503, 2);
    assert!(!app.run_once().await[0].succeeded());
    assert!(received.events().is_empty());
    // The next run (new process state) fails too, and this time the failure gets through.
    assert!(!app.run_once().await[0].succeeded());
    assert_eq!(received.events(), ["failure"]);
    // Heard: another failed run says nothing, a success is a recovery.
    app.fake.fail_next_requests("/stored", 503, 1);
    assert!(!app.run_once().await[0].succeeded());
    assert!(app.run_once().await[0].succeeded());
    assert_eq!(received.events(), ["failure", "recovery"]);
}
