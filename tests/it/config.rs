//! Bad configs: `check-config` and `run` exit 2 with a message that names the problem.

use report_archiver::fake_cloud::FakeCloud;

use crate::support::{Options, TestApp, output_text, spawn_app};

async fn app() -> TestApp {
    spawn_app(FakeCloud::new()).await
}

fn assert_config_error(app: &TestApp, toml: &str, expected: &[&str]) {
    app.write_config(toml);
    for command in ["check-config", "run"] {
        let out = app.bin(&[command]).output().expect("runs");
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {text}");
        for e in expected {
            assert!(text.contains(e), "{command}: expected {e:?} in:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_a_key_is_named() {
    let app = app().await;
    let toml = app
        .config_toml(&Options::default())
        .replace("keep_compressed", "keep_compresed");
    assert_config_error(&app, &toml, &["keep_compresed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cron_is_named() {
    let app = app().await;
    let toml = app.config_toml(&Options {
        schedule: Some("*/5 * * * *".into()),
        ..Options::default()
    });
    assert_config_error(&app, &toml, &["schedule", "6 fields"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_file_is_named() {
    let app = app().await;
    let toml = app
        .config_toml(&Options::default())
        .replace("/secret\"", "/no-such-secret\"");
    assert_config_error(&app, &toml, &["no-such-secret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_account_name_is_named() {
    let app = app().await;
    let base = app.config_toml(&Options::default());
    let account = &base[base.find("[[accounts]]").expect("account block")..];
    let toml = format!("{base}\n{account}");
    assert_config_error(&app, &toml, &["acme", "accounts[1].name"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_config_file_is_a_config_error() {
    let app = app().await;
    std::fs::remove_file(&app.config_path).expect("rm");
    let out = app.bin(&["check-config"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(output_text(&out).contains("config.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_prints_the_effective_settings() {
    let app = app().await;
    let out = app.bin(&["check-config"]).output().expect("runs");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("acme") && text.contains(&app.cloud.base_url),
        "{text}"
    );
}
