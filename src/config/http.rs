//! `[http]`: how every HTTP client of ours behaves, and [`HttpSettings::options`], the one
//! place those settings become client options (the cloud client and the S3 target).

use super::*;

/// `[http]`: client timeouts (humantime strings such as `"5m"`, `"10s"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Whole request, body included. Default 5 minutes.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// TCP + TLS connect. Default 10 seconds.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest silence while a body streams; a download has no total limit, only this.
    /// Default 60 seconds.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Retries of one request after a transient failure (connect error, reset, timeout,
    /// 5xx, 429, a cut-off body). Default 4.
    pub retries: u32,
    /// Cap of the exponential backoff between retries (jittered). Default 60 seconds.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Requests per second per account; 0 means no limit beyond `concurrency`. Default
    /// [`DEFAULT_REQUESTS_PER_SECOND`].
    pub requests_per_second: f64,
    /// Moved to `[defaults] failure_backoff` (it is a pass policy, not the client's); still
    /// read from here, with a warning, when `[defaults]` does not set it.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_backoff: Option<Duration>,
    /// Largest JSON answer read (token, discovery, a report's stored list); a bigger one is
    /// refused instead of buffered. Bytes, or a string with a unit. Default 64 MiB.
    #[serde(with = "byte_size")]
    pub max_json_size: u64,
}

/// The default request rate per account. The vendor publishes no limit and declares no
/// 429 for these endpoints (API §3.3), so this is a courtesy: ten requests a second is
/// within what one admin's browser session makes, yet a no-op pass of a 2,000-report tenant
/// (about 110 requests once finished one-time reports rest) takes about 11 s, and the first
/// pass of that tenant (about 8,000 requests: a listing and, once, a settings read per
/// report, and the downloads) about 14 minutes, once. Unlimited, a pass would send as
/// fast as `concurrency` connections allow, hundreds a second against a local network.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 4,
            max_backoff: Duration::from_secs(60),
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            failure_backoff: None,
            max_json_size: 64 * 1024 * 1024,
        }
    }
}

/// What every HTTP client of ours is built with: the cloud client and the S3 target's.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    /// Whole request for the token and JSON calls; until the headers for downloads.
    pub total: Duration,
    pub connect: Duration,
    /// Longest silence while a body streams.
    pub read: Duration,
    /// More tries of one request after a transient failure.
    pub retries: u32,
    /// Cap of the backoff between those tries.
    pub max_backoff: Duration,
    /// 0: no limit.
    pub requests_per_second: f64,
    /// Largest JSON body read.
    pub max_json: u64,
}

impl HttpSettings {
    /// The client options `[http]` asks for.
    #[must_use]
    pub fn options(&self) -> HttpOptions {
        HttpOptions {
            total: self.timeout,
            connect: self.connect_timeout,
            read: self.read_timeout,
            retries: self.retries,
            max_backoff: self.max_backoff,
            requests_per_second: self.requests_per_second,
            max_json: self.max_json_size,
        }
    }
}
