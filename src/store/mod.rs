//! [`Store`]: where archived reports are kept, a local directory or an S3 bucket, behind
//! one seam. It is built once from `[archive]`; the pass, retention, verify and the
//! start-up reconciliation use it and never ask which kind it is.
//!
//! - [`Store::stage`] has the archive folder check a body whole into `.partial/` (the same
//!   for both kinds: a bucket's downloads are staged locally too);
//!   [`Store::publish`] then places the staged file in the directory or uploads it
//!   create-only to the bucket.
//! - [`Store::delete`] and [`Store::may_delete`] for retention.
//! - [`Store::gone`] for a pass (kept files that vanished), [`Store::files`] for the
//!   start-up reconciliation.
//! - `check.rs`: read-back for `verify` ([`Store::check`], [`Store::untracked`]) and what
//!   `--repair` may do ([`Store::set_aside`], [`Store::lock_until`]).

mod check;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;

pub use check::Check;

use crate::api::retry::{Transient, Verdict};
use crate::archive::{Archive, ArchiveError, ArchiveTarget, ArchivedFile, BodyInfo, Staged};
use crate::config::Config;
use crate::ledger::{Ledger, ObjectRef};
use crate::s3::{ObjectTarget, S3Error};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Object(#[from] S3Error),
}

impl StoreError {
    /// The store is set up in a way only the operator can fix (exit 2).
    #[must_use]
    pub fn is_config(&self) -> bool {
        match self {
            Self::Archive(e) => e.is_config(),
            Self::Object(e) => e.is_config(),
        }
    }
}

impl Transient for StoreError {
    fn verdict(&self) -> Verdict {
        match self {
            // A body that broke in transit may arrive whole next time.
            Self::Archive(e) => e.verdict(),
            // object_store and our signed requests already retried the request itself.
            Self::Object(_) => Verdict::GiveUp,
        }
    }
}

/// What [`Store::publish`] kept, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub file: ArchivedFile,
    /// In a bucket: the object's ETag and version, for the ledger.
    pub object: Option<ObjectRef>,
}

/// The archive's storage: the local folder (always: it stages downloads), and the bucket
/// when `[archive.s3]` is set.
#[derive(Debug, Clone)]
pub struct Store {
    archive: Arc<Archive>,
    bucket: Option<Arc<ObjectTarget>>,
}

impl Store {
    /// Opens the store `[archive]` describes, for writing: the folder is created and opened
    /// (its own folders checked, our temp files cleared), and with `[archive.s3]` the
    /// bucket's client is built (no request yet: see [`Store::prepare`]). The caller holds
    /// the [`InstanceLock`](crate::instance::InstanceLock) on the archive.
    pub async fn open(config: &Config, ledger: &Ledger) -> Result<Self, StoreError> {
        let settings = &config.settings.archive;
        let archive = Archive::open(&settings.dir, settings.keep_compressed).await?;
        Self::with_folder(archive, config, ledger)
    }

    /// [`Store::open`] with the folder already opened (so that a bad folder stops the start
    /// before the ledger exists).
    pub fn with_folder(
        archive: Archive,
        config: &Config,
        ledger: &Ledger,
    ) -> Result<Self, StoreError> {
        Ok(match bucket(config, ledger)? {
            Some(objects) => Self::bucket(archive, objects),
            None => Self::local(archive),
        })
    }

    /// A view of the store `[archive]` describes that writes nothing (a dry run, verify).
    /// The bucket's client records its uploads in the ledger, so without a ledger (nothing
    /// archived yet) the view is of the folder alone.
    pub fn view(config: &Config, ledger: Option<&Ledger>) -> Result<Self, StoreError> {
        let settings = &config.settings.archive;
        let archive = Archive::at(&settings.dir, settings.keep_compressed);
        let objects = match ledger {
            Some(ledger) => bucket(config, ledger)?,
            None => None,
        };
        Ok(match objects {
            Some(objects) => Self::bucket(archive, objects),
            None => Self::local(archive),
        })
    }

    /// Files are kept in `archive`'s folder.
    #[must_use]
    pub fn local(archive: Archive) -> Self {
        Self {
            archive: Arc::new(archive),
            bucket: None,
        }
    }

    /// Files are staged in `staging` and kept in the bucket.
    #[must_use]
    pub fn bucket(staging: Archive, objects: ObjectTarget) -> Self {
        Self {
            archive: Arc::new(staging),
            bucket: Some(Arc::new(objects)),
        }
    }

    /// The local folder: the archive itself, or a bucket's staging folder.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// Streams a body into `.partial/` and checks it whole; see [`Archive::stage`].
    pub async fn stage<S, E>(
        &self,
        target: &ArchiveTarget<'_>,
        info: BodyInfo,
        body: S,
    ) -> Result<Staged, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        Ok(self.archive.stage(target, info, body).await?)
    }

    /// Keeps a staged file: placed in the folder, or uploaded create-only to the bucket
    /// (the staged copy is then removed, uploaded or not).
    pub async fn publish(&self, staged: Staged) -> Result<Published, StoreError> {
        match &self.bucket {
            None => {
                let file = self.archive.place(staged).await?;
                Ok(Published { file, object: None })
            }
            Some(objects) => {
                let file = &staged.file;
                let stored = objects
                    .upload(
                        staged.path(),
                        &file.relative_path,
                        file.stored_bytes,
                        &file.sha256,
                    )
                    .await?;
                Ok(Published {
                    file: staged.file.clone(),
                    object: Some(stored.object),
                })
            }
        }
    }

    /// Whether [`Store::publish_all`] keeps files better together than one by one: a
    /// folder fsyncs each of its folders once for a whole batch. A bucket's uploads gain
    /// nothing from waiting for one another, so a pass uploads each file as it is staged.
    #[must_use]
    pub fn publishes_in_batches(&self) -> bool {
        self.bucket.is_none()
    }

    /// [`Store::publish`] for several staged files (a pass's group commit): in a folder
    /// they are placed together, each folder fsynced once for all of them; to a bucket
    /// they are uploaded one after the other. One result per file, in order.
    pub async fn publish_all(&self, staged: Vec<Staged>) -> Vec<Result<Published, StoreError>> {
        match &self.bucket {
            None => self
                .archive
                .place_all(staged)
                .await
                .into_iter()
                .map(|placed| {
                    Ok(Published {
                        file: placed?,
                        object: None,
                    })
                })
                .collect(),
            Some(_) => {
                let mut published = Vec::with_capacity(staged.len());
                for s in staged {
                    published.push(self.publish(s).await);
                }
                published
            }
        }
    }

    /// Deletes the kept file of an archive path (retention); one already gone is not an
    /// error. On a versioned bucket S3 keeps the version behind a delete marker, for a
    /// lifecycle rule to expire.
    pub async fn delete(&self, relative: &str) -> Result<(), StoreError> {
        match &self.bucket {
            // Never deleting through a folder linked out of the archive.
            None => Ok(self.archive.remove(relative).await?),
            Some(objects) => Ok(objects.delete(relative).await?),
        }
    }

    /// Whether the file archived at `fetched_at` (RFC 3339) may be deleted now: not while
    /// its Object Lock retention (archive time + `retain`) runs. S3 would accept the DELETE
    /// and only hide the locked version behind a delete marker, still stored and billed,
    /// while the ledger said it was gone.
    #[must_use]
    pub fn may_delete(&self, fetched_at: &str, now: DateTime<Utc>) -> bool {
        let Some(lock) = self.bucket.as_ref().and_then(|b| b.object_lock()) else {
            return true;
        };
        DateTime::parse_from_rfc3339(fetched_at)
            .is_ok_and(|archived| lock.retain.after(archived.with_timezone(&Utc)) <= now)
    }

    /// Among `kept` (stored id → archive path), the files that are definitely no longer
    /// there, for a pass to fetch again. Only the folder is looked at: an unreadable folder
    /// is not a reason to download again, and whether the bucket still has an object is
    /// `verify`'s question (a request per object would make every pass cost as much).
    pub async fn gone(&self, kept: Vec<(String, String)>) -> HashMap<String, String> {
        if kept.is_empty() || self.bucket.is_some() {
            return HashMap::new();
        }
        let archive = Arc::clone(&self.archive);
        let check = tokio::task::spawn_blocking(move || {
            kept.into_iter()
                .filter(|(_, path)| {
                    archive.resolve(path).is_ok_and(|p| {
                        matches!(p.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
                    })
                })
                .collect::<HashMap<String, String>>()
        });
        check.await.unwrap_or_default()
    }

    /// Every file the folder keeps (dot folders aside), for the start-up reconciliation;
    /// `None` for a bucket, which is not listed at every start (that costs a request per
    /// thousand objects and time in proportion to years of reports: `verify` lists it).
    pub async fn files(&self) -> Result<Option<HashSet<String>>, StoreError> {
        match &self.bucket {
            Some(_) => Ok(None),
            None => Ok(Some(self.archive.files(false).await?)),
        }
    }

    /// Removes our temp files from the staging folder (at shutdown).
    pub async fn clear_partial(&self) -> Result<usize, StoreError> {
        Ok(self.archive.clear_partial().await?)
    }

    /// The bucket's start-up checks: credentials (a warning only: an instance role may
    /// answer a moment later, and exit 2 would stop systemd from restarting us), Object
    /// Lock (a config error when the bucket cannot lock), and the multipart uploads a crash
    /// left behind (aborted). Nothing to check for a folder.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        let Some(objects) = &self.bucket else {
            return Ok(());
        };
        if let Err(e) = objects.check_credentials().await {
            tracing::warn!(error.message = %e, "no S3 credentials now; uploads fail until there are");
        }
        match objects.check_object_lock().await {
            Err(e) if e.is_config() => return Err(e.into()),
            // Unreachable now says nothing about the bucket; a locked PUT to a bucket
            // without Object Lock is refused by S3 all the same.
            Err(e) => {
                tracing::warn!(error.message = %e, "cannot check the bucket's Object Lock now; uploads go ahead and S3 refuses them if it cannot lock");
            }
            Ok(()) => {}
        }
        objects.abort_leftover_uploads().await?;
        Ok(())
    }
}

/// The bucket `[archive.s3]` asks for, if any.
fn bucket(config: &Config, ledger: &Ledger) -> Result<Option<ObjectTarget>, S3Error> {
    let http = config.settings.http.options();
    config
        .settings
        .archive
        .s3
        .as_ref()
        .map(|s3| ObjectTarget::build(s3, config.s3_keys.as_ref(), http, ledger.clone()))
        .transpose()
}

#[cfg(test)]
mod tests;
