//! The S3 requests object_store 0.14 cannot make, signed with its own SigV4 signer and
//! sent through its HTTP client ([`ObjectTarget::send_signed`]). Among them
//! CompleteMultipartUpload with `If-None-Match: *`, so a multipart upload is create-only
//! too (object_store's own `complete` always overwrites; apache/arrow-rs-object-store#289).

use object_store::aws::AwsAuthorizer;
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::multipart::PartId;
use serde::Deserialize;

use super::{ObjectTarget, S3Error};
use crate::ledger::ObjectRef;

/// The most of a reply to one of our signed requests that is read (its XML is far smaller).
const REPLY_CAP: usize = 1024 * 1024;

pub(super) enum Completed {
    Done(ObjectRef),
    /// 412: an object is at the key already; the upload is still open.
    Exists,
}

/// object_store's opaque part id when a checksum is configured: its own `PartMetadata`
/// serialised by quick-xml; without one it is the bare ETag.
#[derive(Deserialize)]
struct PartMetadata {
    e_tag: String,
    checksum_sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteResult {
    #[serde(rename = "ETag")]
    e_tag: Option<String>,
}

/// Backoff between tries of one signed request: 100 ms doubling, at most 2 s. The tries
/// are `[http] retries` more, like object_store's own requests.
const RETRY_BASE: std::time::Duration = std::time::Duration::from_millis(100);
const RETRY_CAP: std::time::Duration = std::time::Duration::from_secs(2);

/// Why one attempt got no reply.
struct AttemptFailed {
    message: String,
    /// The request may have been sent (or the reply lost): worth another try.
    on_the_wire: bool,
}

/// A signed request's answer, read whole (S3's XML replies are small).
pub(super) struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub text: String,
}

impl Reply {
    /// S3's error code (`<Code>…</Code>`), when the reply is an error document.
    pub fn error_code(&self) -> Option<&str> {
        let start = self.text.find("<Code>")? + "<Code>".len();
        let len = self.text[start..].find("</Code>")?;
        Some(&self.text[start..start + len])
    }

    /// S3 may answer 200 and still report an error in the body.
    pub fn is_success(&self) -> bool {
        self.status.is_success() && !self.text.contains("<Error>")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Worth another try: a 5xx, or an error S3 reports inside a 200 (CompleteMultipartUpload
    /// does) that it documents as transient.
    pub fn is_transient(&self) -> bool {
        self.status.is_server_error()
            || (self.status.is_success()
                && matches!(
                    self.error_code(),
                    Some("InternalError" | "SlowDown" | "ServiceUnavailable")
                ))
    }

    /// For an error message: the status and the start of the reply.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.status, excerpt(&self.text))
    }
}

/// One request object_store has no API for.
pub(super) struct Signed<'a> {
    pub action: &'static str,
    /// The full key, or empty for the bucket itself.
    pub key: &'a str,
    pub method: http::Method,
    /// `?…` after the key, already encoded; empty for none.
    pub query: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: HttpRequestBody,
    /// SHA-256 of the body when known, so it is not hashed again for the signature.
    pub body_sha256: Option<Vec<u8>>,
}

impl<'a> Signed<'a> {
    /// A request without headers or body (the GETs and HEADs).
    pub fn bodiless(
        action: &'static str,
        key: &'a str,
        method: http::Method,
        query: &'a str,
    ) -> Self {
        Self {
            action,
            key,
            method,
            query,
            headers: Vec::new(),
            body: HttpRequestBody::from(Vec::new()),
            body_sha256: None,
        }
    }
}

impl ObjectTarget {
    /// Signs `request` with object_store's own SigV4 signer and the store's credentials,
    /// sends it through object_store's HTTP client and reads the answer. A network error
    /// or a transient reply ([`Reply::is_transient`]) is tried again, `[http] retries`
    /// times with backoff. Every request here may be repeated: a create-only write whose
    /// first answer was lost meets its own object (412) and adopts it once re-hashed; a
    /// second CreateMultipartUpload leaves an unrecorded upload the next start aborts.
    /// A network error that outlasts the tries is an [`S3Error::Request`]; any other HTTP
    /// status is the caller's to judge.
    pub(super) async fn send_signed(&self, request: Signed<'_>) -> Result<Reply, S3Error> {
        let Signed {
            action,
            key,
            method,
            query,
            headers,
            body,
            body_sha256,
        } = request;
        let fail = |message: String| S3Error::Request {
            action,
            key: if key.is_empty() {
                self.bucket.clone()
            } else {
                key.to_owned()
            },
            message,
        };
        // Keys keep to [A-Za-z0-9-_./] (config and archive paths are checked), so the URL
        // path is the key as is.
        let url = if key.is_empty() {
            format!("{}{query}", self.bucket_url)
        } else {
            format!("{}/{key}{query}", self.bucket_url)
        };
        let mut attempt = 0u32;
        loop {
            let outcome = self
                .send_once(
                    &method,
                    &url,
                    &headers,
                    body.clone(),
                    body_sha256.as_deref(),
                )
                .await;
            let retry = match &outcome {
                Err(failure) => failure.on_the_wire,
                Ok(reply) => reply.is_transient(),
            };
            if !retry || attempt >= self.retries {
                return match outcome {
                    Ok(reply) => Ok(reply),
                    Err(failure) => Err(fail(failure.message)),
                };
            }
            let wait = RETRY_BASE
                .saturating_mul(1 << attempt.min(5))
                .min(RETRY_CAP);
            attempt += 1;
            let why = match &outcome {
                Ok(reply) => reply.describe(),
                Err(failure) => failure.message.clone(),
            };
            // WARN, as the cloud client's retries: a struggling bucket must not be silence.
            let attempts = self.retries.saturating_add(1);
            tracing::warn!(
                action,
                key,
                attempt,
                attempts,
                wait_ms = wait.as_millis() as u64,
                why,
                "S3 attempt {attempt}/{attempts} failed; retrying in {}",
                humantime::format_duration(std::time::Duration::from_millis(
                    wait.as_millis() as u64
                ))
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One signed attempt.
    async fn send_once(
        &self,
        method: &http::Method,
        url: &str,
        headers: &[(&'static str, String)],
        body: HttpRequestBody,
        body_sha256: Option<&[u8]>,
    ) -> Result<Reply, AttemptFailed> {
        // Not ours to try again: the credential chain has its own deadline and retries.
        let local = |message: String| AttemptFailed {
            message,
            on_the_wire: false,
        };
        let wire = |message: String| AttemptFailed {
            message,
            on_the_wire: true,
        };
        // Signed afresh each time: the signature covers the request's time.
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| local(e.to_string()))?;
        let mut builder = http::Request::builder().method(method.clone()).uri(url);
        // Added before signing, so they are signed (S3 refuses unsigned x-amz-* headers).
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let mut request: HttpRequest = builder.body(body).map_err(|e| local(e.to_string()))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, body_sha256)
            .map_err(|e| local(e.to_string()))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| wire(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        // S3's replies to these requests are a few hundred bytes of XML; a server that sends
        // more is read no further than REPLY_CAP (the rest is dropped with the connection).
        let mut stream = response.into_body().bytes_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            let chunk = chunk.map_err(|e| wire(format!("reading the reply: {e}")))?;
            let room = REPLY_CAP - bytes.len();
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() >= REPLY_CAP {
                break;
            }
        }
        Ok(Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    pub(super) async fn complete_create_only(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartId],
    ) -> Result<Completed, S3Error> {
        let action = "complete multipart upload";
        let mut body = String::from("<CompleteMultipartUpload>");
        for (index, part) in parts.iter().enumerate() {
            let meta =
                quick_xml::de::from_str::<PartMetadata>(&part.content_id).unwrap_or(PartMetadata {
                    e_tag: part.content_id.clone(),
                    checksum_sha256: None,
                });
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag>",
                index + 1,
                quick_xml::escape::escape(meta.e_tag.as_str())
            ));
            if let Some(sum) = meta.checksum_sha256 {
                body.push_str(&format!(
                    "<ChecksumSHA256>{}</ChecksumSHA256>",
                    quick_xml::escape::escape(sum.as_str())
                ));
            }
            body.push_str("</Part>");
        }
        body.push_str("</CompleteMultipartUpload>");
        let query = format!("?uploadId={}", encode_query_value(upload_id));
        let reply = self
            .send_signed(Signed {
                action,
                key,
                method: http::Method::POST,
                query: &query,
                headers: vec![
                    ("if-none-match", "*".to_owned()),
                    ("content-type", "application/xml".to_owned()),
                ],
                body: HttpRequestBody::from(body),
                body_sha256: None,
            })
            .await?;
        if reply.status == http::StatusCode::PRECONDITION_FAILED {
            return Ok(Completed::Exists);
        }
        let fail = |message: String| S3Error::Request {
            action,
            key: key.to_owned(),
            message,
        };
        if !reply.is_success() {
            return Err(fail(reply.describe()));
        }
        let result: CompleteResult = quick_xml::de::from_str(&reply.text)
            .map_err(|e| fail(format!("unreadable reply ({e}): {}", excerpt(&reply.text))))?;
        Ok(Completed::Done(ObjectRef {
            e_tag: result.e_tag,
            version_id: reply.header("x-amz-version-id").map(str::to_owned),
        }))
    }
}

/// RFC 3986 unreserved characters stay, everything else is %XX (what SigV4 expects).
pub(super) fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The start of a server reply, for an error message.
fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_errors_inside_a_200_that_s3_calls_transient_are_retried() {
        let reply = |status: u16, text: &str| Reply {
            status: http::StatusCode::from_u16(status).unwrap(),
            headers: http::HeaderMap::new(),
            text: text.to_owned(),
        };
        assert!(reply(503, "<Error><Code>SlowDown</Code></Error>").is_transient());
        assert!(reply(500, "").is_transient());
        assert!(reply(200, "<Error><Code>InternalError</Code></Error>").is_transient());
        assert!(!reply(200, "<CompleteMultipartUploadResult/>").is_transient());
        assert!(!reply(412, "<Error><Code>PreconditionFailed</Code></Error>").is_transient());
        assert!(!reply(403, "<Error><Code>AccessDenied</Code></Error>").is_transient());
        assert_eq!(
            reply(403, "<Error><Code>AccessDenied</Code></Error>").error_code(),
            Some("AccessDenied")
        );
    }

    #[test]
    fn upload_ids_are_encoded_for_signing() {
        assert_eq!(encode_query_value("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(encode_query_value("x+y/z="), "x%2By%2Fz%3D");
    }

    #[test]
    fn part_ids_with_a_checksum_are_read() {
        let id = "<PartMetadata><e_tag>\"abc\"</e_tag><checksum_sha256>c2hh</checksum_sha256></PartMetadata>";
        let meta: PartMetadata = quick_xml::de::from_str(id).unwrap();
        assert_eq!(meta.e_tag, "\"abc\"");
        assert_eq!(meta.checksum_sha256.as_deref(), Some("c2hh"));
    }
}
