//! `run`: the scheduler picks up what the cloud adds, and SIGTERM stops it cleanly.

use std::process::{Child, Stdio};

use std::time::Duration;

use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};

use crate::support::{Options, spawn_app_with};

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_archives_items_the_cloud_adds_and_exits_0_on_sigterm_without_partial_files() {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", b"a\n1\n".to_vec()));
    let app = spawn_app_with(
        fake,
        Options {
            schedule: Some("* * * * * *".into()),
            ..Options::default()
        },
    )
    .await;
    // Logs go to a file: a pipe nobody reads while waiting could fill and block the daemon.
    let log_path = app.dir.path().join("run.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = app
        .bin(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("run starts");

    wait_for("the first item", || app.archived_files().len() == 1).await;
    let added = app
        .fake
        .add_stored(&report, FakeStored::new("csv", b"a\n2\n".to_vec()));
    wait_for("the added item", || app.fake.download_count(&added) == 1).await;
    wait_for("the added item on disk", || app.archived_files().len() == 2).await;

    sigterm(&child);
    let status = tokio::task::spawn_blocking(move || child.wait());
    let status = tokio::time::timeout(Duration::from_secs(30), status)
        .await
        .expect("stops within 30 s")
        .expect("joined");
    let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(status.expect("exit status").code(), Some(0), "{stderr}");
    assert!(app.partial_files().is_empty());
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 2);
    assert!(stderr.contains("stopped"), "{stderr}");
    // After each pass the log says when the next is due, so a quiet log is no mystery.
    assert!(stderr.contains("next pass due at "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_reconciles_the_whole_archive_with_the_ledger_as_it_starts() {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    for n in 0..3 {
        fake.add_stored(
            &report,
            FakeStored::new("csv", format!("a\n{n}\n").into_bytes()),
        );
    }
    let app = spawn_app_with(
        fake,
        Options {
            schedule: Some("0 0 0 1 1 *".into()),
            ..Options::default()
        },
    )
    .await;
    assert!(app.run_once().await[0].succeeded());
    let rows = app.ledger_rows().await;
    // The cloud forgets one item and its file goes too: only a whole-archive check sees it.
    app.fake
        .delete_stored(&rows[0].report_id, &rows[0].stored_id);
    std::fs::remove_file(app.archive_dir.join(&rows[0].path)).expect("rm");
    std::fs::write(app.archive_dir.join("acme/stray.csv"), b"by hand").expect("stray");

    let log_path = app.dir.path().join("run.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let child = app
        .bin(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("run starts");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_for("the reconciliation summary", || {
        read_log().contains("the archive and the ledger disagreed")
    })
    .await;
    sigterm(&child);
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    });
    let status = tokio::time::timeout(Duration::from_secs(30), status)
        .await
        .expect("stops within 30 s")
        .expect("joined");
    let log = read_log();
    assert_eq!(status.expect("exit status").code(), Some(0), "{log}");
    assert!(
        log.contains("archived file is missing") && log.contains(&rows[0].path),
        "{log}"
    );
    assert!(
        log.contains("not in the ledger") && log.contains("acme/stray.csv"),
        "{log}"
    );
}
