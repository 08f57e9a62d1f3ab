//! `verify` on the S3 target: every object the ledger names is streamed back and re-hashed
//! against the ledger's SHA-256 (the store's own checksums are per part for multipart
//! uploads, so only our full-file hash says the report is intact), and the objects under
//! the prefix that no row names are listed as untracked. With `object_lock`, each intact
//! object's retention is read too (a HEAD), and `--repair` sets what is lacking.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as KeyPath;

use super::{ObjectTarget, S3Error};
use crate::config::ObjectLock;
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
        let now = Utc::now();
        let mut checks = futures::stream::iter(rows)
            .map(|row| async move {
                let key = self.key(&row.path);
                let outcome = self.hash_object(&key).await;
                let lock = match (&self.lock, &outcome) {
                    (Some(lock), Ok((_, sha))) if *sha == row.sha256 => {
                        self.lock_finding(lock, &key, &row, now).await
                    }
                    _ => None,
                };
                (row, outcome, lock)
            })
            .buffer_unordered(PARALLEL_FILES);
        while let Some((row, outcome, lock)) = checks.next().await {
            progress.item_done(u64::try_from(row.stored_bytes).unwrap_or(0));
            report.unlocked.extend(lock);
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
        report.unlocked.sort_by(|a, b| a.path.cmp(&b.path));
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

    /// An intact object that lacks the retention `lock` asks for: locked until its archive
    /// time + `retain`. One whose span is over already needs nothing. A day's slack covers
    /// the time between the upload and the ledger's row.
    async fn lock_finding(
        &self,
        lock: &ObjectLock,
        key: &str,
        row: &ArchivedRow,
        now: DateTime<Utc>,
    ) -> Option<Finding> {
        let archived = DateTime::parse_from_rfc3339(&row.fetched_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        let wanted = lock.retain.after(archived);
        if wanted <= now {
            return None;
        }
        let wanted_text = wanted.to_rfc3339_opts(SecondsFormat::Secs, true);
        let asks = format!(
            "object_lock asks for {} until {wanted_text}",
            lock.mode.as_header()
        );
        let detail = match self.retention(key).await {
            Err(e) => format!("cannot read its Object Lock retention ({e}); {asks}"),
            Ok(None) => format!("no Object Lock retention; {asks}"),
            Ok(Some(r)) if r.until + TimeDelta::days(1) < wanted => format!(
                "locked ({}) only until {}; {asks}",
                r.mode,
                r.until.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            Ok(Some(_)) => return None,
        };
        let mut finding = Finding::new(row, Some(row.sha256.clone()), detail);
        finding.retain_until = Some(wanted_text);
        Some(finding)
    }

    /// `verify --repair` for retention: each unlocked object gets the retention it should
    /// have (PutObjectRetention; S3 only lets it be lengthened, never shortened).
    pub async fn repair_locks(&self, report: &mut VerifyReport) {
        let Some(lock) = self.lock else {
            return;
        };
        let repair = report.repair.get_or_insert_with(Default::default);
        for finding in &report.unlocked {
            let key = self.key(&finding.path);
            let outcome = match finding.retain_until.as_deref() {
                Some(until) => self.put_retention(&lock, &key, until).await,
                None => Ok(()),
            };
            match outcome {
                Ok(()) => repair.locked.push(finding.path.clone()),
                Err(e) => {
                    let mut f = finding.clone();
                    f.detail = format!("cannot set its retention: {e}");
                    repair.not_restored.push(f);
                }
            }
        }
    }

    /// Every object under the prefix, as a path relative to it.
    async fn list_relative(&self) -> Result<Vec<String>, S3Error> {
        let prefix = (!self.prefix.is_empty()).then(|| KeyPath::from(self.prefix.as_str()));
        let metas: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(S3Error::store(
                "list",
                &format!("{}/{}", self.bucket, self.prefix),
            ))?;
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
