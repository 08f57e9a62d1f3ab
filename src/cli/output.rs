//! What a command writes to stdout: text and JSON a closed pipe does not fail, the table of
//! passes `once` and `demo` print, and the exit code those passes map to.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::failure::Failure;
use crate::pass::PassReport;
use crate::untrusted::cell;

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::runtime(
            anyhow::Error::new(e).context("cannot write to stdout"),
        )),
        _ => Ok(()),
    }
}

pub(super) fn emit_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .context("cannot write JSON")
        .map_err(Failure::runtime)?;
    text.push('\n');
    emit(&text)
}

pub fn exit_code(reports: &[PassReport]) -> ExitCode {
    if reports.iter().all(PassReport::succeeded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The table `once` and `demo` print: one row per report, then a total per account.
/// VANISHED counts the items the cloud lost before they were archived, found so in this
/// pass (each is counted once); a report the cloud deleted says GONE in its note.
pub fn render_summary(reports: &[PassReport]) -> String {
    let mut out = format!(
        "{:<16} {:<38} {:>7} {:>7} {:>7} {:>6} {:>8} {:>12} {:>8} {:>12}  {}\n",
        "ACCOUNT",
        "REPORT",
        "FETCHED",
        "SKIPPED",
        "PENDING",
        "FAILED",
        "DEFERRED",
        "CLOUD_FAILED",
        "VANISHED",
        "BYTES",
        "NOTE"
    );
    for pass in reports {
        let account = cell(&pass.account);
        for r in &pass.reports {
            let note = cell(r.error.as_deref().or(r.note.as_deref()).unwrap_or(""));
            out.push_str(&format!(
                "{:<16} {:<38} {:>7} {:>7} {:>7} {:>6} {:>8} {:>12} {:>8} {:>12}  {}\n",
                account,
                cell(&r.report_id),
                r.fetched,
                r.skipped,
                r.pending,
                r.failed,
                r.deferred,
                r.cloud_failed,
                r.vanished.len(),
                r.bytes,
                note
            ));
        }
        let note = match (&pass.error, pass.succeeded()) {
            (Some(e), _) => cell(e),
            (None, true) => "ok".into(),
            (None, false) => "FAILED".into(),
        };
        out.push_str(&format!(
            "{:<16} {:<38} {:>7} {:>7} {:>7} {:>6} {:>8} {:>12} {:>8} {:>12}  {}\n",
            account,
            "(total)",
            pass.fetched(),
            pass.skipped(),
            pass.pending(),
            pass.failed(),
            pass.deferred(),
            pass.cloud_failed(),
            pass.vanished(),
            pass.bytes(),
            note
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::ReportOutcome;

    #[test]
    fn the_summary_header_names_every_column_of_its_rows() {
        let pass = PassReport {
            account: "acme".into(),
            reports: vec![ReportOutcome {
                report_id: "r-1".into(),
                fetched: 1,
                deferred: 2,
                note: Some("x".into()),
                ..ReportOutcome::default()
            }],
            ..PassReport::default()
        };
        let table = render_summary(&[pass]);
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0].len(), lines[1].len(), "{table}");
        assert_eq!(lines[0].len(), lines[2].len(), "{table}");
        let deferred = lines[0]
            .iter()
            .position(|h| *h == "DEFERRED")
            .expect("column");
        assert_eq!(lines[1][deferred], "2");
    }
}
