//! Retention: `prune [--dry-run]` and the daily job of `run` delete files older than
//! `[archive] keep`; the ledger marks them pruned and no pass fetches them again.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};
use serde_json::Value;

use crate::support::{Options, TestApp, run, spawn_app_with};

/// One item from 2015 and one from last month, both archived.
async fn archive_with_an_old_item() -> (TestApp, String, String) {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    let old = fake.add_stored(
        &report,
        FakeStored::new("csv", b"a,b\nold,1\n".to_vec())
            .created_at(Utc.with_ymd_and_hms(2015, 1, 2, 3, 0, 0).unwrap()),
    );
    let recent = fake.add_stored(
        &report,
        FakeStored::new("csv", b"a,b\nnew,2\n".to_vec())
            .created_at(Utc::now() - chrono::TimeDelta::days(30)),
    );
    let app = spawn_app_with(
        fake,
        Options {
            keep: Some("7y".into()),
            ..Options::default()
        },
    )
    .await;
    let reports = app.run_once().await;
    assert_eq!(reports[0].fetched(), 2, "{reports:?}");
    (app, old, recent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_what_is_older_than_keep_and_a_later_pass_does_not_fetch_it_again() {
    let (app, old, recent) = archive_with_an_old_item().await;
    let rows = app.ledger_rows().await;
    let old_path = rows
        .iter()
        .find(|r| r.stored_id == old)
        .expect("old")
        .path
        .clone();

    let (code, json, text) = run(&mut app.bin(&["prune", "--dry-run", "--json"]));
    assert_eq!(code, Some(0), "{text}");
    let plan: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(plan["items"].as_array().map(Vec::len), Some(1), "{plan}");
    assert_eq!(plan["items"][0]["stored_id"], old.as_str());
    assert!(
        app.archive_dir.join(&old_path).exists(),
        "a dry run deletes nothing"
    );
    let (_, table, _) = run(&mut app.bin(&["prune", "--dry-run"]));
    assert!(table.starts_with("would prune 1 file(s)"), "{table}");

    let (code, table, text) = run(&mut app.bin(&["prune"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(table.contains(&old_path), "{table}");
    assert!(!app.archive_dir.join(&old_path).exists());
    assert_eq!(app.archived_files().len(), 1);

    // The ledger keeps the row, marked pruned: the views and verify leave it out.
    let (_, list, _) = run(&mut app.bin(&["ledger", "list", "--json"]));
    let list: Vec<Value> = serde_json::from_str(&list).expect("JSON");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["stored_id"], recent.as_str());
    let (code, _, text) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(0), "{text}");

    let reports = app.run_once().await;
    assert_eq!(reports[0].fetched(), 0, "{reports:?}");
    assert_eq!(app.fake.download_count(&old), 1);
    let (_, again, _) = run(&mut app.bin(&["prune", "--dry-run"]));
    assert!(again.starts_with("would prune 0 file(s)"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_prunes_at_start_when_keep_is_set() {
    let (app, old, _) = archive_with_an_old_item().await;
    let rows = app.ledger_rows().await;
    let old_path = app
        .archive_dir
        .join(&rows.iter().find(|r| r.stored_id == old).expect("old").path);
    let config = report_archiver::config::load(Some(&app.config_path)).expect("config");
    let daemon = report_archiver::app::Daemon::build(config, report_archiver::app::Mode::Archive)
        .await
        .expect("builds");
    let gone = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while old_path.exists() {
            assert!(tokio::time::Instant::now() < deadline, "not pruned in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    daemon
        .run_until_stopped(false, gone)
        .await
        .expect("runs and stops");
    assert_eq!(app.archived_files().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_keep_is_a_config_error_naming_the_key_and_prune_without_keep_says_so() {
    let (app, _, _) = archive_with_an_old_item().await;
    app.write_config(&app.config_toml(&Options {
        keep: Some("6m".into()),
        ..Options::default()
    }));
    let (code, _, text) = run(&mut app.bin(&["prune"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("archive.keep") && text.contains("mo"),
        "{text}"
    );
    app.write_config(&app.config_toml(&Options::default()));
    let (code, _, text) = run(&mut app.bin(&["prune"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("archive.keep is not set"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_without_a_ledger_says_so_and_creates_nothing() {
    let app = spawn_app_with(
        FakeCloud::new(),
        Options {
            keep: Some("1y".into()),
            ..Options::default()
        },
    )
    .await;
    let (code, _, text) = run(&mut app.bin(&["prune"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("there is no ledger"), "{text}");
    assert!(!app.ledger_path.exists());
    assert!(!app.ledger_path.with_extension("db.lock").exists());
}
