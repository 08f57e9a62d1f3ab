//! Serving: the router over the handlers, and a server on a local port for tests.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};

use super::FakeCloud;
use super::handlers::{
    api_error, download, fetch_client, fetch_report, issue_token, list_stored, observe, stats,
    tenant_reports,
};
use super::manage::{create_report, delete_report, update_report};

impl FakeCloud {
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/2/idp/token", post(issue_token))
            .route("/api/2/clients/{client_id}", get(fetch_client))
            .route("/api/2/tenants/{tenant_id}/reports", get(tenant_reports))
            .route("/api/2/reports", post(create_report))
            .route(
                "/api/2/reports/{report_id}",
                get(fetch_report).put(update_report).delete(delete_report),
            )
            .route("/api/2/reports/{report_id}/stored", get(list_stored))
            .route(
                "/api/2/reports/{report_id}/stored/{stored_id}",
                get(download),
            )
            .fallback(|| async { api_error(StatusCode::NOT_FOUND, "Endpoint not found") })
            .layer(middleware::from_fn_with_state(self.clone(), observe))
            // Outside the counting layer: the benchmark reads it between runs.
            .route("/_fake/stats", get(stats))
            .with_state(self.clone())
    }

    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Serves on 127.0.0.1 with a port the OS picks, until the handle is stopped or dropped.
    pub async fn spawn(&self) -> std::io::Result<RunningFakeCloud> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.clone().serve(listener, async move {
            let _ = rx.await;
        }));
        Ok(RunningFakeCloud {
            addr,
            base_url: format!("http://{addr}"),
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A fake cloud serving in a tokio task; dropping it or calling [`Self::stop`] ends the server.
pub struct RunningFakeCloud {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, without `/api/2`.
    pub base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningFakeCloud {
    /// Stops accepting, lets in-flight requests finish (up to 5 s), then aborts the rest.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningFakeCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
