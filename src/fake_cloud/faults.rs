//! Seeded fault injection for the fake cloud: a fraction of requests fail in one of the ways
//! a real service, proxy or network does. The same seed gives the same sequence of draws.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::content::SplitMix64;

/// One way a request can go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// 429 with `Retry-After`.
    TooManyRequests,
    /// 429 without `Retry-After`: the Account Management API declares no 429 at all
    /// (API §3.3), so a throttling proxy in front of it need not say when. Not in
    /// [`FaultKind::ALL`], so the seeded sequences of existing plans stay as they were.
    Throttled,
    /// 503.
    Unavailable,
    /// The connection dies right after the headers.
    Reset,
    /// A download body cut short of its Content-Length.
    Truncated,
    /// A download body that stops sending half-way for [`FaultPlan::stall`].
    Stall,
    /// A 200 whose body is an HTML error page instead of JSON.
    NotJson,
    /// The bearer token dies early: 401, as after an expiry.
    TokenExpired,
    /// A listing whose first item's `size` is one more than the bytes served.
    SizeMismatch,
}

impl FaultKind {
    pub const ALL: [Self; 8] = [
        Self::TooManyRequests,
        Self::Unavailable,
        Self::Reset,
        Self::Truncated,
        Self::Stall,
        Self::NotJson,
        Self::TokenExpired,
        Self::SizeMismatch,
    ];

    fn applies_to(self, endpoint: Endpoint) -> bool {
        match self {
            Self::TooManyRequests | Self::Throttled | Self::Unavailable | Self::Reset => true,
            Self::Truncated | Self::Stall => endpoint == Endpoint::Download,
            Self::NotJson => matches!(endpoint, Endpoint::Json | Endpoint::Listing),
            Self::TokenExpired => endpoint != Endpoint::Token,
            Self::SizeMismatch => endpoint == Endpoint::Listing,
        }
    }
}

/// What kind of endpoint a request hit, for choosing a fault that makes sense there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Token,
    Json,
    Listing,
    Download,
}

/// The fault knob: `rate` of requests fail with one of `kinds`, drawn from `seed`.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub seed: u64,
    /// 0.0..=1.0
    pub rate: f64,
    pub kinds: Vec<FaultKind>,
    /// Sent with 429s.
    pub retry_after: Duration,
    /// How long a stalled body stops.
    pub stall: Duration,
}

impl FaultPlan {
    /// Every kind at `rate`, `Retry-After: 1`, 3-second stalls.
    pub fn new(seed: u64, rate: f64) -> Self {
        Self {
            seed,
            rate,
            kinds: FaultKind::ALL.to_vec(),
            retry_after: Duration::from_secs(1),
            stall: Duration::from_secs(3),
        }
    }
}

pub(crate) struct ActiveFaults {
    pub(crate) plan: FaultPlan,
    rng: SplitMix64,
    pub(crate) injected: HashMap<FaultKind, u32>,
}

impl ActiveFaults {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        Self {
            rng: SplitMix64(plan.seed),
            plan,
            injected: HashMap::new(),
        }
    }

    /// Whether this request fails, and how.
    pub(crate) fn draw(&mut self, endpoint: Endpoint) -> Option<FaultKind> {
        if self.rng.unit() >= self.plan.rate {
            return None;
        }
        let fitting: Vec<FaultKind> = self
            .plan
            .kinds
            .iter()
            .copied()
            .filter(|k| k.applies_to(endpoint))
            .collect();
        let kind = *fitting.get(self.rng.below(fitting.len() as u64) as usize)?;
        *self.injected.entry(kind).or_insert(0) += 1;
        Some(kind)
    }
}

/// Marks a request whose handler must misbehave itself (bodies, listings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Injected(pub(crate) FaultKind, pub(crate) Duration);

pub(crate) fn too_many_requests(retry_after: Duration) -> Response {
    let mut response =
        super::handlers::api_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.as_secs().max(1)),
    );
    response
}

/// A 429 that does not say when to come back.
pub(crate) fn throttled() -> Response {
    super::handlers::api_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
}

/// `status` with an HTML error page, as a load balancer in front of the API answers.
pub(crate) fn html_error(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><head><title>503 Service Temporarily Unavailable</title></head>\n<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>\n",
    )
        .into_response()
}

pub(crate) fn unavailable() -> Response {
    super::handlers::api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service temporarily unavailable",
    )
}

/// Headers go out, then the body fails: hyper drops the connection.
pub(crate) fn reset() -> Response {
    let body = Body::from_stream(futures::stream::iter([Err::<Bytes, _>(
        std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset"),
    )]));
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(4096u32));
    response
}

pub(crate) fn not_json() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    )
        .into_response()
}

/// Half the body, then an error: the client sees fewer bytes than Content-Length.
pub(crate) fn truncated(wire: Bytes) -> Body {
    let half = wire;
    let cut = half.len() / 2;
    Body::from_stream(futures::stream::iter([
        Ok(half.slice(..cut)),
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "injected truncation",
        )),
    ]))
}

/// Half the body, a pause of `stall`, then the rest.
pub(crate) fn stalled(wire: Bytes, stall: Duration) -> Body {
    let all = wire;
    let cut = all.len() / 2;
    let (first, rest) = (all.slice(..cut), all.slice(cut..));
    let stream = futures::stream::unfold(0u8, move |step| {
        let (first, rest) = (first.clone(), rest.clone());
        async move {
            match step {
                0 => Some((Ok::<Bytes, std::io::Error>(first), 1)),
                1 => {
                    tokio::time::sleep(stall).await;
                    Some((Ok(rest), 2))
                }
                _ => None,
            }
        }
    });
    Body::from_stream(stream)
}
