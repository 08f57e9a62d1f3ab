//! The progress bar: drawn on a terminal, absent otherwise. The terminal is a pty from
//! util-linux's `script` (`script -qec CMD /dev/null`).

use std::process::Command;

use report_archiver::fake_cloud::FakeCloud;

use crate::support::{TestApp, output_text, spawn_app};

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
