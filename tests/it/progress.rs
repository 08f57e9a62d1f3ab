//! The progress bar: drawn on a terminal, absent otherwise. The terminal is a pty from
//! util-linux's `script` (`script -qec CMD /dev/null`).

use std::process::Command;

use report_archiver::fake_cloud::FakeCloud;

use crate::support::{Options, TestApp, output_text, spawn_app};

/// Runs the binary with this app's config inside a pty; returns everything the terminal got.
fn in_a_terminal(app: &TestApp, args: &str) -> String {
    let command = format!(
        "{} --config '{}' {args}",
        env!("CARGO_BIN_EXE_report-archiver"),
        app.config_path.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env("TERM", "xterm")
        .output()
        .expect("script (util-linux) runs");
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_and_verify_draw_a_progress_bar_on_a_terminal_only() {
    let app = spawn_app(FakeCloud::seeded(6, 2, &["csv", "html"])).await;
    let saved = app.fake.saved_items().len();
    let terminal = in_a_terminal(&app, "once");
    assert!(terminal.contains("archiving"), "{terminal}");
    assert!(
        terminal.contains(&format!("{saved}/{saved} items")),
        "{terminal}"
    );
    assert!(terminal.contains("ETA"), "{terminal}");
    let terminal = in_a_terminal(&app, "verify");
    assert!(terminal.contains("verifying"), "{terminal}");
    assert!(terminal.contains("ETA"), "{terminal}");

    for args in [&["once"][..], &["verify"]] {
        let out = app.bin(args).output().expect("runs");
        let text = output_text(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            !text.contains("ETA") && !text.contains(" items, "),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_once_prints_no_line_per_file_and_elsewhere_one() {
    let app = spawn_app(FakeCloud::seeded(7, 2, &["csv", "html"])).await;
    // The level an operator runs with: the tests' default also asks for debug lines, which
    // bring the per-file lines back on purpose.
    let toml = app.config_toml(&Options::default());
    app.write_config(&toml.replace("\"info,report_archiver=debug\"", "\"info\""));
    let saved = app.fake.saved_items().len();
    assert!(saved > 2);
    let terminal = in_a_terminal(&app, "once");
    assert!(
        terminal.contains(&format!("{saved}/{saved} items")),
        "{terminal}"
    );
    assert!(terminal.contains("(total)"), "the table: {terminal}");
    assert!(!terminal.contains("stored_bytes="), "{terminal}");
    assert!(
        !terminal.lines().any(|l| l.contains(" archived ")),
        "{terminal}"
    );

    // Piped (a service, a log file): one INFO line per file, as before.
    std::fs::remove_dir_all(&app.archive_dir).expect("archive removed");
    std::fs::remove_file(&app.ledger_path).expect("ledger removed");
    let out = app.bin(&["once"]).output().expect("runs");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let per_file = stderr
        .lines()
        .filter(|l| l.contains("INFO") && l.contains("stored_bytes="))
        .count();
    assert_eq!(per_file, app.archived_files().len(), "{stderr}");
}
