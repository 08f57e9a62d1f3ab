//! Hostile local state: the archive's own folders, links out of it, files in the way, a second daemon.
//! link stops the start, stray things in `.partial` are left alone, nothing is written
//! through a link out of the archive, an untracked file at an item's path is never lost,
//! and one archive (and one ledger, under any name) belongs to one daemon. All through the
//! real binary, its exit codes and real files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};

use crate::support::{TestApp, run, sha256_hex, spawn_app};

const FIRST: &[u8] = b"tenant,value\nt1,1\n";
const SECOND: &[u8] = b"tenant,value\nt2,2\n";

/// A cloud with one report and two saved CSV items.
async fn two_items() -> TestApp {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", FIRST.to_vec()));
    fake.add_stored(&report, FakeStored::new("csv", SECOND.to_vec()));
    spawn_app(fake).await
}

/// A folder beside the archive with files that are not the daemon's.
fn someone_elses_folder(app: &TestApp) -> PathBuf {
    let outside = app.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside folder");
    std::fs::write(outside.join("thesis.txt"), b"years of work").expect("write");
    // Named exactly like one of our temp files: the name alone must never be enough.
    std::fs::write(outside.join("item-1.1.1.tmp"), b"not a temp file").expect("write");
    outside
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_untouched(outside: &Path) {
    assert_eq!(entries(outside), ["item-1.1.1.tmp", "thesis.txt"]);
    assert_eq!(
        std::fs::read(outside.join("thesis.txt")).expect("read"),
        b"years of work"
    );
}

/// Every file under `<archive>/.quarantine`, relative to the archive, with its content.
fn quarantined(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    app.archived_files()
        .into_iter()
        .filter(|p| p.starts_with(".quarantine/"))
        .map(|p| {
            let bytes = std::fs::read(app.archive_dir.join(&p)).expect("read");
            (p, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_symlink_to_a_folder_with_files_stops_the_start_with_exit_2_and_the_files_remain()
{
    let app = two_items().await;
    let outside = someone_elses_folder(&app);
    std::fs::create_dir_all(&app.archive_dir).expect("archive dir");
    std::os::unix::fs::symlink(&outside, app.archive_dir.join(".partial")).expect("symlink");

    for command in [&["once"][..], &["run"][..]] {
        let (code, _, text) = run(&mut app.bin(command));
        assert_eq!(code, Some(2), "{command:?}: {text}");
        assert!(text.contains("/.partial` is a symlink"), "{text}");
        assert!(text.contains("remove the link"), "{text}");
        assert_untouched(&outside);
    }
    assert_eq!(app.fake.download_requests(), 0);
    assert!(
        !app.ledger_path.exists(),
        "refused before the ledger was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_symlink_stops_the_start_with_exit_2() {
    let app = two_items().await;
    let outside = someone_elses_folder(&app);
    std::fs::create_dir_all(&app.archive_dir).expect("archive dir");
    std::os::unix::fs::symlink(&outside, app.archive_dir.join(".quarantine")).expect("symlink");

    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("/.quarantine` is a symlink"), "{text}");
    assert_untouched(&outside);
    assert_eq!(app.fake.download_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_and_a_symlink_inside_partial_are_left_alone_with_a_warning_and_our_temp_file_removed()
 {
    let app = two_items().await;
    let outside = someone_elses_folder(&app);
    let partial = app.archive_dir.join(".partial");
    std::fs::create_dir_all(partial.join("stray-folder")).expect("folder");
    std::fs::write(partial.join("stray-folder").join("inside.txt"), b"kept").expect("write");
    std::os::unix::fs::symlink(outside.join("thesis.txt"), partial.join("a-link"))
        .expect("symlink");
    std::os::unix::fs::symlink(&outside, partial.join("item-9.1.1.tmp")).expect("symlink");
    std::fs::write(partial.join("item-1.4242.0.tmp"), b"half a download").expect("ours");

    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        entries(&partial),
        ["a-link", "item-9.1.1.tmp", "stray-folder"],
        "only our temp file was removed"
    );
    assert!(partial.join("stray-folder").join("inside.txt").exists());
    for name in ["stray-folder", "a-link", "item-9.1.1.tmp"] {
        assert!(
            text.contains(&format!("{}", partial.join(name).display()))
                || text.contains(&format!(
                    "{}",
                    std::fs::canonicalize(&partial)
                        .expect("real path")
                        .join(name)
                        .display()
                )),
            "a warning names {name}: {text}"
        );
    }
    assert!(text.contains("left alone"), "{text}");
    assert_untouched(&outside);
    assert_eq!(app.ledger_rows().await.len(), 2, "the start went on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untracked_file_at_an_items_final_path_survives_in_the_quarantine() {
    let app = two_items().await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 2);
    let (changed, same) = (&rows[0], &rows[1]);

    // The ledger is lost; one file at its path is someone else's, the other is ours.
    let state = app.ledger_path.parent().expect("state dir");
    std::fs::remove_dir_all(state).expect("lose ledger");
    // The folder stays, as a state directory would: a missing one stops the start.
    std::fs::create_dir(state).expect("empty state dir");
    std::fs::write(
        app.archive_dir.join(&changed.path),
        b"someone else's report",
    )
    .expect("overwrite");
    let same_inode = std::os::unix::fs::MetadataExt::ino(
        &std::fs::metadata(app.archive_dir.join(&same.path)).expect("stat"),
    );

    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("moved to the quarantine"), "{text}");
    let moved = quarantined(&app);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(
        moved[0]
            .0
            .starts_with(&format!(".quarantine/{}.", changed.path)),
        "{moved:?}"
    );
    assert_eq!(moved[0].1, b"someone else's report");
    let placed = std::fs::read(app.archive_dir.join(&changed.path)).expect("read");
    assert_eq!(sha256_hex(&placed), changed.sha256);
    let kept = std::fs::metadata(app.archive_dir.join(&same.path)).expect("stat");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&kept),
        same_inode,
        "the identical file was kept as it was"
    );
    assert_eq!(app.ledger_rows().await.len(), 2);
    let (code, _, text) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(0), "ledger and archive agree again: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_folder_linked_outside_the_archive_fails_its_items_naming_the_link_and_writes_nothing_there()
 {
    let app = two_items().await;
    let outside = someone_elses_folder(&app);
    std::fs::create_dir_all(&app.archive_dir).expect("archive dir");
    std::os::unix::fs::symlink(&outside, app.archive_dir.join(crate::support::ACCOUNT))
        .expect("symlink");

    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    let link = std::fs::canonicalize(&app.archive_dir)
        .expect("real path")
        .join(crate::support::ACCOUNT);
    assert!(
        text.contains(&format!("refusing to write through `{}`", link.display())),
        "{text}"
    );
    assert_untouched(&outside);
    assert!(app.ledger_rows().await.is_empty());
    assert!(app.partial_files().is_empty(), "{:?}", app.partial_files());
}

/// `run` with this app's config, logging to a file (a pipe nobody reads could block it),
/// once it has taken its locks and opened the ledger.
async fn first_daemon(app: &TestApp) -> Child {
    let log = std::fs::File::create(app.dir.path().join("first.log")).expect("log");
    let child = app
        .bin(&["run", "--no-initial-pass"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("run starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    // The ledger is created after both locks are held.
    while !app.ledger_path.exists() {
        assert!(Instant::now() < deadline, "the first daemon never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

/// A second config: this app's, with `ledger` and `archive` swapped in.
fn second_config(app: &TestApp, ledger: &Path, archive: &Path) -> PathBuf {
    let toml = app
        .config_toml(&crate::support::Options::default())
        .replace(
            &format!("{:?}", app.ledger_path.display().to_string()),
            &format!("{:?}", ledger.display().to_string()),
        )
        .replace(
            &format!("{:?}", app.archive_dir.display().to_string()),
            &format!("{:?}", archive.display().to_string()),
        );
    let path = app.dir.path().join("second.toml");
    std::fs::write(&path, toml).expect("second config");
    path
}

/// `once` with `config` until it is refused with `needle` (the first daemon may still be
/// starting); returns its output.
async fn refused(config: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_report-archiver"));
        cmd.arg("--config")
            .arg(config)
            .arg("once")
            .env_remove("RUST_LOG");
        let (code, _, text) = run(&mut cmd);
        if code == Some(1) && text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the second daemon was never refused: {code:?} {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_with_another_ledger_on_the_same_archive_is_refused() {
    let app = two_items().await;
    let mut first = first_daemon(&app).await;
    let other_ledger = app.dir.path().join("state2").join("ledger.db");
    std::fs::create_dir(app.dir.path().join("state2")).expect("its state dir");
    let config = second_config(&app, &other_ledger, &app.archive_dir);

    let text = refused(&config, "already writing the archive").await;
    let _ = first.kill();
    let _ = first.wait();
    let real = std::fs::canonicalize(&app.archive_dir).expect("real path");
    assert!(text.contains(&real.display().to_string()), "{text}");
    assert!(text.contains("one archive belongs to one daemon"), "{text}");
    assert!(!other_ledger.exists(), "refused before its ledger was made");
    assert_eq!(
        app.fake.download_requests(),
        0,
        "the refused one fetched nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ledger_reached_through_a_symlink_is_refused_to_a_second_daemon() {
    let app = two_items().await;
    let mut first = first_daemon(&app).await;
    // Another name for the same ledger file: its own `<name>.lock` would be another lock.
    let alias = app.dir.path().join("ledger-alias.db");
    std::os::unix::fs::symlink(&app.ledger_path, &alias).expect("symlink");
    let other_archive = app.dir.path().join("archive2");
    let config = second_config(&app, &alias, &other_archive);

    let text = refused(&config, "already using the ledger").await;
    let _ = first.kill();
    let _ = first.wait();
    assert!(text.contains("ledger-alias.db"), "{text}");
    assert_eq!(
        app.fake.download_requests(),
        0,
        "the refused one fetched nothing"
    );
}
