//! Big tenants cost little (issue 17): a finished one-time report is listed about daily
//! instead of every pass, and throttling answers are waited out.

use std::collections::HashMap;

use chrono::TimeDelta;
use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored, FaultKind, scenario};
use report_archiver::pass::PassReport;
use report_archiver::pass::listings::relist_offset;
use sqlx::sqlite::SqliteConnectOptions;

use crate::support::{Options, TestApp, spawn_app, spawn_app_with};

/// The bench's tenant, a tenth the size: 190 finished `once` reports, 10 monthly ones.
const REPORTS: usize = 200;
/// Retries fast enough for a test; enough of them that a 1% 429 rate never exhausts them.
const FAST_HTTP: &str = "retries = 6\nmax_backoff = \"20ms\"";

async fn app(fake: FakeCloud, http: &str) -> TestApp {
    let options = Options {
        http: http.to_owned(),
        ..Options::default()
    };
    spawn_app_with(fake, options).await
}

/// Moves every recorded listing `hours` into the past, as if that much time had gone by.
async fn age_listings(app: &TestApp, hours: i64) {
    let options = SqliteConnectOptions::new().filename(&app.ledger_path);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("ledger opens");
    sqlx::query(
        "UPDATE report_listings
         SET listed_at = strftime('%Y-%m-%dT%H:%M:%SZ', listed_at, ?)",
    )
    .bind(format!("-{hours} hours"))
    .execute(&pool)
    .await
    .expect("listings aged");
    pool.close().await;
}

fn assert_clean(reports: &[PassReport]) {
    assert_eq!(reports.len(), 1);
    let pass = &reports[0];
    assert!(pass.error.is_none(), "{:?}", pass.error);
    for r in &pass.reports {
        assert!(r.error.is_none() && r.failed == 0, "{r:?}");
    }
}

/// Reports whose stored list was served since `before`.
fn listed_since(fake: &FakeCloud, before: &HashMap<String, u32>) -> Vec<String> {
    let mut listed: Vec<String> = fake
        .listings_served()
        .into_iter()
        .filter(|(id, n)| before.get(id).copied().unwrap_or(0) < *n)
        .map(|(id, _)| id)
        .collect();
    listed.sort();
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_once_reports_rest_a_day_and_are_listed_again_spread_over_half_a_day() {
    let fake = scenario::big_tenant(REPORTS, 7);
    let mut once: Vec<String> = fake
        .report_ids()
        .into_iter()
        .filter(|id| fake.schedule_type(id).as_deref() == Some("once"))
        .collect();
    once.sort();
    let mut monthly: Vec<String> = fake
        .report_ids()
        .into_iter()
        .filter(|id| !once.contains(id))
        .collect();
    monthly.sort();
    assert_eq!((once.len(), monthly.len()), (190, 10));
    let app = app(fake.clone(), FAST_HTTP).await;

    // The first pass lists everything and archives every item, 429s notwithstanding, and
    // asks each report's schedule type (all are finished): once each, a few 429s retried.
    assert_clean(&app.run_once().await);
    let asked = fake.report_requests() as usize;
    assert!(
        (REPORTS..REPORTS + 20).contains(&asked),
        "{asked} schedule requests"
    );
    assert_eq!(app.ledger_rows().await.len(), fake.saved_items().len());
    assert!(
        fake.faults_injected()
            .get(&FaultKind::Throttled)
            .is_some_and(|n| *n > 0),
        "the scenario throttles"
    );

    // An hour later: only the monthly reports are listed.
    age_listings(&app, 1).await;
    let before = fake.listings_served();
    assert_clean(&app.run_once().await);
    assert_eq!(listed_since(&fake, &before), monthly);
    // The types are kept in the ledger: not asked again.
    assert_eq!(fake.report_requests() as usize, asked);
    assert_eq!(app.ledger_rows().await.len(), fake.saved_items().len());

    // A day later (25 h after the first listing): the once reports whose offset is under
    // the hour come due, not the others.
    age_listings(&app, 24).await;
    let before = fake.listings_served();
    assert_clean(&app.run_once().await);
    assert_eq!(
        fake.report_requests() as usize,
        asked,
        "types are asked once"
    );
    let listed = listed_since(&fake, &before);
    for id in &once {
        let offset = relist_offset(id);
        if offset < TimeDelta::minutes(55) {
            assert!(listed.contains(id), "{id} (offset {offset}) is due");
        } else if offset > TimeDelta::minutes(65) {
            assert!(!listed.contains(id), "{id} (offset {offset}) rests");
        }
    }
    let once_listed = listed.iter().filter(|id| once.contains(id)).count();
    assert!(
        (1..once.len() / 4).contains(&once_listed),
        "spread: {once_listed} of {} once reports in one pass",
        once.len()
    );

    // Half a day further on, every once report has been listed again exactly once.
    age_listings(&app, 12).await;
    assert_clean(&app.run_once().await);
    let served = fake.listings_served();
    for id in &once {
        assert_eq!(
            served[id], 2,
            "{id}: listed on the first pass and once a day later"
        );
    }
    assert_eq!(app.ledger_rows().await.len(), fake.saved_items().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_reports_are_listed_every_pass() {
    let fake = scenario::big_tenant(10, 3);
    let ids = fake.report_ids();
    let options = Options {
        http: FAST_HTTP.to_owned(),
        reports: ids.clone(),
        ..Options::default()
    };
    let app = spawn_app_with(fake.clone(), options).await;
    assert_clean(&app.run_once().await);
    let before = fake.listings_served();
    assert_clean(&app.run_once().await);
    let mut all = ids;
    all.sort();
    assert_eq!(listed_since(&fake, &before), all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_and_a_503_html_page_are_retried_with_backoff() {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    for n in 0..3 {
        let csv = format!("tenant,metric,value\nt{n},storage,{n}\n");
        let at = chrono::DateTime::from_timestamp(1_785_639_600 + n * 3600, 0).expect("a time");
        fake.add_stored(
            &report,
            FakeStored::new("csv", csv.into_bytes()).created_at(at),
        );
    }
    // Four answers in a row on the one listing: two 429s that do not say when, then two
    // 503s with a load balancer's HTML page.
    fake.fail_next_requests("/stored", 429, 2);
    fake.fail_next_requests_with_html("/stored", 503, 2);
    let app = app(fake.clone(), "retries = 5\nmax_backoff = \"200ms\"").await;
    assert_clean(&app.run_once().await);
    // Four refused answers, then the one that lists: each was tried again. (How long the
    // waits are is `api::retry`'s unit tests' business, not a timed test's.)
    assert_eq!(fake.listing_requests(), 5);
    assert_eq!(app.ledger_rows().await.len(), fake.saved_items().len());
}

/// A first pass asks each finished report's schedule type (`GET /reports/{id}`), and the
/// report's downloads do not wait for that answer: every download is served while one
/// report's request is held unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reports_downloads_do_not_wait_for_its_schedule_type() {
    let fake = scenario::many(2, 3);
    let held = fake.report_ids()[0].clone();
    fake.hold_requests_ending(&format!("/reports/{held}"));
    let app = spawn_app(fake).await;
    let watch = async {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut served = app.fake.download_requests();
        while served < 8 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            served = app.fake.download_requests();
        }
        app.fake.release_held();
        served
    };
    let (reports, served) = tokio::join!(app.run_once(), watch);
    assert_eq!(
        served, 8,
        "the downloads waited for the held schedule request"
    );
    assert_clean(&reports);
    assert_eq!(app.archived_files().len(), 8);
    assert_eq!(
        app.fake.report_requests(),
        2,
        "each report's type asked once"
    );
}
