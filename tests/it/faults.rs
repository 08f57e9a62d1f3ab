//! Nothing lost: injected faults, hostile data, a full disk, a second instance.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use report_archiver::fake_cloud::{
    BodyShape, FakeCloud, FakeReport, FakeStored, FaultKind, FaultPlan,
};
use serde_json::json;

use crate::support::{Options, output_text, sha256_hex, spawn_app_with};

/// Retries fast enough for a test: tiny backoff, a read timeout well under the stall.
const FAST_HTTP: &str =
    "retries = 4\nmax_backoff = \"20ms\"\nread_timeout = \"300ms\"\nfailure_backoff = \"1s\"";

/// Incompressible-ish, deterministic bytes of a given length.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(format!("{x:016x},").as_bytes());
    }
    out.truncate(len);
    out
}

/// `reports` reports with `per_report` items each, shapes and formats rotating.
fn populated(reports: usize, per_report: usize) -> FakeCloud {
    let fake = FakeCloud::new();
    let formats = ["csv", "csv_v2_0", "json_v2_0", "html"];
    let shapes = [
        BodyShape::GzipWithHeader,
        BodyShape::GzipNoHeader,
        BodyShape::Plain,
    ];
    for r in 0..reports {
        let report = fake.add_report(FakeReport::new(&formats));
        for i in 0..per_report {
            let n = r * per_report + i;
            let mut item = FakeStored::new(
                formats[i % formats.len()],
                noise(n as u64, 2_000 + (n * 97) % 6_000),
            );
            item.shape = shapes[n % shapes.len()];
            item.created_at = chrono::DateTime::from_timestamp(1_780_000_000 + n as i64 * 3_600, 0)
                .expect("time");
            fake.add_stored(&report, item);
        }
    }
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_soak_ends_with_the_complete_archive_each_file_fetched_once() {
    let fake = populated(50, 4);
    let mut plan = FaultPlan::new(20261129, 0.25);
    plan.stall = Duration::from_secs(1);
    fake.set_fault_plan(Some(plan));
    let app = spawn_app_with(
        fake,
        Options {
            http: FAST_HTTP.into(),
            concurrency: Some(8),
            ..Options::default()
        },
    )
    .await;

    let mut fetched_total = 0;
    let mut passes = 0;
    while passes < 20 {
        passes += 1;
        let reports = app.run_once().await;
        fetched_total += reports[0].fetched();
        assert!(
            app.partial_files().is_empty(),
            "no temp file outlives a pass"
        );
        if reports[0].succeeded() && app.ledger_rows().await.len() == 200 {
            break;
        }
    }
    let injected = app.fake.faults_injected();
    eprintln!("soak: {passes} passes, faults injected: {injected:?}");
    for kind in FaultKind::ALL {
        assert!(
            injected.get(&kind).copied().unwrap_or(0) > 0,
            "{kind:?} was never injected: {injected:?}"
        );
    }

    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 200, "complete after {passes} passes");
    assert_eq!(fetched_total, 200, "every item archived exactly once");
    let served: HashMap<String, Vec<u8>> = app
        .fake
        .saved_items()
        .into_iter()
        .map(|(_, v)| (v.id, v.plain))
        .collect();
    for row in &rows {
        let bytes = std::fs::read(app.archive_dir.join(&row.path)).expect("file");
        assert_eq!(sha256_hex(&bytes), row.sha256);
        assert_eq!(
            &bytes, &served[&row.stored_id],
            "{} matches the server",
            row.path
        );
    }
    assert_eq!(app.archived_files().len(), 200);

    // Once complete, nothing is downloaded again.
    app.fake.set_fault_plan(None);
    let before = app.fake.download_requests();
    app.run_once().await;
    assert_eq!(app.fake.download_requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let fake = populated(1, 1);
    fake.throttle_next_requests("/stored", 1, Duration::from_secs(2));
    let app = spawn_app_with(
        fake,
        Options {
            http: FAST_HTTP.into(),
            ..Options::default()
        },
    )
    .await;

    let started = Instant::now();
    let reports = app.run_once().await;
    let waited = started.elapsed();
    assert!(reports[0].succeeded(), "{reports:?}");
    assert_eq!(reports[0].fetched(), 1);
    assert!(
        waited >= Duration::from_secs(2),
        "waited only {waited:?} despite Retry-After: 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_malformed_listing_items_fail_alone_and_nothing_leaves_the_archive() {
    let fake = populated(1, 2);
    let report = fake.report_ids()[0].clone();
    let hostile = [
        json!({"id": "../../etc/x", "report_format": "csv", "size": 10, "created_at": "2026-01-01T00:00:00", "status": "saved"}),
        json!({"id": "nul\u{0}byte", "report_format": "csv", "size": 10, "created_at": "2026-01-01T00:00:00", "status": "saved"}),
        json!({"id": "fine-id", "report_format": "../../x", "size": 10, "created_at": "2026-01-01T00:00:00", "status": "saved"}),
        json!({"id": "negative", "report_format": "csv", "size": -5, "created_at": "2026-01-01T00:00:00", "status": "saved"}),
        json!({"id": "huge", "report_format": "csv", "size": 1_u64 << 50, "created_at": "2026-01-01T00:00:00", "status": "saved"}),
        json!({"id": "wrong-type", "report_format": "csv", "size": "big", "created_at": "2026-01-01T00:00:00", "status": "saved"}),
        json!({"id": "no-format", "size": 1, "created_at": "2026-01-01T00:00:00", "status": "saved"}),
        json!({"id": "bad-time", "report_format": "csv", "size": 1, "created_at": "yesterday", "status": "saved"}),
        json!("not even an object"),
    ];
    for item in &hostile {
        fake.add_raw_listing_item(&report, item.clone());
    }
    let app = spawn_app_with(fake, Options::default()).await;

    let out = app.bin(&["once"]).output().expect("once runs");
    let text = output_text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the bad items are failures: {text}"
    );
    assert_eq!(
        app.ledger_rows().await.len(),
        2,
        "the good items are archived: {text}"
    );
    for needle in [
        "../../etc/x",
        "nul\\0byte",
        "report format",
        "negative size",
        "max_file_size",
        "invalid type",
        "report_format",
        "yesterday",
    ] {
        assert!(text.contains(needle), "the log names {needle:?}:\n{text}");
    }
    // Nothing besides what we created exists next to the archive.
    let mut top: Vec<String> = std::fs::read_dir(app.dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["archive", "config.toml", "secret", "state"]);
    assert_eq!(app.archived_files().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_the_same_ledger_is_refused() {
    let app = spawn_app_with(populated(1, 1), Options::default()).await;
    let log = std::fs::File::create(app.dir.path().join("run.log")).expect("log");
    let mut first = app
        .bin(&["run", "--no-initial-pass"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("run starts");
    let lock = app.ledger_path.with_extension("db.lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(lock.exists() && app.ledger_path.exists()) {
        assert!(Instant::now() < deadline, "the first daemon never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The ledger exists once the lock is held; give the daemon a moment past that point.
    let mut refused = None;
    while Instant::now() < deadline {
        let out = app.bin(&["once"]).output().expect("once runs");
        if out.status.code() == Some(1) && output_text(&out).contains("already using the ledger") {
            refused = Some(output_text(&out));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = first.kill();
    let _ = first.wait();
    let text = refused.expect("the second instance was refused");
    assert!(
        text.contains(&app.ledger_path.display().to_string()),
        "{text}"
    );
    assert_eq!(
        app.fake.download_requests(),
        0,
        "the refused instance fetched nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_ledger_gives_a_clear_error_at_start() {
    use sqlx::Connection;
    let app = spawn_app_with(
        populated(1, 1),
        Options {
            ledger: "busy_timeout = \"200ms\"".into(),
            ..Options::default()
        },
    )
    .await;
    assert!(app.run_once().await[0].succeeded());
    let url = format!("sqlite://{}", app.ledger_path.display());
    let mut holder = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .expect("lock");

    let out = app.bin(&["once"]).output().expect("once runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("locked") && text.contains("ledger"), "{text}");
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_leaves_nothing_half_written_and_a_later_pass_completes() {
    let app = spawn_app_with(populated(1, 4), Options::default()).await;
    let mount = app.dir.path().join("small");
    std::fs::create_dir_all(&mount).expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mount)
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!(
                "SKIPPED a_full_disk_leaves_nothing_half_written: this machine does not let the test mount a tmpfs ({other:?})"
            );
            return;
        }
    }
    let unmount = scopeguard(mount.clone());
    let archive = mount.join("archive");
    app.write_config(&app.config_toml(&Options {
        archive_dir: Some(archive.clone()),
        concurrency: Some(1),
        ..Options::default()
    }));
    // Leave room for about two of the four ~2–8 KB items.
    std::fs::create_dir_all(&archive).expect("archive dir");
    let filler = mount.join("filler");
    std::fs::write(&filler, vec![0u8; 52 * 1024]).expect("filler");

    let out = app.bin(&["once"]).output().expect("once runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(
        text.contains(&archive.join(".partial").display().to_string()),
        "the error names the path: {text}"
    );
    let rows = app.ledger_rows().await;
    assert!(rows.len() < 4, "the disk filled up");
    let partial: Vec<_> = std::fs::read_dir(archive.join(".partial"))
        .expect("partial")
        .flatten()
        .collect();
    assert!(partial.is_empty(), "no half-written file left: {partial:?}");
    for row in &rows {
        let bytes = std::fs::read(archive.join(&row.path)).expect("recorded file exists");
        assert_eq!(sha256_hex(&bytes), row.sha256);
    }

    std::fs::remove_file(&filler).expect("free space");
    let out = app.bin(&["once"]).output().expect("once runs");
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(app.ledger_rows().await.len(), 4);
    drop(unmount);
}

/// Unmounts the tmpfs when the test ends, pass or fail.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn scopeguard(path: std::path::PathBuf) -> Unmount {
    Unmount(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_pass_fetches_a_missing_file_again_and_leaves_an_untracked_one_alone() {
    let app = spawn_app_with(populated(1, 3), Options::default()).await;
    assert!(app.run_once().await[0].succeeded());
    let rows = app.ledger_rows().await;
    // One recorded file disappears; another file appears with no ledger row at all.
    let gone = &rows[0];
    std::fs::remove_file(app.archive_dir.join(&gone.path)).expect("rm");
    let stray = app.archive_dir.join("acme/stray.csv");
    std::fs::write(&stray, b"put here by hand").expect("stray");

    let out = app.bin(&["once"]).output().expect("once runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("archived file is missing") && text.contains(&gone.path),
        "{text}"
    );
    assert_eq!(app.fake.download_count(&gone.stored_id), 2, "re-fetched");
    for row in &rows[1..] {
        assert_eq!(app.fake.download_count(&row.stored_id), 1, "{}", row.path);
    }
    let bytes = std::fs::read(app.archive_dir.join(&gone.path)).expect("restored");
    assert_eq!(sha256_hex(&bytes), gone.sha256);
    assert!(stray.exists(), "an untracked file is never deleted");
    let again = app.ledger_rows().await;
    assert_eq!(
        again.len(),
        rows.len(),
        "the row was updated, not duplicated"
    );

    // A file whose item the cloud no longer lists is not the pass's business: it stays
    // missing until `verify` reports it.
    let old = &rows[1];
    app.fake.delete_stored(&old.report_id, &old.stored_id);
    std::fs::remove_file(app.archive_dir.join(&old.path)).expect("rm");
    let out = app.bin(&["once"]).output().expect("once runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("archived file is missing"), "{text}");
    let out = app.bin(&["verify"]).output().expect("verify runs");
    let text = output_text(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&old.path), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_on_a_read_only_filesystem_gives_a_clear_error_at_start() {
    let app = spawn_app_with(populated(1, 1), Options::default()).await;
    assert!(app.run_once().await[0].succeeded());
    let mount = app.dir.path().join("ro");
    std::fs::create_dir_all(&mount).expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mount)
        .output();
    if !matches!(&mounted, Ok(out) if out.status.success()) {
        eprintln!(
            "SKIPPED a_ledger_on_a_read_only_filesystem: this machine does not let the test mount a tmpfs ({mounted:?})"
        );
        return;
    }
    let unmount = scopeguard(mount.clone());
    std::fs::copy(&app.ledger_path, mount.join("ledger.db")).expect("copy ledger");
    let remount = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mount)
        .status()
        .expect("remount");
    assert!(remount.success());
    let toml = app.config_toml(&Options::default()).replace(
        &app.ledger_path.display().to_string(),
        &mount.join("ledger.db").display().to_string(),
    );
    app.write_config(&toml);

    let out = app.bin(&["once"]).output().expect("once runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Read-only file system") && text.contains(&mount.display().to_string()),
        "{text}"
    );
    drop(unmount);
}
