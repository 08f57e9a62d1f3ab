//! Deletions are facts, not failures (issue 17): a report the cloud deleted is GONE, an
//! item it lost before it was archived is vanished; both are told once and no pass fails.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use report_archiver::app::{Daemon, Mode};
use report_archiver::config;
use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};
use report_archiver::ledger::Ledger;
use report_archiver::pass::PassReport;

use crate::support::{Options, TestApp, run, spawn_app, spawn_app_with};

/// Two reports of one csv item each: (cloud, first report, second report).
fn two_reports() -> (FakeCloud, String, String) {
    let fake = FakeCloud::new();
    let kept = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(
        &kept,
        FakeStored::new("csv", b"tenant,value\na,1\n".to_vec()),
    );
    let doomed = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(
        &doomed,
        FakeStored::new("csv", b"tenant,value\nb,2\n".to_vec()),
    );
    (fake, kept, doomed)
}

/// The `once` table's row for `report_id` with its note (beside it, or on the indented
/// lines below it when it does not fit), if it has one.
fn line_of(stdout: &str, report_id: &str) -> Option<String> {
    let mut lines = stdout.lines().skip_while(|l| !l.contains(report_id));
    let row = lines.next()?.to_owned();
    let note: Vec<&str> = lines.take_while(|l| l.starts_with("    ")).collect();
    Some(format!("{row} {}", note.join(" ")))
}

/// How many items the `(total)` row's note counts as vanished (a rare count, in words).
fn vanished(stdout: &str) -> u64 {
    let total = line_of(stdout, "(total)").expect("a total");
    total
        .split([';', ','])
        .find_map(|part| {
            part.trim()
                .strip_suffix(" vanished")?
                .split(' ')
                .next_back()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A column of the `once` table's `(total)` line, by its header.
fn total(stdout: &str, column: &str) -> String {
    let header: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let at = header.iter().position(|h| *h == column).expect("a column");
    let total = stdout
        .lines()
        .find(|l| l.contains("(total)"))
        .expect("a total");
    total.split_whitespace().nth(at).expect("a cell").to_owned()
}

async fn vanished_rows(app: &TestApp) -> Vec<report_archiver::ledger::VanishedRow> {
    let ledger = Ledger::open(&app.ledger_path, std::time::Duration::from_secs(10))
        .await
        .expect("ledger opens");
    let rows = ledger.vanished_rows().await.expect("rows");
    ledger.close().await;
    rows
}

/// One pass through the library, and what `/healthz` and `/metrics` say right after it.
async fn pass_with_monitor(app: &TestApp) -> (PassReport, String, String) {
    let config = config::load(Some(&app.config_path)).expect("config loads");
    let daemon = Daemon::build(config, Mode::Archive).await.expect("builds");
    let mut reports = daemon.run_once().await;
    let health = daemon.monitor().health.check();
    // The scheduler is not running in a `once` run; the rest of the verdict is what counts.
    let reasons: Vec<&String> = health
        .reasons
        .iter()
        .filter(|r| !r.contains("scheduler"))
        .collect();
    assert!(reasons.is_empty(), "{health:?}");
    let health = serde_json::to_string(&health).expect("json");
    let metrics = daemon.monitor().metrics.render();
    daemon.close().await;
    (reports.remove(0), health, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_report_deleted_after_its_first_pass_is_gone_and_no_longer_listed() {
    let (fake, kept, doomed) = two_reports();
    let app = spawn_app(fake).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(app.ledger_rows().await.len(), 2);

    app.fake.delete_report(&doomed, true);
    let (code, stdout, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let line = line_of(&stdout, &doomed).expect("the gone report's line");
    assert!(line.contains("GONE"), "{stdout}");
    assert_eq!(
        text.matches("the cloud deleted this report").count(),
        1,
        "{text}"
    );
    assert_eq!(app.fake.listing_requests_of(&doomed), 2);

    for _ in 0..2 {
        let (code, stdout, text) = run(&mut app.bin(&["once"]));
        assert_eq!(code, Some(0), "{text}");
        assert_eq!(line_of(&stdout, &doomed), None, "{stdout}");
        assert!(!text.contains("the cloud deleted"), "told once: {text}");
    }
    assert_eq!(
        app.fake.listing_requests_of(&doomed),
        2,
        "no further /stored"
    );
    assert_eq!(app.fake.listing_requests_of(&kept), 4);
    // What was archived stays archived.
    assert_eq!(app.ledger_rows().await.len(), 2);
    assert_eq!(app.archived_files().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_report_deleted_is_gone_on_every_surface_without_failing_and_can_come_back() {
    let (fake, kept, doomed) = two_reports();
    let options = Options {
        reports: vec![kept.clone(), doomed.clone()],
        ..Options::default()
    };
    let app = spawn_app_with(fake, options).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");

    app.fake.delete_report(&doomed, true);
    for newly in [true, false] {
        let (pass, health, metrics) = pass_with_monitor(&app).await;
        assert!(pass.succeeded(), "{pass:?}");
        let gone = pass.reports.iter().find(|r| r.report_id == doomed);
        let gone = gone.expect("a configured report stays in the pass");
        assert!(gone.gone && gone.error.is_none(), "{gone:?}");
        assert_eq!(gone.newly_gone, newly);
        assert!(gone.note.as_deref().is_some_and(|n| n.starts_with("GONE")));
        assert!(
            health.contains(&format!("\"gone_reports\":[\"{doomed}\"]")),
            "{health}"
        );
        let series =
            format!("report_archiver_report_gone{{account=\"acme\",report=\"{doomed}\"}} 1");
        assert!(metrics.contains(&series), "{metrics}");
    }
    let (code, stdout, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        line_of(&stdout, &doomed).is_some_and(|l| l.contains("GONE")),
        "{stdout}"
    );
    assert_eq!(
        app.fake.listing_requests_of(&doomed),
        4,
        "a configured one is asked"
    );

    let (code, json, text) = run(&mut app.bin(&["reports", "--json"]));
    assert_eq!(code, Some(0), "{text}");
    let views: Vec<serde_json::Value> = serde_json::from_str(&json).expect("json");
    let view = views.iter().find(|v| v["report_id"] == doomed.as_str());
    assert_eq!(view.expect("its view")["gone"], true, "{json}");
    let (_, table, _) = run(&mut app.bin(&["reports"]));
    assert!(
        line_of(&table, &doomed).is_some_and(|l| l.contains("GONE")),
        "{table}"
    );

    // It answers again, with a new item: no longer gone, and the item is archived.
    app.fake.delete_report(&doomed, false);
    app.fake
        .add_stored(&doomed, FakeStored::new("html", b"<p>back</p>".to_vec()));
    let (pass, _, _) = pass_with_monitor(&app).await;
    let back = pass.reports.iter().find(|r| r.report_id == doomed);
    let back = back.expect("listed");
    assert!(!back.gone && back.fetched == 1, "{back:?}");
    assert_eq!(app.ledger_rows().await.len(), 3);
}

/// A webhook receiver on 127.0.0.1:0 keeping every body it gets.
async fn spawn_hooks() -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let hooks = Arc::new(Mutex::new(Vec::new()));
    let router = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(h): State<Arc<Mutex<Vec<serde_json::Value>>>>,
                 axum::Json(body): axum::Json<serde_json::Value>| async move {
                    h.lock().expect("lock").push(body);
                },
            ),
        )
        .with_state(hooks.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, hooks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_whose_download_answers_404_is_vanished_at_the_second_pass_told_once_and_never_asked_again()
 {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", b"a\n1\n".to_vec()));
    let lost = fake.add_stored(&report, FakeStored::new("json_v2_0", b"{}".to_vec()));
    fake.remove_item(&report, &lost);
    let (hooks, received) = spawn_hooks().await;
    let options = Options {
        extra_sections: format!("[notify]\nwebhook_url = \"http://{hooks}/hook\"\n"),
        ..Options::default()
    };
    let app = spawn_app_with(fake, options).await;

    // The first answer is not trusted: pending, asked again next pass.
    let (code, stdout, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(total(&stdout, "PENDING"), "1", "{stdout}");
    assert_eq!(vanished(&stdout), 0, "{stdout}");
    assert!(text.contains("asking once more next pass"), "{text}");
    assert!(vanished_rows(&app).await.is_empty());
    assert_eq!(app.fake.download_requests(), 2);

    // The second makes it vanished: told once, in the log, the table and the webhook.
    let (code, stdout, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(vanished(&stdout), 1, "{stdout}");
    assert_eq!(total(&stdout, "FAILED"), "0", "{stdout}");
    let warning = "lost this stored item before it was archived";
    assert_eq!(text.matches(warning).count(), 1, "{text}");
    let rows = vanished_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].stored_id.as_str(), rows[0].status),
        (lost.as_str(), 404)
    );
    assert_eq!(app.fake.download_requests(), 3);
    let events = received.lock().expect("lock").clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "deletion");
    assert_eq!(events[0]["vanished"][0]["stored_id"], lost.as_str());
    assert_eq!(events[0]["vanished"][0]["format"], "json_v2_0");

    // Never asked again, never told again, and the pass is fine.
    let (pass, _, metrics) = pass_with_monitor(&app).await;
    assert!(pass.succeeded() && pass.vanished() == 0, "{pass:?}");
    assert!(
        metrics.contains("report_archiver_items_vanished_total"),
        "{metrics}"
    );
    let (code, stdout, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(vanished(&stdout), 0, "{stdout}");
    assert!(!text.contains(warning), "{text}");
    assert_eq!(app.fake.download_requests(), 3, "not retried");
    assert_eq!(received.lock().expect("lock").len(), 1, "told once");
    assert_eq!(app.ledger_rows().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_that_does_not_repeat_costs_nothing_and_one_followed_by_delisting_is_vanished() {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    let blip = fake.add_stored(&report, FakeStored::new("csv", b"a\n1\n".to_vec()));
    let lost = fake.add_stored(&report, FakeStored::new("html", b"<p/>".to_vec()));
    // One 404 for the first item (a cloud whose listing and files disagree for a moment);
    // the other is lost, then no longer listed either.
    fake.fail_next_requests(&format!("/stored/{blip}"), 404, 1);
    fake.remove_item(&report, &lost);
    let app = spawn_app(fake).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(app.ledger_rows().await.is_empty());

    app.fake.delete_stored(&report, &lost);
    let (code, stdout, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(total(&stdout, "FETCHED"), "1", "{stdout}");
    assert_eq!(vanished(&stdout), 1, "{stdout}");
    assert!(
        text.contains("no longer listed; recorded as vanished"),
        "{text}"
    );
    let rows = vanished_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].stored_id, lost);
    assert_eq!(app.ledger_rows().await[0].stored_id, blip);
}
