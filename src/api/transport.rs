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

/// The client's own timeouts, so that a timed-out request can say which one ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `[http] connect_timeout`.
    pub connect: Duration,
    /// `[http] read_timeout`.
    pub read: Duration,
}

/// The cause of a transport failure in words an operator acts on, e.g. `connection refused
/// (tcp connect error: Connection refused (os error 111)); nothing listens there: check
/// base_url and that the service is up`, instead of reqwest's bare "error sending request
/// for url". The plain-words cause comes first, then every distinct message of the source
/// chain (reqwest's own top line is left out: it repeats the URL, which the caller names),
/// then what to check.
pub fn describe(error: &reqwest::Error, timeouts: Timeouts) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut io_kind = None;
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    let detail = if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    };
    match cause(error, io_kind, &detail.to_lowercase(), timeouts) {
        Some((cause, fix)) => format!("{cause} ({detail}); {fix}"),
        None => detail,
    }
}

/// The kind of failure, in plain words, and what to check; `None` when the chain says it
/// well enough itself (a refused redirect, a cut-off body).
fn cause(
    error: &reqwest::Error,
    io_kind: Option<std::io::ErrorKind>,
    detail: &str,
    timeouts: Timeouts,
) -> Option<(String, &'static str)> {
    use std::io::ErrorKind;
    let secs = |d: Duration| humantime::format_duration(d).to_string();
    if error.is_timeout() || io_kind == Some(ErrorKind::TimedOut) {
        return Some(if error.is_connect() {
            (
                format!(
                    "timed out after {} connecting ([http] connect_timeout)",
                    secs(timeouts.connect)
                ),
                "check base_url and the network path (firewall, proxy), or raise connect_timeout",
            )
        } else {
            (
                format!(
                    "timed out after {} without data ([http] read_timeout)",
                    secs(timeouts.read)
                ),
                "the server is slow or stalled, or read_timeout is too short",
            )
        });
    }
    let plain = match io_kind {
        Some(ErrorKind::ConnectionRefused) => Some((
            "connection refused",
            "nothing listens there: check base_url and that the service is up",
        )),
        Some(ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => Some((
            "connection reset by the other end",
            "a proxy or the server dropped it; it is retried",
        )),
        _ if detail.contains("dns error") || detail.contains("failed to lookup address") => Some((
            "DNS lookup failed",
            "check the host name in base_url and the resolver",
        )),
        _ if detail.contains("certificate") || detail.contains("tls") => Some((
            "TLS handshake failed",
            "check base_url's scheme and host, and the system's CA certificates",
        )),
        _ => None,
    };
    plain.map(|(cause, fix)| (cause.to_owned(), fix))
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
