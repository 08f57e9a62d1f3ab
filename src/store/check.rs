//! Read-back for `verify`: each ledger row's file or object hashed again ([`Store::check`]),
//! what the store holds that no row names ([`Store::untracked`]), and what `--repair` may
//! do about a finding ([`Store::set_aside`], [`Store::lock_until`]).

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::ledger::ArchivedRow;
use crate::s3::Unlocked;

/// What one ledger row's file (or object) is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The recorded content, `len` bytes; with `object_lock`, an object that lacks the
    /// retention it should have.
    Intact {
        len: u64,
        unlocked: Option<Unlocked>,
    },
    /// Other content (`actual`: its SHA-256 and length).
    Changed {
        actual: Option<(String, u64)>,
        detail: String,
    },
    Missing {
        detail: &'static str,
    },
    /// There, but reading it failed (an I/O error, a path the archive's rules refuse, a
    /// bucket that would not answer): nothing is known about its content, so it is neither
    /// changed nor missing, and `--repair` must not set it aside or fetch over it.
    Unreadable {
        detail: String,
    },
}

impl Store {
    /// Hashes the file of `row` again and compares it with the ledger's SHA-256.
    pub async fn check(&self, row: &ArchivedRow, now: DateTime<Utc>) -> Check {
        let Some(objects) = &self.bucket else {
            let hashed = match self.archive.resolve(&row.path) {
                Ok(path) => hash_file(path).await,
                Err(e) => Err(io::Error::other(e.to_string())),
            };
            return match hashed {
                Ok((sha, len)) => compare(row, sha, len, "content", None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Check::Missing {
                    detail: "no such file",
                },
                Err(e) => unreadable(e),
            };
        };
        match objects.hash_object(&objects.key(&row.path)).await {
            Ok((len, sha)) => {
                // Only an intact object's retention is worth reading.
                let unlocked = if sha == row.sha256 {
                    objects.unlocked(&row.path, &row.fetched_at, now).await
                } else {
                    None
                };
                compare(row, sha, len, "object content", unlocked)
            }
            Err(e) if e.is_not_found() => Check::Missing {
                detail: "no such object",
            },
            Err(e) => unreadable(e),
        }
    }

    /// The folder the archive is in, when it is a folder (with `[archive.s3]` the bucket
    /// is read object by object instead).
    pub fn folder_root(&self) -> Option<&std::path::Path> {
        match &self.bucket {
            Some(_) => None,
            None => Some(self.archive.root()),
        }
    }

    /// What the store holds that is not in `tracked`, sorted: files under the folder (our
    /// own `.partial/` and `.quarantine/` aside), or objects under the bucket's prefix.
    pub async fn untracked(&self, tracked: &HashSet<String>) -> Result<Vec<String>, StoreError> {
        let held: Vec<String> = match &self.bucket {
            Some(objects) => objects.list_relative().await?,
            None => self.archive.files(true).await?.into_iter().collect(),
        };
        let mut untracked: Vec<String> =
            held.into_iter().filter(|p| !tracked.contains(p)).collect();
        untracked.sort();
        Ok(untracked)
    }

    /// Moves a changed file out of the way so that it can be fetched again: to
    /// `.quarantine/` (never deleted), returning where it went. A changed object is never
    /// replaced (uploads are create-only, and it is the evidence): the error says what the
    /// operator can do instead.
    pub async fn set_aside(&self, relative: &str, now: DateTime<Utc>) -> Result<String, String> {
        match &self.bucket {
            Some(_) => Err(
                "a changed object is never replaced: move it away in the bucket, then run verify --repair again"
                    .to_owned(),
            ),
            None => self
                .archive
                .quarantine(relative, now)
                .await
                .map_err(|e| format!("cannot be quarantined, so it was left as it is: {e}")),
        }
    }

    /// Gives the object of `relative` the Object Lock retention it lacks (until `until`,
    /// RFC 3339); a folder has none to give.
    pub async fn lock_until(&self, relative: &str, until: &str) -> Result<(), StoreError> {
        match &self.bucket {
            Some(objects) => Ok(objects.lock_until(relative, until).await?),
            None => Ok(()),
        }
    }
}

fn compare(
    row: &ArchivedRow,
    sha: String,
    len: u64,
    what: &str,
    unlocked: Option<Unlocked>,
) -> Check {
    if sha == row.sha256 {
        Check::Intact { len, unlocked }
    } else {
        Check::Changed {
            detail: format!("{what} differs from the ledger ({len} bytes now)"),
            actual: Some((sha, len)),
        }
    }
}

fn unreadable(e: impl std::fmt::Display) -> Check {
    Check::Unreadable {
        detail: format!("cannot be read: {e}"),
    }
}

/// SHA-256 and length of a file, on the blocking pool.
async fn hash_file(path: PathBuf) -> io::Result<(String, u64)> {
    tokio::task::spawn_blocking(move || crate::archive::file_sha256(&path))
        .await
        .map_err(io::Error::other)?
}
