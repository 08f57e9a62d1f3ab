//! Group commit (`pass/commit.rs`): a pass keeps and records its finished downloads in
//! batches. One file that cannot be placed fails only its own item; every row names a file
//! that is there, whole; the next pass archives what failed.

use std::collections::BTreeMap;

use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};

use crate::support::{ACCOUNT, Options, sha256_hex, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_folder_fails_only_its_items_and_every_row_names_a_whole_file() {
    let fake = FakeCloud::new();
    let mut reports = Vec::new();
    for r in 0..4 {
        let report = fake.add_report(FakeReport::new(&["csv"]));
        for i in 0..5 {
            let body = format!("tenant,value\nt{r},{i}\n").into_bytes();
            fake.add_stored(&report, FakeStored::new("csv", body));
        }
        reports.push(report);
    }
    let options = Options {
        concurrency: Some(8),
        ..Options::default()
    };
    let app = spawn_app_with(fake, options).await;
    // A file where one report's folder belongs: that report's items cannot be placed.
    let blocked = &reports[1];
    let account_dir = app.archive_dir.join(ACCOUNT);
    std::fs::create_dir_all(&account_dir).expect("account folder");
    std::fs::write(account_dir.join(blocked), b"in the way").expect("blocker");

    let first = app.run_once().await;
    assert_eq!(first[0].fetched(), 15, "{first:?}");
    assert_eq!(first[0].failed(), 5, "{first:?}");
    let outcome: BTreeMap<_, _> = first[0]
        .reports
        .iter()
        .map(|r| (r.report_id.clone(), (r.fetched, r.failed)))
        .collect();
    assert_eq!(outcome[blocked], (0, 5), "{outcome:?}");
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|r| &r.report_id != blocked), "{rows:?}");
    assert_whole(&app.archive_dir, &rows);
    assert!(app.partial_files().is_empty(), "{:?}", app.partial_files());
    assert_eq!(
        std::fs::read(account_dir.join(blocked)).expect("blocker stays"),
        b"in the way"
    );

    std::fs::remove_file(account_dir.join(blocked)).expect("unblock");
    let second = app.run_once().await;
    assert!(second[0].succeeded(), "{second:?}");
    assert_eq!(second[0].fetched(), 5);
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 20);
    assert_whole(&app.archive_dir, &rows);
    assert_eq!(app.archived_files().len(), 20);
}

/// Every row's file is at its path with the recorded SHA-256.
fn assert_whole(archive: &std::path::Path, rows: &[report_archiver::ledger::ArchivedRow]) {
    for row in rows {
        let bytes = std::fs::read(archive.join(&row.path)).expect("a row's file is there");
        assert_eq!(sha256_hex(&bytes), row.sha256, "{}", row.path);
    }
}
