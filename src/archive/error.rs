//! [`ArchiveError`]: why a body was not archived, or why the archive folder cannot be used;
//! which of them a retry may cure, and which only the operator can fix.

use std::io;
use std::path::{Path, PathBuf};

use crate::api::retry::{Transient, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "refusing {what} `{value}` from the server: only letters, digits, `-` and `_` may name a path part"
    )]
    UnsafeComponent { what: &'static str, value: String },
    #[error("{action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "body length mismatch: {got} bytes arrived but {what} says {expected}; the file was not archived"
    )]
    LengthMismatch {
        what: &'static str,
        expected: u64,
        got: u64,
    },
    #[error(
        "the body went past {what} ({expected} bytes) and was refused after {got} bytes; the file was not archived"
    )]
    Overrun {
        what: &'static str,
        expected: u64,
        got: u64,
    },
    #[error(
        "the body's end cannot be told from a cut connection (plain, with no Content-Length, no chunked framing and no size in the listing), so it was not archived; a later pass tries again"
    )]
    Unproven,
    #[error(
        "the server sent an empty body but the listing does not say the item is empty (size 0); not archived"
    )]
    EmptyBody,
    #[error("the body is not a complete, valid gzip stream: {0}")]
    BadGzip(#[source] io::Error),
    #[error("the download broke off after {got} bytes: {source}")]
    Body {
        got: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "refusing a body larger than max_file_size ({limit} bytes); raise [archive] max_file_size if this report is genuine"
    )]
    TooLarge { limit: u64 },
    #[error("the archive writer stopped unexpectedly: {0}")]
    Writer(String),
    #[error(
        "`{path}` is {found}; the archive's own folders must be real directories under it: {fix}"
    )]
    NotOwnFolder {
        path: PathBuf,
        found: String,
        fix: &'static str,
    },
    #[error(
        "refusing to write through `{link}`: it is a symlink to `{target}`, outside the archive `{root}`; make it a real folder under the archive (move what it points to inside), or point archive.dir at the real place"
    )]
    Escapes {
        link: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error(
        "`{path}` is in the way: the archive needs a folder there and found {found}; move it aside"
    )]
    InTheWay { path: PathBuf, found: String },
    #[error(
        "`{path}` was taken again right after what was there was quarantined: something else writes into the archive; the file was not archived"
    )]
    Occupied { path: PathBuf },
}

impl Transient for ArchiveError {
    fn verdict(&self) -> Verdict {
        match self {
            // A body cut short or broken in transit may well arrive whole next time.
            Self::Body { .. } | Self::BadGzip(_) | Self::Writer(_) | Self::EmptyBody => {
                Verdict::Retry { after: None }
            }
            Self::LengthMismatch {
                what: "Content-Length",
                ..
            } => Verdict::Retry { after: None },
            // The listing's size is what it is until the next listing; a full disk, an
            // unsafe name or an oversized body will not change within a pass.
            _ => Verdict::GiveUp,
        }
    }
}

impl ArchiveError {
    /// The archive on disk is set up in a way only the operator can fix (exit 2).
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(self, Self::NotOwnFolder { .. })
    }

    pub(super) fn io<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}
