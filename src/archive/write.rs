//! The blocking side of [`super::Archive::stage`]: decode (gzip or plain), hash and write
//! what the network task sends into the temp file, then fsync. [`TempGuard`] removes a
//! temp file that is not placed.

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use bytes::{Buf, Bytes};
use flate2::bufread::MultiGzDecoder;

use super::ArchiveError;
use crate::file_sink::FileSink;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteMode {
    Plain,
    Inflate,
    KeepGzip,
}

/// Runs on a blocking thread: decode/hash/write what the network task sends, then fsync.
pub(super) fn write_temp(
    path: &Path,
    mode: WriteMode,
    limit: u64,
    rx: mpsc::Receiver<Bytes>,
    hash_on_own_thread: bool,
) -> Result<(u64, String), ArchiveError> {
    // A new file, never one already there: `O_EXCL` also refuses (rather than follows) a
    // symlink planted under the temp name.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(ArchiveError::io("create", path))?;
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
/// A chunk's first allocation: most reports are smaller, and a buffer this size comes from
/// the heap, where a whole chunk would be mapped, zeroed and unmapped for every file.
const INFLATE_FIRST: usize = 64 * 1024;

/// Inflates into the sink; more than `limit` bytes of output (a gzip bomb) stops it.
fn inflate_into<R: Read>(r: &mut R, sink: &mut FileSink, limit: u64) -> Result<u64, CopyError> {
    let mut total = 0u64;
    // The first chunk grows as it fills; once one chunk came out full the body is big, and
    // each further one is allocated whole rather than grown (and copied) twice. Only what
    // is read into is ever initialised.
    let mut capacity = INFLATE_FIRST;
    loop {
        let mut buf = Vec::with_capacity(capacity);
        let filled = r
            .by_ref()
            .take(INFLATE_CHUNK as u64)
            .read_to_end(&mut buf)
            .map_err(CopyError::from_read)?;
        total += filled as u64;
        if total > limit {
            return Err(CopyError::TooLarge(limit));
        }
        if filled > 0 {
            sink.push(Bytes::from(buf)).map_err(CopyError::Write)?;
        }
        if filled < INFLATE_CHUNK {
            return Ok(total);
        }
        capacity = INFLATE_CHUNK;
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

/// Removes the temp file unless it was placed, also when the future is dropped.
#[derive(Debug)]
pub(super) struct TempGuard {
    path: Option<PathBuf>,
}

impl TempGuard {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    pub(super) fn disarm(&mut self) {
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
