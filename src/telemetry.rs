//! Logging: one global `tracing` subscriber writing to stderr.
//!
//! - [`init`]: for the binary; the format and level come from `[log]`, `RUST_LOG` wins.
//! - [`init_for_tests`]: once per test binary; prints only when `TEST_LOG` is set.
//!
//! `auto` is human-readable: colours on a terminal; under journald (`JOURNAL_STREAM` set)
//! compact, without timestamps (journald adds its own) and without colours; otherwise plain.
//!
//! Nothing from a server is trusted as text (see [`crate::untrusted`]): every field value
//! and message of every event and span passes [`SafeFields`] (or [`SafeEvents`], for the
//! formats that format event fields themselves), which scrubs secrets, escapes control,
//! line-breaking and bidi characters and caps the length, so a log line of ours always
//! starts at our own timestamp. JSON keeps its values exact (serde_json escapes controls)
//! and its lines have bidi and C1 characters as `\uXXXX`. Last, the writer scrubs each
//! whole line once more, so a secret never leaves even through a path no visitor saw.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::sync::{Once, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;
use crate::redact;
use crate::untrusted::{self, LOG_FIELD_MAX};

/// tokio-cron-scheduler logs its own start-up at INFO; a later directive for it still wins.
const QUIET_DEPENDENCIES: &str = "tokio_cron_scheduler=warn";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "invalid log filter {filter:?} from {origin}: {source}; use a level such as \"info\" or directives such as \"report_archiver=debug,info\""
    )]
    Filter {
        filter: String,
        /// `RUST_LOG` or `log.level`.
        origin: &'static str,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("logging is already set up; init was called twice")]
    AlreadyInitialised(#[source] tracing_subscriber::util::TryInitError),
}

/// Where the output goes, which decides colours and timestamps in `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Terminal,
    Journald,
    Plain,
}

impl Sink {
    fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Terminal
        } else if std::env::var_os("JOURNAL_STREAM").is_some() {
            Self::Journald
        } else {
            Self::Plain
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// Installs the global subscriber on stderr.
///
/// # Errors
/// An invalid filter (naming `RUST_LOG` or `log.level`), or a subscriber already installed.
pub fn init(format: LogFormat, level: &str) -> Result<(), TelemetryError> {
    let filter = build_filter(level)?;
    // Through the progress bar's writer: on a terminal, log lines go above the bar.
    let layer = fmt_layer(format, Sink::detect(), crate::progress::LogWriter);
    tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init()
        .map_err(TelemetryError::AlreadyInitialised)?;
    let _ = ACTIVE_FORMAT.set(format);
    Ok(())
}

/// The format of the installed subscriber, once [`init`] succeeded.
static ACTIVE_FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Prints the one `error: …` line of a failing command to stderr: secrets scrubbed and
/// server text escaped; as a JSON object when the logs are JSON, so that every stderr
/// line of a JSON-logging process parses.
pub fn print_error(message: &str) {
    let text = untrusted::sanitize(message, untrusted::ERROR_LINE_MAX);
    if ACTIVE_FORMAT.get() == Some(&LogFormat::Json) {
        let line = serde_json::json!({
            "timestamp": crate::ledger::rfc3339(chrono::Utc::now()),
            "level": "ERROR",
            "message": format!("error: {text}"),
        });
        eprintln!("{}", untrusted::json_escape_invisible(&line.to_string()));
    } else {
        eprintln!("error: {text}");
    }
}

/// For tests: installs a subscriber once per process. Output goes to the test writer when
/// `TEST_LOG` is set (filter from `RUST_LOG`, default `debug`), else to a sink, so the
/// formatting code still runs.
pub fn init_for_tests() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let level = if std::env::var_os("TEST_LOG").is_some() {
            "debug"
        } else {
            "info"
        };
        let filter = build_filter(level).unwrap_or_else(|_| EnvFilter::new(level));
        let layer: BoxedLayer = if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt::layer().with_test_writer().boxed()
        } else {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .boxed()
        };
        // Another test harness may have installed one already; that one is kept.
        let _ = tracing_subscriber::registry()
            .with(layer)
            .with(filter)
            .try_init();
    });
}

/// `RUST_LOG` when set and not empty, else `level`; always quiets the noisy dependencies.
fn build_filter(level: &str) -> Result<EnvFilter, TelemetryError> {
    let (spec, origin) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => (value, "RUST_LOG"),
        _ => (level.to_owned(), "log.level"),
    };
    EnvFilter::try_new(format!("{QUIET_DEPENDENCIES},{spec}")).map_err(|source| {
        TelemetryError::Filter {
            filter: spec,
            origin,
            source,
        }
    })
}

fn fmt_layer<W>(format: LogFormat, sink: Sink, writer: W) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let json = format == LogFormat::Json;
    let base = tracing_subscriber::fmt::layer().with_writer(Scrubbing {
        inner: writer,
        json,
    });
    let text = SafeFields::Text { colon: false };
    match (format, sink) {
        (LogFormat::Json, _) => base
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(SafeFields::Json)
            .map_event_format(|inner| SafeEvents { inner, json: true })
            .boxed(),
        (LogFormat::Pretty, sink) => base
            .pretty()
            .with_ansi(sink == Sink::Terminal)
            .fmt_fields(SafeFields::Text { colon: true })
            .map_event_format(|inner| SafeEvents { inner, json: false })
            .boxed(),
        // The full and compact formats format event fields with `fmt_fields` too.
        (LogFormat::Auto, Sink::Terminal) => base.with_ansi(true).fmt_fields(text).boxed(),
        (LogFormat::Auto, Sink::Journald) => base
            .compact()
            .without_time()
            .with_ansi(false)
            .fmt_fields(text)
            .boxed(),
        (LogFormat::Auto, Sink::Plain) => base.with_ansi(false).fmt_fields(text).boxed(),
    }
}

/// Formats field values (of spans always; of events in the full and compact formats)
/// with secrets scrubbed, server text escaped and capped.
#[derive(Debug, Clone, Copy)]
enum SafeFields {
    /// `name=value` like tracing's default, or `name: value` like its pretty format.
    Text { colon: bool },
    /// A JSON object, as the JSON event format expects a span's fields to be.
    Json,
}

impl<'writer> FormatFields<'writer> for SafeFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        match *self {
            Self::Text { colon } => {
                let ansi = writer.has_ansi_escapes();
                let mut visitor = TextVisitor {
                    writer: &mut writer,
                    ansi,
                    colon,
                    first: true,
                    result: Ok(()),
                };
                fields.record(&mut visitor);
                visitor.result
            }
            Self::Json => {
                let mut visitor = JsonVisitor::default();
                fields.record(&mut visitor);
                write!(writer, "{}", serde_json::Value::Object(visitor.0))
            }
        }
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        match *self {
            Self::Text { .. } => {
                if !current.fields.is_empty() {
                    current.fields.push(' ');
                }
                self.format_fields(current.as_writer(), fields)
            }
            Self::Json => {
                // The fields so far are one JSON object: merged, not appended to.
                let previous = serde_json::from_str(&current.fields).unwrap_or_default();
                let mut visitor = JsonVisitor(previous);
                fields.record(&mut visitor);
                current.fields = serde_json::Value::Object(visitor.0).to_string();
                Ok(())
            }
        }
    }
}

/// A field name as tracing's formatters show it (`r#type` as `type`).
fn field_name(field: &Field) -> &'static str {
    let name = field.name();
    name.strip_prefix("r#").unwrap_or(name)
}

/// A string field in the text formats: quoted like tracing's default (`account="acme"`),
/// the message bare.
fn text_str(field: &Field, value: &str) -> String {
    if field.name() == "message" {
        return untrusted::sanitize(value, LOG_FIELD_MAX);
    }
    let scrubbed = redact::scrub(value);
    let capped = untrusted::truncate(&scrubbed, LOG_FIELD_MAX);
    // `{:?}` escapes quotes, backslashes and controls as tracing always has; the escape
    // after it catches what `{:?}` shows as itself.
    untrusted::escape_all(&format!("{capped:?}")).into_owned()
}

/// An error value with its sources, like tracing's default (`e e.sources=[a, b]`) but
/// as one value.
fn error_text(value: &(dyn std::error::Error + 'static)) -> String {
    let mut text = value.to_string();
    let mut source = value.source();
    let mut sources = Vec::new();
    while let Some(s) = source {
        sources.push(s.to_string());
        source = s.source();
    }
    if !sources.is_empty() {
        let _ = write!(text, " (sources: {})", sources.join(": "));
    }
    text
}

struct TextVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    ansi: bool,
    colon: bool,
    first: bool,
    result: fmt::Result,
}

impl TextVisitor<'_, '_> {
    fn write(&mut self, field: &Field, text: &str) {
        if self.result.is_err() {
            return;
        }
        let pad = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{pad}{text}")
        } else {
            let name = field_name(field);
            let eq = if self.colon { ": " } else { "=" };
            if self.ansi {
                // tracing's own styles: the name italic, the separator dimmed.
                write!(
                    self.writer,
                    "{pad}\x1b[3m{name}\x1b[0m\x1b[2m{eq}\x1b[0m{text}"
                )
            } else {
                write!(self.writer, "{pad}{name}{eq}{text}")
            }
        };
    }
}

impl Visit for TextVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let text = text_str(field, value);
        self.write(field, &text);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = untrusted::sanitize(&error_text(value), LOG_FIELD_MAX);
        self.write(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = untrusted::sanitize(&format!("{value:?}"), LOG_FIELD_MAX);
        self.write(field, &text);
    }
}

/// A span's fields as a JSON object: strings scrubbed and capped, numbers kept.
#[derive(Default)]
struct JsonVisitor(serde_json::Map<String, serde_json::Value>);

impl JsonVisitor {
    fn text(&mut self, field: &Field, value: &str) {
        let value = untrusted::truncate(&redact::scrub(value), LOG_FIELD_MAX).into_owned();
        self.0.insert(
            field_name(field).to_owned(),
            serde_json::Value::String(value),
        );
    }
}

impl Visit for JsonVisitor {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field_name(field).to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field_name(field).to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field_name(field).to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                self.0.insert(field_name(field).to_owned(), n.into());
            }
            None => self.text(field, &value.to_string()),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &error_text(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, &format!("{value:?}"));
    }
}

/// For the formats that format event fields with their own visitor (pretty, JSON): the
/// event is rebuilt with safe values, then handed to the inner format.
struct SafeEvents<F> {
    inner: F,
    json: bool,
}

/// Fields of one event that are formatted; an event of ours has far fewer.
const MAX_EVENT_FIELDS: usize = 32;

/// Writes its text as is, for `{:?}`: a value already made safe.
struct Verbatim(String);

impl fmt::Debug for Verbatim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

enum SafeValue {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(String),
    Text(tracing::field::DebugValue<Verbatim>),
}

impl SafeValue {
    fn as_value(&self) -> &dyn tracing::Value {
        match self {
            Self::I64(v) => v,
            Self::U64(v) => v,
            Self::F64(v) => v,
            Self::Bool(v) => v,
            Self::Str(v) => v,
            Self::Text(v) => v,
        }
    }
}

struct CollectSafe {
    json: bool,
    fields: Vec<(Field, SafeValue)>,
}

impl CollectSafe {
    fn push(&mut self, field: &Field, value: SafeValue) {
        if self.fields.len() < MAX_EVENT_FIELDS {
            self.fields.push((field.clone(), value));
        }
    }

    fn text(&mut self, field: &Field, raw: &str) {
        let text = if self.json {
            untrusted::truncate(&redact::scrub(raw), LOG_FIELD_MAX).into_owned()
        } else {
            untrusted::sanitize(raw, LOG_FIELD_MAX)
        };
        self.push(
            field,
            SafeValue::Text(tracing::field::debug(Verbatim(text))),
        );
    }
}

impl Visit for CollectSafe {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, SafeValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, SafeValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, SafeValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, SafeValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.json {
            let value = untrusted::truncate(&redact::scrub(value), LOG_FIELD_MAX).into_owned();
            self.push(field, SafeValue::Str(value));
        } else {
            let text = text_str(field, value);
            self.push(
                field,
                SafeValue::Text(tracing::field::debug(Verbatim(text))),
            );
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &error_text(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, &format!("{value:?}"));
    }
}

impl<S, N, F> FormatEvent<S, N> for SafeEvents<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut safe = CollectSafe {
            json: self.json,
            fields: Vec::new(),
        };
        event.record(&mut safe);
        let Some((filler, _)) = safe.fields.first() else {
            return self.inner.format_event(ctx, writer, event);
        };
        // A value set is built from a fixed-size array; the slots past the last field
        // repeat a field without a value, which records nothing.
        let entries: [(&Field, Option<&dyn tracing::Value>); MAX_EVENT_FIELDS] =
            std::array::from_fn(|i| match safe.fields.get(i) {
                Some((field, value)) => (field, Some(value.as_value())),
                None => (filler, None),
            });
        let metadata = event.metadata();
        let values = metadata.fields().value_set(&entries);
        let rebuilt = if event.is_contextual() {
            Event::new(metadata, &values)
        } else {
            Event::new_child_of(event.parent().cloned(), metadata, &values)
        };
        self.inner.format_event(ctx, writer, &rebuilt)
    }
}

/// Scrubs every formatted line once more before it is written, and in JSON escapes the
/// bidi and C1 characters serde_json leaves raw.
struct Scrubbing<M> {
    inner: M,
    json: bool,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbing<M> {
    type Writer = ScrubbingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter {
            inner: self.inner.make_writer(),
            json: self.json,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        ScrubbingWriter {
            inner: self.inner.make_writer_for(meta),
            json: self.json,
        }
    }
}

struct ScrubbingWriter<W> {
    inner: W,
    json: bool,
}

impl<W: std::io::Write> std::io::Write for ScrubbingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The fmt layer hands over each formatted event whole, as one UTF-8 string.
        match std::str::from_utf8(buf) {
            Ok(line) => {
                let scrubbed = redact::scrub(line);
                let out = if self.json {
                    untrusted::json_escape_invisible(&scrubbed)
                } else {
                    scrubbed
                };
                self.inner.write_all(out.as_bytes())?;
            }
            Err(_) => self.inner.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
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
}
