//! The one S3 request object_store 0.14 cannot make: CompleteMultipartUpload with
//! `If-None-Match: *`, so a multipart upload is create-only too (its own `complete`
//! always overwrites; apache/arrow-rs-object-store#289). Signed with object_store's own
//! SigV4 signer and sent through its HTTP client.

use object_store::aws::AwsAuthorizer;
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::multipart::PartId;
use serde::Deserialize;

use super::{ObjectTarget, S3Error};
use crate::ledger::ObjectRef;

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

impl ObjectTarget {
    pub(super) async fn complete_create_only(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartId],
    ) -> Result<Completed, S3Error> {
        let fail = |message: String| S3Error::Request {
            action: "complete multipart upload",
            key: key.to_owned(),
            message,
        };
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

        // Keys keep to [A-Za-z0-9-_./] (config and archive paths are checked), so the URL
        // path is the key as is; the upload id is encoded like SigV4 encodes it.
        let url = format!(
            "{}/{key}?uploadId={}",
            self.bucket_url,
            encode_query_value(upload_id)
        );
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| fail(format!("no credentials: {e}")))?;
        let mut request: HttpRequest = http::Request::builder()
            .method(http::Method::POST)
            .uri(&url)
            // Added before signing, so it is signed.
            .header("if-none-match", "*")
            .header("content-type", "application/xml")
            .body(HttpRequestBody::from(body))
            .map_err(|e| fail(e.to_string()))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| fail(e.to_string()))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let version_id = response
            .headers()
            .get("x-amz-version-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let reply = response
            .into_body()
            .bytes()
            .await
            .map_err(|e| fail(format!("reading the reply: {e}")))?;
        let text = String::from_utf8_lossy(&reply);
        if status == http::StatusCode::PRECONDITION_FAILED {
            return Ok(Completed::Exists);
        }
        // S3 may answer 200 and still report an error in the body.
        if !status.is_success() || text.contains("<Error>") {
            return Err(fail(format!("{status}: {}", excerpt(&text))));
        }
        let result: CompleteResult = quick_xml::de::from_str(&text)
            .map_err(|e| fail(format!("unreadable reply ({e}): {}", excerpt(&text))))?;
        Ok(Completed::Done(ObjectRef {
            e_tag: result.e_tag,
            version_id,
        }))
    }
}

/// RFC 3986 unreserved characters stay, everything else is %XX (what SigV4 expects).
fn encode_query_value(value: &str) -> String {
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
