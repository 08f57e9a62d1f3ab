//! The real binary: exit codes, `demo`, `check-config`, and secrets kept out of every output.

use std::process::Command;

use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};

use crate::support::{Options, output_text, spawn_app, spawn_app_with};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_report-archiver"));
    cmd.env_remove("RUST_LOG")
        .env_remove("REPORT_ARCHIVER_CONFIG");
    cmd
}

fn total_fetched(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("(total)"))
        .map(|l| {
            l.split_whitespace()
                .nth(2)
                .and_then(|n| n.parse::<u64>().ok())
                .expect("count")
        })
        .sum()
}

#[test]
fn demo_archives_every_saved_item_and_a_second_run_downloads_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let first = bin()
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .expect("demo runs");
    let text = output_text(&first);
    assert!(first.status.success(), "{text}");
    let fetched = total_fetched(&String::from_utf8_lossy(&first.stdout));

    // The demo's fake cloud is seeded: the same data in-process tells what it holds.
    let fake = FakeCloud::seeded(42, 4, &["csv", "csv_v2_0", "json_v1", "json_v2_0", "html"]);
    let saved_before_first_listing = fake.saved_items().len() as u64;
    assert!(fetched > 0);
    assert_eq!(fetched, saved_before_first_listing, "{text}");
    let mut formats: Vec<String> = walk_ext(&dir.path().join("demo-archive"));
    formats.sort();
    formats.dedup();
    assert_eq!(formats, ["csv", "html", "json"]);
    assert!(dir.path().join("demo.toml").exists() && dir.path().join("demo-ledger.db").exists());

    let second = bin()
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .expect("demo runs");
    assert!(second.status.success(), "{}", output_text(&second));
    assert_eq!(
        total_fetched(&String::from_utf8_lossy(&second.stdout)),
        0,
        "{}",
        output_text(&second)
    );
    assert!(!output_text(&first).contains(FakeCloud::CLIENT_SECRET));
    assert!(!output_text(&second).contains(FakeCloud::CLIENT_SECRET));
}

fn walk_ext(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk_ext(&p));
        } else if let Some(ext) = p.extension() {
            out.push(ext.to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_0_when_everything_is_archived_and_1_when_a_report_fails() {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", b"a,b\n1,2\n".to_vec()));
    let app = spawn_app_with(
        fake,
        Options {
            reports: vec![report.clone()],
            ..Options::default()
        },
    )
    .await;
    let ok = app.bin(&["once"]).output().expect("once runs");
    assert_eq!(ok.status.code(), Some(0), "{}", output_text(&ok));

    let missing = "11111111-2222-4333-8444-555555555555".to_string();
    app.write_config(&app.config_toml(&Options {
        reports: vec![report, missing.clone()],
        ..Options::default()
    }));
    let failed = app.bin(&["once"]).output().expect("once runs");
    let text = output_text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{text}");
    assert!(text.contains(&missing) && text.contains("404"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_dry_run_prints_the_plan_and_writes_nothing() {
    let app = spawn_app(FakeCloud::seeded(9, 1, &["csv"])).await;
    let out = app.bin(&["once", "--dry-run"]).output().expect("runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("would fetch"), "{text}");
    assert_eq!(app.fake.download_requests(), 0);
    assert!(!app.ledger_path.exists() && !app.archive_dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_the_account_with_a_message_about_them_and_exit_1() {
    let app = spawn_app(FakeCloud::seeded(1, 1, &["csv"])).await;
    std::fs::write(app.dir.path().join("secret"), "wrong-secret").expect("write");
    let out = app.bin(&["once"]).output().expect("runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("refused the credentials"), "{text}");
    assert_eq!(
        app.fake.token_requests(),
        1,
        "no retry loop on bad credentials"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_never_appears_in_any_output() {
    let app = spawn_app(FakeCloud::seeded(2, 2, &["csv", "html"])).await;
    let mut all = String::new();
    for args in [
        &["check-config"][..],
        &["once", "--dry-run"],
        &["once"],
        &["once"],
    ] {
        let out = app
            .bin(args)
            .env("RUST_LOG", "trace")
            .output()
            .expect("runs");
        all.push_str(&output_text(&out));
    }
    // A config with an error must not echo the secret either.
    let inline = app.config_toml(&Options::default()).replace(
        &format!(
            "client_secret_file = {:?}",
            app.dir.path().join("secret").display().to_string()
        ),
        &format!(
            "client_secret = {:?}\nbogus_key = 1",
            FakeCloud::CLIENT_SECRET
        ),
    );
    app.write_config(&inline);
    let out = app.bin(&["check-config"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    all.push_str(&output_text(&out));
    assert!(all.contains("acme"), "the commands ran: {all}");
    assert!(
        !all.contains(FakeCloud::CLIENT_SECRET),
        "secret leaked:\n{all}"
    );
}

#[test]
fn fake_cloud_serves_a_cloud_that_once_archives_from() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("fake.secret");
    let mut server = bin()
        .args([
            "fake-cloud",
            "--listen",
            "127.0.0.1:0",
            "--reports",
            "2",
            "--secret-file",
        ])
        .arg(&secret)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("fake-cloud starts");
    let stdout = server.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let base_url = first
        .strip_prefix("fake cloud listening on ")
        .expect("address line")
        .to_owned();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[archive]\ndir = {:?}\n[ledger]\npath = {:?}\n[[accounts]]\nname = \"fake\"\n\
             base_url = {base_url:?}\nclient_id = {:?}\nclient_secret_file = {:?}\n",
            dir.path().join("archive").display().to_string(),
            dir.path().join("ledger.db").display().to_string(),
            FakeCloud::CLIENT_ID,
            secret.display().to_string(),
        ),
    )
    .expect("config");
    let once = bin()
        .arg("--config")
        .arg(&config)
        .arg("once")
        .output()
        .expect("once");
    let _ = server.kill();
    let _ = server.wait();
    let text = output_text(&once);
    assert_eq!(once.status.code(), Some(0), "{text}");
    assert!(
        total_fetched(&String::from_utf8_lossy(&once.stdout)) > 0,
        "{text}"
    );
}
