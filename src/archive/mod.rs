//! Where an archived report goes and how it gets there.
//!
//! - [`ArchiveTarget`] names a stored item; [`Archive::relative_path`] turns it into
//!   `<account>/<report_id>/<YYYY>/<MM>/<created_at>_<stored_id>.<ext>` after checking every
//!   part that came from the network against an allow-list (invariant 6).
//! - [`Archive::store`] streams a body into `.partial/`, inflating gzip in our own stream
//!   (reqwest is built without transparent decompression so the wire length stays
//!   checkable), hashes what is stored, checks lengths, fsyncs, renames into place and fsyncs
//!   the folders (invariant 1). A failure or a dropped future leaves no file behind.
//! - The archive's own folders are its own: [`Archive::open`] refuses a `.partial/` or
//!   `.quarantine/` that is a symlink or not a folder, clears only our own temp files, and
//!   every folder a file is placed in stays under the root's real path. A file already at
//!   an item's path is never replaced: the same content is kept, anything else is moved to
//!   `.quarantine/` first (see `write::place_file`).

use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use chrono::{DateTime, Datelike, Utc};
use futures::{Stream, StreamExt};

use crate::api::ReportFormat;
use crate::api::retry::{Transient, Verdict};
use crate::s3::{ObjectTarget, S3Error, StoredObject};
pub use write::file_sha256;
use write::{TempGuard, WriteMode, place_file, write_temp};

/// Temp files live here, under the archive root, so the final rename never crosses a
/// filesystem.
pub const PARTIAL_DIR: &str = ".partial";
/// Files found where they should not be are moved here, under the archive root (a rename,
/// never a copy, never a delete).
pub const QUARANTINE_DIR: &str = ".quarantine";

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Chunks in flight between the network task and the blocking writer; bounds memory.
const WRITE_QUEUE_CHUNKS: usize = 4;
/// Bodies from this size up (or of unknown size) are hashed on a thread of their own.
const HASH_THREAD_MIN_BYTES: u64 = 1024 * 1024;

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
    #[error(transparent)]
    Object(#[from] S3Error),
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

    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// The identity of one stored item, as the archive names it.
#[derive(Debug, Clone)]
pub struct ArchiveTarget<'a> {
    pub account: &'a str,
    pub report_id: &'a str,
    pub stored_id: &'a str,
    pub format: &'a ReportFormat,
    pub created_at: DateTime<Utc>,
}

/// What [`Archive::store`] put on disk.
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
    /// On the S3 target: the object it was uploaded to (the local file is then gone).
    pub object: Option<StoredObject>,
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

#[derive(Debug, Clone)]
pub struct Archive {
    root: PathBuf,
    keep_compressed: bool,
    /// The S3 target: verified files go there and `root` only stages them in `.partial/`.
    objects: Option<Arc<ObjectTarget>>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Archive {
    /// Creates the root, checks the archive's own folders and clears `.partial/`: anything
    /// of ours there is from a run that died. The caller holds the
    /// [`InstanceLock`](crate::instance::InstanceLock) on this archive, so no other daemon's
    /// temp files are there.
    ///
    /// The root's real path is resolved once here and used from then on: a root that is a
    /// symlink (the operator's choice) is fine, and everything below it is checked against
    /// where it really is.
    pub async fn open(root: &Path, keep_compressed: bool) -> Result<Self, ArchiveError> {
        let given = root.to_owned();
        let real = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&given)
                .map_err(ArchiveError::io("create archive folder", &given))?;
            let real = std::fs::canonicalize(&given)
                .map_err(ArchiveError::io("resolve archive folder", &given))?;
            own_folder(&real, PARTIAL_DIR, true)?;
            // Made when first needed; a link or a file there is refused now, not when a
            // file has to be moved aside.
            own_folder(&real, QUARANTINE_DIR, false)?;
            Ok::<_, ArchiveError>(real)
        })
        .await
        .map_err(|e| ArchiveError::Writer(e.to_string()))??;
        let archive = Self {
            root: real,
            keep_compressed,
            objects: None,
        };
        archive.clear_partial().await?;
        Ok(archive)
    }

    /// A view of an existing archive that writes nothing (dry runs, reports). The root is
    /// taken as given, not resolved: `store` needs [`Archive::open`].
    pub fn at(root: &Path, keep_compressed: bool) -> Self {
        Self {
            root: root.to_owned(),
            keep_compressed,
            objects: None,
        }
    }

    /// Sends every verified file to `objects` instead of renaming it under the root.
    #[must_use]
    pub fn with_objects(mut self, objects: Arc<ObjectTarget>) -> Self {
        self.objects = Some(objects);
        self
    }

    /// The S3 target, when files go there.
    pub fn objects(&self) -> Option<&Arc<ObjectTarget>> {
        self.objects.as_ref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes our temp files from `.partial/`; returns how many there were.
    ///
    /// Only regular files named as `store` names them are removed, looked at without
    /// following links; a folder, a symlink or any other file is left alone with a warning
    /// (it is not ours to delete, and it does not stop the start). A `.partial` that is
    /// not a real folder (any more) is an error: nothing is read or deleted through it.
    pub async fn clear_partial(&self) -> Result<usize, ArchiveError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || clear_partial_in(&root))
            .await
            .map_err(|e| ArchiveError::Writer(e.to_string()))?
    }

    /// Moves the file (or whatever is) at `relative` to `.quarantine/<relative>.<UTC
    /// timestamp>`; returns that path, relative to the root.
    pub async fn quarantine(
        &self,
        relative: &str,
        now: DateTime<Utc>,
    ) -> Result<String, ArchiveError> {
        quarantine(&self.root, relative, now).await
    }

    /// The archive path of an item, relative to the root; `compressed` adds `.gz`.
    pub fn relative_path(
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

    /// Joins a relative archive path to the root, refusing anything that could leave it.
    pub fn resolve(&self, relative: &str) -> Result<PathBuf, ArchiveError> {
        let rel = Path::new(relative);
        let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe || relative.is_empty() {
            return Err(ArchiveError::UnsafeComponent {
                what: "archive path",
                value: relative.to_owned(),
            });
        }
        Ok(self.root.join(rel))
    }

    /// Streams `body` into the archive under `target`; see the module docs for the steps.
    pub async fn store<S, E>(
        &self,
        target: &ArchiveTarget<'_>,
        info: BodyInfo,
        body: S,
    ) -> Result<ArchivedFile, ArchiveError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        // Validate the name before a single byte is written.
        Self::relative_path(target, false)?;
        let mut body = body;

        // Read until the first two bytes are known: they tell gzip from plain.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0usize;
        let mut ended = false;
        while head_len < GZIP_MAGIC.len() {
            match body.next().await {
                Some(Ok(chunk)) => {
                    head_len += chunk.len();
                    head.push(chunk);
                }
                Some(Err(e)) => {
                    return Err(ArchiveError::Body {
                        got: head_len as u64,
                        source: Box::new(e),
                    });
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        let first: Vec<u8> = head
            .iter()
            .flat_map(|c| c.iter().copied())
            .take(2)
            .collect();
        let is_gzip = first == GZIP_MAGIC;
        // A plain body whose listing disagrees with the response's own length is settled
        // before the rest is read: no bandwidth spent on a body that cannot be accepted. (A
        // gzip body proves itself by its trailer: the listing's size may drift, see below.)
        if let (false, Some(listed), Some(sent)) = (is_gzip, info.listed_size, info.content_length)
            && listed != sent
        {
            return Err(ArchiveError::LengthMismatch {
                what: "the listing's size",
                expected: listed,
                got: sent,
            });
        }
        // An empty answer is a report only when the listing says so: a server that hangs up
        // before the first byte must not leave an empty file recorded as complete.
        if ended && head_len == 0 && info.listed_size != Some(0) {
            return Err(ArchiveError::EmptyBody);
        }
        // Completeness must be provable before a byte is kept: by a declared length, by
        // framing, or (checked as it inflates) by the gzip trailer's CRC and length.
        let declared = info.listed_size.is_some() || info.content_length.is_some();
        if !is_gzip && !declared && !info.framed {
            return Err(ArchiveError::Unproven);
        }
        if info.gzip_header && !is_gzip && head_len > 0 {
            return Err(ArchiveError::BadGzip(io::Error::new(
                io::ErrorKind::InvalidData,
                "Content-Encoding is gzip but the body does not start with the gzip magic bytes",
            )));
        }
        let mode = match (is_gzip, self.keep_compressed) {
            (false, _) => WriteMode::Plain,
            (true, false) => WriteMode::Inflate,
            (true, true) => WriteMode::KeepGzip,
        };
        let relative = Self::relative_path(target, mode == WriteMode::KeepGzip)?;
        let final_path = self.resolve(&relative)?;

        let temp_path = self
            .root
            .join(PARTIAL_DIR)
            .join(temp_name(target.stored_id));
        let mut guard = TempGuard::new(temp_path.clone());

        let (tx, rx) = mpsc::sync_channel::<Bytes>(WRITE_QUEUE_CHUNKS);
        let writer_path = temp_path.clone();
        let limit = info.max_bytes.unwrap_or(u64::MAX);
        let hash_on_own_thread = info
            .content_length
            .or(info.listed_size)
            .is_none_or(|n| n >= HASH_THREAD_MIN_BYTES);
        let writer = tokio::task::spawn_blocking(move || {
            write_temp(&writer_path, mode, limit, rx, hash_on_own_thread)
        });

        // The lengths the body may not exceed: refused the moment it does, chunked or not,
        // rather than read to its end. A gzip body's listed size is a hint, not a bound (the
        // cloud's `size` may count something else, or the body was re-compressed on the
        // way): its CRC and length trailer prove it whole, so it may drift from the listing
        // up to GZIP_DRIFT_FACTOR times that size.
        let listing_bound = info.listed_size.map(|n| {
            if is_gzip {
                (
                    "the listing's size (with room for drift)",
                    gzip_drift_bound(n),
                )
            } else {
                ("the listing's size", n)
            }
        });
        let declared_limit = [
            listing_bound,
            info.content_length.map(|n| ("Content-Length", n)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(_, n)| *n);
        let mut wire: u64 = 0;
        let mut failure: Option<ArchiveError> = None;
        let mut pending = head.into_iter();
        loop {
            let next = match pending.next() {
                Some(c) => Some(Ok(c)),
                None if ended => None,
                None => body.next().await,
            };
            match next {
                Some(Ok(chunk)) => {
                    wire += chunk.len() as u64;
                    if wire > limit {
                        failure = Some(ArchiveError::TooLarge { limit });
                        break;
                    }
                    if let Some((what, expected)) = declared_limit
                        && wire > expected
                    {
                        failure = Some(ArchiveError::Overrun {
                            what,
                            expected,
                            got: wire,
                        });
                        break;
                    }
                    if tx.send(chunk).is_err() {
                        // The writer stopped early; its error says why.
                        break;
                    }
                }
                Some(Err(e)) => {
                    failure = Some(ArchiveError::Body {
                        got: wire,
                        source: Box::new(e),
                    });
                    break;
                }
                None => break,
            }
        }
        drop(tx);
        // Whoever lent the body (a download slot, a connection) gets it back before the
        // fsync and the rename.
        drop(body);
        let written = writer
            .await
            .map_err(|e| ArchiveError::Writer(e.to_string()))
            .and_then(|r| r);
        if let Some(e) = failure {
            return Err(e);
        }
        let (stored_bytes, sha256) = written?;
        // The listing's size binds a plain body exactly; a gzip body that drifted from it
        // was proven whole by its trailer, and the caller records both lengths.
        let listed = if is_gzip { None } else { info.listed_size };
        for (what, expected) in [
            ("Content-Length", info.content_length),
            ("the listing's size", listed),
        ] {
            if let Some(expected) = expected
                && expected != wire
            {
                return Err(ArchiveError::LengthMismatch {
                    what,
                    expected,
                    got: wire,
                });
            }
        }

        let object = match &self.objects {
            // The guard removes the staged file once it is uploaded (or failed to be).
            Some(objects) => Some(
                objects
                    .upload(&temp_path, &relative, stored_bytes, &sha256)
                    .await?,
            ),
            None => {
                place_file(&temp_path, &final_path, &self.root, stored_bytes, &sha256).await?;
                guard.disarm();
                None
            }
        };
        Ok(ArchivedFile {
            relative_path: relative,
            wire_bytes: wire,
            stored_bytes,
            sha256,
            compressed: mode == WriteMode::KeepGzip,
            object,
        })
    }
}

/// How far past its listed size a gzip body may run before it is refused.
const GZIP_DRIFT_FACTOR: u64 = 4;
/// Room for drift on top of that, so that small bodies may drift too.
const GZIP_DRIFT_SLACK: u64 = 1024 * 1024;

fn gzip_drift_bound(listed: u64) -> u64 {
    listed
        .saturating_mul(GZIP_DRIFT_FACTOR)
        .saturating_add(GZIP_DRIFT_SLACK)
}

/// Moves what is at `relative` under `root` to `.quarantine/`; see [`Archive::quarantine`].
/// `root` may be given as configured: it is resolved first.
pub async fn quarantine(
    root: &Path,
    relative: &str,
    now: DateTime<Utc>,
) -> Result<String, ArchiveError> {
    // Only plain relative paths: the same check as for any archive path.
    Archive::at(root, false).resolve(relative)?;
    let root = root.to_owned();
    let relative = relative.to_owned();
    tokio::task::spawn_blocking(move || {
        let real = std::fs::canonicalize(&root)
            .map_err(ArchiveError::io("resolve archive folder", &root))?;
        write::quarantine_entry(&real, &relative, now).map(|(to, _)| to)
    })
    .await
    .map_err(|e| ArchiveError::Writer(e.to_string()))?
}

/// Deletes the archived file at `relative` under `root` (retention); a file already gone is
/// not an error. Never through a folder that leads out of the archive: that is refused,
/// naming the link, like a write would be.
pub async fn remove(root: &Path, relative: &str) -> Result<(), ArchiveError> {
    Archive::at(root, false).resolve(relative)?;
    let root = root.to_owned();
    let relative = relative.to_owned();
    tokio::task::spawn_blocking(move || {
        let real = match std::fs::canonicalize(&root) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ArchiveError::io("resolve archive folder", &root)(e)),
        };
        let path = real.join(&relative);
        if let Some(parent) = path.parent() {
            write::ensure_folders(&real, parent, false)?;
        }
        // `unlink(2)` removes a link at the path itself, never what it names.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ArchiveError::io("delete", &path)(e))
            }
            _ => Ok(()),
        }
    })
    .await
    .map_err(|e| ArchiveError::Writer(e.to_string()))?
}

/// The name of a new temp file in `.partial/`: `<stored_id>.<pid>.<n>.tmp`, unique within
/// this process (the counter) and between processes (the pid).
fn temp_name(stored_id: &str) -> String {
    format!(
        "{stored_id}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `name` is one [`temp_name`] makes: only those are ours to delete.
fn is_temp_name(name: &OsStr) -> bool {
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

/// Checks one of the archive's own folders (`.partial`, `.quarantine`) under the real
/// `root`, looking at it without following a link: a real folder, or missing (then made
/// when `create`). A symlink there could lead our deletes and renames anywhere, so it is
/// refused, as is anything else that is not a folder.
fn own_folder(root: &Path, name: &str, create: bool) -> Result<PathBuf, ArchiveError> {
    let path = root.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = std::fs::read_link(&path).unwrap_or_default();
            Err(ArchiveError::NotOwnFolder {
                found: format!("a symlink (to `{}`)", target.display()),
                path,
                fix: "remove the link (what it points to is left alone); the daemon makes the folder itself",
            })
        }
        Ok(_) => Err(ArchiveError::NotOwnFolder {
            path,
            found: "not a folder".to_owned(),
            fix: "move it out of the way; the daemon makes the folder itself",
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            match std::fs::create_dir(&path) {
                Ok(()) => Ok(path),
                // Made meanwhile: it gets the same look as one found.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => own_folder(root, name, false),
                Err(e) => Err(ArchiveError::io("create archive folder", &path)(e)),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path),
        Err(e) => Err(ArchiveError::io("inspect", &path)(e)),
    }
}

/// The blocking body of [`Archive::clear_partial`].
fn clear_partial_in(root: &Path) -> Result<usize, ArchiveError> {
    let partial = own_folder(root, PARTIAL_DIR, false)?;
    let entries = match std::fs::read_dir(&partial) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(ArchiveError::io("read", &partial)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(ArchiveError::io("read", &partial))?;
        let path = entry.path();
        // The entry's own type: a symlink is seen as a symlink, never as what it names.
        let kind = entry
            .file_type()
            .map_err(ArchiveError::io("inspect", &path))?;
        let ours = kind.is_file() && is_temp_name(&entry.file_name());
        if !ours {
            let what = if kind.is_dir() {
                "a folder"
            } else if kind.is_symlink() {
                "a symlink"
            } else if kind.is_file() {
                "a file not named like our temp files"
            } else {
                "not a regular file"
            };
            tracing::warn!(
                path = %path.display(),
                "left alone in the temp folder: {what}, not one of our temp files; remove it if nothing needs it"
            );
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ArchiveError::io("remove temp file", &path)(e)),
        }
    }
    Ok(removed)
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

#[cfg(test)]
mod tests;
mod write;
