//! A live progress bar on stderr for `once` and `verify`: items and bytes, rate, ETA.
//!
//! - [`Progress`]: shown only when stderr is a terminal; otherwise it does nothing, so a
//!   service, a pipe or a log file gets the logs and nothing else. Work can be added while
//!   it runs (a pass learns what to fetch report by report).
//!   It watches a pass as a [`PassObserver`].
//! - [`LogWriter`]: the log writer; it lifts the bar off the screen for each log line, so
//!   lines and bar do not garble each other.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::pass::PassObserver;

const TEMPLATE: &str = "{spinner} {msg} [{elapsed_precise}] {wide_bar} {prefix} items, \
    {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, ETA {eta})";

/// Shared by the tasks that do the work; cheap to clone through the `Arc`.
#[derive(Debug, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    items_done: AtomicU64,
    items_total: AtomicU64,
}

impl Progress {
    /// Draws nothing.
    pub fn hidden() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A bar on stderr when it is a terminal, else [`Progress::hidden`].
    pub fn on_terminal(label: &str) -> Arc<Self> {
        if !std::io::stderr().is_terminal() {
            return Self::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        bar.set_prefix("0/0");
        // Keeps the spinner and the rate moving while a large file is being handled.
        bar.enable_steady_tick(Duration::from_millis(200));
        *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        Arc::new(Self {
            bar: Some(bar),
            ..Self::default()
        })
    }

    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// More work became known: `items` items of `bytes` bytes in all.
    pub fn add_work(&self, items: u64, bytes: u64) {
        let total = self.items_total.fetch_add(items, Ordering::Relaxed) + items;
        if let Some(bar) = &self.bar {
            bar.inc_length(bytes);
            bar.set_prefix(format!(
                "{}/{total}",
                self.items_done.load(Ordering::Relaxed)
            ));
        }
    }

    /// One item is done (whatever its outcome), `bytes` of the planned bytes with it.
    pub fn item_done(&self, bytes: u64) {
        let done = self.items_done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_prefix(format!(
                "{done}/{}",
                self.items_total.load(Ordering::Relaxed)
            ));
        }
    }

    /// Leaves the final state on screen, on a line of its own.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            ACTIVE.lock().unwrap_or_else(PoisonError::into_inner).take();
            bar.finish();
            // indicatif leaves the cursor at the end of the bar; what follows (the summary
            // table on stdout, which shares the terminal) must start on a new line.
            eprintln!();
        }
    }
}

/// A pass's downloads are the bar's items.
impl PassObserver for Progress {
    fn work_planned(&self, items: u64, bytes: u64) {
        self.add_work(items, bytes);
    }

    fn item_done(&self, bytes: u64) {
        Progress::item_done(self, bytes);
    }
}

/// The bar on screen, if any: the log writer must lift it for each line.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Writes log lines to stderr, around the progress bar when one is drawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The fmt layer writes each event with one `write_all`, so a whole line goes out
        // while the bar is lifted.
        let bar = ACTIVE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}
