//! [`Archive::stage`]: a body streamed into `.partial/`, inflating gzip in our own stream
//! (reqwest is built without transparent decompression so the wire length stays
//! checkable), hashing what is stored, checking every length, and fsyncing. What comes out
//! is a [`Staged`] file proven whole; where it goes next is the store's business. A failure
//! or a dropped future leaves no file behind.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use super::path::{relative_path, resolve, temp_name};
use super::write::{TempGuard, WriteMode, write_temp};
use super::{Archive, ArchiveError, ArchiveTarget, ArchivedFile, BodyInfo, PARTIAL_DIR};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Chunks in flight between the network task and the blocking writer; bounds memory.
const WRITE_QUEUE_CHUNKS: usize = 4;
/// Bodies declared (by `Content-Length` or the listing) at most this long are read whole
/// into memory, then written by one blocking call: a small report then costs one thread
/// hand-off instead of one per chunk. Memory: this times the downloads on the wire.
const SMALL_BODY_BYTES: u64 = 256 * 1024;
/// Bodies from this size up (or of unknown size) are hashed on a thread of their own.
const HASH_THREAD_MIN_BYTES: u64 = 1024 * 1024;
/// How far past its listed size a gzip body may run before it is refused.
const GZIP_DRIFT_FACTOR: u64 = 4;
/// Room for drift on top of that, so that small bodies may drift too.
const GZIP_DRIFT_SLACK: u64 = 1024 * 1024;

/// A verified temp file in `.partial/`, not yet in the archive. Dropping it removes the
/// file; [`Archive::place`] or the bucket's upload takes it from here.
#[derive(Debug)]
pub struct Staged {
    /// What it is and where it belongs.
    pub file: ArchivedFile,
    /// The temp file itself.
    pub(super) temp: PathBuf,
    pub(super) guard: TempGuard,
}

impl Staged {
    /// The temp file, for an upload to read.
    pub fn path(&self) -> &Path {
        &self.temp
    }
}

/// The first bytes of a body: enough to tell gzip from plain.
struct Head {
    chunks: Vec<Bytes>,
    len: usize,
    /// The body ended within them.
    ended: bool,
}

impl Head {
    fn is_gzip(&self) -> bool {
        let first: Vec<u8> = self
            .chunks
            .iter()
            .flat_map(|c| c.iter().copied())
            .take(2)
            .collect();
        first == GZIP_MAGIC
    }
}

impl Archive {
    /// Streams `body` into `.partial/` under a name for `target`; see the module docs.
    pub async fn stage<S, E>(
        &self,
        target: &ArchiveTarget<'_>,
        info: BodyInfo,
        body: S,
    ) -> Result<Staged, ArchiveError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        // Validate the name before a single byte is written.
        relative_path(target, false)?;
        let mut body = body;
        let head = read_head(&mut body).await?;
        let is_gzip = head.is_gzip();
        check_before(&info, &head, is_gzip)?;
        let mode = match (is_gzip, self.keep_compressed) {
            (false, _) => WriteMode::Plain,
            (true, false) => WriteMode::Inflate,
            (true, true) => WriteMode::KeepGzip,
        };
        let relative = relative_path(target, mode == WriteMode::KeepGzip)?;
        // Checked now, so a path that cannot be placed is refused before the download.
        resolve(&self.root, &relative)?;

        let temp = self
            .root
            .join(PARTIAL_DIR)
            .join(temp_name(target.stored_id));
        let guard = TempGuard::new(temp.clone());
        let limit = info.max_bytes.unwrap_or(u64::MAX);
        let job = WriterJob {
            path: temp.clone(),
            mode,
            limit,
            hash_on_own_thread: info
                .content_length
                .or(info.listed_size)
                .is_none_or(|n| n >= HASH_THREAD_MIN_BYTES),
        };
        let bounds = Bounds {
            limit,
            declared: declared_limit(&info, is_gzip),
        };
        let (wire, (stored_bytes, sha256)) = receive(head, body, bounds, job).await?;
        check_after(&info, is_gzip, wire)?;
        Ok(Staged {
            file: ArchivedFile {
                relative_path: relative,
                wire_bytes: wire,
                stored_bytes,
                sha256,
                compressed: mode == WriteMode::KeepGzip,
            },
            temp,
            guard,
        })
    }
}

/// What the blocking writer needs.
struct WriterJob {
    path: PathBuf,
    mode: WriteMode,
    limit: u64,
    hash_on_own_thread: bool,
}

/// Pumps the body into the blocking writer (through memory first for a small one); returns
/// the wire bytes and what the writer stored (length, SHA-256). A failure of the body wins
/// over the writer's, which only follows from it.
async fn receive<S, E>(
    head: Head,
    mut body: S,
    bounds: Bounds,
    job: WriterJob,
) -> Result<(u64, (u64, String)), ArchiveError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::sync_channel::<Bytes>(WRITE_QUEUE_CHUNKS);
    let start_writer = move || {
        tokio::task::spawn_blocking(move || {
            write_temp(&job.path, job.mode, job.limit, rx, job.hash_on_own_thread)
        })
    };
    let small = bounds.declared.is_some_and(|(_, n)| n <= SMALL_BODY_BYTES);
    let (wire, writer) = if small {
        // Read whole first (the declared length bounds it), then written in one go.
        let mut whole = BytesMut::new();
        let (wire, failure) = pump(head, &mut body, bounds, |chunk| {
            whole.extend_from_slice(&chunk);
            true
        })
        .await;
        drop(body);
        if let Some(e) = failure {
            return Err(e);
        }
        // The channel has room for it: nothing waits.
        let _ = tx.send(whole.freeze());
        drop(tx);
        (wire, start_writer())
    } else {
        let writer = start_writer();
        let (wire, failure) = pump(head, &mut body, bounds, |chunk| tx.send(chunk).is_ok()).await;
        drop(tx);
        // Whoever lent the body (a download slot, a connection) gets it back before the
        // fsync and the rename.
        drop(body);
        if let Some(e) = failure {
            // The writer stops at the closed channel; its own result adds nothing.
            let _ = writer.await;
            return Err(e);
        }
        (wire, writer)
    };
    let written = writer
        .await
        .map_err(|e| ArchiveError::Writer(e.to_string()))??;
    Ok((wire, written))
}

/// Reads until the first two bytes are known: they tell gzip from plain.
async fn read_head<S, E>(body: &mut S) -> Result<Head, ArchiveError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut head = Head {
        chunks: Vec::new(),
        len: 0,
        ended: false,
    };
    while head.len < GZIP_MAGIC.len() {
        match body.next().await {
            Some(Ok(chunk)) => {
                head.len += chunk.len();
                head.chunks.push(chunk);
            }
            Some(Err(e)) => {
                return Err(ArchiveError::Body {
                    got: head.len as u64,
                    source: Box::new(e),
                });
            }
            None => {
                head.ended = true;
                break;
            }
        }
    }
    Ok(head)
}

/// What can be refused before the rest of the body is read.
fn check_before(info: &BodyInfo, head: &Head, is_gzip: bool) -> Result<(), ArchiveError> {
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
    if head.ended && head.len == 0 && info.listed_size != Some(0) {
        return Err(ArchiveError::EmptyBody);
    }
    // Completeness must be provable before a byte is kept: by a declared length, by
    // framing, or (checked as it inflates) by the gzip trailer's CRC and length.
    let declared = info.listed_size.is_some() || info.content_length.is_some();
    if !is_gzip && !declared && !info.framed {
        return Err(ArchiveError::Unproven);
    }
    if info.gzip_header && !is_gzip && head.len > 0 {
        return Err(ArchiveError::BadGzip(io::Error::new(
            io::ErrorKind::InvalidData,
            "Content-Encoding is gzip but the body does not start with the gzip magic bytes",
        )));
    }
    Ok(())
}

/// The lengths the body may not exceed: refused the moment it does, chunked or not, rather
/// than read to its end. A gzip body's listed size is a hint, not a bound (the cloud's
/// `size` may count something else, or the body was re-compressed on the way): its CRC and
/// length trailer prove it whole, so it may drift from the listing up to
/// [`GZIP_DRIFT_FACTOR`] times that size.
fn declared_limit(info: &BodyInfo, is_gzip: bool) -> Option<(&'static str, u64)> {
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
    [
        listing_bound,
        info.content_length.map(|n| ("Content-Length", n)),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(_, n)| *n)
}

pub(super) fn gzip_drift_bound(listed: u64) -> u64 {
    listed
        .saturating_mul(GZIP_DRIFT_FACTOR)
        .saturating_add(GZIP_DRIFT_SLACK)
}

#[derive(Clone, Copy)]
struct Bounds {
    /// `max_file_size`: nothing longer, on the wire or inflated.
    limit: u64,
    /// The smallest length the server or the listing declared, and which one it was.
    declared: Option<(&'static str, u64)>,
}

/// Sends the head and then the rest of the body to `send` (the writer, or memory for a
/// small body), counting wire bytes; stops
/// at the first chunk past a bound, at a broken body, or when the writer stopped (its own
/// error then says why). Returns the wire bytes and what stopped it, if anything did.
async fn pump<S, E>(
    head: Head,
    body: &mut S,
    bounds: Bounds,
    mut send: impl FnMut(Bytes) -> bool,
) -> (u64, Option<ArchiveError>)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut wire: u64 = 0;
    let ended = head.ended;
    let mut pending = head.chunks.into_iter();
    loop {
        let next = match pending.next() {
            Some(c) => Some(Ok(c)),
            None if ended => None,
            None => body.next().await,
        };
        let chunk = match next {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                let failure = ArchiveError::Body {
                    got: wire,
                    source: Box::new(e),
                };
                return (wire, Some(failure));
            }
            None => return (wire, None),
        };
        wire += chunk.len() as u64;
        if wire > bounds.limit {
            let limit = bounds.limit;
            return (wire, Some(ArchiveError::TooLarge { limit }));
        }
        if let Some((what, expected)) = bounds.declared
            && wire > expected
        {
            let failure = ArchiveError::Overrun {
                what,
                expected,
                got: wire,
            };
            return (wire, Some(failure));
        }
        if !send(chunk) {
            return (wire, None);
        }
    }
}

/// The declared lengths, against what arrived. The listing's size binds a plain body
/// exactly; a gzip body that drifted from it was proven whole by its trailer, and the
/// caller records both lengths.
fn check_after(info: &BodyInfo, is_gzip: bool, wire: u64) -> Result<(), ArchiveError> {
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
    Ok(())
}
