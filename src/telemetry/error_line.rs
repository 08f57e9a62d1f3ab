//! The one `error: …` line a failing command prints, in the format the logs are in.

use std::sync::OnceLock;

use crate::config::LogFormat;
use crate::untrusted;

/// The format of the installed subscriber, once [`super::init`] succeeded.
pub(super) static ACTIVE_FORMAT: OnceLock<LogFormat> = OnceLock::new();

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
