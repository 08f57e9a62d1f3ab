//! `CloudClient`: one method per endpoint of the Account Management API v2 that the
//! archiver reads. Every call carries a bearer token from [`TokenSource`] and is retried once
//! with a fresh token after a 401.
//!
//! The HTTP client is built without transparent decompression: download bodies arrive as
//! served, so their length can be checked against the listing's `size`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::auth::TokenSource;
use super::model::{ApiClientInfo, Report, ReportIdList, StoredItem};

pub const USER_AGENT: &str = concat!("report-archiver/", env!("CARGO_PKG_VERSION"));
/// Redirects followed at most; reqwest drops `Authorization` on a cross-host hop.
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach `{url}`: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
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

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Credentials { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Timeouts of the HTTP client.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    pub total: Duration,
    pub connect: Duration,
}

/// One entry of a stored list: parsed, or the reason it could not be.
pub type ListedItem = Result<StoredItem, String>;

#[derive(Debug)]
pub struct CloudClient {
    http: reqwest::Client,
    api_base: String,
    client_id: String,
    tokens: TokenSource,
}

impl CloudClient {
    /// `base_url` is the data-center URL, without `/api/2`.
    pub fn new(
        base_url: &str,
        client_id: &str,
        client_secret: SecretString,
        timeouts: HttpTimeouts,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeouts.total)
            .connect_timeout(timeouts.connect)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(ApiError::Build)?;
        let api_base = format!("{}/api/2", base_url.trim_end_matches('/'));
        let tokens = TokenSource::new(http.clone(), &api_base, client_id, client_secret);
        Ok(Self {
            http,
            api_base,
            client_id: client_id.to_owned(),
            tokens,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Issues a token now: surfaces bad credentials before anything else is attempted.
    pub async fn authenticate(&self) -> Result<(), ApiError> {
        self.tokens.token().await.map(|_| ())
    }

    /// `GET /clients/{client_id}` → the tenant the API client belongs to.
    pub async fn tenant_id(&self) -> Result<String, ApiError> {
        let path = format!("/clients/{}", self.client_id);
        let info: ApiClientInfo = self.get_json(&path).await?;
        Ok(info.tenant_id)
    }

    /// `GET /tenants/{tenant_id}/reports` → report ids visible to the tenant.
    pub async fn tenant_reports(&self, tenant_id: &str) -> Result<Vec<String>, ApiError> {
        let list: ReportIdList = self
            .get_json(&format!("/tenants/{tenant_id}/reports"))
            .await?;
        Ok(list.items)
    }

    /// `GET /reports/{report_id}`.
    pub async fn report(&self, report_id: &str) -> Result<Report, ApiError> {
        self.get_json(&format!("/reports/{report_id}")).await
    }

    /// `GET /reports/{report_id}/stored`. Each item is parsed on its own, so one malformed
    /// item fails alone instead of hiding the whole list.
    pub async fn stored_list(&self, report_id: &str) -> Result<Vec<ListedItem>, ApiError> {
        #[derive(serde::Deserialize)]
        struct RawList {
            items: Vec<serde_json::Value>,
        }
        let raw: RawList = self
            .get_json(&format!("/reports/{report_id}/stored"))
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
                serde_json::from_value::<StoredItem>(v)
                    .map_err(|e| format!("stored item {hint}: {e}"))
            })
            .collect())
    }

    /// `GET /reports/{report_id}/stored/{stored_id}`: the response, status checked, body
    /// unread, for the caller to stream.
    pub async fn download(
        &self,
        report_id: &str,
        stored_id: &str,
    ) -> Result<reqwest::Response, ApiError> {
        self.send(&format!("/reports/{report_id}/stored/{stored_id}"), true)
            .await
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let response = self.send(path, false).await?;
        let url = response.url().to_string();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ApiError::Transport {
                url: url.clone(),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|source| ApiError::Decode { url, source })
    }

    /// Sends an authorized GET; on 401 renews the token once and tries again.
    async fn send(&self, path: &str, accept_gzip: bool) -> Result<reqwest::Response, ApiError> {
        let url = format!("{}{}", self.api_base, path);
        let mut renewed = false;
        loop {
            let token = self.tokens.token().await?;
            let mut request = self
                .http
                .request(Method::GET, &url)
                .bearer_auth(token.expose_secret());
            if accept_gzip {
                request = request.header(reqwest::header::ACCEPT_ENCODING, "gzip");
            }
            let response = request.send().await.map_err(|source| ApiError::Transport {
                url: url.clone(),
                source,
            })?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                tracing::debug!(%url, "token refused; renewing it once");
                self.tokens.invalidate(&token).await;
                renewed = true;
                continue;
            }
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(ApiError::Status {
                    url,
                    status: status.as_u16(),
                    message: error_message(&body),
                });
            }
            return Ok(response);
        }
    }
}

/// The human part of an error body: `errorScheme` (`error.message`, `details.info`), the
/// flat OAuth shape (`error_description`), or the start of whatever text came back.
pub fn error_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        let text: String = body.chars().take(200).collect();
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
