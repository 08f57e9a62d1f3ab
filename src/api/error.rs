//! [`ApiError`]: why a call to the cloud failed, which failures are worth another try, and
//! the server's own words taken from an error answer (bounded, its message only).

use std::time::Duration;

use crate::config::HttpOptions;

use super::retry::{Transient, Verdict, parse_retry_after};
use super::transport::{self, ReadError, Timeouts};

/// An error message taken from a server's answer is cut to this many characters.
const MESSAGE_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The message describes the whole cause chain ([`transport::describe`]), so `error` is
    /// not a `#[source]`: a printer that walks sources would print the cause twice.
    #[error("cannot reach `{url}`: {}", transport::describe(.error, *.timeouts))]
    Transport {
        url: String,
        timeouts: Timeouts,
        error: reqwest::Error,
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
    /// 404 or 410, which the spec declares for neither a stored list nor a download: the
    /// pass reads it as a deletion (issue 17), not a failure. Never retried, as any 4xx.
    #[error("`{url}` answered HTTP {status}: {message}")]
    NotFound {
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

impl Transient for ApiError {
    fn verdict(&self) -> Verdict {
        match self {
            // Connect errors, resets, timeouts and bodies cut short are all worth another go;
            // only a request we could not even build is not.
            Self::Transport { error, .. } if !error.is_builder() => Verdict::Retry { after: None },
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

impl ApiError {
    /// The status of a 404/410 answer ([`ApiError::NotFound`]), and its message.
    pub fn not_found(&self) -> Option<(u16, &str)> {
        match self {
            Self::NotFound {
                status, message, ..
            } => Some((*status, message)),
            _ => None,
        }
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
    let message = error_message(&transport::error_text(response, deadline).await);
    if matches!(status, 404 | 410) {
        return ApiError::NotFound {
            url,
            status,
            message,
        };
    }
    ApiError::Status {
        url,
        status,
        message,
        retry_after,
    }
}

/// A bounded read that stopped, as the error of the request at `url`.
pub(super) fn read_error(e: ReadError, url: &str, options: &HttpOptions) -> ApiError {
    match e {
        ReadError::TooLarge { limit } => ApiError::TooLarge {
            url: url.to_owned(),
            limit,
        },
        ReadError::Timeout => ApiError::Timeout {
            url: url.to_owned(),
            after: options.total,
        },
        ReadError::Transport(error) => ApiError::Transport {
            url: url.to_owned(),
            timeouts: timeouts(options),
            error,
        },
    }
}

/// The client timeouts of `options`, for [`transport::describe`].
pub(super) fn timeouts(options: &HttpOptions) -> Timeouts {
    Timeouts {
        connect: options.connect,
        read: options.read,
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
