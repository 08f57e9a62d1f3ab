//! Secrets as deployed: systemd's credentials directory, loose file permissions, two
//! sources; the real binary, and the secret never in its output.

use std::os::unix::fs::PermissionsExt;

use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};

use crate::support::{Options, TestApp, output_text, spawn_app};

async fn app_with_one_item() -> TestApp {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", b"a\n1\n".to_vec()));
    spawn_app(fake).await
}

const LOOSE_WARNING: &str = "can be read by group or others";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_from_the_systemd_credentials_directory_is_used() {
    let app = app_with_one_item().await;
    let creds = app.dir.path().join("credentials");
    std::fs::create_dir(&creds).expect("mkdir");
    let secret = creds.join("acme");
    std::fs::write(&secret, FakeCloud::CLIENT_SECRET).expect("write");
    // As systemd leaves it: readable by the service user only.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let toml = app.config_toml(&Options::default());
    let file_line = toml
        .lines()
        .find(|l| l.starts_with("client_secret_file"))
        .expect("a secret file line");
    app.write_config(&toml.replace(file_line, "client_secret_credential = \"acme\""));

    let out = app
        .bin(&["once"])
        .env("CREDENTIALS_DIRECTORY", &creds)
        .output()
        .expect("once runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(app.archived_files().len(), 1, "{text}");
    assert!(!text.contains(LOOSE_WARNING), "{text}");
    assert!(!text.contains(FakeCloud::CLIENT_SECRET), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_file_others_can_read_is_used_with_a_warning() {
    let app = app_with_one_item().await;
    let secret = app.dir.path().join("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = app.bin(&["check-config"]).output().expect("runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(LOOSE_WARNING), "{text}");
    assert!(text.contains("accounts[0].client_secret_file"), "{text}");
    assert!(!text.contains(FakeCloud::CLIENT_SECRET), "{text}");

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = app.bin(&["check-config"]).output().expect("runs");
    assert!(!output_text(&out).contains(LOOSE_WARNING));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_and_a_secret_file_together_exit_2_naming_both() {
    let app = app_with_one_item().await;
    let toml = app.config_toml(&Options::default()).replace(
        "client_secret_file",
        "client_secret_credential = \"acme\"\nclient_secret_file",
    );
    app.write_config(&toml);
    let out = app.bin(&["check-config"]).output().expect("runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("client_secret_file, client_secret_credential"),
        "{text}"
    );
}
