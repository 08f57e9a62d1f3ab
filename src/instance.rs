//! One daemon per ledger and per archive, held for the life of the process:
//!
//! - the ledger: an exclusive lock on `<ledger's real path>.lock`, so one ledger reached
//!   under two names (a symlinked folder or file) is still one lock;
//! - the archive: an exclusive lock on the archive folder itself (its real path), so two
//!   daemons with different ledgers never write one archive (the second would also clear
//!   the first one's temp files).
//!
//! The archive lock is taken on the folder, not on a lock file inside it: a file there
//! would be one more entry that `verify`, reconciliation, backups and `sha256sum -c` lists
//! would see, and nothing is left behind. On a network filesystem a folder lock only holds
//! between processes of one host (Linux keeps `flock` on a remote folder local); one archive
//! shared by several hosts is not something this lock can stop.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "another report-archiver is already using the ledger `{ledger}` (it holds `{lock}`); stop it first, or give this one its own ledger and archive"
    )]
    Busy { ledger: PathBuf, lock: PathBuf },
    #[error(
        "another report-archiver is already writing the archive `{archive}` (it holds a lock on that folder), with another ledger; stop it first, or give this one its own archive dir: one archive belongs to one daemon"
    )]
    ArchiveBusy { archive: PathBuf },
    #[error("cannot create the lock file `{lock}`: {source}; check the folder's permissions")]
    Io {
        lock: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot lock the archive folder `{archive}`: {source}; check that it is a folder this user may read"
    )]
    ArchiveIo {
        archive: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Held while the daemon runs; the OS releases both locks when the process ends, even on
/// SIGKILL.
#[derive(Debug)]
pub struct InstanceLock {
    _ledger: File,
    _archive: File,
}

impl InstanceLock {
    /// Locks the ledger, then the archive folder (creating either's folder if missing).
    /// Taken before anything else is touched: opening the archive clears `.partial/`.
    pub fn acquire(ledger: &Path, archive: &Path) -> Result<Self, InstanceError> {
        let ledger_lock = lock_ledger(ledger)?;
        let archive_lock = lock_archive(archive)?;
        Ok(Self {
            _ledger: ledger_lock,
            _archive: archive_lock,
        })
    }
}

fn lock_ledger(ledger: &Path) -> Result<File, InstanceError> {
    let real = ledger_real_path(ledger).map_err(|source| InstanceError::Io {
        lock: lock_path(ledger),
        source,
    })?;
    let lock = lock_path(&real);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|source| InstanceError::Io {
            lock: lock.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(InstanceError::Busy {
            ledger: ledger.to_owned(),
            lock,
        }),
        Err(TryLockError::Error(source)) => Err(InstanceError::Io { lock, source }),
    }
}

fn lock_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The ledger's real path: its folder (created if missing) resolved, and the file itself
/// resolved when it is a symlink. Two names for one ledger give one path, so one lock.
fn ledger_real_path(ledger: &Path) -> io::Result<PathBuf> {
    let parent = match ledger.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p,
        None => Path::new("."),
    };
    std::fs::create_dir_all(parent)?;
    let Some(name) = ledger.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the ledger path names no file",
        ));
    };
    let joined = std::fs::canonicalize(parent)?.join(name);
    match std::fs::canonicalize(&joined) {
        Ok(real) => Ok(real),
        // Not there yet (the first start) or a dangling link: the folder's real path and
        // the name are as real as it gets.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(joined),
        Err(e) => Err(e),
    }
}

fn lock_archive(archive: &Path) -> Result<File, InstanceError> {
    let io_err = |archive: &Path| {
        let archive = archive.to_owned();
        move |source| InstanceError::ArchiveIo { archive, source }
    };
    std::fs::create_dir_all(archive).map_err(io_err(archive))?;
    let real = std::fs::canonicalize(archive).map_err(io_err(archive))?;
    // A folder opens read-only; `flock` does not care how the descriptor was opened.
    let file = File::open(&real).map_err(io_err(&real))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(InstanceError::ArchiveBusy { archive: real }),
        Err(TryLockError::Error(source)) => Err(InstanceError::ArchiveIo {
            archive: real,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_ledger_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.db");
        let first = InstanceLock::acquire(&ledger, &dir.path().join("a1")).unwrap();
        let second = InstanceLock::acquire(&ledger, &dir.path().join("a2")).unwrap_err();
        assert!(matches!(second, InstanceError::Busy { .. }));
        assert!(second.to_string().contains("already using the ledger"));
        drop(first);
        assert!(InstanceLock::acquire(&ledger, &dir.path().join("a2")).is_ok());
    }

    #[test]
    fn one_ledger_under_two_names_is_one_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("state"), dir.path().join("alias")).unwrap();
        let _first =
            InstanceLock::acquire(&dir.path().join("state/ledger.db"), &dir.path().join("a1"))
                .unwrap();
        let second =
            InstanceLock::acquire(&dir.path().join("alias/ledger.db"), &dir.path().join("a2"))
                .unwrap_err();
        assert!(matches!(second, InstanceError::Busy { .. }), "{second}");

        // The ledger file itself a link to another name.
        std::fs::write(dir.path().join("state/real.db"), b"").unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("state/real.db"),
            dir.path().join("state/link.db"),
        )
        .unwrap();
        let _real =
            InstanceLock::acquire(&dir.path().join("state/real.db"), &dir.path().join("a3"))
                .unwrap();
        let link = InstanceLock::acquire(&dir.path().join("state/link.db"), &dir.path().join("a4"))
            .unwrap_err();
        assert!(matches!(link, InstanceError::Busy { .. }), "{link}");
    }

    #[test]
    fn two_ledgers_on_one_archive_are_refused_also_through_a_link_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        let _first = InstanceLock::acquire(&dir.path().join("one.db"), &archive).unwrap();
        let second = InstanceLock::acquire(&dir.path().join("two.db"), &archive).unwrap_err();
        assert!(
            matches!(second, InstanceError::ArchiveBusy { .. }),
            "{second}"
        );
        assert!(
            second
                .to_string()
                .contains("one archive belongs to one daemon")
        );
        std::os::unix::fs::symlink(&archive, dir.path().join("alias")).unwrap();
        let third = InstanceLock::acquire(&dir.path().join("three.db"), &dir.path().join("alias"))
            .unwrap_err();
        assert!(
            matches!(third, InstanceError::ArchiveBusy { .. }),
            "{third}"
        );
        // Nothing of ours inside the archive: the folder itself is locked.
        assert_eq!(std::fs::read_dir(&archive).unwrap().count(), 0);
    }
}
