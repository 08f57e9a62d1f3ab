//! The archive's path rules, in one place: what an item is called
//! (`<account>/<report_id>/<YYYY>/<MM>/<created_at>_<stored_id>.<ext>`), the allow-list
//! every part from the network must pass (invariant 6), how a relative path joins the root
//! without leaving it, and the names of our own temp files.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Datelike, Utc};

use super::ArchiveError;
use crate::api::ReportFormat;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The identity of one stored item, as the archive names it.
#[derive(Debug, Clone)]
pub struct ArchiveTarget<'a> {
    pub account: &'a str,
    pub report_id: &'a str,
    pub stored_id: &'a str,
    pub format: &'a ReportFormat,
    pub created_at: DateTime<Utc>,
}

/// A verified file: where it goes in the archive, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedFile {
    /// Relative to the archive root, `/`-separated.
    pub relative_path: String,
    /// Bytes received on the wire (the listing's `size` counts these).
    pub wire_bytes: u64,
    /// Bytes in the archived file.
    pub stored_bytes: u64,
    /// SHA-256 of the archived file, lowercase hex.
    pub sha256: String,
    /// Whether the archived file is gzip (kept as served).
    pub compressed: bool,
}

/// What the HTTP layer knows about a body before it is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyInfo {
    /// `Content-Encoding: gzip` was sent.
    pub gzip_header: bool,
    pub content_length: Option<u64>,
    /// The listing's `size`: the length on the wire.
    pub listed_size: Option<u64>,
    /// Refuse bodies longer than this, on the wire or once inflated.
    pub max_bytes: Option<u64>,
    /// The transport marks the body's end itself (chunked, HTTP/2), so a cut connection
    /// shows as an error rather than as an early end.
    pub framed: bool,
}

/// The archive path of an item, relative to the root; `compressed` adds `.gz`.
pub(super) fn relative_path(
    target: &ArchiveTarget<'_>,
    compressed: bool,
) -> Result<String, ArchiveError> {
    check_component("account name", target.account)?;
    check_component("report id", target.report_id)?;
    check_component("stored id", target.stored_id)?;
    check_component("report format", target.format.as_str())?;
    let t = target.created_at;
    let gz = if compressed { ".gz" } else { "" };
    Ok(format!(
        "{}/{}/{:04}/{:02}/{}_{}.{}{}",
        target.account,
        target.report_id,
        t.year(),
        t.month(),
        t.format("%Y%m%dT%H%M%SZ"),
        target.stored_id,
        target.format.extension(),
        gz
    ))
}

/// Joins a relative archive path to `root`, refusing anything that could leave it.
pub(super) fn resolve(root: &Path, relative: &str) -> Result<PathBuf, ArchiveError> {
    let rel = Path::new(relative);
    let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !safe || relative.is_empty() {
        return Err(ArchiveError::UnsafeComponent {
            what: "archive path",
            value: relative.to_owned(),
        });
    }
    Ok(root.join(rel))
}

/// Server data may name a path part only with these characters (invariant 6).
pub fn check_component(what: &'static str, value: &str) -> Result<(), ArchiveError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ArchiveError::UnsafeComponent {
            what,
            value: value.escape_debug().to_string(),
        })
    }
}

/// The name of a new temp file in `.partial/`: `<stored_id>.<pid>.<n>.tmp`, unique within
/// this process (the counter) and between processes (the pid).
pub(super) fn temp_name(stored_id: &str) -> String {
    format!(
        "{stored_id}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `name` is one [`temp_name`] makes: only those are ours to delete.
pub(super) fn is_temp_name(name: &OsStr) -> bool {
    let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = stem.rsplitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(pid), Some(id)) => {
            digits(n) && digits(pid) && check_component("stored id", id).is_ok()
        }
        _ => false,
    }
}
