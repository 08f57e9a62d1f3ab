//! Object Lock (`[archive.s3] object_lock`): the bucket is checked at start, and every
//! object is written with its retention in the same request that creates it (PutObject or
//! CreateMultipartUpload), so no object is ever in the bucket unlocked, not even for an
//! instant. object_store cannot send the lock headers, so these requests are our own
//! signed ones ([`ObjectTarget::send_signed`]).

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use object_store::client::HttpRequestBody;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::signed::{Reply, Signed};
use super::{ObjectTarget, S3Error};
use crate::config::ObjectLock;
use crate::ledger::ObjectRef;

/// The server-side encryption headers object_store would send on its own writes (from
/// `AWS_SERVER_SIDE_ENCRYPTION`, `AWS_SSE_KMS_KEY_ID`, `AWS_SSE_BUCKET_KEY_ENABLED`), for
/// our locked writes to match. SSE-C needs the customer key on every read too, which our
/// own HEAD does not send: refused with `object_lock`.
/// `get` answers object_store's config key names (its encryption key type is not public).
pub(super) fn encryption_headers(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(&'static str, String)>, String> {
    let Some(kind) = get("aws_server_side_encryption") else {
        return Ok(Vec::new());
    };
    if kind.eq_ignore_ascii_case("sse-c") {
        return Err(
            "cannot be combined with SSE-C (customer-provided keys, AWS_SERVER_SIDE_ENCRYPTION=sse-c); use SSE-S3 or SSE-KMS, or the bucket's default encryption"
                .to_owned(),
        );
    }
    let mut headers = vec![("x-amz-server-side-encryption", kind)];
    if let Some(key) = get("aws_sse_kms_key_id") {
        headers.push(("x-amz-server-side-encryption-aws-kms-key-id", key));
    }
    if let Some(enabled) = get("aws_sse_bucket_key_enabled") {
        headers.push(("x-amz-server-side-encryption-bucket-key-enabled", enabled));
    }
    Ok(headers)
}

/// An object's retention as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub mode: String,
    pub until: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LockConfiguration {
    object_lock_enabled: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateResult {
    upload_id: String,
}

impl ObjectTarget {
    /// The Object Lock the config asks for, if any.
    #[must_use]
    pub fn object_lock(&self) -> Option<&ObjectLock> {
        self.lock.as_ref()
    }

    /// Asks the bucket whether it can lock objects (`GET /<bucket>?object-lock`). A bucket
    /// that cannot, a server without Object Lock and a key without permission to ask are
    /// [`S3Error::ObjectLock`] (the operator must act); a network error or a 5xx is the
    /// ordinary kind and says nothing either way.
    pub async fn check_object_lock(&self) -> Result<(), S3Error> {
        let Some(lock) = &self.lock else {
            return Ok(());
        };
        let reply = self
            .send_signed(Signed::bodiless(
                "read the Object Lock configuration of",
                "",
                http::Method::GET,
                "?object-lock",
            ))
            .await?;
        let refuse = |reason: String| S3Error::ObjectLock {
            bucket: self.bucket.clone(),
            reason,
        };
        if reply.is_success() {
            let config: LockConfiguration = quick_xml::de::from_str(&reply.text).map_err(|e| {
                refuse(format!(
                    "answered with an unreadable Object Lock configuration ({e})"
                ))
            })?;
            if config.object_lock_enabled.as_deref() == Some("Enabled") {
                tracing::info!(bucket = %self.bucket, mode = lock.mode.as_header(), retain = ?lock.retain, "the bucket has Object Lock enabled; every object is locked as it is written");
                return Ok(());
            }
            return Err(refuse(NOT_ENABLED.to_owned()));
        }
        match (reply.status.as_u16(), reply.error_code()) {
            (_, Some("ObjectLockConfigurationNotFoundError")) => Err(refuse(NOT_ENABLED.to_owned())),
            (_, Some("NoSuchBucket")) => Err(refuse("does not exist".to_owned())),
            (501, _) | (_, Some("NotImplemented")) => Err(refuse(
                "is on a server that does not implement Object Lock; remove `object_lock` or use a server that has it"
                    .to_owned(),
            )),
            (403, _) => Err(refuse(format!(
                "refused to show its Object Lock configuration ({}); the key needs s3:GetBucketObjectLockConfiguration",
                reply.error_code().unwrap_or("403")
            ))),
            _ => Err(S3Error::Request {
                action: "read the Object Lock configuration of",
                key: self.bucket.clone(),
                message: reply.describe(),
            }),
        }
    }

    /// What a request that creates an object adds: its lock, and the encryption object_store
    /// would have asked for.
    fn creating_headers(&self, lock: &ObjectLock) -> Vec<(&'static str, String)> {
        let mut headers = Self::lock_headers(lock, Utc::now()).to_vec();
        headers.extend(self.encryption.iter().cloned());
        headers
    }

    /// The headers that lock an object written now until now + `retain`.
    fn lock_headers(lock: &ObjectLock, now: DateTime<Utc>) -> [(&'static str, String); 2] {
        [
            ("x-amz-object-lock-mode", lock.mode.as_header().to_owned()),
            (
                "x-amz-object-lock-retain-until-date",
                lock.retain
                    .after(now)
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
        ]
    }

    /// PutObject, create-only, locked, with the body's SHA-256 as its checksum (S3 requires
    /// a checksum with the lock headers). `None`: something is at the key already.
    pub(super) async fn put_locked(
        &self,
        lock: &ObjectLock,
        key: &str,
        bytes: Vec<u8>,
        sha256_hex: &str,
    ) -> Result<Option<ObjectRef>, S3Error> {
        let action = "put";
        let digest = hex::decode(sha256_hex).map_err(|e| S3Error::Request {
            action,
            key: key.to_owned(),
            message: format!("bad SHA-256 `{sha256_hex}`: {e}"),
        })?;
        let mut headers = vec![
            ("if-none-match", "*".to_owned()),
            ("content-type", "application/octet-stream".to_owned()),
            ("x-amz-sdk-checksum-algorithm", "SHA256".to_owned()),
            (
                "x-amz-checksum-sha256",
                base64::engine::general_purpose::STANDARD.encode(&digest),
            ),
        ];
        headers.extend(self.creating_headers(lock));
        let reply = self
            .send_signed(Signed {
                action,
                key,
                method: http::Method::PUT,
                query: "",
                headers,
                body: HttpRequestBody::from(bytes),
                body_sha256: Some(digest),
            })
            .await?;
        if reply.status == http::StatusCode::PRECONDITION_FAILED {
            return Ok(None);
        }
        let reply = ok_or_refused(reply, action, key)?;
        Ok(Some(ObjectRef {
            e_tag: reply.header("etag").map(str::to_owned),
            version_id: reply.header("x-amz-version-id").map(str::to_owned),
        }))
    }

    /// CreateMultipartUpload with the lock headers: the object the upload completes into
    /// is locked from its first moment. Returns the upload id.
    pub(super) async fn create_multipart_locked(
        &self,
        lock: &ObjectLock,
        key: &str,
    ) -> Result<String, S3Error> {
        let action = "create multipart upload";
        let mut headers = vec![
            ("content-type", "application/octet-stream".to_owned()),
            // Parts carry x-amz-checksum-sha256 (object_store is set up for it).
            ("x-amz-checksum-algorithm", "SHA256".to_owned()),
        ];
        headers.extend(self.creating_headers(lock));
        let reply = self
            .send_signed(Signed {
                action,
                key,
                method: http::Method::POST,
                query: "?uploads",
                headers,
                body: HttpRequestBody::from(Vec::new()),
                body_sha256: None,
            })
            .await?;
        let reply = ok_or_refused(reply, action, key)?;
        let result: InitiateResult =
            quick_xml::de::from_str(&reply.text).map_err(|e| S3Error::Request {
                action,
                key: key.to_owned(),
                message: format!("unreadable reply ({e}): {}", reply.describe()),
            })?;
        Ok(result.upload_id)
    }

    /// PutObjectRetention: locks the object's current version until `until` (RFC 3339).
    pub(super) async fn put_retention(
        &self,
        lock: &ObjectLock,
        key: &str,
        until: &str,
    ) -> Result<(), S3Error> {
        let action = "set the retention of";
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>",
            lock.mode.as_header()
        );
        let digest = Sha256::digest(body.as_bytes()).to_vec();
        let reply = self
            .send_signed(Signed {
                action,
                key,
                method: http::Method::PUT,
                query: "?retention",
                headers: vec![
                    ("content-type", "application/xml".to_owned()),
                    // S3 requires a checksum of the body on this call.
                    ("x-amz-sdk-checksum-algorithm", "SHA256".to_owned()),
                    (
                        "x-amz-checksum-sha256",
                        base64::engine::general_purpose::STANDARD.encode(&digest),
                    ),
                ],
                body: HttpRequestBody::from(body),
                body_sha256: Some(digest),
            })
            .await?;
        ok_or_refused(reply, action, key).map(drop)
    }

    /// The object's retention (`HEAD`), `None` when it has none.
    pub async fn retention(&self, key: &str) -> Result<Option<Retention>, S3Error> {
        let action = "head";
        let reply = self
            .send_signed(Signed::bodiless(action, key, http::Method::HEAD, ""))
            .await?;
        let reply = ok_or_refused(reply, action, key)?;
        let (Some(mode), Some(until)) = (
            reply.header("x-amz-object-lock-mode"),
            reply.header("x-amz-object-lock-retain-until-date"),
        ) else {
            return Ok(None);
        };
        let until = DateTime::parse_from_rfc3339(until)
            .map_err(|e| S3Error::Request {
                action,
                key: key.to_owned(),
                message: format!("unreadable retain-until date `{until}`: {e}"),
            })?
            .with_timezone(&Utc);
        Ok(Some(Retention {
            mode: mode.to_owned(),
            until,
        }))
    }
}

const NOT_ENABLED: &str = "does not have Object Lock enabled, so objects cannot be locked; enable it on the bucket (S3 allows that at creation, or later on a versioned bucket), or remove `object_lock`";

/// A reply that is not a success becomes the error, with S3's own words in it.
fn ok_or_refused(reply: Reply, action: &'static str, key: &str) -> Result<Reply, S3Error> {
    if reply.is_success() {
        return Ok(reply);
    }
    if reply.status == http::StatusCode::NOT_FOUND
        && reply.error_code().is_none_or(|c| c == "NoSuchKey")
    {
        return Err(S3Error::Store {
            action,
            key: key.to_owned(),
            source: object_store::Error::NotFound {
                path: key.to_owned(),
                source: reply.describe().into(),
            },
        });
    }
    Err(S3Error::Request {
        action,
        key: key.to_owned(),
        message: reply.describe(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Keep;
    use crate::config::LockMode;
    use chrono::TimeZone;

    #[test]
    fn encryption_headers_follow_object_stores_settings_and_sse_c_is_refused() {
        assert!(encryption_headers(|_| None).unwrap().is_empty());
        let kms = encryption_headers(|k| match k {
            "aws_server_side_encryption" => Some("aws:kms".to_owned()),
            "aws_sse_kms_key_id" => Some("arn:aws:kms:eu-central-1:1:key/k".to_owned()),
            "aws_sse_bucket_key_enabled" => Some("true".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            kms,
            [
                ("x-amz-server-side-encryption", "aws:kms".to_owned()),
                (
                    "x-amz-server-side-encryption-aws-kms-key-id",
                    "arn:aws:kms:eu-central-1:1:key/k".to_owned()
                ),
                (
                    "x-amz-server-side-encryption-bucket-key-enabled",
                    "true".to_owned()
                ),
            ]
        );
        let sse_c =
            encryption_headers(|k| (k == "aws_server_side_encryption").then(|| "sse-c".to_owned()));
        assert!(sse_c.unwrap_err().contains("SSE-C"));
    }

    #[test]
    fn lock_headers_name_the_mode_and_the_end_of_the_span_in_s3s_format() {
        let lock = ObjectLock {
            mode: LockMode::Governance,
            retain: Keep::parse("7y").unwrap(),
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 19, 30, 5).unwrap();
        let [mode, until] = ObjectTarget::lock_headers(&lock, now);
        assert_eq!(mode, ("x-amz-object-lock-mode", "GOVERNANCE".to_owned()));
        assert_eq!(
            until,
            (
                "x-amz-object-lock-retain-until-date",
                "2033-11-29T19:30:05Z".to_owned()
            )
        );
    }
}
