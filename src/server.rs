//! `/healthz` and `/metrics` on their own listener (`[server] listen`), apart from anything
//! else, so that exposing one port never exposes more than these two read-only answers.
//!
//! - `GET /healthz`: 200 with a JSON [`HealthReport`] when healthy, else 503 with the same
//!   body, whose `reasons` say why (see `health.rs` for the rule).
//! - `GET /metrics`: OpenMetrics text when the scraper asks for it (Prometheus does), else
//!   the classic text format (see `metrics/`). What a pass does not tell is read at scrape
//!   time: the ledger's row count and newest row, each account's last progress, and the
//!   free space of the archive's and the ledger's filesystems.
//! - [`probe`]: the client side, for `report-archiver health` (a Docker `HEALTHCHECK`
//!   without curl).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::HealthReport;
use crate::ledger::Ledger;
use crate::metrics::{CLASSIC_CONTENT_TYPE, CONTENT_TYPE, FilesystemSpace, Metrics};
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
    volumes: Vec<Volume>,
}

/// A path whose filesystem's free space `/metrics` shows, under its `volume` label.
#[derive(Debug, Clone)]
pub struct Volume {
    /// `archive` or `ledger`.
    pub name: &'static str,
    pub path: PathBuf,
}

pub fn router(monitor: Monitor, ledger: Option<Ledger>, volumes: Vec<Volume>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(AppState {
            monitor,
            ledger,
            volumes,
        })
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

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let metrics = &state.monitor.metrics;
    let progress = state.monitor.health.last_progress();
    metrics.set_last_progress(&progress);
    if let Some(ledger) = &state.ledger {
        let accounts: Vec<&str> = progress.iter().map(|(a, _)| a.as_str()).collect();
        read_ledger(metrics, ledger, &accounts).await;
    }
    for volume in &state.volumes {
        let space = read_space(volume.path.clone()).await;
        metrics.set_filesystem(volume.name, &volume.path.to_string_lossy(), space);
    }
    // Prometheus asks for OpenMetrics first; `curl`, `promtool check metrics` and older
    // scrapers get the classic format they parse.
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if wants_openmetrics {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render())
    } else {
        (
            [(header::CONTENT_TYPE, CLASSIC_CONTENT_TYPE)],
            metrics.render_classic(),
        )
    }
}

/// The gauges read from the ledger at each scrape; a query that fails is logged and its
/// gauge keeps its last value.
async fn read_ledger(metrics: &Metrics, ledger: &Ledger, accounts: &[&str]) {
    match ledger.archived_count().await {
        Ok(rows) => metrics.set_ledger_rows(rows),
        Err(e) => tracing::warn!(error.message = %e, "cannot count the ledger rows for /metrics"),
    }
    match ledger.newest_row_at().await {
        Ok(at) => metrics.set_ledger_newest_row(at.map(|at| at.timestamp())),
        Err(e) => {
            tracing::warn!(error.message = %e, "cannot read the newest ledger row for /metrics")
        }
    }
    match ledger.resting_reports().await {
        // Every account shows, with 0 when none of its reports rests.
        Ok(resting) => {
            let counts: Vec<(String, i64)> = accounts
                .iter()
                .map(|&account| {
                    let n = resting
                        .iter()
                        .find(|(a, _)| a == account)
                        .map_or(0, |r| r.1);
                    (account.to_owned(), n)
                })
                .collect();
            metrics.set_resting_reports(&counts);
        }
        Err(e) => {
            tracing::warn!(error.message = %e, "cannot count the resting reports for /metrics")
        }
    }
}

/// How long a scrape waits for `statvfs`: well inside Prometheus's 10 s scrape timeout.
const STATVFS_TIMEOUT: Duration = Duration::from_secs(2);

/// The filesystem's space, off the async threads and bounded in time (a hung network mount
/// blocks statvfs, and the scrape must still answer); `None`, logged, when it cannot be read.
async fn read_space(path: PathBuf) -> Option<FilesystemSpace> {
    let shown = path.display().to_string();
    let task = tokio::task::spawn_blocking(move || filesystem_space(&path));
    let why = match tokio::time::timeout(STATVFS_TIMEOUT, task).await {
        Ok(Ok(Ok(space))) => return Some(space),
        Ok(Ok(Err(e))) => e.to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {STATVFS_TIMEOUT:?} (a hung network mount?)"),
    };
    tracing::warn!(path = %shown, error.message = %why, "cannot read the free space for /metrics; is the path still there and its filesystem mounted?");
    None
}

#[cfg(target_os = "linux")]
fn filesystem_space(path: &Path) -> std::io::Result<FilesystemSpace> {
    let st = rustix::fs::statvfs(path)?;
    Ok(FilesystemSpace {
        avail_bytes: st.f_bavail.saturating_mul(st.f_frsize),
        size_bytes: st.f_blocks.saturating_mul(st.f_frsize),
    })
}

#[cfg(not(target_os = "linux"))]
fn filesystem_space(_path: &Path) -> std::io::Result<FilesystemSpace> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn free_space_is_read_for_a_folder_and_none_for_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let space = read_space(dir.path().to_owned()).await.unwrap();
        assert!(space.size_bytes > 0 && space.avail_bytes <= space.size_bytes);
        assert_eq!(read_space(dir.path().join("missing")).await, None);
    }
}
