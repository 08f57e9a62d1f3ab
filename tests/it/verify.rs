//! `verify` and `verify --repair` on a real archive, and the `sha256sum -c` check of the
//! export (coreutils' `sha256sum`, run from the archive dir).

use std::path::Path;
use std::process::Command;

use report_archiver::fake_cloud::FakeCloud;
use serde_json::Value;

use crate::support::{TestApp, run, spawn_app};

async fn archived_app() -> TestApp {
    let app = spawn_app(FakeCloud::seeded(5, 2, &["csv", "html"])).await;
    app.run_once().await;
    app
}

/// `sha256sum -c` of `ledger export --format sha256sum`, run in the archive dir.
fn sha256sum_check(app: &TestApp) -> (bool, String) {
    let (code, sums, text) = run(&mut app.bin(&["ledger", "export", "--format", "sha256sum"]));
    assert_eq!(code, Some(0), "{text}");
    let list = app.dir.path().join("SHA256SUMS");
    std::fs::write(&list, sums).expect("write list");
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg(&list)
        .current_dir(&app.archive_dir)
        .output()
        .expect("sha256sum runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn flip_one_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[10] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

fn verify_json(app: &TestApp, args: &[&str]) -> (Option<i32>, Value) {
    let (code, json, text) = run(&mut app.bin(&[&["verify", "--json"][..], args].concat()));
    let value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {text}"));
    (code, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_fails_sha256sum_and_verify_and_repair_restores_it() {
    let app = archived_app().await;
    let (ok, text) = sha256sum_check(&app);
    assert!(ok, "intact archive: {text}");
    let (code, _, text) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(0), "{text}");

    let rows = app.ledger_rows().await;
    let victim = &rows[1];
    let original = std::fs::read(app.archive_dir.join(&victim.path)).expect("read");
    flip_one_byte(&app.archive_dir.join(&victim.path));

    let (ok, text) = sha256sum_check(&app);
    assert!(!ok, "sha256sum -c must fail: {text}");
    assert!(text.contains(&format!("{}: FAILED", victim.path)), "{text}");
    let (code, table, text) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        table.contains(&format!("CHANGED      {}", victim.path)),
        "{table}"
    );
    let (code, report) = verify_json(&app, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(report["changed"][0]["path"], victim.path.as_str());
    assert_eq!(report["intact"], rows.len() - 1);

    let downloads = app.fake.download_count(&victim.stored_id);
    let (code, table, text) = run(&mut app.bin(&["verify", "--repair"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        table.contains(&format!("RESTORED     {}", victim.path)),
        "{table}"
    );
    assert_eq!(app.fake.download_count(&victim.stored_id), downloads + 1);
    let restored = std::fs::read(app.archive_dir.join(&victim.path)).expect("read");
    assert_eq!(restored, original);
    let quarantined: Vec<String> = app
        .archived_files()
        .into_iter()
        .filter(|p| p.starts_with(".quarantine/"))
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(
        quarantined[0].starts_with(&format!(".quarantine/{}.", victim.path)),
        "{quarantined:?}"
    );

    let (code, _, text) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(0), "quarantine is not untracked: {text}");
    let (ok, text) = sha256sum_check(&app);
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_untracked_files_are_reported_and_repair_fetches_what_the_cloud_has() {
    let app = archived_app().await;
    let rows = app.ledger_rows().await;
    let missing = &rows[0];
    std::fs::remove_file(app.archive_dir.join(&missing.path)).expect("remove");
    let stray = app.archive_dir.join(&missing.account).join("notes.txt");
    std::fs::write(&stray, b"left here by hand").expect("write");
    std::fs::write(app.archive_dir.join(".partial").join("x.tmp"), b"temp").expect("write");

    let (code, report) = verify_json(&app, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(report["missing"][0]["path"], missing.path.as_str());
    assert_eq!(
        report["untracked"],
        serde_json::json!([format!("{}/notes.txt", missing.account)])
    );

    // Untracked files are reported, never touched; so the exit code stays 1.
    let (code, report) = verify_json(&app, &["--repair"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        report["repair"]["restored"],
        serde_json::json!([missing.path])
    );
    assert!(stray.exists());
    std::fs::remove_file(&stray).expect("remove");
    let (code, _, text) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_says_what_the_cloud_no_longer_has() {
    let app = archived_app().await;
    let rows = app.ledger_rows().await;
    let gone = &rows[0];
    flip_one_byte(&app.archive_dir.join(&gone.path));
    app.fake.remove_report(&gone.report_id);

    let (code, report) = verify_json(&app, &["--repair"]);
    assert_eq!(code, Some(1));
    let not_restored = &report["repair"]["not_restored"][0];
    assert_eq!(not_restored["path"], gone.path.as_str());
    assert!(
        not_restored["detail"]
            .as_str()
            .is_some_and(|d| d.contains("404") || d.contains("no longer")),
        "{report}"
    );
    // Never deleted: the changed copy is in quarantine.
    assert_eq!(
        report["repair"]["quarantined"].as_array().map(Vec::len),
        Some(1)
    );
}

/// Every file under `dir`, relative, sorted (the archive as it is on disk).
fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                out.push(relative.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_archive_root_is_an_error_and_repair_touches_nothing() {
    let app = archived_app().await;
    let kept = app.dir.path().join("archive-kept");
    std::fs::rename(&app.archive_dir, &kept).expect("move the archive aside");
    let before = files_in(&kept);
    // The tests run as root, whom no permission bit stops: a file where the archive folder
    // should be makes listing it fail for anyone (ENOTDIR), deterministically.
    std::fs::write(&app.archive_dir, b"not a folder").expect("a file in its place");
    for args in [&["verify"][..], &["verify", "--repair"]] {
        let (code, stdout, text) = run(&mut app.bin(args));
        assert_eq!(code, Some(1), "{args:?}: {text}");
        assert!(text.contains("cannot read the archive folder"), "{text}");
        assert_eq!(text.matches("Not a directory").count(), 1, "{text}");
        assert!(!stdout.contains("ok"), "{stdout}");
    }
    // A folder that is not there at all is no better: every file would be "missing".
    std::fs::remove_file(&app.archive_dir).expect("remove the file");
    let (code, _, text) = run(&mut app.bin(&["verify", "--repair"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
    assert!(!app.archive_dir.exists(), "repair created nothing");
    assert_eq!(
        files_in(&kept),
        before,
        "nothing moved, nothing quarantined"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_file_is_unreadable_not_changed_and_repair_leaves_it_in_place() {
    let app = archived_app().await;
    let rows = app.ledger_rows().await;
    let victim = &rows[0];
    let path = app.archive_dir.join(&victim.path);
    // Root reads any file; a folder where the file was opens but fails the read (EISDIR):
    // an I/O error while hashing, as a bad disk sector or a dead mount gives.
    std::fs::remove_file(&path).expect("remove");
    std::fs::create_dir(&path).expect("a folder in its place");

    let (code, table, text) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        table.contains(&format!("UNREADABLE   {}", victim.path)),
        "{table}"
    );
    assert!(table.contains("0 changed, 1 unreadable"), "{table}");
    let (code, report) = verify_json(&app, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(report["unreadable"][0]["path"], victim.path.as_str());
    assert!(
        report["unreadable"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Is a directory")),
        "{report}"
    );
    assert_eq!(report["changed"], serde_json::json!([]));

    let downloads = app.fake.download_count(&victim.stored_id);
    let (code, report) = verify_json(&app, &["--repair"]);
    assert_eq!(code, Some(1), "an unreadable file still needs an operator");
    assert_eq!(report["repair"]["quarantined"], serde_json::json!([]));
    assert_eq!(report["repair"]["restored"], serde_json::json!([]));
    assert!(path.is_dir(), "left in place");
    assert_eq!(app.fake.download_count(&victim.stored_id), downloads);
    assert!(
        !app.archived_files()
            .iter()
            .any(|p| p.starts_with(".quarantine/")),
        "nothing quarantined"
    );
}
