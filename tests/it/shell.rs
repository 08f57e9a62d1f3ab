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
