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

/// Writes to stdout where the output is a courtesy around the real work (the fake cloud's
/// banner, the demo's summary): any write error, a closed pipe (`| head`) included, is
/// ignored rather than a panic that would stop the fake cloud serving.
pub(super) fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
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

/// The width the summary table keeps to: a terminal of 100 columns shows it unwrapped.
pub const TABLE_WIDTH: usize = 100;

/// One line of the summary table, before layout.
struct Row {
    account: String,
    report: String,
    counts: [u64; 5],
    note: String,
}

/// The table `once` and `demo` print: one row per report, then a total per account.
/// WIRE_BYTES are the bytes downloaded (compressed as served; `ledger stats` counts the
/// stored ones). The rare counts are words in the NOTE, so that the columns fit
/// [`TABLE_WIDTH`]: items deferred after repeated failures, items the cloud failed to
/// generate, items the cloud lost before they were archived (VANISHED, counted once). A
/// note that does not fit beside its row goes on the lines below it, under REPORT.
pub fn render_summary(reports: &[PassReport]) -> String {
    let mut rows = Vec::new();
    for pass in reports {
        let account = cell(&pass.account);
        for r in &pass.reports {
            let rare = rare_counts(r.deferred, r.cloud_failed, r.vanished.len() as u64);
            let text = cell(r.error.as_deref().or(r.note.as_deref()).unwrap_or(""));
            rows.push(Row {
                account: account.clone(),
                report: cell(&r.report_id),
                counts: [r.fetched, r.skipped, r.pending, r.failed, r.bytes],
                note: join_note(&rare, &text),
            });
        }
        let status = match (&pass.error, pass.succeeded()) {
            (Some(e), _) => cell(e),
            (None, true) => "ok".into(),
            (None, false) => "FAILED".into(),
        };
        let rare = rare_counts(pass.deferred(), pass.cloud_failed(), pass.vanished());
        rows.push(Row {
            account,
            report: "(total)".into(),
            counts: [
                pass.fetched(),
                pass.skipped(),
                pass.pending(),
                pass.failed(),
                pass.bytes(),
            ],
            note: join_note(&status, &rare),
        });
    }
    layout(&rows)
}

fn rare_counts(deferred: u64, cloud_failed: u64, vanished: u64) -> String {
    let mut words = Vec::new();
    if deferred > 0 {
        words.push(format!("{deferred} deferred"));
    }
    if cloud_failed > 0 {
        words.push(format!("{cloud_failed} failed in the cloud"));
    }
    if vanished > 0 {
        words.push(format!("{vanished} vanished"));
    }
    words.join(", ")
}

fn join_note(first: &str, second: &str) -> String {
    match (first.is_empty(), second.is_empty()) {
        (true, _) => second.to_owned(),
        (false, true) => first.to_owned(),
        (false, false) => format!("{first}; {second}"),
    }
}

const HEADERS: [&str; 5] = ["FETCHED", "SKIPPED", "PENDING", "FAILED", "WIRE_BYTES"];

/// Columns as wide as their widest cell (ACCOUNT and REPORT capped), the note beside the
/// row when the line stays within [`TABLE_WIDTH`], else word-wrapped below it.
fn layout(rows: &[Row]) -> String {
    let width = |f: &dyn Fn(&Row) -> usize, header: &str, cap: usize| {
        rows.iter()
            .map(f)
            .max()
            .unwrap_or(0)
            .max(header.len())
            .min(cap)
    };
    let account = width(&|r| r.account.chars().count(), "ACCOUNT", 16);
    let report = width(&|r| r.report.chars().count(), "REPORT", 38);
    let numbers: Vec<usize> = HEADERS
        .iter()
        .enumerate()
        .map(|(i, h)| width(&|r| r.counts[i].to_string().len(), h, usize::MAX))
        .collect();
    let line = |a: &str, r: &str, cells: [String; 5]| {
        let mut out = format!("{a:<account$} {r:<report$}");
        for (cell, w) in cells.iter().zip(&numbers) {
            out.push_str(&format!(" {cell:>w$}"));
        }
        out
    };
    let mut out = line("ACCOUNT", "REPORT", HEADERS.map(str::to_owned));
    out.push_str("  NOTE\n");
    for row in rows {
        let mut text = line(&row.account, &row.report, row.counts.map(|n| n.to_string()));
        let beside = text.chars().count() + 2 + row.note.chars().count();
        if beside <= TABLE_WIDTH {
            text.push_str("  ");
            text.push_str(&row.note);
        } else {
            // Under the REPORT column, so it reads as the row's own line (at least four
            // spaces: ACCOUNT is never narrower than its header).
            let indent = " ".repeat(account + 1);
            for wrapped in wrap(&row.note, TABLE_WIDTH - indent.len()) {
                text.push('\n');
                text.push_str(&indent);
                text.push_str(&wrapped);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word alone).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let fits = current.chars().count() + 1 + word.chars().count() <= width;
        if !current.is_empty() && !fits {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::ReportOutcome;

    fn pass(note: &str) -> PassReport {
        PassReport {
            account: "acme".into(),
            reports: vec![ReportOutcome {
                report_id: "3f2a1c9e-8b7d-4e6f-a5b4-c3d2e1f0a9b8".into(),
                fetched: 1,
                deferred: 2,
                bytes: 123_456_789,
                note: Some(note.into()),
                ..ReportOutcome::default()
            }],
            ..PassReport::default()
        }
    }

    #[test]
    fn the_summary_header_names_every_column_of_its_rows_and_fits_100_columns() {
        let table = render_summary(&[pass("x")]);
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0].len(), 8, "{table}");
        let fetched = lines[0]
            .iter()
            .position(|h| *h == "FETCHED")
            .expect("column");
        assert_eq!(lines[1][fetched], "1");
        let bytes = lines[0]
            .iter()
            .position(|h| *h == "WIRE_BYTES")
            .expect("column");
        assert_eq!(lines[1][bytes], "123456789");
        assert!(table.contains("2 deferred; x"), "{table}");
        assert!(
            table.contains("(total)") && table.contains("FAILED; 2 deferred"),
            "{table}"
        );
        assert!(
            table.lines().all(|l| l.chars().count() <= TABLE_WIDTH),
            "{table}"
        );
    }

    #[test]
    fn a_long_note_wraps_below_its_row_within_100_columns() {
        let long = "word ".repeat(60);
        let table = render_summary(&[pass(long.trim())]);
        assert!(
            table.lines().all(|l| l.chars().count() <= TABLE_WIDTH),
            "{table}"
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(!lines[1].contains("word"), "{table}");
        assert!(
            lines[2].starts_with("        2 deferred; word word"),
            "{table}"
        );
        assert_eq!(table.matches("word").count(), 60, "{table}");
    }
}
