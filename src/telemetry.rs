//! Logging: one global `tracing` subscriber writing to stderr.
//!
//! - [`init`]: for the binary; the format and level come from `[log]`, `RUST_LOG` wins.
//! - [`init_for_tests`]: once per test binary; prints only when `TEST_LOG` is set.
//!
//! `auto` is human-readable: colours on a terminal; under journald (`JOURNAL_STREAM` set)
//! compact, without timestamps (journald adds its own) and without colours; otherwise plain.

use std::io::IsTerminal;
use std::sync::Once;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

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
        .map_err(TelemetryError::AlreadyInitialised)
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
    let base = tracing_subscriber::fmt::layer().with_writer(writer);
    match (format, sink) {
        (LogFormat::Json, _) => base
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        (LogFormat::Pretty, sink) => base.pretty().with_ansi(sink == Sink::Terminal).boxed(),
        (LogFormat::Auto, Sink::Terminal) => base.with_ansi(true).boxed(),
        (LogFormat::Auto, Sink::Journald) => base.compact().without_time().with_ansi(false).boxed(),
        (LogFormat::Auto, Sink::Plain) => base.with_ansi(false).boxed(),
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
