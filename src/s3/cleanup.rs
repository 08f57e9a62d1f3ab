//! Multipart uploads a crash left open cost storage on S3 until aborted. At start the
//! daemon aborts those the ledger recorded, then asks the bucket (ListMultipartUploads)
//! for any others under the prefix in the archive's key layout: those a crash left in the
//! instant between the server creating an upload and the ledger recording its id. Nothing
//! of this run is uploading yet, and one prefix belongs to one daemon (the README says so).

use object_store::multipart::MultipartStore;
use object_store::path::Path as KeyPath;
use serde::Deserialize;

use super::signed::{Signed, encode_query_value};
use super::{ObjectTarget, S3Error};

/// Pages of 1,000 uploads; a bound on the loop, far above what a crash leaves.
const MAX_PAGES: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListUploadsResult {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<OpenUpload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OpenUpload {
    key: String,
    upload_id: String,
    initiated: Option<String>,
}

impl ObjectTarget {
    /// Aborts the multipart uploads earlier runs left open: the ledger's, then the
    /// bucket's own list. Returns how many were aborted. One that cannot be aborted now is
    /// logged and tried again at the next start: it never stops the daemon.
    pub async fn abort_leftover_uploads(&self) -> Result<usize, S3Error> {
        let mut aborted = 0;
        for open in self.ledger.open_uploads().await? {
            match self.abort(&open.object_key, &open.upload_id).await {
                Ok(()) => {
                    tracing::warn!(key = %open.object_key, upload_id = %open.upload_id, started_at = %open.started_at, "aborted a multipart upload left unfinished by an earlier run");
                    aborted += 1;
                    self.ledger.forget_upload(&open.upload_id).await?;
                }
                // Gone already (completed, aborted, or expired by a lifecycle rule).
                Err(object_store::Error::NotFound { .. }) => {
                    self.ledger.forget_upload(&open.upload_id).await?;
                }
                Err(e) => {
                    tracing::warn!(key = %open.object_key, upload_id = %open.upload_id, error.message = %e, "cannot abort a multipart upload left by an earlier run; trying again at the next start");
                }
            }
        }
        Ok(aborted + self.abort_unrecorded_uploads().await)
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), object_store::Error> {
        let path = KeyPath::parse(key)?;
        MultipartStore::abort_multipart(self.store.as_ref(), &path, &upload_id.to_owned()).await
    }

    /// The bucket's list of open uploads under the prefix, those in the archive's layout
    /// aborted. A server without ListMultipartUploads (s3s-fs) or a key without
    /// `s3:ListBucketMultipartUploads` only loses this second net: logged, never fatal.
    async fn abort_unrecorded_uploads(&self) -> usize {
        let uploads = match self.list_open_uploads().await {
            Ok(uploads) => uploads,
            Err(e) => {
                tracing::warn!(bucket = %self.bucket, error.message = %e, "cannot list the bucket's open multipart uploads; one a crash left unrecorded stays until a lifecycle rule (AbortIncompleteMultipartUpload) removes it");
                return 0;
            }
        };
        let mut aborted = 0;
        for upload in uploads {
            if !is_archive_key(&self.prefix, &upload.key) {
                continue;
            }
            match self.abort(&upload.key, &upload.upload_id).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    tracing::warn!(key = %upload.key, upload_id = %upload.upload_id, initiated = upload.initiated.as_deref().unwrap_or("?"), "aborted a multipart upload an earlier run left open and unrecorded");
                    aborted += 1;
                }
                Err(e) => {
                    tracing::warn!(key = %upload.key, upload_id = %upload.upload_id, error.message = %e, "cannot abort a multipart upload an earlier run left open; trying again at the next start");
                }
            }
        }
        aborted
    }

    async fn list_open_uploads(&self) -> Result<Vec<OpenUpload>, S3Error> {
        let action = "list multipart uploads in";
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            let mut query = format!("?uploads&prefix={}", encode_query_value(&prefix));
            if let Some((key, id)) = &markers {
                query.push_str(&format!(
                    "&key-marker={}&upload-id-marker={}",
                    encode_query_value(key),
                    encode_query_value(id)
                ));
            }
            let reply = self
                .send_signed(Signed::bodiless(action, "", http::Method::GET, &query))
                .await?;
            let fail = |message: String| S3Error::Request {
                action,
                key: self.bucket.clone(),
                message,
            };
            if !reply.is_success() {
                return Err(fail(reply.describe()));
            }
            let page: ListUploadsResult = quick_xml::de::from_str(&reply.text)
                .map_err(|e| fail(format!("unreadable reply ({e}): {}", reply.describe())))?;
            out.extend(page.uploads);
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(key), Some(id)) => markers = Some((key, id)),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// Whether `key` is under the prefix and shaped like an archive path
/// (`<account>/<report>/<yyyy>/<mm>/<file>`), so a foreign upload is left alone.
fn is_archive_key(prefix: &str, key: &str) -> bool {
    let relative = if prefix.is_empty() {
        Some(key)
    } else {
        key.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
    };
    let Some(relative) = relative else {
        return false;
    };
    let parts: Vec<&str> = relative.split('/').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 5
        && parts.iter().all(|p| !p.is_empty())
        && digits(parts[2], 4)
        && digits(parts[3], 2)
        && parts[4].contains('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_page_is_read_with_its_markers() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>a/k2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>a/k1</Key><UploadId>u1</UploadId><Initiated>2026-11-29T19:00:00.000Z</Initiated></Upload>
  <Upload><Key>a/k2</Key><UploadId>u2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let page: ListUploadsResult = quick_xml::de::from_str(xml).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("a/k2"));
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("u2"));
        let keys: Vec<_> = page.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["a/k1", "a/k2"]);
        let empty: ListUploadsResult = quick_xml::de::from_str(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert!(empty.uploads.is_empty());
    }

    #[test]
    fn only_keys_in_the_archive_layout_under_the_prefix_are_the_archives() {
        let key = "eu2/r-1/2026/11/20261129T000000Z_s-1.csv";
        assert!(is_archive_key("acronis", &format!("acronis/{key}")));
        assert!(is_archive_key("", key));
        assert!(!is_archive_key("acronis", key));
        assert!(!is_archive_key("acronis", &format!("acronis-old/{key}")));
        assert!(!is_archive_key("acronis", "acronis/notes/backup.tar"));
        assert!(!is_archive_key("", "eu2/r-1/26/11/x_y.csv"));
        assert!(!is_archive_key("", "eu2/r-1/2026/11/x_y.csv/extra"));
    }
}
