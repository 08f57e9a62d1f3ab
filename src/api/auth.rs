//! `TokenSource`: the client-credentials grant, cached and renewed.
//!
//! The token is renewed ahead of `expires_on` (fallback `expires_in`, then the documented two
//! hours) and, through [`TokenSource::invalidate`], after a 401. The stated lifetime is
//! clamped to [1 min, 2 h]: a server clock far off ours (an `expires_on` already past, or
//! hours ahead) must neither make every request fetch a token nor keep one past its real
//! end; the first such answer is logged once with the skew. A 400/401/403 from the token
//! endpoint is a configuration error: it is returned at once, never retried in a loop.
//!
//! The token request is bounded like every other: its answer must be complete within
//! `[http] timeout`, its JSON under `[http] max_json_size`, an error body is read to 64 KiB.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::client::{ApiError, HttpOptions, error_message, read_error, send_by, status_error};
use super::model::TokenResponse;
use super::transport;

/// Lifetime assumed when the server states none (the vendor documents two hours).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(7200);
/// Renew this long before expiry at most (the vendor's examples use 15 minutes).
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(900);
/// The shortest lifetime a token is used for, whatever `expires_on` says.
const MIN_LIFETIME: Duration = Duration::from_secs(60);
/// How far past the documented lifetime a stated one may reach before it counts as skew.
const SKEW_SLACK_SECS: i64 = 300;

struct CachedToken {
    value: SecretString,
    renew_at: Instant,
}

pub struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    /// `total` bounds the whole token request, answer included.
    options: HttpOptions,
    cached: Mutex<Option<CachedToken>>,
    /// The clock-skew warning is given once per account, not at every renewal.
    skew_warned: std::sync::atomic::AtomicBool,
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
        options: HttpOptions,
    ) -> Self {
        Self {
            http,
            token_url: format!("{api_base}/idp/token"),
            client_id: client_id.to_owned(),
            client_secret,
            options,
            cached: Mutex::new(None),
            skew_warned: std::sync::atomic::AtomicBool::new(false),
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
        let deadline = tokio::time::Instant::now() + self.options.total;
        let url = &self.token_url;
        let send = self
            .http
            .post(url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[("grant_type", "client_credentials")]);
        let response = send_by(send, url, deadline, &self.options).await?;
        let status = response.status();
        if matches!(status.as_u16(), 400 | 401 | 403) {
            let body = transport::error_text(response, deadline).await;
            return Err(ApiError::Credentials {
                client_id: self.client_id.clone(),
                status: status.as_u16(),
                reason: error_message(&body),
            });
        }
        if !status.is_success() {
            return Err(status_error(response, url.clone(), deadline).await);
        }
        let bytes = transport::read_limited(response, self.options.max_json, deadline)
            .await
            .map_err(|e| read_error(e, url, &self.options))?;
        let token: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|source| ApiError::Decode {
                url: self.token_url.clone(),
                source,
            })?;
        // From now on no log line, ledger row, table or webhook can carry it.
        crate::redact::register_token(&token.access_token);
        let (lifetime, skew) = lifetime(&token, chrono::Utc::now().timestamp());
        if let Some(stated) = skew
            && !self
                .skew_warned
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                stated_lifetime_secs = stated,
                used_lifetime_secs = lifetime.as_secs(),
                "the token's expires_on is {} from this machine's clock, outside the documented 2 h lifetime: one of the two clocks is off (check NTP here); the token is used for the clamped lifetime and renewed after any 401",
                humantime::format_duration(Duration::from_secs(stated.unsigned_abs())).to_string()
                    + if stated < 0 { " in the past" } else { " ahead" }
            );
        }
        let margin = MAX_RENEW_MARGIN.min(lifetime / 4);
        tracing::debug!(lifetime_secs = lifetime.as_secs(), "access token issued");
        Ok(CachedToken {
            value: SecretString::from(token.access_token),
            renew_at: requested + lifetime.saturating_sub(margin),
        })
    }
}

/// How long to use `token`, clamped to [`MIN_LIFETIME`, `DEFAULT_LIFETIME`], and the
/// stated lifetime when `expires_on` disagrees with `now` beyond what the vendor documents
/// (clock skew).
fn lifetime(token: &TokenResponse, now: i64) -> (Duration, Option<i64>) {
    let max = DEFAULT_LIFETIME.as_secs() as i64;
    let stated = token
        .expires_on
        .map(|on| on - now)
        .or(token.expires_in)
        .unwrap_or(max);
    let skewed = token.expires_on.is_some()
        && (stated < MIN_LIFETIME.as_secs() as i64 || stated > max + SKEW_SLACK_SECS);
    let used = stated.clamp(MIN_LIFETIME.as_secs() as i64, max);
    (Duration::from_secs(used as u64), skewed.then_some(stated))
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
        let now = 1_800_000_000;
        assert_eq!(
            lifetime(&token(Some(10), Some(now + 600)), now),
            (Duration::from_secs(600), None)
        );
        assert_eq!(
            lifetime(&token(Some(7000), None), now),
            (Duration::from_secs(7000), None)
        );
        assert_eq!(lifetime(&token(None, None), now), (DEFAULT_LIFETIME, None));
    }

    #[test]
    fn a_skewed_expires_on_is_clamped_and_reported() {
        let now = 1_800_000_000;
        // Three hours in the past: used for a minute, renewed then (or after a 401).
        assert_eq!(
            lifetime(&token(None, Some(now - 3 * 3600)), now),
            (MIN_LIFETIME, Some(-3 * 3600))
        );
        // Five hours ahead: never trusted past the documented two.
        assert_eq!(
            lifetime(&token(None, Some(now + 5 * 3600)), now),
            (DEFAULT_LIFETIME, Some(5 * 3600))
        );
        // A few minutes over two hours is the server rounding, not skew.
        assert_eq!(
            lifetime(&token(None, Some(now + 7200 + 60)), now),
            (DEFAULT_LIFETIME, None)
        );
        // A short expires_in is not a clock: clamped, not reported.
        assert_eq!(lifetime(&token(Some(10), None), now), (MIN_LIFETIME, None));
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
