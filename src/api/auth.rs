//! `TokenSource`: the client-credentials grant, cached and renewed.
//!
//! The token is renewed ahead of `expires_on` (fallback `expires_in`, then the documented two
//! hours) and, through [`TokenSource::invalidate`], after a 401. A 400/401/403 from the token
//! endpoint is a configuration error: it is returned at once, never retried in a loop.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::client::{ApiError, error_message};
use super::model::TokenResponse;

/// Lifetime assumed when the server states none (the vendor documents two hours).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(7200);
/// Renew this long before expiry at most (the vendor's examples use 15 minutes).
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(900);

struct CachedToken {
    value: SecretString,
    renew_at: Instant,
}

pub struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    cached: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        api_base: &str,
        client_id: &str,
        client_secret: SecretString,
    ) -> Self {
        Self {
            http,
            token_url: format!("{api_base}/idp/token"),
            client_id: client_id.to_owned(),
            client_secret,
            cached: Mutex::new(None),
        }
    }

    /// A valid access token, from the cache or freshly issued.
    pub async fn token(&self) -> Result<SecretString, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.renew_at
        {
            return Ok(t.value.clone());
        }
        let fresh = self.issue().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Drops the cached token after the server refused it, unless another task already
    /// replaced it, so a burst of 401s from parallel downloads issues one new token.
    pub async fn invalidate(&self, refused: &SecretString) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| t.value.expose_secret() == refused.expose_secret())
        {
            *cached = None;
        }
    }

    #[tracing::instrument(name = "issue_token", skip_all, fields(client_id = %self.client_id))]
    async fn issue(&self) -> Result<CachedToken, ApiError> {
        let requested = Instant::now();
        let response = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|source| ApiError::Transport {
                url: self.token_url.clone(),
                source,
            })?;
        let status = response.status();
        if matches!(status.as_u16(), 400 | 401 | 403) {
            let body = response.text().await.unwrap_or_default();
            return Err(ApiError::Credentials {
                client_id: self.client_id.clone(),
                status: status.as_u16(),
                reason: error_message(&body),
            });
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ApiError::Status {
                url: self.token_url.clone(),
                status: status.as_u16(),
                message: error_message(&body),
                retry_after: None,
            });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ApiError::Transport {
                url: self.token_url.clone(),
                source,
            })?;
        let token: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|source| ApiError::Decode {
                url: self.token_url.clone(),
                source,
            })?;
        // From now on no log line, ledger row, table or webhook can carry it.
        crate::redact::register_token(&token.access_token);
        let lifetime = lifetime(&token);
        let margin = MAX_RENEW_MARGIN.min(lifetime / 4);
        tracing::debug!(lifetime_secs = lifetime.as_secs(), "access token issued");
        Ok(CachedToken {
            value: SecretString::from(token.access_token),
            renew_at: requested + lifetime.saturating_sub(margin),
        })
    }
}

fn lifetime(token: &TokenResponse) -> Duration {
    let now = chrono::Utc::now().timestamp();
    let secs = token
        .expires_on
        .map(|on| on - now)
        .or(token.expires_in)
        .unwrap_or(DEFAULT_LIFETIME.as_secs() as i64);
    Duration::from_secs(secs.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_in: Option<i64>, expires_on: Option<i64>) -> TokenResponse {
        TokenResponse {
            access_token: "t".into(),
            expires_in,
            expires_on,
        }
    }

    #[test]
    fn lifetime_prefers_expires_on_then_expires_in_then_two_hours() {
        let now = chrono::Utc::now().timestamp();
        let on = lifetime(&token(Some(10), Some(now + 600))).as_secs();
        assert!((598..=600).contains(&on), "{on}");
        assert_eq!(lifetime(&token(Some(10), None)).as_secs(), 10);
        assert_eq!(lifetime(&token(None, None)), DEFAULT_LIFETIME);
        assert_eq!(lifetime(&token(None, Some(now - 5))).as_secs(), 0);
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = TokenResponse {
            access_token: "super-secret-token".into(),
            expires_in: None,
            expires_on: None,
        };
        assert!(!format!("{t:?}").contains("super-secret-token"));
    }
}
