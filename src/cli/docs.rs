//! `completions` and `man`: the command line described for a shell or for `man`.
//!
//! `man` prints the top page (`report-archiver(1)`), or with `--dir` writes one page per
//! command (`report-archiver-run(1)`, `report-archiver-ledger-list(1)`, …), the pages the
//! top page's COMMANDS section refers to. Each page has the EXIT STATUS, ENVIRONMENT and
//! FILES sections clap does not know about; they are written here, per command.
//! Everything goes through [`emit`]: `man | head` ends quietly, not with a broken pipe.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::failure::Failure;
use super::output::emit;

/// Prints `shell`'s completion script for `cmd`.
pub fn completions(
    shell: clap_complete::Shell,
    mut cmd: clap::Command,
) -> Result<ExitCode, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "report-archiver", &mut script);
    emit(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the top man page of `cmd`, or with `dir` writes every page there.
pub fn man(cmd: clap::Command, dir: Option<&Path>) -> Result<ExitCode, Failure> {
    let pages = pages(cmd)
        .context("cannot render the man pages")
        .map_err(Failure::runtime)?;
    let Some(dir) = dir else {
        let top = pages.first().map(|(_, page)| page.as_str()).unwrap_or("");
        emit(top)?;
        return Ok(ExitCode::SUCCESS);
    };
    for (name, page) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, page)
            .with_context(|| {
                format!(
                    "cannot write the man page `{}`; check that the folder exists and is writable",
                    path.display()
                )
            })
            .map_err(Failure::runtime)?;
    }
    emit(&format!(
        "wrote {} man pages into {}\n",
        pages.len(),
        dir.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Every page, the top one first: (file name, roff).
pub fn pages(cmd: clap::Command) -> std::io::Result<Vec<(String, String)>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, &[], &mut out)?;
    Ok(out)
}

/// `cmd`'s page, then its subcommands' pages; `path` is the command words below the top.
fn collect(
    cmd: &clap::Command,
    path: &[&str],
    out: &mut Vec<(String, String)>,
) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    page.write_all(sections(path.first().copied()).as_bytes())?;
    // Subcommands carry no version of their own (clap_mangen would panic on one).
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    out.push((
        man.get_filename(),
        String::from_utf8_lossy(&page).into_owned(),
    ));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut words = path.to_vec();
        words.push(sub.get_name());
        collect(sub, &words, out)?;
    }
    Ok(())
}

const CONFIG_READERS: [&str; 7] = [
    "run",
    "once",
    "check-config",
    "reports",
    "ledger",
    "verify",
    "prune",
];

/// EXIT STATUS, ENVIRONMENT and FILES of the command `top` (a subcommand shares its
/// parent's), or of the whole program for `None`.
fn sections(top: Option<&str>) -> String {
    let mut roff = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in exit_status(top) {
        roff.push_str(&format!(".TP\n\\fB{code}\\fR\n{meaning}\n"));
    }
    roff.push_str(".SH ENVIRONMENT\n");
    let environment = environment(top);
    if environment.is_empty() {
        roff.push_str("This command reads no environment variables.\n");
    }
    for (name, meaning) in environment {
        roff.push_str(&format!(".TP\n\\fB{name}\\fR\n{meaning}\n"));
    }
    roff.push_str(".SH FILES\n");
    let files = files(top);
    if files.is_empty() {
        roff.push_str("This command reads and writes no files.\n");
    }
    for (name, meaning) in files {
        roff.push_str(&format!(".TP\n\\fI{name}\\fR\n{meaning}\n"));
    }
    // Hyphens in roff text are `\-`, so that they stay hyphens (and searchable).
    roff.replace('-', "\\-")
}

fn exit_status(top: Option<&str>) -> Vec<(&'static str, &'static str)> {
    let config = (
        "2",
        "The configuration or the command line is invalid; the message names the key or flag.",
    );
    match top {
        None => vec![
            ("0", "Success."),
            (
                "1",
                "Something failed at run time (an account, a report, an item, a file); see the message and the log.",
            ),
            config,
        ],
        Some("run") => vec![
            ("0", "Stopped cleanly on SIGTERM or SIGINT."),
            ("1", "Could not start, or stopped on a run-time failure."),
            config,
        ],
        Some("once") => vec![
            ("0", "Every account's pass archived everything it found."),
            (
                "1",
                "Something failed or is deferred (an account, a report, an item); failed items are tried again by the next pass.",
            ),
            config,
        ],
        Some("check-config") => vec![("0", "The configuration is valid."), config],
        Some("health") => vec![
            ("0", "The daemon answers healthy."),
            ("1", "The daemon answers unhealthy, or cannot be reached."),
            ("2", "The command line is invalid."),
        ],
        Some("verify") => vec![
            (
                "0",
                "Every file is intact and nothing is untracked (after --repair: everything was restored).",
            ),
            (
                "1",
                "Findings (missing, changed, unreadable or untracked files), or the archive folder cannot be read.",
            ),
            config,
        ],
        Some("completions" | "man") => vec![
            ("0", "Written."),
            ("1", "Could not write the output."),
            ("2", "The command line is invalid."),
        ],
        Some(_) => vec![
            ("0", "Success."),
            ("1", "A run-time failure; the message says what and why."),
            config,
        ],
    }
}

fn environment(top: Option<&str>) -> Vec<(&'static str, &'static str)> {
    let reads_config = top.is_none_or(|t| CONFIG_READERS.contains(&t));
    let mut out = Vec::new();
    if reads_config {
        out.extend([
            (
                "REPORT_ARCHIVER_CONFIG",
                "The config file when -c/--config is not given.",
            ),
            (
                "REPORT_ARCHIVER__<SECTION>__<KEY>",
                "Overrides one key of the config file, e.g. REPORT_ARCHIVER__LOG__LEVEL=debug.",
            ),
            (
                "CREDENTIALS_DIRECTORY",
                "Where client_secret_credential is read from (set by systemd's LoadCredential=).",
            ),
            (
                "JOURNAL_STREAM",
                "Set by systemd: log format auto then leaves out timestamps and colours.",
            ),
        ]);
    }
    if top.is_none() || top == Some("health") {
        out.push((
            "REPORT_ARCHIVER_HEALTH_URL",
            "The /healthz URL health probes when --url is not given.",
        ));
    }
    if !matches!(top, Some("health" | "completions" | "man")) {
        out.push(("RUST_LOG", "Log filter; wins over [log] level."));
    }
    out
}

fn files(top: Option<&str>) -> Vec<(&'static str, &'static str)> {
    let reads_config = top.is_none_or(|t| CONFIG_READERS.contains(&t));
    let mut out = Vec::new();
    if reads_config {
        out.extend([
            (
                "/etc/report-archiver/config.toml",
                "The config file when neither -c/--config nor REPORT_ARCHIVER_CONFIG names one.",
            ),
            (
                "/var/lib/report-archiver/archive",
                "The archive (archive.dir by default): one file per stored item; .partial/ holds temp files, .quarantine/ what verify --repair set aside.",
            ),
            (
                "/var/lib/report-archiver/ledger.db",
                "The SQLite ledger (ledger.path by default): every archived item with its SHA-256.",
            ),
        ]);
    }
    if top.is_none() || top == Some("demo") {
        out.push((
            "./demo.toml, ./demo-archive, ./demo-ledger.db",
            "What demo writes (in --dir): its config, archive and ledger.",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_page_has_exit_status_environment_and_files() {
        for top in [
            None,
            Some("run"),
            Some("health"),
            Some("man"),
            Some("ledger"),
        ] {
            let roff = super::sections(top);
            for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH FILES"] {
                assert!(roff.contains(section), "{top:?}: {roff}");
            }
        }
    }
}
