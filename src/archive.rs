//! Where an archived report goes and how it gets there.
//!
//! - [`ArchiveTarget`] names a stored item; [`Archive::relative_path`] turns it into
//!   `<account>/<report_id>/<YYYY>/<MM>/<created_at>_<stored_id>.<ext>` after checking every
//!   part that came from the network against an allow-list (invariant 6).
//! - [`Archive::store`] streams a body into `.partial/`, inflating gzip in our own stream
//!   (reqwest is built without transparent decompression so the wire length stays
//!   checkable), hashes what is stored, checks lengths, fsyncs, renames into place and fsyncs
//!   the folders (invariant 1). A failure or a dropped future leaves no file behind.

use std::io::{self, BufRead, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use bytes::{Buf, Bytes, BytesMut};
use chrono::{DateTime, Datelike, Utc};
use flate2::bufread::MultiGzDecoder;
use futures::{Stream, StreamExt};

use crate::api::ReportFormat;
use crate::api::retry::{Transient, Verdict};
use crate::file_sink::FileSink;
use crate::s3::{ObjectTarget, S3Error, StoredObject};

/// Temp files live here, under the archive root, so the final rename never crosses a
/// filesystem.
pub const PARTIAL_DIR: &str = ".partial";

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
    #[error(transparent)]
    Object(#[from] S3Error),
}

impl Transient for ArchiveError {
    fn verdict(&self) -> Verdict {
        match self {
            // A body cut short or broken in transit may well arrive whole next time.
            Self::Body { .. } | Self::BadGzip(_) | Self::Writer(_) => {
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
    /// Creates the root and clears `.partial/`: anything there is from a run that died.
    pub async fn open(root: &Path, keep_compressed: bool) -> Result<Self, ArchiveError> {
        let partial = root.join(PARTIAL_DIR);
        tokio::fs::create_dir_all(&partial)
            .await
            .map_err(ArchiveError::io("create archive folder", &partial))?;
        let archive = Self {
            root: root.to_owned(),
            keep_compressed,
            objects: None,
        };
        archive.clear_partial().await?;
        Ok(archive)
    }

    /// A view of an existing archive that writes nothing (dry runs, reports).
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

    /// Removes every temp file; returns how many there were.
    pub async fn clear_partial(&self) -> Result<usize, ArchiveError> {
        let partial = self.root.join(PARTIAL_DIR);
        let mut entries = match tokio::fs::read_dir(&partial).await {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(ArchiveError::io("read", &partial)(e)),
        };
        let mut removed = 0;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(ArchiveError::io("read", &partial))?
        {
            let path = entry.path();
            tokio::fs::remove_file(&path)
                .await
                .map_err(ArchiveError::io("remove temp file", &path))?;
            removed += 1;
        }
        Ok(removed)
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
        // A listing that disagrees with the response's own length is settled before the
        // body is read: no bandwidth spent on a body that cannot be accepted.
        if let (Some(listed), Some(sent)) = (info.listed_size, info.content_length)
            && listed != sent
        {
            return Err(ArchiveError::LengthMismatch {
                what: "the listing's size",
                expected: listed,
                got: sent,
            });
        }
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

        let temp_path = self.root.join(PARTIAL_DIR).join(format!(
            "{}.{}.{}.tmp",
            target.stored_id,
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
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
        for (what, expected) in [
            ("Content-Length", info.content_length),
            ("the listing's size", info.listed_size),
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
                place_file(&temp_path, &final_path, &self.root).await?;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    Plain,
    Inflate,
    KeepGzip,
}

/// Runs on a blocking thread: decode/hash/write what the network task sends, then fsync.
fn write_temp(
    path: &Path,
    mode: WriteMode,
    limit: u64,
    rx: mpsc::Receiver<Bytes>,
    hash_on_own_thread: bool,
) -> Result<(u64, String), ArchiveError> {
    let file = std::fs::File::create(path).map_err(ArchiveError::io("create", path))?;
    let mut sink = FileSink::new(file, hash_on_own_thread);
    let io_err = ArchiveError::io("write", path);
    match mode {
        WriteMode::Plain => {
            for chunk in rx {
                if sink.bytes_accepted() + chunk.len() as u64 > limit {
                    return Err(ArchiveError::TooLarge { limit });
                }
                sink.push(chunk).map_err(ArchiveError::io("write", path))?;
            }
        }
        WriteMode::Inflate => {
            let mut decoder = MultiGzDecoder::new(ChannelReader::new(rx, None));
            inflate_into(&mut decoder, &mut sink, limit).map_err(|e| e.into_archive(path))?;
        }
        WriteMode::KeepGzip => {
            // Keep the bytes as served (each chunk goes to the sink as it arrives) but
            // still inflate them to prove the stream whole.
            let mut reader = ChannelReader::new(rx, Some(&mut sink));
            {
                let mut decoder = MultiGzDecoder::new(&mut reader);
                copy_classified(&mut decoder, &mut io::sink(), limit)
                    .map_err(|e| e.into_archive(path))?;
            }
            copy_classified(&mut reader, &mut io::sink(), u64::MAX)
                .map_err(|e| e.into_archive(path))?;
        }
    }
    let (file, len, sha) = sink.finish().map_err(ArchiveError::io("write", path))?;
    file.sync_all().map_err(io_err)?;
    Ok((len, sha))
}

/// Tells a read-side failure (the gzip stream) from a write-side one (the disk).
enum CopyError {
    Read(io::Error),
    Write(io::Error),
    TooLarge(u64),
}

impl CopyError {
    fn into_archive(self, path: &Path) -> ArchiveError {
        match self {
            Self::Read(e) => ArchiveError::BadGzip(e),
            Self::Write(e) => ArchiveError::io("write", path)(e),
            Self::TooLarge(limit) => ArchiveError::TooLarge { limit },
        }
    }

    fn from_read(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::Other && is_write_side(&e) {
            Self::Write(unwrap_write_side(e))
        } else {
            Self::Read(e)
        }
    }
}

/// Inflated output is cut into chunks of this size for the sink (and its hash thread).
const INFLATE_CHUNK: usize = 256 * 1024;

/// Inflates into the sink; more than `limit` bytes of output (a gzip bomb) stops it.
fn inflate_into<R: Read>(r: &mut R, sink: &mut FileSink, limit: u64) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let mut buf = BytesMut::zeroed(INFLATE_CHUNK);
        let mut filled = 0;
        let mut ended = false;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CopyError::from_read(e)),
            }
        }
        total += filled as u64;
        if total > limit {
            return Err(CopyError::TooLarge(limit));
        }
        buf.truncate(filled);
        sink.push(buf.freeze()).map_err(CopyError::Write)?;
        if ended {
            return Ok(total);
        }
    }
}

/// Copies until EOF; more than `limit` bytes of output (a gzip bomb, a runaway body) stops it.
fn copy_classified<R: Read, W: Write>(r: &mut R, w: &mut W, limit: u64) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::from_read(e)),
        };
        total += n as u64;
        if total > limit {
            return Err(CopyError::TooLarge(limit));
        }
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// The tap writes to disk inside `read`; its write errors travel wrapped in this marker so
/// a full disk is not reported as a broken gzip stream.
#[derive(Debug)]
struct WriteSide(io::Error);

impl std::fmt::Display for WriteSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WriteSide {}

fn is_write_side(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriteSide>())
}

fn unwrap_write_side(e: io::Error) -> io::Error {
    match e.into_inner().map(|b| b.downcast::<WriteSide>()) {
        Some(Ok(ws)) => ws.0,
        Some(Err(other)) => io::Error::other(other),
        None => io::Error::other("write failed"),
    }
}

/// The network's chunks as a `BufRead`, so the inflater reads them in place. With a tap,
/// every chunk also goes to the sink as received (keeping gzip bodies as served).
struct ChannelReader<'a> {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
    tap: Option<&'a mut FileSink>,
}

impl<'a> ChannelReader<'a> {
    fn new(rx: mpsc::Receiver<Bytes>, tap: Option<&'a mut FileSink>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
            tap,
        }
    }
}

impl BufRead for ChannelReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => {
                    if let Some(tap) = self.tap.as_deref_mut() {
                        tap.push(chunk.clone())
                            .map_err(|e| io::Error::other(WriteSide(e)))?;
                    }
                    self.current = chunk;
                }
                // The sender is gone: the body ended (or broke off, which the caller knows).
                Err(_) => break,
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amt: usize) {
        self.current.advance(amt.min(self.current.len()));
    }
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Removes the temp file unless the store succeeded, also when the future is dropped.
struct TempGuard {
    path: Option<PathBuf>,
}

impl TempGuard {
    fn new(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    fn disarm(&mut self) {
        self.path = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: `.partial/` is cleared at the next start anyway.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Renames the finished temp file into place and makes the rename durable.
async fn place_file(temp: &Path, final_path: &Path, root: &Path) -> Result<(), ArchiveError> {
    let temp = temp.to_owned();
    let final_path = final_path.to_owned();
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || {
        let parent = final_path.parent().unwrap_or(&root).to_owned();
        // The folders this file creates must be durable too: find the first one that
        // exists already, create the rest, and fsync from the file's folder up to it.
        let mut existing = parent.as_path();
        while !existing.is_dir() && existing != root {
            existing = existing.parent().unwrap_or(&root);
        }
        let existing = existing.to_owned();
        std::fs::create_dir_all(&parent).map_err(ArchiveError::io("create folder", &parent))?;
        std::fs::rename(&temp, &final_path)
            .map_err(ArchiveError::io("rename into", &final_path))?;
        let mut dir = Some(parent.as_path());
        while let Some(d) = dir {
            std::fs::File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(ArchiveError::io("fsync folder", d))?;
            if d == existing || d == root {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    })
    .await
    .map_err(|e| ArchiveError::Writer(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use sha2::{Digest, Sha256};

    fn target<'a>(format: &'a ReportFormat, stored_id: &'a str) -> ArchiveTarget<'a> {
        ArchiveTarget {
            account: "acme",
            report_id: "r-1",
            stored_id,
            format,
            created_at: Utc.with_ymd_and_hms(2026, 3, 2, 4, 5, 6).single().unwrap(),
        }
    }

    #[test]
    fn path_follows_the_documented_layout() {
        let f = ReportFormat::CsvV2;
        let p = Archive::relative_path(&target(&f, "abc-1"), false).unwrap();
        assert_eq!(p, "acme/r-1/2026/03/20260302T040506Z_abc-1.csv");
        let gz = Archive::relative_path(&target(&f, "abc-1"), true).unwrap();
        assert!(gz.ends_with(".csv.gz"));
        let other = ReportFormat::Other("xlsx".into());
        let p = Archive::relative_path(&target(&other, "abc-1"), false).unwrap();
        assert!(p.ends_with("_abc-1.xlsx.bin"));
    }

    #[test]
    fn hostile_ids_are_refused() {
        let f = ReportFormat::Csv;
        for bad in ["../../etc/x", "a/b", "nul\0byte", "", ".", "..", "x y"] {
            let err = Archive::relative_path(&target(&f, bad), false);
            assert!(
                matches!(err, Err(ArchiveError::UnsafeComponent { .. })),
                "{bad:?}"
            );
        }
        let evil = ReportFormat::Other("../x".into());
        assert!(Archive::relative_path(&target(&evil, "ok"), false).is_err());
    }

    #[test]
    fn resolve_refuses_paths_that_leave_the_root() {
        let a = Archive::at(Path::new("/arch"), false);
        assert!(a.resolve("../x").is_err());
        assert!(a.resolve("/etc/passwd").is_err());
        assert!(a.resolve("a/./b").is_ok());
        assert_eq!(a.resolve("a/b").unwrap(), Path::new("/arch/a/b"));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use flate2::{Compression, write::GzEncoder};
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn body(bytes: &[u8], chunk: usize) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin {
        let chunks: Vec<Result<Bytes, io::Error>> = bytes
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks)
    }

    async fn store(
        archive: &Archive,
        bytes: &[u8],
        info: BodyInfo,
    ) -> Result<ArchivedFile, ArchiveError> {
        let f = ReportFormat::Csv;
        archive
            .store(&target(&f, "item-1"), info, body(bytes, 7))
            .await
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }

    #[tokio::test]
    async fn a_gzip_body_is_inflated_hashed_and_placed() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path(), false).await.unwrap();
        let plain = b"a,b\n1,2\n".repeat(50);
        let wire = gzip(&plain);
        let info = BodyInfo {
            listed_size: Some(wire.len() as u64),
            content_length: Some(wire.len() as u64),
            ..BodyInfo::default()
        };
        let file = store(&archive, &wire, info).await.unwrap();
        assert_eq!(file.wire_bytes, wire.len() as u64);
        assert_eq!(file.stored_bytes, plain.len() as u64);
        assert_eq!(file.sha256, hex::encode(Sha256::digest(&plain)));
        let on_disk = std::fs::read(dir.path().join(&file.relative_path)).unwrap();
        assert_eq!(on_disk, plain);
    }

    #[tokio::test]
    async fn a_truncated_gzip_stream_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path(), false).await.unwrap();
        let wire = gzip(&b"x,y\n".repeat(500));
        let cut = &wire[..wire.len() - 12];
        let err = store(&archive, cut, BodyInfo::default()).await.unwrap_err();
        assert!(matches!(err, ArchiveError::BadGzip(_)), "{err}");
        assert!(
            files_under(dir.path()).is_empty(),
            "{:?}",
            files_under(dir.path())
        );
    }

    #[tokio::test]
    async fn keeping_compressed_still_checks_the_gzip_stream() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path(), true).await.unwrap();
        let wire = gzip(&b"x,y\n".repeat(500));
        let err = store(&archive, &wire[..wire.len() - 3], BodyInfo::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ArchiveError::BadGzip(_)), "{err}");
        let file = store(&archive, &wire, BodyInfo::default()).await.unwrap();
        assert!(file.compressed && file.relative_path.ends_with(".csv.gz"));
        assert_eq!(
            std::fs::read(dir.path().join(&file.relative_path)).unwrap(),
            wire
        );
        assert_eq!(files_under(dir.path()).len(), 1);
    }

    #[tokio::test]
    async fn a_body_that_disagrees_with_the_listed_size_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path(), false).await.unwrap();
        let info = BodyInfo {
            listed_size: Some(100),
            ..BodyInfo::default()
        };
        let err = store(&archive, b"plain,report\n", info).await.unwrap_err();
        assert!(
            matches!(
                err,
                ArchiveError::LengthMismatch {
                    expected: 100,
                    got: 13,
                    ..
                }
            ),
            "{err}"
        );
        assert!(files_under(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_body_error_mid_stream_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path(), false).await.unwrap();
        let chunks: Vec<Result<Bytes, io::Error>> = vec![
            Ok(Bytes::from_static(b"col\n1\n")),
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
        ];
        let f = ReportFormat::Csv;
        let err = archive
            .store(
                &target(&f, "item-2"),
                BodyInfo::default(),
                futures::stream::iter(chunks),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ArchiveError::Body { got: 6, .. }), "{err}");
        assert!(files_under(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_gzip_bomb_is_refused_once_it_inflates_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path(), false).await.unwrap();
        let wire = gzip(&vec![b'0'; 1 << 20]);
        let info = BodyInfo {
            max_bytes: Some(64 * 1024),
            ..BodyInfo::default()
        };
        assert!(wire.len() < 64 * 1024, "small on the wire");
        let err = store(&archive, &wire, info).await.unwrap_err();
        assert!(
            matches!(err, ArchiveError::TooLarge { limit: 65536 }),
            "{err}"
        );
        assert!(files_under(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn opening_the_archive_clears_leftover_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(PARTIAL_DIR)).unwrap();
        std::fs::write(dir.path().join(PARTIAL_DIR).join("old.tmp"), b"half").unwrap();
        Archive::open(dir.path(), false).await.unwrap();
        assert!(files_under(dir.path()).is_empty());
    }
}
