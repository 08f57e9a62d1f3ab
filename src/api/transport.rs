//! What every request to the cloud shares, bounded: the HTTP client (redirects limited and
//! never from https to http), reading a body with a size cap and a deadline, the cause of a
//! transport failure in words, and ids made into path segments.
//!
//! Nothing here trusts the server: a body is read only up to a cap and only until a
//! deadline; past either the connection is dropped, never drained.

use std::time::Duration;

use reqwest::redirect::{Attempt, Policy};

/// Redirects followed at most; reqwest drops `Authorization` on a cross-host hop.
pub const MAX_REDIRECTS: usize = 5;
/// An error answer is read this far for its message; the rest is never read.
pub const ERROR_BODY_CAP: usize = 64 * 1024;

/// The client every cloud request goes through (the token request too).
pub fn client(
    user_agent: &str,
    connect: Duration,
    read: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(connect)
        .read_timeout(read)
        .redirect(Policy::custom(redirect))
        .build()
}

/// At most [`MAX_REDIRECTS`] hops, and none from https down to plain http: the bearer
/// token, or the Basic credentials of the token request, would follow in clear text.
fn redirect(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error(RedirectRefused(format!(
            "too many redirects ({MAX_REDIRECTS})"
        )));
    }
    let downgrade = attempt.url().scheme() == "http"
        && attempt.previous().iter().any(|u| u.scheme() == "https");
    if downgrade {
        let to = attempt.url().clone();
        return attempt.error(RedirectRefused(format!(
            "refused a redirect from https to plain http ({}://{}…)",
            to.scheme(),
            to.host_str().unwrap_or("?")
        )));
    }
    attempt.follow()
}

/// Why a redirect was not followed; shows up in the error's cause chain.
#[derive(Debug)]
struct RedirectRefused(String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// The cause of a transport failure in words, e.g. `connection refused`,
/// `too many redirects (5)`, `dns error: …`, instead of reqwest's bare "error sending
/// request". Every distinct message of the source chain is kept, outermost first, minus
/// reqwest's own top line (it repeats the URL, which the caller names already).
pub fn describe(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    if error.is_timeout() && !parts.iter().any(|p| p.contains("timed out")) {
        parts.insert(0, "timed out".to_owned());
    }
    if parts.is_empty() {
        return error.to_string();
    }
    parts.join(": ")
}

/// Why a bounded read stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The body (or its declared length) went past the cap.
    TooLarge {
        limit: u64,
    },
    /// The deadline passed before the body ended.
    Timeout,
    Transport(reqwest::Error),
}

/// Reads the whole body, refusing it once it passes `limit` bytes (by Content-Length
/// before a byte is read, else as it streams) or once `deadline` has passed.
pub async fn read_limited(
    response: reqwest::Response,
    limit: u64,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(ReadError::TooLarge { limit });
    }
    let read = async {
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(ReadError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or(Err(ReadError::Timeout))
}

/// The start of an error answer, for its message: at most [`ERROR_BODY_CAP`] bytes, within
/// `deadline`; whatever could be read by then (possibly nothing).
pub async fn error_text(response: reqwest::Response, deadline: tokio::time::Instant) -> String {
    let read = async {
        let mut response = response;
        let mut body = Vec::new();
        while body.len() < ERROR_BODY_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = ERROR_BODY_CAP - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        body
    };
    // The response (and with it the connection) is dropped here, whatever is left unread.
    let body = tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or_default();
    String::from_utf8_lossy(&body).into_owned()
}

/// One path segment: every byte but the URL-unreserved ones percent-encoded, so a `/`,
/// `?` or `#` from the server cannot change which resource is asked for. `None` for an
/// empty, `.` or `..` segment: URL parsing would drop or climb over those (even encoded as
/// `%2E`), so no encoding makes them safe.
pub fn segment(value: &str) -> Option<String> {
    if matches!(value, "" | "." | "..") {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_cannot_climb_or_add_a_query() {
        assert_eq!(segment("6a7b-8c_9d").as_deref(), Some("6a7b-8c_9d"));
        assert_eq!(segment("../x?y#z").as_deref(), Some("..%2Fx%3Fy%23z"));
        assert_eq!(segment("a b\n").as_deref(), Some("a%20b%0A"));
        assert_eq!(segment("é").as_deref(), Some("%C3%A9"));
        for bad in ["", ".", ".."] {
            assert_eq!(segment(bad), None, "{bad:?}");
        }
        // What the URL parser makes of an encoded segment: still one segment, nothing climbed.
        let url = reqwest::Url::parse(&format!(
            "http://h/api/2/tenants/{}/reports",
            segment("../../x?y").unwrap()
        ))
        .unwrap();
        assert_eq!(url.path(), "/api/2/tenants/..%2F..%2Fx%3Fy/reports");
        assert_eq!(url.query(), None);
    }
}
