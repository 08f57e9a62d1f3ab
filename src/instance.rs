//! One daemon per ledger: an exclusive lock on `<ledger>.lock`, held for the life of the
//! process, so two processes never write one archive (the second one also would clear the
//! first one's temp files).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "another report-archiver is already using the ledger `{ledger}` (it holds `{lock}`); stop it first, or give this one its own ledger and archive"
    )]
    Busy { ledger: PathBuf, lock: PathBuf },
    #[error("cannot create the lock file `{lock}`: {source}; check the folder's permissions")]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while the daemon runs; the OS releases it when the process ends, even on SIGKILL.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(ledger: &Path) -> Result<Self, InstanceError> {
        let mut name = ledger.as_os_str().to_owned();
        name.push(".lock");
        let lock = PathBuf::from(name);
        if let Some(parent) = lock.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| InstanceError::Io {
                lock: lock.clone(),
                source,
            })?;
        }
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
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(InstanceError::Busy {
                ledger: ledger.to_owned(),
                lock,
            }),
            Err(TryLockError::Error(source)) => Err(InstanceError::Io { lock, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_ledger_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.db");
        let first = InstanceLock::acquire(&ledger).unwrap();
        let second = InstanceLock::acquire(&ledger).unwrap_err();
        assert!(matches!(second, InstanceError::Busy { .. }));
        assert!(second.to_string().contains("already using the ledger"));
        drop(first);
        assert!(InstanceLock::acquire(&ledger).is_ok());
    }
}
