//! Placing several staged files at once (a pass's group commit): each is put in place as
//! [`place.rs`](super::place) does, then every folder any of them needs is fsynced once,
//! side by side, however many files it received.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use super::place::{link_unsynced, sync_dir_io};
use super::{Archive, ArchiveError, ArchivedFile, Staged};

impl Archive {
    /// [`Archive::place`] for several staged files at once: each folder they need is
    /// fsynced once for all of them. One result per file, in order; a file
    /// that failed leaves no temp file behind.
    pub async fn place_all(&self, staged: Vec<Staged>) -> Vec<Result<ArchivedFile, ArchiveError>> {
        let mut results: Vec<Option<Result<ArchivedFile, ArchiveError>>> = Vec::new();
        let mut waiting = Vec::new();
        let mut to_place = Vec::new();
        for Staged { file, temp, guard } in staged {
            match self.resolve(&file.relative_path) {
                Ok(final_path) => {
                    to_place.push(ToPlace {
                        temp,
                        final_path,
                        stored_bytes: file.stored_bytes,
                        sha256: file.sha256.clone(),
                    });
                    waiting.push((results.len(), file, guard));
                    results.push(None);
                }
                // The guard removes the temp file as it drops.
                Err(e) => results.push(Some(Err(e))),
            }
        }
        match place_files(to_place, &self.root).await {
            Ok(placed) => {
                for ((at, file, mut guard), done) in waiting.into_iter().zip(placed) {
                    results[at] = Some(done.map(|()| {
                        guard.disarm();
                        file
                    }));
                }
            }
            Err(e) => {
                let text = e.to_string();
                for (at, _, _) in waiting {
                    results[at] = Some(Err(ArchiveError::Writer(text.clone())));
                }
            }
        }
        results.into_iter().flatten().collect()
    }
}

/// One staged file for [`place_files`]: its temp path, final path, length and SHA-256.
struct ToPlace {
    temp: PathBuf,
    final_path: PathBuf,
    stored_bytes: u64,
    sha256: String,
}

/// Every file is put in place first, then each folder any of them needs is fsynced once. A
/// file is done only when all of its folders were fsynced, so a caller that records the
/// successes afterwards keeps invariant 2. One result per file, in order.
async fn place_files(
    files: Vec<ToPlace>,
    root: &Path,
) -> Result<Vec<Result<(), ArchiveError>>, ArchiveError> {
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || place_files_blocking(&files, &root))
        .await
        .map_err(|e| ArchiveError::Writer(e.to_string()))
}

fn place_files_blocking(files: &[ToPlace], root: &Path) -> Vec<Result<(), ArchiveError>> {
    let linked: Vec<Result<Vec<PathBuf>, ArchiveError>> = files
        .iter()
        .map(|f| link_unsynced(&f.temp, &f.final_path, root, f.stored_bytes, &f.sha256))
        .collect();
    let folders: BTreeSet<PathBuf> = linked.iter().flatten().flatten().cloned().collect();
    let failed = sync_dirs(folders.into_iter().collect());
    linked
        .into_iter()
        .map(|dirs| {
            for dir in dirs? {
                if let Some((kind, code, text)) = failed.get(&dir) {
                    let e = code.map_or_else(
                        || io::Error::new(*kind, text.clone()),
                        io::Error::from_raw_os_error,
                    );
                    return Err(ArchiveError::io("fsync folder", &dir)(e));
                }
            }
            Ok(())
        })
        .collect()
}

/// What fsyncing a folder failed with, kept so that each file that needed it gets the cause.
type SyncFailure = (io::ErrorKind, Option<i32>, String);

/// Folder fsyncs at once: a batch's new folders (a first pass creates three per report)
/// would otherwise wait for one another's journal commits in turn.
const SYNC_THREADS: usize = 8;

/// fsyncs every folder in `dirs`, up to [`SYNC_THREADS`] at once; returns those that failed.
fn sync_dirs(dirs: Vec<PathBuf>) -> BTreeMap<PathBuf, SyncFailure> {
    let sync = |dirs: &[PathBuf]| -> Vec<(PathBuf, SyncFailure)> {
        dirs.iter()
            .filter_map(|dir| {
                sync_dir_io(dir)
                    .err()
                    .map(|e| (dir.clone(), (e.kind(), e.raw_os_error(), e.to_string())))
            })
            .collect()
    };
    if dirs.len() <= 1 {
        return sync(&dirs).into_iter().collect();
    }
    let per_thread = dirs.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        // The first share on this thread, which would otherwise only wait.
        let mut chunks = dirs.chunks(per_thread);
        let first = chunks.next().unwrap_or_default();
        let threads: Vec<_> = chunks
            .map(|chunk| (chunk, scope.spawn(move || sync(chunk))))
            .collect();
        let mine = sync(first);
        mine.into_iter()
            .chain(threads.into_iter().flat_map(|(chunk, t)| {
                // A thread that panicked fsynced nothing we can vouch for: all its folders
                // count as failed.
                t.join().unwrap_or_else(|_| {
                    chunk
                        .iter()
                        .map(|d| {
                            (
                                d.clone(),
                                (
                                    io::ErrorKind::Other,
                                    None,
                                    "the fsync thread panicked".to_owned(),
                                ),
                            )
                        })
                        .collect()
                })
            }))
            .collect()
    })
}
