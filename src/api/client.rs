//! `CloudClient`: one method per endpoint of the Account Management API v2 that the
//! archiver reads. Every call carries a bearer token from [`TokenSource`] and is sent again
//! once with a fresh token after a 401; transient failures (connect errors, resets,
//! timeouts, 5xx, 429, bodies that are not the JSON asked for) are retried per
//! [`RetryPolicy`], and requests are spaced by the account's rate limit.
//!
//! The HTTP client is built without transparent decompression: download bodies arrive as
//! served, so their length can be checked against the listing's `size`. Every request must
//! have its answer's headers within `[http] timeout`; a JSON body must also end within it
//! and stay under `[http] max_json_size`; an error body is read to 64 KiB at most. Download
//! bodies have only the read timeout, since a big report may take long. Ids go into URLs
//! as percent-encoded path segments ([`transport::segment`]).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::auth::TokenSource;
use super::model::{ApiClientInfo, Report, ReportIdList, StoredItem};
use super::rate::RateLimiter;
use super::retry::{RetryPolicy, Transient, Verdict, parse_retry_after};
use super::transport::{self, ReadError};

pub const USER_AGENT: &str = concat!("report-archiver/", env!("CARGO_PKG_VERSION"));
/// An error message taken from a server's answer is cut to this many characters.
const MESSAGE_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach `{url}`: {}", transport::describe(.source))]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "`{url}` did not answer in full within {} ([http] timeout): timed out; the server is slow or stalled, or the timeout is too short",
        humantime::format_duration(*.after)
    )]
    Timeout { url: String, after: Duration },
    #[error(
        "`{url}` sent more than {limit} bytes of JSON ([http] max_json_size); refused rather than held in memory. Raise max_json_size if the tenant really lists that much"
    )]
    TooLarge { url: String, limit: u64 },
    #[error("refusing {what} {value} from the server: it cannot be one segment of a URL path")]
    UnsafeId { what: &'static str, value: String },
    #[error(
        "the cloud refused the credentials of API client `{client_id}` (HTTP {status}: {reason}); check client_id, the client secret and base_url"
    )]
    Credentials {
        client_id: String,
        status: u16,
        reason: String,
    },
    #[error("`{url}` answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("`{url}` answered a body that is not the expected JSON: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

impl Transient for ApiError {
    fn verdict(&self) -> Verdict {
        match self {
            // Connect errors, resets, timeouts and bodies cut short are all worth another go;
            // only a request we could not even build is not.
            Self::Transport { source, .. } if !source.is_builder() => {
                Verdict::Retry { after: None }
            }
            Self::Status {
                status: 408 | 429 | 500 | 502 | 503 | 504,
                retry_after,
                ..
            } => Verdict::Retry {
                after: *retry_after,
            },
            // A proxy's error page with a 200, or a body cut mid-JSON.
            Self::Decode { .. } | Self::Timeout { .. } => Verdict::Retry { after: None },
            _ => Verdict::GiveUp,
        }
    }
}

/// How the HTTP client behaves: `[http]`, converted where it is defined.
pub use crate::config::HttpOptions;

/// One entry of a stored list: parsed, or why it could not be.
pub type ListedItem = Result<StoredItem, Malformed>;

/// A stored-list entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub message: String,
    /// Its `status` says `in_progress`: an item the cloud is still generating may lack
    /// fields (`created_at`, `size`), so it waits for a later pass instead of failing.
    pub in_progress: bool,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug)]
pub struct CloudClient {
    http: reqwest::Client,
    api_base: String,
    client_id: String,
    tokens: TokenSource,
    pub(super) options: HttpOptions,
    pub(super) retry: RetryPolicy,
    rate: RateLimiter,
}

impl CloudClient {
    /// `base_url` is the data-center URL, without `/api/2`.
    pub fn new(
        base_url: &str,
        client_id: &str,
        client_secret: SecretString,
        options: HttpOptions,
    ) -> Result<Self, ApiError> {
        let http = transport::client(USER_AGENT, options.connect, options.read)
            .map_err(ApiError::Build)?;
        let api_base = format!("{}/api/2", base_url.trim_end_matches('/'));
        let tokens = TokenSource::new(
            http.clone(),
            &api_base,
            client_id,
            client_secret,
            options.total,
            options.max_json,
        );
        Ok(Self {
            http,
            api_base,
            client_id: client_id.to_owned(),
            tokens,
            options,
            retry: RetryPolicy {
                retries: options.retries,
                max_backoff: options.max_backoff,
            },
            rate: RateLimiter::new(options.requests_per_second),
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Issues a token now: surfaces bad credentials before anything else is attempted.
    pub async fn authenticate(&self) -> Result<(), ApiError> {
        self.retry
            .run("token", || self.tokens.token())
            .await
            .map(|_| ())
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// `GET /clients/{client_id}` → the tenant the API client belongs to.
    pub async fn tenant_id(&self) -> Result<String, ApiError> {
        let path = format!("/clients/{}", segment("client id", &self.client_id)?);
        let info: ApiClientInfo = self.get_json(&path).await?;
        Ok(info.tenant_id)
    }

    /// `GET /tenants/{tenant_id}/reports` → report ids visible to the tenant.
    pub async fn tenant_reports(&self, tenant_id: &str) -> Result<Vec<String>, ApiError> {
        let list: ReportIdList = self
            .get_json(&format!(
                "/tenants/{}/reports",
                segment("tenant id", tenant_id)?
            ))
            .await?;
        Ok(list.items)
    }

    /// `GET /reports/{report_id}`.
    pub async fn report(&self, report_id: &str) -> Result<Report, ApiError> {
        self.get_json(&format!("/reports/{}", segment("report id", report_id)?))
            .await
    }

    /// `GET /reports/{report_id}/stored`. Each item is parsed on its own, so one malformed
    /// item fails alone instead of hiding the whole list.
    pub async fn stored_list(&self, report_id: &str) -> Result<Vec<ListedItem>, ApiError> {
        #[derive(serde::Deserialize)]
        struct RawList {
            items: Vec<serde_json::Value>,
        }
        let raw: RawList = self
            .get_json(&format!(
                "/reports/{}/stored",
                segment("report id", report_id)?
            ))
            .await?;
        Ok(raw
            .items
            .into_iter()
            .map(|v| {
                let hint = v
                    .get("id")
                    .and_then(|i| i.as_str())
                    .unwrap_or("<no id>")
                    .to_owned();
                let in_progress = v.get("status").and_then(|s| s.as_str()) == Some("in_progress");
                serde_json::from_value::<StoredItem>(v).map_err(|e| Malformed {
                    message: format!("stored item {hint}: {e}"),
                    in_progress,
                })
            })
            .collect())
    }

    /// `GET /reports/{report_id}/stored/{stored_id}`: the response, status checked, body
    /// unread, for the caller to stream. Failures of the body itself are the caller's to
    /// retry (it retries the whole download).
    pub async fn download(
        &self,
        report_id: &str,
        stored_id: &str,
    ) -> Result<reqwest::Response, ApiError> {
        let path = format!(
            "/reports/{}/stored/{}",
            segment("report id", report_id)?,
            segment("stored id", stored_id)?
        );
        self.retry
            .run(&path, || async {
                self.send(Method::GET, &path, None, true)
                    .await
                    .map(|(response, _deadline)| response)
            })
            .await
    }

    pub(super) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.retry
            .run(path, || async {
                let (response, deadline) = self.send(Method::GET, path, None, false).await?;
                let url = response.url().to_string();
                let bytes = transport::read_limited(response, self.options.max_json, deadline)
                    .await
                    .map_err(|e| read_error(e, &url, self.options.total))?;
                serde_json::from_slice(&bytes).map_err(|source| ApiError::Decode { url, source })
            })
            .await
    }

    /// Sends an authorized request once (with `body` as JSON); on 401 renews the token once
    /// and sends it again (a 401 was refused before anything was done). Returns the
    /// response with its headers read, and the deadline of this attempt (the caller's body
    /// read of a JSON answer must end by then).
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        download: bool,
    ) -> Result<(reqwest::Response, tokio::time::Instant), ApiError> {
        let url = format!("{}{}", self.api_base, path);
        let mut renewed = false;
        loop {
            let token = self.tokens.token().await?;
            self.rate.acquire().await;
            let deadline = tokio::time::Instant::now() + self.options.total;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token.expose_secret());
            if let Some(body) = body {
                request = request.json(body);
            }
            if download {
                request = request.header(reqwest::header::ACCEPT_ENCODING, "gzip");
            }
            let response = send_by(request, &url, deadline, self.options.total).await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                tracing::debug!(%url, "token refused; renewing it once");
                self.tokens.invalidate(&token).await;
                renewed = true;
                continue;
            }
            if !status.is_success() {
                return Err(status_error(response, url, deadline).await);
            }
            return Ok((response, deadline));
        }
    }
}

/// Sends `request`; its answer's headers are due by `deadline` (`total` after it started).
pub(super) async fn send_by(
    request: reqwest::RequestBuilder,
    url: &str,
    deadline: tokio::time::Instant,
    total: Duration,
) -> Result<reqwest::Response, ApiError> {
    match tokio::time::timeout_at(deadline, request.send()).await {
        Ok(sent) => sent.map_err(|source| ApiError::Transport {
            url: url.to_owned(),
            source,
        }),
        Err(_) => Err(ApiError::Timeout {
            url: url.to_owned(),
            after: total,
        }),
    }
}

/// An answer that is not a success, as an error: its status, the message from the start of
/// its body (read until `deadline` at most) and the `Retry-After` it asks for.
pub(super) async fn status_error(
    response: reqwest::Response,
    url: String,
    deadline: tokio::time::Instant,
) -> ApiError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let body = transport::error_text(response, deadline).await;
    ApiError::Status {
        url,
        status,
        message: error_message(&body),
        retry_after,
    }
}

/// `value` as one URL path segment, or the error that refuses it.
pub(super) fn segment(what: &'static str, value: &str) -> Result<String, ApiError> {
    transport::segment(value).ok_or_else(|| ApiError::UnsafeId {
        what,
        value: format!("{:?}", value.chars().take(64).collect::<String>()),
    })
}

/// A bounded read that stopped, as the error of the request at `url`.
pub(super) fn read_error(e: ReadError, url: &str, total: Duration) -> ApiError {
    match e {
        ReadError::TooLarge { limit } => ApiError::TooLarge {
            url: url.to_owned(),
            limit,
        },
        ReadError::Timeout => ApiError::Timeout {
            url: url.to_owned(),
            after: total,
        },
        ReadError::Transport(source) => ApiError::Transport {
            url: url.to_owned(),
            source,
        },
    }
}

/// The human part of an error body: `errorScheme` (`error.message`, `details.info`), the
/// flat OAuth shape (`error_description`), or the start of whatever text came back.
pub fn error_message(body: &str) -> String {
    // Secrets are scrubbed before the message is cut: a credential echoed by the server must
    // not survive as a fragment too short to recognise.
    let body = crate::redact::scrub(body);
    let message = parse_error_message(&body);
    if message.chars().count() <= MESSAGE_CHARS {
        return message;
    }
    let mut cut: String = message.chars().take(MESSAGE_CHARS).collect();
    cut.push('…');
    cut
}

fn parse_error_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        let text: String = body.chars().take(MESSAGE_CHARS + 1).collect();
        return if text.trim().is_empty() {
            "no error details".into()
        } else {
            text.trim().to_owned()
        };
    };
    if let Some(e) = v.get("error").filter(|e| e.is_object()) {
        let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
        let info = e
            .get("details")
            .and_then(|d| d.get("info"))
            .and_then(|i| i.as_str());
        let code = e.get("code").map(|c| c.to_string()).unwrap_or_default();
        return match info {
            Some(info) => format!("{message} ({info}; code {code})"),
            None => format!("{message} (code {code})"),
        };
    }
    let error = v.get("error").and_then(|e| e.as_str()).unwrap_or("");
    let description = v
        .get("error_description")
        .and_then(|d| d.as_str())
        .unwrap_or("");
    match (error.is_empty(), description.is_empty()) {
        (true, true) => "no error details".into(),
        (false, true) => error.to_owned(),
        (true, false) => description.to_owned(),
        (false, false) => format!("{error}: {description}"),
    }
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn error_bodies_of_both_shapes_are_read() {
        let scheme = r#"{"error":{"code":1005,"domain":"x","message":"Tenant not found","details":{"info":null}}}"#;
        assert_eq!(error_message(scheme), "Tenant not found (code 1005)");
        let flat = r#"{"error":"invalid_client","error_description":"bad secret"}"#;
        assert_eq!(error_message(flat), "invalid_client: bad secret");
        assert_eq!(error_message("<html>oops</html>"), "<html>oops</html>");
        assert_eq!(error_message(""), "no error details");
    }
}
