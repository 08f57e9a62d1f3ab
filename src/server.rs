//! `/healthz` and `/metrics` on their own listener (`[server] listen`), apart from anything
//! else, so that exposing one port never exposes more than these two read-only answers.
//!
//! - `GET /healthz`: 200 with a JSON [`HealthReport`] when healthy, else 503 with the same
//!   body, whose `reasons` say why (see `health.rs` for the rule).
//! - `GET /metrics`: OpenMetrics text (see `metrics.rs`); the ledger row count is read at
//!   scrape time.
//! - [`probe`]: the client side, for `report-archiver health` (a Docker `HEALTHCHECK`
//!   without curl).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::HealthReport;
use crate::ledger::Ledger;
use crate::metrics::CONTENT_TYPE;
use crate::monitor::Monitor;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot listen on {addr} (server.listen): {source}; pick a free port or remove server.listen"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds now, so a taken port fails the start and tests can bind port 0 and ask the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

#[derive(Clone)]
struct AppState {
    monitor: Monitor,
    ledger: Option<Ledger>,
}

pub fn router(monitor: Monitor, ledger: Option<Ledger>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(AppState { monitor, ledger })
}

/// Serves until `stop` is cancelled. Errors are logged: losing the endpoint must not stop
/// the archiving.
pub fn spawn(listener: TcpListener, router: Router, stop: CancellationToken) {
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error.message = %e, "the health and metrics endpoint stopped");
        }
    });
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    let report = state.monitor.health.check();
    let status = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    tracing::debug!(status = status.as_u16(), "healthz");
    (status, Json(report))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Some(ledger) = &state.ledger {
        match ledger.archived_count().await {
            Ok(rows) => state.monitor.metrics.set_ledger_rows(rows),
            Err(e) => {
                tracing::warn!(error.message = %e, "cannot count the ledger rows for /metrics")
            }
        }
    }
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.monitor.metrics.render(),
    )
}

/// GETs a `/healthz` URL: (is it 200, the body). Anything but 200 is unhealthy.
///
/// # Errors
/// The request could not be sent or its body not read (daemon down, wrong URL, timeout).
pub async fn probe(url: &str, timeout: Duration) -> Result<(bool, String), reqwest::Error> {
    let client = reqwest::Client::builder()
        .user_agent(crate::api::client::USER_AGENT)
        .timeout(timeout)
        .build()?;
    let response = client.get(url).send().await?;
    let healthy = response.status() == reqwest::StatusCode::OK;
    // `/healthz` answers a few lines; whatever else listens there is read no further.
    let mut response = response;
    let mut body = Vec::new();
    while body.len() < 64 * 1024
        && let Some(chunk) = response.chunk().await?
    {
        body.extend_from_slice(&chunk);
    }
    body.truncate(64 * 1024);
    Ok((healthy, String::from_utf8_lossy(&body).into_owned()))
}
