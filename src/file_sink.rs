//! The disk side of a download: hash what is stored and write it with as few copies as the
//! kernel allows. Profiling the 1 GiB benchmark showed the old writer spending its time in
//! SHA-256 (40 % of samples), two user-space copies and a long final fsync, one after the
//! other on one thread. So:
//!
//! - chunks are written straight from the network's buffers, gathered into `writev` calls
//!   of about 256 KiB (`GATHER_BYTES`), with no copy in between;
//! - a large body is hashed on a thread of its own, beside the kernel's copy into the page
//!   cache instead of after it (small bodies hash inline: a thread costs more than they do);
//! - writeback starts every 8 MiB (`WRITEBACK_EVERY`, by `sync_file_range`), so the disk
//!   works while the network does and the closing fsync finds little left to write. The
//!   fsync itself stays the caller's: only it makes the data durable.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Writes are gathered up to about this many bytes: large enough that syscalls are rare,
/// small enough to stay in cache.
const GATHER_BYTES: usize = 256 * 1024;
/// `writev` takes at most `IOV_MAX` (1024) slices; tiny chunks flush before that.
const GATHER_SLICES: usize = 256;
/// Writeback is started after every this many bytes written.
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;
/// Chunks queued for the hash thread; bounds memory next to the writer's own queue.
const HASH_QUEUE_CHUNKS: usize = 2;

pub struct FileSink {
    file: File,
    hasher: Hasher,
    pending: Vec<Bytes>,
    pending_len: usize,
    written: u64,
    writeback_from: u64,
}

enum Hasher {
    Inline(Sha256),
    Thread {
        tx: mpsc::SyncSender<Bytes>,
        handle: JoinHandle<Sha256>,
    },
}

impl Hasher {
    fn new(on_own_thread: bool) -> Self {
        if !on_own_thread {
            return Self::Inline(Sha256::new());
        }
        let (tx, rx) = mpsc::sync_channel::<Bytes>(HASH_QUEUE_CHUNKS);
        let handle = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            for chunk in rx {
                hasher.update(&chunk);
            }
            hasher
        });
        Self::Thread { tx, handle }
    }

    fn update(&mut self, chunk: &Bytes) -> io::Result<()> {
        match self {
            Self::Inline(h) => {
                h.update(chunk);
                Ok(())
            }
            Self::Thread { tx, .. } => tx
                .send(chunk.clone())
                .map_err(|_| io::Error::other("the hash thread stopped")),
        }
    }

    fn finish(self) -> io::Result<String> {
        let digest = match self {
            Self::Inline(h) => h.finalize(),
            Self::Thread { tx, handle } => {
                drop(tx);
                handle
                    .join()
                    .map_err(|_| io::Error::other("the hash thread panicked"))?
                    .finalize()
            }
        };
        Ok(hex::encode(digest))
    }
}

impl FileSink {
    /// `hash_on_own_thread` is for bodies large enough to repay a thread (megabytes).
    pub fn new(file: File, hash_on_own_thread: bool) -> Self {
        Self {
            file,
            hasher: Hasher::new(hash_on_own_thread),
            pending: Vec::new(),
            pending_len: 0,
            written: 0,
            writeback_from: 0,
        }
    }

    /// Bytes accepted so far (hashed and written or queued to be).
    pub fn bytes_accepted(&self) -> u64 {
        self.written + self.pending_len as u64
    }

    /// Takes one chunk; an error is the disk's (or, rarely, the hash thread's).
    pub fn push(&mut self, chunk: Bytes) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.hasher.update(&chunk)?;
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len >= GATHER_BYTES || self.pending.len() >= GATHER_SLICES {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Writes what is pending and returns the file (not yet fsync'd), its length and the
    /// hex SHA-256 of its contents.
    pub fn finish(mut self) -> io::Result<(File, u64, String)> {
        self.flush_pending()?;
        let sha = self.hasher.finish()?;
        Ok((self.file, self.written, sha))
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut slices: Vec<IoSlice<'_>> = self.pending.iter().map(|b| IoSlice::new(b)).collect();
        let mut rest: &mut [IoSlice<'_>] = &mut slices;
        while !rest.is_empty() {
            match self.file.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.written += self.pending_len as u64;
        self.pending.clear();
        self.pending_len = 0;
        if self.written - self.writeback_from >= WRITEBACK_EVERY {
            start_writeback(
                &self.file,
                self.writeback_from,
                self.written - self.writeback_from,
            );
            self.writeback_from = self.written;
        }
        Ok(())
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` to disk without waiting.
/// Advisory only: an I/O error here resurfaces at the fsync that follows, which is the
/// call that decides.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is borrowed from a `File` that outlives the call, and
    // sync_file_range reads no memory of ours; any error comes back as -1/errno.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sink_roundtrip(chunks: &[Vec<u8>], threaded: bool) -> (Vec<u8>, u64, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut sink = FileSink::new(File::create(&path).unwrap(), threaded);
        for c in chunks {
            sink.push(Bytes::from(c.clone())).unwrap();
        }
        let (file, len, sha) = sink.finish().unwrap();
        file.sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        (back, len, sha)
    }

    #[test]
    fn inline_and_threaded_hashing_agree_with_a_plain_sha256() {
        // Enough bytes to cross several gather flushes and two writeback windows, in
        // chunks of uneven sizes including empty ones.
        let mut chunks = Vec::new();
        let mut expected = Vec::new();
        let mut n = 0u32;
        while expected.len() < 17 * 1024 * 1024 {
            let size = [0usize, 1, 4096, 65_537, 300_000][n as usize % 5];
            let chunk: Vec<u8> = (0..size).map(|i| (i as u32 ^ n) as u8).collect();
            expected.extend_from_slice(&chunk);
            chunks.push(chunk);
            n += 1;
        }
        let want = hex::encode(Sha256::digest(&expected));
        for threaded in [false, true] {
            let (back, len, sha) = sink_roundtrip(&chunks, threaded);
            assert_eq!(len, expected.len() as u64, "threaded={threaded}");
            assert!(back == expected, "file bytes differ (threaded={threaded})");
            assert_eq!(sha, want, "threaded={threaded}");
        }
    }

    #[test]
    fn many_tiny_chunks_stay_under_the_iovec_limit() {
        let chunks: Vec<Vec<u8>> = (0..5000).map(|i| vec![i as u8; 3]).collect();
        let (back, len, _) = sink_roundtrip(&chunks, false);
        assert_eq!(len, 15_000);
        assert_eq!(back.len(), 15_000);
    }

    #[test]
    fn an_empty_body_hashes_to_the_empty_digest() {
        let (back, len, sha) = sink_roundtrip(&[], true);
        assert!(back.is_empty());
        assert_eq!(len, 0);
        assert_eq!(
            sha,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
