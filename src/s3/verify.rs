//! `verify` on the S3 target, one object at a time: [`ObjectTarget::hash_object`] streams
//! an object back (the store's own checksums are per part for multipart uploads, so only
//! our full-file hash says the report is intact), [`ObjectTarget::list_relative`] lists
//! what is under the prefix, and with `object_lock` [`ObjectTarget::unlocked`] reads an
//! intact object's retention (a HEAD) and [`ObjectTarget::lock_until`] sets what is lacking.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path as KeyPath;

use super::{ObjectTarget, S3Error};

/// An object without the retention `object_lock` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlocked {
    /// What it has, and what it should have.
    pub detail: String,
    /// The retain-until date it should have (archive time + `retain`), RFC 3339.
    pub retain_until: String,
}

impl ObjectTarget {
    /// An intact object that lacks the retention `lock` asks for: locked until its archive
    /// time + `retain`. One whose span is over already needs nothing. A day's slack covers
    /// the time between the upload and the ledger's row.
    ///
    /// `fetched_at`: when it was archived (RFC 3339, from the ledger).
    pub async fn unlocked(
        &self,
        relative: &str,
        fetched_at: &str,
        now: DateTime<Utc>,
    ) -> Option<Unlocked> {
        let lock = self.lock?;
        let key = self.key(relative);
        let archived = DateTime::parse_from_rfc3339(fetched_at)
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
        let detail = match self.retention(&key).await {
            Err(e) => format!("cannot read its Object Lock retention ({e}); {asks}"),
            Ok(None) => format!("no Object Lock retention; {asks}"),
            Ok(Some(r)) if r.until + TimeDelta::days(1) < wanted => format!(
                "locked ({}) only until {}; {asks}",
                r.mode,
                r.until.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            Ok(Some(_)) => return None,
        };
        Some(Unlocked {
            detail,
            retain_until: wanted_text,
        })
    }

    /// `verify --repair` for retention: the object gets the retention it should have
    /// (PutObjectRetention; S3 only lets it be lengthened, never shortened). Without
    /// `object_lock` there is nothing to set.
    pub async fn lock_until(&self, relative: &str, until: &str) -> Result<(), S3Error> {
        match self.lock {
            Some(lock) => self.put_retention(&lock, &self.key(relative), until).await,
            None => Ok(()),
        }
    }

    /// Every object under the prefix, as a path relative to it.
    pub async fn list_relative(&self) -> Result<Vec<String>, S3Error> {
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
