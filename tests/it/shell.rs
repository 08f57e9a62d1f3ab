//! `completions` and `man`, generated from the clap definitions.

use std::process::Command;

fn bin(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
        .args(args)
        .env_remove("REPORT_ARCHIVER_CONFIG")
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn completions_for_each_shell_name_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, script) = bin(&["completions", shell]);
        assert!(ok, "{shell}");
        assert!(script.contains("report-archiver"), "{shell}");
        assert!(
            script.contains("verify") && script.contains("ledger"),
            "{shell}"
        );
    }
    let (ok, _) = bin(&["completions", "tcsh"]);
    assert!(!ok);
}

#[test]
fn man_prints_a_roff_page() {
    let (ok, page) = bin(&["man"]);
    assert!(ok);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("report\\-archiver"), "{page}");
}

/// Every command below `cmd`, with its full name (`report-archiver ledger list`).
fn walk(cmd: &clap::Command, name: String, out: &mut Vec<(String, clap::Command)>) {
    // clap's own `help` subcommands are not commands of ours (and get no page).
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        walk(sub, format!("{name} {}", sub.get_name()), out);
    }
    out.push((name, cmd.clone()));
}

fn commands() -> Vec<(String, clap::Command)> {
    use clap::CommandFactory;
    let mut cmd = report_archiver::cli::Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, "report-archiver".into(), &mut out);
    out
}

#[test]
fn every_flag_and_argument_of_every_command_has_help() {
    let mut bare = Vec::new();
    for (name, cmd) in commands() {
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            if help.trim().is_empty() {
                bare.push(format!("{name}: {}", arg.get_id()));
            }
        }
        assert!(cmd.get_about().is_some(), "{name} has no about");
    }
    assert!(bare.is_empty(), "arguments without help: {bare:#?}");
}

#[test]
fn man_writes_a_page_per_command_each_with_exit_status_environment_and_files() {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        crate::support::output_text(&out)
    );
    let (top_ok, top) = bin(&["man"]);
    assert!(top_ok);
    for (name, _) in commands() {
        let file = dir.path().join(format!("{}.1", name.replace(' ', "-")));
        let page =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(page.contains(".TH report"), "{name}: {page}");
        for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH FILES"] {
            assert!(page.contains(section), "{name} lacks {section}");
        }
        // Every page the top one refers to exists.
        if let Some(sub) = name.strip_prefix("report-archiver ")
            && !sub.contains(' ')
        {
            let reference = format!("report\\-archiver\\-{}(1)", sub.replace('-', "\\-"));
            assert!(top.contains(&reference), "{reference} not in the top page");
        }
    }
    let top_file = std::fs::read_to_string(dir.path().join("report-archiver.1")).expect("top");
    assert_eq!(top_file, top, "`man` prints the page `man --dir` writes");
}

#[test]
fn a_reader_that_goes_away_ends_man_and_completions_quietly() {
    for args in [&["man"][..], &["completions", "bash"]] {
        // The read end is closed before the command starts: its first write fails with
        // EPIPE, as under `man | head` once head has what it wants.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn a_reader_that_goes_away_neither_stops_the_fake_cloud_nor_fails_the_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The demo archives, then prints its table into a closed pipe.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
        .args(["demo", "--dir"])
        .arg(dir.path().join("demo"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The fake cloud prints its banner into a closed pipe (`fake-cloud | head -1` once head
    // exits) and must go on serving.
    let urls = dir.path().join("urls");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cloud = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
        .args(["fake-cloud", "--listen", "127.0.0.1:0", "--secret-file"])
        .arg(dir.path().join("secret"))
        .arg("--urls-file")
        .arg(&urls)
        .stdout(writer)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let started = std::time::Instant::now();
    while !urls.exists() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The banner follows the URLs file; give it time to hit the closed pipe.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = cloud.try_wait().expect("status");
    let _ = cloud.kill();
    let _ = cloud.wait();
    assert!(urls.exists(), "the fake cloud never started");
    assert_eq!(status, None, "the fake cloud stopped: {status:?}");
}

#[test]
fn config_is_refused_by_the_commands_that_read_none() {
    for args in [
        &["--config", "x.toml", "health"][..],
        &["--config", "x.toml", "man"],
        &["--config", "x.toml", "completions", "bash"],
        &["health", "--config", "x.toml"],
        &["demo", "-c", "x.toml"],
        &["fake-cloud", "--config", "x.toml"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
            .args(args)
            .output()
            .expect("runs");
        let text = crate::support::output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains("config") || text.contains("'-c'"),
            "{args:?}: {text}"
        );
    }
    // The variable is not the flag: the image sets it for every command, its health check
    // included, and a command that reads no config ignores it.
    let out = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
        .args(["completions", "bash"])
        .env("REPORT_ARCHIVER_CONFIG", "/etc/report-archiver/config.toml")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        crate::support::output_text(&out)
    );
    for (name, cmd) in commands() {
        // The top level's hidden `--config` (the `--config FILE run` order) is not offered.
        let offered = cmd
            .get_arguments()
            .any(|a| a.get_id() == "config" && !a.is_hide_set());
        let reads = [
            "run",
            "once",
            "check-config",
            "reports",
            "ledger",
            "verify",
            "prune",
        ]
        .iter()
        .any(|c| name.split(' ').nth(1) == Some(c));
        assert_eq!(offered, reads, "{name}: --config offered {offered}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_is_read_before_or_after_the_command_or_from_the_environment() {
    let app = crate::support::spawn_app(report_archiver::fake_cloud::FakeCloud::seeded(
        3,
        1,
        &["csv"],
    ))
    .await;
    app.run_once().await;
    let config = app.config_path.to_str().expect("utf-8 path");
    for args in [
        &["--config", config, "ledger", "stats"][..],
        &["ledger", "stats", "-c", config],
        &["ledger", "-c", config, "stats"],
        &["check-config", "--config", config],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
            .args(args)
            .env_remove("REPORT_ARCHIVER_CONFIG")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            crate::support::output_text(&out)
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_report-archiver"))
        .args(["ledger", "stats"])
        .env("REPORT_ARCHIVER_CONFIG", config)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        crate::support::output_text(&out)
    );
}
