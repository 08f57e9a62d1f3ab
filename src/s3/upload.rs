//! One staged file to one object, create-only: a single `PUT … If-None-Match: *` below the
//! part size, otherwise a multipart upload read from the file part by part (memory: about
//! part size × concurrency) and completed with `If-None-Match: *` too. A failed multipart
//! upload is aborted; one interrupted by a crash is in the ledger and aborted at start.
//! With `object_lock` the PUT and the CreateMultipartUpload are our own signed requests
//! that carry the retention (`lock.rs`); the parts and the completion are the same.

use std::io::SeekFrom;
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as KeyPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::signed::Completed;
use super::{ObjectTarget, S3Error, StoredObject, parse_key};
use crate::ledger::ObjectRef;

/// What a create-only write ran into.
enum Written {
    Done(ObjectRef),
    /// Something is at the key already.
    Exists,
}

impl ObjectTarget {
    /// Uploads the staged file `file` (`size` bytes, SHA-256 `sha256`, already verified) to
    /// the key of `relative`. An object already at that key is never replaced: it is
    /// accepted only when it holds exactly these bytes (our own earlier write, e.g. a retry
    /// whose first answer was lost), otherwise [`S3Error::Exists`].
    pub async fn upload(
        &self,
        file: &Path,
        relative: &str,
        size: u64,
        sha256: &str,
    ) -> Result<StoredObject, S3Error> {
        let key = self.key(relative);
        let path = parse_key(&key)?;
        let written = if size < self.part_size {
            self.put_whole(file, &key, &path, sha256).await?
        } else {
            self.put_in_parts(file, &key, &path, size).await?
        };
        let object = match written {
            Written::Done(object) => object,
            Written::Exists => self.adopt_identical(&key, &path, size, sha256).await?,
        };
        Ok(StoredObject { key, object })
    }

    async fn put_whole(
        &self,
        file: &Path,
        key: &str,
        path: &KeyPath,
        sha256: &str,
    ) -> Result<Written, S3Error> {
        // Below the part size, so bounded by it.
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|source| S3Error::Read {
                path: file.to_owned(),
                source,
            })?;
        if let Some(lock) = &self.lock {
            return Ok(match self.put_locked(lock, key, bytes, sha256).await? {
                Some(object) => Written::Done(object),
                None => Written::Exists,
            });
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(done) => Ok(Written::Done(ObjectRef {
                e_tag: done.e_tag,
                version_id: done.version,
            })),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Written::Exists),
            Err(e) => Err(S3Error::store("put", key)(e)),
        }
    }

    async fn put_in_parts(
        &self,
        file: &Path,
        key: &str,
        path: &KeyPath,
        size: u64,
    ) -> Result<Written, S3Error> {
        let store = self.store.as_ref();
        let upload_id = match &self.lock {
            Some(lock) => self.create_multipart_locked(lock, key).await?,
            None => store
                .create_multipart(path)
                .await
                .map_err(S3Error::store("create multipart upload", key))?,
        };
        let outcome = match self.ledger.record_upload(key, &upload_id).await {
            Ok(()) => self.send_parts(file, key, path, &upload_id, size).await,
            Err(e) => Err(e.into()),
        };
        // Anything but a completed upload leaves parts behind that cost money on S3.
        if !matches!(outcome, Ok(Written::Done(_))) {
            match store.abort_multipart(path, &upload_id).await {
                Ok(()) => self.ledger.forget_upload(&upload_id).await?,
                // The ledger keeps it: the next start tries again.
                Err(e) => {
                    tracing::warn!(key, upload_id, error.message = %e, "cannot abort the multipart upload; the next start tries again");
                }
            }
        } else {
            self.ledger.forget_upload(&upload_id).await?;
        }
        outcome
    }

    async fn send_parts(
        &self,
        file: &Path,
        key: &str,
        path: &KeyPath,
        upload_id: &str,
        size: u64,
    ) -> Result<Written, S3Error> {
        let part_size = self.part_size;
        let count = size.div_ceil(part_size);
        let parts: Vec<PartId> = futures::stream::iter(0..count)
            .map(|index| async move {
                let offset = index * part_size;
                let len = part_size.min(size - offset);
                let bytes = read_part(file, offset, len).await?;
                let part = usize::try_from(index).unwrap_or(usize::MAX);
                self.store
                    .put_part(path, &upload_id.to_owned(), part, PutPayload::from(bytes))
                    .await
                    .map_err(S3Error::store("upload part", key))
            })
            // In order, at most `concurrency` parts read and in flight.
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        match self.complete_create_only(key, upload_id, &parts).await? {
            Completed::Done(object) => Ok(Written::Done(object)),
            Completed::Exists => Ok(Written::Exists),
        }
    }

    /// An object is at the key already: ours (same size, same SHA-256) is accepted, any
    /// other is a refusal.
    async fn adopt_identical(
        &self,
        key: &str,
        path: &KeyPath,
        size: u64,
        sha256: &str,
    ) -> Result<ObjectRef, S3Error> {
        let exists = || S3Error::Exists {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
        };
        let meta = self
            .store
            .head(path)
            .await
            .map_err(S3Error::store("head", key))?;
        if meta.size != size {
            return Err(exists());
        }
        let (_, existing) = self.hash_object(key).await?;
        if existing != sha256 {
            return Err(exists());
        }
        tracing::info!(
            key,
            "the object was already there with these exact bytes; kept it"
        );
        Ok(ObjectRef {
            e_tag: meta.e_tag,
            version_id: meta.version,
        })
    }
}

async fn read_part(file: &Path, offset: u64, len: u64) -> Result<Vec<u8>, S3Error> {
    let read = async {
        let mut f = tokio::fs::File::open(file).await?;
        f.seek(SeekFrom::Start(offset)).await?;
        let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
        f.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    read.await.map_err(|source| S3Error::Read {
        path: file.to_owned(),
        source,
    })
}
