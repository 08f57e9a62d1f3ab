//! One pass through the library against the fake cloud.

use std::collections::BTreeMap;

use report_archiver::app::Mode;
use report_archiver::fake_cloud::{BodyShape, FakeCloud, FakeReport, FakeStatus, FakeStored};

use report_archiver::ledger::Ledger;

use crate::support::{ACCOUNT, Options, sha256_hex, spawn_app, spawn_app_with};

const CSV: &[u8] = b"tenant,metric,value\nacme,storage_bytes,1073741824\nacme,workloads,12\n";

fn one_report(fake: &FakeCloud, formats: &[&str]) -> String {
    fake.add_report(FakeReport::new(formats))
}

#[tokio::test]
async fn every_saved_item_is_archived_with_its_hash_and_a_second_pass_downloads_nothing() {
    let fake = FakeCloud::seeded(7, 3, &["csv", "csv_v2_0", "json_v1", "json_v2_0", "html"]);
    let app = spawn_app(fake.clone()).await;

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");

    let rows = app.ledger_rows().await;
    let saved = app.fake.saved_items();
    // The in_progress item became saved after the first listing, so it is not in this pass.
    let archived: BTreeMap<_, _> = rows.iter().map(|r| (r.stored_id.clone(), r)).collect();
    assert!(!saved.is_empty());
    assert_eq!(rows.len() as u64, reports[0].fetched());
    for (report_id, item) in &saved {
        let Some(row) = archived.get(&item.id) else {
            // Only the item that flipped during this pass may be missing.
            assert_eq!(reports[0].pending(), 1, "{} missing", item.id);
            continue;
        };
        assert_eq!(&row.report_id, report_id);
        let on_disk = std::fs::read(app.archive_dir.join(&row.path)).expect("archived file");
        assert_eq!(
            on_disk, item.plain,
            "{} differs from the server's report",
            row.path
        );
        assert_eq!(row.sha256, sha256_hex(&on_disk));
        assert_eq!(row.wire_bytes as usize, item.wire.len());
        assert_eq!(row.stored_bytes as usize, item.plain.len());
        assert_eq!(app.fake.download_count(&item.id), 1);
    }
    assert_eq!(app.archived_files().len(), rows.len());
    assert!(app.partial_files().is_empty());

    // Second pass: the pending item is picked up, nothing else is downloaded again.
    let before = app.fake.download_requests();
    let second = app.run_once().await;
    assert!(second[0].succeeded(), "{second:?}");
    assert_eq!(second[0].fetched(), reports[0].pending());
    assert_eq!(
        app.fake.download_requests() - before,
        second[0].fetched() as u32
    );

    // Third pass: zero download requests.
    let before = app.fake.download_requests();
    let third = app.run_once().await;
    assert_eq!(third[0].fetched(), 0);
    assert_eq!(app.fake.download_requests(), before);
    assert_eq!(app.ledger_rows().await.len(), app.fake.saved_items().len());
}

#[tokio::test]
async fn an_in_progress_item_is_archived_by_a_later_pass_and_a_failed_one_never_downloaded() {
    let fake = FakeCloud::new();
    let report = one_report(&fake, &["csv"]);
    let mut pending = FakeStored::new("csv", CSV.to_vec());
    pending.status = FakeStatus::InProgress;
    let pending_id = fake.add_stored(&report, pending);
    let mut failed = FakeStored::new("csv", CSV.to_vec());
    failed.status = FakeStatus::Failed;
    let failed_id = fake.add_stored(&report, failed);
    let app = spawn_app(fake).await;

    let first = app.run_once().await;
    assert!(first[0].succeeded(), "{first:?}");
    assert_eq!(
        (
            first[0].fetched(),
            first[0].pending(),
            first[0].cloud_failed()
        ),
        (0, 1, 1)
    );
    assert!(app.ledger_rows().await.is_empty());

    app.fake.set_status(&report, &pending_id, FakeStatus::Saved);
    let second = app.run_once().await;
    assert_eq!(second[0].fetched(), 1);
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].stored_id, pending_id);
    assert_eq!(app.fake.download_count(&failed_id), 0);
    assert_eq!(app.fake.download_requests(), 1);
    let ledger = Ledger::open(&app.ledger_path, std::time::Duration::from_secs(5))
        .await
        .expect("ledger");
    let recorded = ledger.cloud_failures().await.expect("failed items");
    ledger.close().await;
    assert_eq!(
        recorded,
        [(ACCOUNT.to_string(), report.clone(), failed_id.clone())],
        "the cloud's failed item is recorded, once, across two passes"
    );
}

#[tokio::test]
async fn gzip_with_header_gzip_without_and_plain_bodies_end_as_the_same_report() {
    let fake = FakeCloud::new();
    let report = one_report(&fake, &["csv"]);
    let mut ids = Vec::new();
    for shape in [
        BodyShape::GzipWithHeader,
        BodyShape::GzipNoHeader,
        BodyShape::Plain,
    ] {
        let mut item = FakeStored::new("csv", CSV.to_vec());
        item.shape = shape;
        ids.push((shape, fake.add_stored(&report, item)));
    }
    let app = spawn_app(fake).await;

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert!(row.path.ends_with(".csv"), "{}", row.path);
        assert!(!row.compressed);
        let bytes = std::fs::read(app.archive_dir.join(&row.path)).expect("file");
        assert_eq!(bytes, CSV);
        assert_eq!(row.sha256, sha256_hex(CSV));
        let (shape, _) = ids
            .iter()
            .find(|(_, id)| *id == row.stored_id)
            .expect("known id");
        let wire = app
            .fake
            .stored(&report)
            .into_iter()
            .find(|s| s.id == row.stored_id)
            .expect("served")
            .wire;
        assert_eq!(row.wire_bytes as usize, wire.len(), "{shape:?}");
        if *shape == BodyShape::Plain {
            assert_eq!(row.wire_bytes as usize, CSV.len());
        } else {
            assert_ne!(row.wire_bytes as usize, CSV.len());
        }
    }
}

#[tokio::test]
async fn keep_compressed_keeps_the_served_bytes_with_a_gz_suffix() {
    let fake = FakeCloud::new();
    let report = one_report(&fake, &["json_v2_0"]);
    let mut gz = FakeStored::new("json_v2_0", br#"{"params":{},"tenants":[]}"#.to_vec());
    gz.shape = BodyShape::GzipNoHeader;
    let gz_id = fake.add_stored(&report, gz);
    let mut plain = FakeStored::new("json_v2_0", br#"{"params":{},"tenants":[1]}"#.to_vec());
    plain.shape = BodyShape::Plain;
    let plain_id = fake.add_stored(&report, plain);
    let options = Options {
        keep_compressed: true,
        ..Options::default()
    };
    let app = spawn_app_with(fake, options).await;

    assert!(app.run_once().await[0].succeeded());
    let served = app.fake.stored(&report);
    for row in app.ledger_rows().await {
        let wire = &served
            .iter()
            .find(|s| s.id == row.stored_id)
            .expect("served")
            .wire;
        let bytes = std::fs::read(app.archive_dir.join(&row.path)).expect("file");
        assert_eq!(&bytes, wire, "kept exactly as served");
        if row.stored_id == gz_id {
            assert!(
                row.path.ends_with(".json.gz") && row.compressed,
                "{}",
                row.path
            );
        } else {
            assert_eq!(row.stored_id, plain_id);
            assert!(
                row.path.ends_with(".json") && !row.compressed,
                "{}",
                row.path
            );
        }
    }
}

#[tokio::test]
async fn the_formats_filter_and_report_selection_limit_what_is_fetched() {
    let fake = FakeCloud::new();
    let wanted = one_report(&fake, &["csv", "html"]);
    let other = one_report(&fake, &["csv"]);
    let csv_id = fake.add_stored(&wanted, FakeStored::new("csv", CSV.to_vec()));
    fake.add_stored(
        &wanted,
        FakeStored::new("html", b"<table></table>".to_vec()),
    );
    fake.add_stored(&other, FakeStored::new("csv", CSV.to_vec()));
    let options = Options {
        formats: vec!["csv".into()],
        reports: vec![wanted.clone()],
        ..Options::default()
    };
    let app = spawn_app_with(fake, options).await;

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].stored_id, csv_id);
    assert_eq!(reports[0].reports.len(), 1);
    assert_eq!(reports[0].reports[0].excluded, 1);
}

#[tokio::test]
async fn a_report_that_answers_404_fails_alone_while_the_others_archive() {
    let fake = FakeCloud::new();
    let good = one_report(&fake, &["csv"]);
    fake.add_stored(&good, FakeStored::new("csv", CSV.to_vec()));
    let gone = "00000000-0000-4000-8000-00000000dead".to_string();
    let options = Options {
        reports: vec![gone.clone(), good.clone()],
        ..Options::default()
    };
    let app = spawn_app_with(fake, options).await;

    let reports = app.run_once().await;
    assert!(!reports[0].succeeded());
    let by_id: BTreeMap<_, _> = reports[0]
        .reports
        .iter()
        .map(|r| (r.report_id.clone(), r))
        .collect();
    assert!(
        by_id[&gone]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("404")),
        "{:?}",
        by_id[&gone]
    );
    assert_eq!(by_id[&good].fetched, 1);
    assert_eq!(app.ledger_rows().await.len(), 1);
}

#[tokio::test]
async fn discovery_finds_every_report_and_skips_send_reports() {
    let fake = FakeCloud::new();
    let saved = one_report(&fake, &["csv"]);
    fake.add_stored(&saved, FakeStored::new("csv", CSV.to_vec()));
    let mut send = FakeReport::new(&["csv"]);
    send.result_action = "send".into();
    let send_id = fake.add_report(send);
    let app = spawn_app(fake).await;

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert_eq!(reports[0].fetched(), 1);
    let send_outcome = reports[0]
        .reports
        .iter()
        .find(|r| r.report_id == send_id)
        .expect("send report noted");
    assert!(
        send_outcome
            .note
            .as_deref()
            .is_some_and(|n| n.contains("send"))
    );
}

#[tokio::test]
async fn a_token_that_expires_mid_pass_is_renewed_and_the_pass_completes() {
    let fake = FakeCloud::seeded(3, 2, &["csv", "json_v1"]);
    fake.expire_tokens_after_requests(Some(6));
    let app = spawn_app(fake).await;

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert!(app.fake.token_requests() >= 2, "token renewed");
    let saved = app.fake.saved_items().len() as u64;
    assert_eq!(reports[0].fetched() + reports[0].pending(), saved);
}

#[tokio::test]
async fn odd_items_are_handled_unknown_format_archived_missing_size_and_offsetless_time_read_as_utc()
 {
    let fake = FakeCloud::new();
    let report = one_report(&fake, &["csv"]);
    let mut unknown = FakeStored::new("xlsx_v9", b"binary-ish".to_vec());
    unknown.with_size = false;
    let unknown_id = fake.add_stored(&report, unknown);
    let mut naive = FakeStored::new("csv", CSV.to_vec());
    naive.offset_in_created_at = false;
    naive.created_at = chrono::DateTime::parse_from_rfc3339("2026-02-02T03:04:05Z")
        .expect("time")
        .to_utc();
    let naive_id = fake.add_stored(&report, naive);
    let mut odd_status = FakeStored::new("csv", CSV.to_vec());
    odd_status.status = FakeStatus::Other("queued".into());
    fake.add_stored(&report, odd_status);
    let app = spawn_app(fake).await;

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert_eq!(reports[0].pending(), 1, "unknown status is looked at again");
    let rows = app.ledger_rows().await;
    let unknown_row = rows
        .iter()
        .find(|r| r.stored_id == unknown_id)
        .expect("unknown format archived");
    assert!(
        unknown_row.path.ends_with(".xlsx_v9.bin"),
        "{}",
        unknown_row.path
    );
    assert_eq!(unknown_row.listed_size, None);
    let naive_row = rows
        .iter()
        .find(|r| r.stored_id == naive_id)
        .expect("archived");
    assert_eq!(naive_row.created_at, "2026-02-02T03:04:05Z");
    assert!(
        naive_row.path.contains("/2026/02/20260202T030405Z_"),
        "{}",
        naive_row.path
    );
}

#[tokio::test]
async fn a_dry_run_lists_what_would_be_fetched_and_writes_nothing() {
    let fake = FakeCloud::seeded(5, 2, &["csv"]);
    let app = spawn_app(fake).await;

    let reports = app.run_mode(Mode::DryRun).await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert!(!reports[0].planned.is_empty());
    assert_eq!(app.fake.download_requests(), 0);
    assert!(!app.ledger_path.exists(), "no ledger created");
    assert!(!app.archive_dir.exists(), "no archive created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_the_downloads_on_the_wire() {
    let fake = FakeCloud::seeded(11, 4, &["csv", "csv_v2_0", "json_v1", "html"]);
    // Long enough that every slot fills before the first answer comes back.
    fake.set_latency(std::time::Duration::from_millis(30));
    let app = spawn_app_with(
        fake.clone(),
        Options {
            concurrency: Some(3),
            ..Options::default()
        },
    )
    .await;

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert!(reports[0].fetched() > 6, "{reports:?}");
    assert_eq!(
        fake.downloads_in_flight_peak(),
        3,
        "downloads on the wire at once: never more than `concurrency`, and all of it used"
    );
}
