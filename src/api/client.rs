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

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::auth::TokenSource;
pub use super::error::{ApiError, error_message};
pub(super) use super::error::{read_error, status_error, timeouts};
use super::model::{ApiClientInfo, Report, ReportIdList, StoredItem};
use super::rate::RateLimiter;
use super::retry::RetryPolicy;
use super::transport;

pub const USER_AGENT: &str = concat!("report-archiver/", env!("CARGO_PKG_VERSION"));
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
        let tokens = TokenSource::new(http.clone(), &api_base, client_id, client_secret, options);
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
                    .map_err(|e| read_error(e, &url, &self.options))?;
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
            let response = send_by(request, &url, deadline, &self.options).await?;
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

/// Sends `request`; its answer's headers are due by `deadline` (`options.total` after it
/// started).
pub(super) async fn send_by(
    request: reqwest::RequestBuilder,
    url: &str,
    deadline: tokio::time::Instant,
    options: &HttpOptions,
) -> Result<reqwest::Response, ApiError> {
    match tokio::time::timeout_at(deadline, request.send()).await {
        Ok(sent) => sent.map_err(|error| ApiError::Transport {
            url: url.to_owned(),
            timeouts: timeouts(options),
            error,
        }),
        Err(_) => Err(ApiError::Timeout {
            url: url.to_owned(),
            after: options.total,
        }),
    }
}

/// `value` as one URL path segment, or the error that refuses it.
pub(super) fn segment(what: &'static str, value: &str) -> Result<String, ApiError> {
    transport::segment(value).ok_or_else(|| ApiError::UnsafeId {
        what,
        value: format!("{:?}", value.chars().take(64).collect::<String>()),
    })
}
