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
//!
//! This file sets the subscriber up; the safety lives beside it, by job: `fields.rs` (field
//! values: the text and JSON visitors), `events.rs` (events rebuilt with safe values for the
//! pretty and JSON formats), `writer.rs` (the last scrub of each line) and `error_line.rs`
//! (the `error: …` line of a failing command).

use std::io::IsTerminal;
use std::sync::Once;

use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

mod error_line;
mod events;
mod fields;
mod writer;

use error_line::ACTIVE_FORMAT;
pub use error_line::print_error;
use events::SafeEvents;
use fields::SafeFields;
use writer::Scrubbing;

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
    let sink = Sink::detect();
    let quiet = quiet_files(format, sink, filter.max_level_hint());
    // Through the progress bar's writer: on a terminal, log lines go above the bar.
    let layer = fmt_layer(format, sink, crate::progress::LogWriter);
    tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .with(filter_fn(move |meta| {
            !(quiet && meta.name() == crate::pass::FILE_ARCHIVED_EVENT)
        }))
        .try_init()
        .map_err(TelemetryError::AlreadyInitialised)?;
    let _ = ACTIVE_FORMAT.set(format);
    Ok(())
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

/// Whether the one-line-per-file events are left out: on a terminal a person reads the
/// progress bar and the summary table, and a line per file (thousands, with real accounts)
/// would bury both. They stay when the logs are JSON (a machine reads them), when stderr is
/// not a terminal (a service, a pipe, a file) and when the level asks for debug output.
fn quiet_files(format: LogFormat, sink: Sink, max_level: Option<LevelFilter>) -> bool {
    let debug = max_level.is_none_or(|max| max >= LevelFilter::DEBUG);
    sink == Sink::Terminal && format != LogFormat::Json && !debug
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

#[cfg(test)]
mod tests;
