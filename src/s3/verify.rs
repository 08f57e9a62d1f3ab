//! `verify` on the S3 target: every object the ledger names is streamed back and re-hashed
//! against the ledger's SHA-256 (the store's own checksums are per part for multipart
//! uploads, so only our full-file hash says the report is intact), and the objects under
//! the prefix that no row names are listed as untracked.

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as KeyPath;

use super::{ObjectTarget, S3Error};
use crate::ledger::ArchivedRow;
use crate::progress::Progress;
use crate::verify::{Finding, PARALLEL_FILES, VerifyReport};

impl ObjectTarget {
    /// [`crate::verify::verify`] for the bucket: objects instead of files.
    pub async fn verify(
        &self,
        rows: Vec<ArchivedRow>,
        progress: &Progress,
    ) -> Result<VerifyReport, S3Error> {
        let (tracked, mut report) = crate::verify::begin(&rows, progress);
        let mut checks = futures::stream::iter(rows)
            .map(|row| async move {
                let outcome = self.hash_object(&self.key(&row.path)).await;
                (row, outcome)
            })
            .buffer_unordered(PARALLEL_FILES);
        while let Some((row, outcome)) = checks.next().await {
            progress.item_done(u64::try_from(row.stored_bytes).unwrap_or(0));
            match outcome {
                Ok((len, sha)) => {
                    report.bytes_hashed += len;
                    if sha == row.sha256 {
                        report.intact += 1;
                    } else {
                        let detail =
                            format!("object content differs from the ledger ({len} bytes now)");
                        report.changed.push(Finding::new(&row, Some(sha), detail));
                    }
                }
                Err(e) if e.is_not_found() => {
                    report
                        .missing
                        .push(Finding::new(&row, None, "no such object"));
                }
                Err(e) => {
                    let detail = format!("cannot be read: {e}");
                    report.changed.push(Finding::new(&row, None, detail));
                }
            }
        }
        report.missing.sort_by(|a, b| a.path.cmp(&b.path));
        report.changed.sort_by(|a, b| a.path.cmp(&b.path));
        let mut untracked: Vec<String> = self
            .list_relative()
            .await?
            .into_iter()
            .filter(|p| !tracked.contains(p))
            .collect();
        untracked.sort();
        report.untracked = untracked;
        Ok(report)
    }

    /// Every object under the prefix, as a path relative to it.
    async fn list_relative(&self) -> Result<Vec<String>, S3Error> {
        let prefix = (!self.prefix.is_empty()).then(|| KeyPath::from(self.prefix.as_str()));
        let metas: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(S3Error::store("list", &self.prefix))?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let key = m.location.to_string();
                match key.strip_prefix(&format!("{}/", self.prefix)) {
                    Some(rel) if !self.prefix.is_empty() => rel.to_owned(),
                    _ => key,
                }
            })
            .collect())
    }
}
