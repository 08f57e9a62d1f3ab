//! The subscriber end to end: every format and sink, with hostile server text and secrets.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture(format: LogFormat, sink: Sink) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let layer = fmt_layer(format, sink, move || writer.clone());
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("pass", account = "eu2");
        let _entered = span.enter();
        tracing::info!(stored_id = "s-1", "item archived");
    });
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

const FORGED: &str = "x\n2026-11-30T00:00:00.000000Z  INFO injected: archived path=/etc/passwd \u{1b}[2J\u{0}\u{202e}txt.exe";

/// Server text in every kind of field, of an event and of its span.
fn capture_hostile(format: LogFormat, sink: Sink) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let layer = fmt_layer(format, sink, move || writer.clone());
    let subscriber = tracing_subscriber::registry().with(layer);
    let error = std::io::Error::other(FORGED);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("pass", account = "eu2", report_id = FORGED);
        let _entered = span.enter();
        tracing::warn!(
            report_id = FORGED,
            status = %FORGED,
            body = ?FORGED,
            error = &error as &(dyn std::error::Error + 'static),
            count = 3u64,
            "report failed: {FORGED}"
        );
    });
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

fn assert_no_raw_controls(text: &str) {
    for c in text.chars() {
        assert!(
            c == '\n' || !crate::untrusted::is_unsafe(c),
            "raw {c:?} in {text}"
        );
    }
}

#[test]
fn server_text_in_any_field_cannot_forge_a_line_in_the_text_formats() {
    for (format, sink) in [
        (LogFormat::Auto, Sink::Plain),
        (LogFormat::Auto, Sink::Journald),
    ] {
        let text = capture_hostile(format, sink);
        assert_eq!(text.lines().count(), 1, "{format:?} {sink:?}: {text}");
        assert_no_raw_controls(&text);
        assert!(text.contains("x\\n2026-11-30"), "{text}");
        assert!(text.contains("\\u{202e}"), "{text}");
        assert!(text.contains("count=3"), "{text}");
    }
}

#[test]
fn pretty_has_our_line_breaks_only() {
    let text = capture_hostile(LogFormat::Pretty, Sink::Plain);
    assert_no_raw_controls(&text);
    // Our own layout: the event line, `at …`, `in pass with …`; never a line of theirs.
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("2026-11-30T00:00:00.000000Z")),
        "{text}"
    );
    assert!(text.contains("count: 3"), "{text}");
}

#[test]
fn on_a_terminal_our_colours_stay_and_theirs_are_escaped() {
    let text = capture_hostile(LogFormat::Auto, Sink::Terminal);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\u{1b}[3mreport_id\u{1b}[0m"), "{text}");
    assert!(text.contains("\\u{1b}[2J"), "{text}");
    assert!(!text.contains("\u{1b}[2J"), "{text}");
}

#[test]
fn json_lines_stay_json_with_the_values_intact_and_no_raw_bidi() {
    let text = capture_hostile(LogFormat::Json, Sink::Plain);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_no_raw_controls(&text);
    let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(value["report_id"], FORGED);
    assert_eq!(value["status"], FORGED);
    assert_eq!(value["count"], 3);
    assert_eq!(value["span"]["report_id"], FORGED);
    assert_eq!(value["span"]["account"], "eu2");
    assert_eq!(value["message"], format!("report failed: {FORGED}"));
}

#[test]
fn registered_secrets_never_reach_a_log_line() {
    let secret = "telemetry-test-secret-0042";
    crate::redact::register_client("telemetry-client", secret);
    for (format, sink) in [
        (LogFormat::Auto, Sink::Plain),
        (LogFormat::Pretty, Sink::Plain),
        (LogFormat::Json, Sink::Plain),
    ] {
        let out = Captured::default();
        let writer = out.clone();
        let layer = fmt_layer(format, sink, move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("issue", reason = %format!("got {secret}"));
            let _entered = span.enter();
            tracing::warn!(error.message = %format!("401: secret {secret}"), "refused {secret}");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains(secret), "{format:?}: {text}");
        assert!(text.contains("[redacted]"), "{format:?}: {text}");
    }
}

#[test]
fn json_logs_are_one_flat_object_per_line_with_the_current_span() {
    let text = capture(LogFormat::Json, Sink::Plain);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(value["message"], "item archived");
    assert_eq!(value["stored_id"], "s-1");
    assert_eq!(value["span"]["account"], "eu2");
    assert_eq!(value["level"], "INFO");
}

#[test]
fn auto_under_journald_has_no_colours_and_no_timestamp() {
    let text = capture(LogFormat::Auto, Sink::Journald);
    assert!(text.contains("item archived"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        text.starts_with(" INFO") || text.starts_with("INFO"),
        "{text}"
    );
}

#[test]
fn auto_when_piped_has_no_colours() {
    let text = capture(LogFormat::Auto, Sink::Plain);
    assert!(text.contains("item archived"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn a_bad_level_is_an_error_naming_where_it_came_from() {
    if std::env::var_os("RUST_LOG").is_some() {
        return; // RUST_LOG wins over the level under test
    }
    let err = build_filter("info,[").unwrap_err();
    assert!(err.to_string().contains("log.level"), "{err}");
}

#[test]
fn per_file_lines_are_left_out_on_a_terminal_only_below_debug() {
    let info = Some(LevelFilter::INFO);
    let debug = Some(LevelFilter::DEBUG);
    assert!(quiet_files(LogFormat::Auto, Sink::Terminal, info));
    assert!(quiet_files(LogFormat::Pretty, Sink::Terminal, info));
    assert!(!quiet_files(LogFormat::Auto, Sink::Terminal, debug));
    assert!(!quiet_files(LogFormat::Json, Sink::Terminal, info));
    assert!(!quiet_files(LogFormat::Auto, Sink::Plain, info));
    assert!(!quiet_files(LogFormat::Auto, Sink::Journald, info));
}
