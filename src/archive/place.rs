//! Placing a finished temp file at its final path without replacing anything and without
//! leaving the archive; moving what is in the way to the quarantine; the folder checks and
//! fsyncs that make both durable and confined.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{ArchiveError, QUARANTINE_DIR};

/// Puts the finished (fsynced) temp file at `final_path` and makes that durable: the file
/// and every folder it needed are fsynced before this returns, so the ledger row that
/// follows never names a file a crash could take back (invariant 2).
///
/// - Every folder on the way stays under `root`, the archive's real path
///   ([`ensure_folders`]): a symlink leading out is refused, naming it.
/// - Whatever is already at `final_path` is never replaced. A regular file with the same
///   length and SHA-256 is kept (a lost or rebuilt ledger: the row then records it, no
///   duplicate); anything else (another file, a link, a folder) is moved to
///   `.quarantine/` with a warning first.
/// - The file goes into place with `link(2)`, which never replaces anything (it fails if
///   even a dangling link is there) and never follows a link at the destination; the temp
///   name is then removed. Where the filesystem has no hard links (FAT, some network
///   shares), a check for the path followed by `rename(2)`, which replaces a link there
///   rather than following it.
///
/// What remains racy: a folder checked here can be swapped for a symlink before the link
/// or rename into it, and in the fallback a file can appear between the check and the
/// rename. Both need someone else writing inside the archive while the daemon (which holds
/// the archive's lock) works: the archive's owner, or root. The checks are for mistakes and
/// stray links, not for an attacker with write access to the archive, who could change the
/// archived files directly anyway. Folders are created one at a time with `mkdir`, which
/// never follows a link, so the window is only between the check of an existing folder and
/// its use.
pub(super) async fn place_file(
    temp: &Path,
    final_path: &Path,
    root: &Path,
    stored_bytes: u64,
    sha256: &str,
) -> Result<(), ArchiveError> {
    let temp = temp.to_owned();
    let final_path = final_path.to_owned();
    let root = root.to_owned();
    let sha256 = sha256.to_owned();
    tokio::task::spawn_blocking(move || {
        place_file_blocking(&temp, &final_path, &root, stored_bytes, &sha256)
    })
    .await
    .map_err(|e| ArchiveError::Writer(e.to_string()))?
}

fn place_file_blocking(
    temp: &Path,
    final_path: &Path,
    root: &Path,
    stored_bytes: u64,
    sha256: &str,
) -> Result<(), ArchiveError> {
    for dir in link_unsynced(temp, final_path, root, stored_bytes, sha256)? {
        sync_dir(&dir)?;
    }
    Ok(())
}

/// Puts the finished temp file at `final_path` as [`place_file`] does, without the folder
/// fsyncs: returns the folders that must be fsynced for the file to be durable there (its
/// folder, every folder it created and the first that existed, and a quarantine folder
/// that received what was in the way).
pub(super) fn link_unsynced(
    temp: &Path,
    final_path: &Path,
    root: &Path,
    stored_bytes: u64,
    sha256: &str,
) -> Result<Vec<PathBuf>, ArchiveError> {
    let parent = final_path.parent().unwrap_or(root).to_owned();
    // The folders this file creates must be durable too: fsync from the file's folder up
    // to the first one that existed already.
    let existing = ensure_folders(root, &parent, true)?;
    let mut folders = folders_up(&parent, &existing, root);
    if !link_into_place(temp, final_path)? {
        match settle_occupant(root, final_path, stored_bytes, sha256)? {
            Occupant::Same => {
                // Ours is not needed; the one there is made as durable as ours would be.
                let _ = std::fs::remove_file(temp);
                std::fs::File::open(final_path)
                    .and_then(|f| f.sync_all())
                    .map_err(ArchiveError::io("fsync", final_path))?;
                tracing::info!(
                    path = %final_path.display(),
                    "the file already at this item's archive path has the same length and SHA-256; kept it"
                );
                return Ok(folders);
            }
            // The moved file's new name must survive a crash as surely as ours does.
            Occupant::MovedTo(folder) => folders.push(folder),
            Occupant::Gone => {}
        }
        if !link_into_place(temp, final_path)? {
            return Err(ArchiveError::Occupied {
                path: final_path.to_owned(),
            });
        }
    }
    Ok(folders)
}

/// Puts `temp` at `final_path` unless something is there; false when something is.
fn link_into_place(temp: &Path, final_path: &Path) -> Result<bool, ArchiveError> {
    match std::fs::hard_link(temp, final_path) {
        Ok(()) => {
            // Best effort: a leftover name is cleared from `.partial/` at the next start.
            let _ = std::fs::remove_file(temp);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if hard_links_unsupported(&e) => match std::fs::symlink_metadata(final_path) {
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::rename(temp, final_path)
                    .map_err(ArchiveError::io("rename into", final_path))?;
                Ok(true)
            }
            Err(e) => Err(ArchiveError::io("inspect", final_path)(e)),
        },
        Err(e) => Err(ArchiveError::io("link into", final_path)(e)),
    }
}

/// `link(2)` answers these where the filesystem has no hard links (FAT: EPERM; some
/// network and FUSE filesystems: EOPNOTSUPP, ENOSYS).
fn hard_links_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS)
    )
}

enum Occupant {
    /// The same bytes as ours: kept.
    Same,
    /// Something else: moved aside into this folder under `.quarantine/`.
    MovedTo(PathBuf),
    /// Nothing there any more.
    Gone,
}

/// Decides about what is at `final_path` (looked at without following a link): the same
/// content as ours is kept, anything else goes to `.quarantine/`.
fn settle_occupant(
    root: &Path,
    final_path: &Path,
    stored_bytes: u64,
    sha256: &str,
) -> Result<Occupant, ArchiveError> {
    let meta = match std::fs::symlink_metadata(final_path) {
        Ok(m) => m,
        // Gone meanwhile: nothing to move; the caller links again.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Occupant::Gone),
        Err(e) => return Err(ArchiveError::io("inspect", final_path)(e)),
    };
    if meta.is_file()
        && meta.len() == stored_bytes
        && file_sha256(final_path)
            .map_err(ArchiveError::io("read", final_path))?
            .0
            == sha256
    {
        return Ok(Occupant::Same);
    }
    let relative = final_path
        .strip_prefix(root)
        .map_err(|_| ArchiveError::UnsafeComponent {
            what: "archive path",
            value: final_path.display().to_string(),
        })?
        .to_string_lossy()
        .into_owned();
    let (to, folder) = quarantine_entry(root, &relative, chrono::Utc::now())?;
    tracing::warn!(
        path = %final_path.display(),
        quarantined = %root.join(&to).display(),
        "something not in the ledger was at this item's archive path; it was moved to the quarantine, never replaced, and the item archived in its place"
    );
    Ok(Occupant::MovedTo(folder))
}

/// Moves what is at `relative` (under the real `root`) to `.quarantine/<relative>.<UTC
/// timestamp>`, adding `.1`, `.2`… if that name is taken (two in one second must not
/// replace each other). Returns the new path relative to the root and its folder.
pub(super) fn quarantine_entry(
    root: &Path,
    relative: &str,
    now: DateTime<Utc>,
) -> Result<(String, PathBuf), ArchiveError> {
    let from = root.join(relative);
    // The file's own folders must stay under the root too: never move something in from
    // outside through a link.
    if let Some(parent) = from.parent() {
        ensure_folders(root, parent, false)?;
    }
    super::folders::own_folder(root, QUARANTINE_DIR, true)?;
    let base = format!(
        "{QUARANTINE_DIR}/{relative}.{}",
        now.format("%Y%m%dT%H%M%SZ")
    );
    let folder = root.join(&base).parent().unwrap_or(root).to_owned();
    let existing = ensure_folders(root, &folder, true)?;
    let mut rel_to = base.clone();
    let mut n = 0u32;
    while std::fs::symlink_metadata(root.join(&rel_to)).is_ok() {
        n += 1;
        rel_to = format!("{base}.{n}");
    }
    let to = root.join(&rel_to);
    // `rename(2)` moves a link itself, not what it names.
    std::fs::rename(&from, &to).map_err(ArchiveError::io("move to the quarantine", &from))?;
    sync_folders(&folder, &existing, root)?;
    if let Some(parent) = from.parent() {
        sync_dir(parent)?;
    }
    Ok((rel_to, folder))
}

/// Checks every folder from `root` (the archive's real path) down to `dir`, creating the
/// missing ones when `create` (else stopping at the first missing one). Returns the
/// deepest folder that existed before.
///
/// A symlink on the way is followed only when its real path stays under the root; one
/// that leads out (or nowhere) is refused with an error naming it, and so is a file where
/// a folder should be. Paths we build have only plain components, so checking each
/// component is enough to keep every write under the root.
pub(super) fn ensure_folders(
    root: &Path,
    dir: &Path,
    create: bool,
) -> Result<PathBuf, ArchiveError> {
    let relative = dir
        .strip_prefix(root)
        .map_err(|_| ArchiveError::UnsafeComponent {
            what: "archive path",
            value: dir.display().to_string(),
        })?;
    let mut current = root.to_owned();
    let mut existing = root.to_owned();
    let mut creating = false;
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return Err(ArchiveError::UnsafeComponent {
                what: "archive path",
                value: dir.display().to_string(),
            });
        };
        current.push(name);
        if !creating {
            if check_folder(root, &current)? {
                existing.clone_from(&current);
                continue;
            }
            if !create {
                break;
            }
            creating = true;
        }
        // `mkdir` never follows a link: a link made there meanwhile fails it.
        match std::fs::create_dir(&current) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !check_folder(root, &current)? {
                    return Err(ArchiveError::io("create folder", &current)(e));
                }
            }
            Err(e) => return Err(ArchiveError::io("create folder", &current)(e)),
        }
    }
    Ok(existing)
}

/// Whether the folder `path` exists; a symlink there counts only when it leads to a
/// folder under `root`.
fn check_folder(root: &Path, path: &Path) -> Result<bool, ArchiveError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ArchiveError::io("inspect", path)(e)),
    };
    if meta.is_dir() {
        return Ok(true);
    }
    if !meta.file_type().is_symlink() {
        return Err(ArchiveError::InTheWay {
            path: path.to_owned(),
            found: "a file".to_owned(),
        });
    }
    match std::fs::canonicalize(path) {
        Ok(target) if !target.starts_with(root) => Err(ArchiveError::Escapes {
            link: path.to_owned(),
            target,
            root: root.to_owned(),
        }),
        Ok(target) if target.is_dir() => Ok(true),
        Ok(target) => Err(ArchiveError::InTheWay {
            path: path.to_owned(),
            found: format!("a symlink to `{}`, not a folder", target.display()),
        }),
        Err(_) => Err(ArchiveError::InTheWay {
            path: path.to_owned(),
            found: format!(
                "a symlink to `{}`, which does not exist",
                std::fs::read_link(path).unwrap_or_default().display()
            ),
        }),
    }
}

/// fsyncs the folders from `from` up to `existing` (or the root), both included.
fn sync_folders(from: &Path, existing: &Path, root: &Path) -> Result<(), ArchiveError> {
    for dir in folders_up(from, existing, root) {
        sync_dir(&dir)?;
    }
    Ok(())
}

/// The folders from `from` up to `existing` (or the root), both included.
fn folders_up(from: &Path, existing: &Path, root: &Path) -> Vec<PathBuf> {
    let mut folders = Vec::new();
    let mut dir = Some(from);
    while let Some(d) = dir {
        folders.push(d.to_owned());
        if d == existing || d == root {
            break;
        }
        dir = d.parent();
    }
    folders
}

fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    sync_dir_io(dir).map_err(ArchiveError::io("fsync folder", dir))
}

pub(super) fn sync_dir_io(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir).and_then(|f| f.sync_all())
}

/// SHA-256 (lowercase hex) and length of a file, read in 1 MiB pieces; blocking.
pub fn file_sha256(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut len = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), len))
}
