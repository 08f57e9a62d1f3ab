//! The HTTP side of the fake cloud: authentication, the API's endpoints, request counters
//! and injected faults.

use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use chrono::{Datelike, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::faults::{self, Endpoint, Injected};
use super::{
    BodyShape, FakeCloud, FakeStatus, FaultKind, Inner, ListedSize, ReportEntry, StoredEntry,
    TokenEntry, day, fixed_time,
};

/// The API client a valid bearer token belongs to.
pub(super) struct Caller {
    client_id: String,
}

impl FromRequestParts<FakeCloud> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, cloud: &FakeCloud) -> Result<Self, Response> {
        let unauthorized = |message| api_error(StatusCode::UNAUTHORIZED, message);
        let token = auth_param(&parts.headers, "bearer")
            .ok_or_else(|| unauthorized("Authorization header is missing"))?;
        let mut st = cloud.lock();
        let Some(entry) = st.tokens.get_mut(token) else {
            return Err(unauthorized("Access token is invalid"));
        };
        entry.uses = entry.uses.saturating_add(1);
        if Instant::now() >= entry.expires_at || entry.max_uses.is_some_and(|n| entry.uses > n) {
            return Err(unauthorized("Access token has expired"));
        }
        Ok(Self {
            client_id: entry.client_id.clone(),
        })
    }
}

/// Counts a request by its endpoint; returns the kind of endpoint, for choosing faults.
fn count_request(st: &mut Inner, path: &str, method: &axum::http::Method) -> Endpoint {
    st.requests += 1;
    let segments: Vec<&str> = path.trim_start_matches("/api/2/").split('/').collect();
    match segments.as_slice() {
        ["idp", "token"] => {
            st.token_requests += 1;
            Endpoint::Token
        }
        ["reports", report_id, "stored"] => {
            st.listing_requests += 1;
            let report_id = (*report_id).to_owned();
            *st.listing_requests_by_report.entry(report_id).or_insert(0) += 1;
            Endpoint::Listing
        }
        ["reports", _] if method == axum::http::Method::GET => {
            st.report_requests += 1;
            Endpoint::Json
        }
        ["reports", _, "stored", _] => {
            st.download_requests += 1;
            st.downloads_in_flight += 1;
            st.downloads_in_flight_peak = st.downloads_in_flight_peak.max(st.downloads_in_flight);
            Endpoint::Download
        }
        _ => Endpoint::Json,
    }
}

/// Latency, request counters and injected faults, for every request including rejected ones.
pub(super) async fn observe(
    State(cloud): State<FakeCloud>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let (latency, fault, random, endpoint, held) = {
        let mut st = cloud.lock();
        let endpoint = count_request(&mut st, &path, req.method());
        let held = st
            .held
            .as_ref()
            .filter(|(end, _)| path.ends_with(end.as_str()))
            .map(|(_, held)| held.clone());
        let random = st.plan.as_mut().and_then(|p| {
            let stall = p.plan.stall;
            let retry_after = p.plan.retry_after;
            p.draw(endpoint).map(|kind| (kind, stall, retry_after))
        });
        if let Some((FaultKind::TokenExpired, _, _)) = random
            && let Some(token) = auth_param(req.headers(), "bearer")
        {
            st.tokens.remove(token);
        }
        let fault = st
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.contains(&f.path_contains))
            .map(|f| {
                f.remaining -= 1;
                (f.status, f.retry_after, f.html)
            });
        st.faults.retain(|f| f.remaining > 0);
        (st.latency, fault, random, endpoint, held)
    };
    let _in_flight = matches!(endpoint, Endpoint::Download).then(|| InFlight(cloud.clone()));
    if let Some(mut held) = held {
        // A sender dropped without a release answers too: nothing waits for ever.
        let _ = held.wait_for(|released| *released).await;
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(fault) = fault {
        return injected(fault);
    }
    match random {
        Some((FaultKind::TooManyRequests, _, retry_after)) => {
            faults::too_many_requests(retry_after)
        }
        Some((FaultKind::Throttled, _, _)) => faults::throttled(),
        Some((FaultKind::Unavailable, _, _)) => faults::unavailable(),
        Some((FaultKind::Reset, _, _)) => faults::reset(),
        Some((FaultKind::NotJson, _, _)) => faults::not_json(),
        Some((
            kind @ (FaultKind::Truncated | FaultKind::Stall | FaultKind::SizeMismatch),
            stall,
            _,
        )) => {
            req.extensions_mut().insert(Injected(kind, stall));
            next.run(req).await
        }
        Some((FaultKind::TokenExpired, _, _)) | None => next.run(req).await,
    }
}

/// The answer of a fault a test injected: (status, `Retry-After`, HTML body).
fn injected((code, retry_after, html): (u16, Option<Duration>, bool)) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match retry_after {
        Some(retry_after) => faults::too_many_requests(retry_after),
        None if html => faults::html_error(status),
        None => api_error(status, "Injected failure"),
    }
}

/// Counts a download request as served when `observe` returns, however it returns.
pub(super) struct InFlight(FakeCloud);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.downloads_in_flight = st.downloads_in_flight.saturating_sub(1);
    }
}

/// The credentials after `scheme` in the Authorization header.
pub(super) fn auth_param<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let (given, param) = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| param.trim())
}

/// `errorScheme`, the body every non-idp endpoint uses for errors.
pub(crate) fn api_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {
        "code": status.as_u16(), "domain": "PlatformAccountServer", "message": message, "details": {"info": null},
    }});
    (status, Json(body)).into_response()
}

/// The flat OAuth-style body of the idp endpoints.
pub(super) fn idp_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(super) async fn issue_token(
    State(cloud): State<FakeCloud>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let invalid_request = |why| idp_error(StatusCode::BAD_REQUEST, "invalid_request", why);
    // Basic only: the fake's client is registered with the default `client_secret_basic`.
    let credentials = auth_param(&headers, "basic")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some((id, secret)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return invalid_request("Authorization header value is not recognized");
    };
    if id != FakeCloud::CLIENT_ID || secret != FakeCloud::CLIENT_SECRET {
        let why = "Client authentication failed";
        return idp_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    }
    // No percent-decoding needed: every encoder sends this pair verbatim.
    let body = std::str::from_utf8(&body).unwrap_or_default();
    if !body
        .split('&')
        .any(|pair| pair == "grant_type=client_credentials")
    {
        return invalid_request("grant_type must be client_credentials");
    }
    let mut st = cloud.lock();
    let access_token = format!("{:016x}{:016x}", st.secrets.next(), st.secrets.next());
    let id_token = format!("fake-id.{:016x}", st.secrets.next());
    let ttl = st.token_ttl;
    let skew = st.clock_skew_secs;
    let max_uses = st.expire_after;
    st.tokens.insert(
        access_token.clone(),
        TokenEntry {
            client_id: id.to_owned(),
            expires_at: Instant::now() + ttl,
            max_uses,
            uses: 0,
        },
    );
    Json(json!({
        "access_token": access_token, "token_type": "bearer", "id_token": id_token,
        // Like the real cloud: `expires_on` (absolute Unix seconds) and no `expires_in`.
        "expires_on": Utc::now().timestamp() + ttl.as_secs() as i64 + skew,
    }))
    .into_response()
}

pub(super) async fn fetch_client(caller: Caller, Path(client_id): Path<String>) -> Response {
    if client_id != FakeCloud::CLIENT_ID {
        return api_error(StatusCode::NOT_FOUND, "Client not found");
    }
    if client_id != caller.client_id {
        return api_error(StatusCode::FORBIDDEN, "Access denied");
    }
    Json(json!({"id": client_id, "tenant_id": FakeCloud::TENANT_ID, "type": "api_client", "status": "enabled"}))
        .into_response()
}

pub(super) async fn tenant_reports(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path(tenant_id): Path<String>,
) -> Response {
    // Every report of this fake belongs to the one client's tenant; others are not visible.
    if tenant_id != FakeCloud::TENANT_ID {
        return api_error(StatusCode::FORBIDDEN, "Access to the tenant is denied");
    }
    Json(json!({ "items": cloud.report_ids() })).into_response()
}

pub(super) async fn fetch_report(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path(report_id): Path<String>,
) -> Response {
    let st = cloud.lock();
    let Some(report) = st.report(&report_id).filter(|r| !r.deleted) else {
        return api_error(StatusCode::NOT_FOUND, "Report not found");
    };
    Json(report_json(report)).into_response()
}

/// The `report` object, as `GET /reports/{id}` and `POST /reports` answer it.
pub(super) fn report_json(report: &ReportEntry) -> Value {
    // The period is the calendar month before the newest generation, as for monthly usage reports.
    let generated = report
        .stored
        .iter()
        .map(|s| s.spec.created_at)
        .max()
        .unwrap_or_else(fixed_time)
        .date_naive();
    let first_this = generated.with_day(1).unwrap_or(generated);
    let end = first_this.pred_opt().unwrap_or(first_this);
    let start = end.with_day(1).unwrap_or(end);
    let c = &report.config;
    json!({
        "id": report.id, "version": report.version, "result_action": c.result_action, "recipients": [],
        "parameters": {
            "tenant_id": FakeCloud::TENANT_ID, "kind": c.kind, "level": c.level, "formats": c.formats,
            "period": {"start": day(start), "end": day(end)}, "hide_zero_usage": false, "show_skus": false,
        },
        "schedule": {"enabled": c.enabled, "type": c.schedule_type},
        "generation_date": day(generated),
    })
}

pub(super) fn apply_flips(report: &mut ReportEntry) {
    for item in &mut report.stored {
        let due = item
            .spec
            .saved_after_listings
            .is_some_and(|n| report.listings_served >= n);
        if item.spec.status == FakeStatus::InProgress && due {
            item.spec.status = item.spec.becomes.clone();
        }
    }
}

pub(super) async fn list_stored(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path(report_id): Path<String>,
    injected: Option<Extension<Injected>>,
) -> Response {
    let mut st = cloud.lock();
    let Some(report) = st.report_mut(&report_id) else {
        return api_error(StatusCode::NOT_FOUND, "Report not found");
    };
    if report
        .deleted_after_listings
        .is_some_and(|n| report.listings_served >= n)
    {
        report.deleted = true;
    }
    if report.deleted {
        return api_error(StatusCode::NOT_FOUND, "Report not found");
    }
    apply_flips(report);
    let mut entries: Vec<&StoredEntry> = report.stored.iter().collect();
    entries.sort_by_key(|s| s.spec.created_at);
    let mut items: Vec<Value> = entries.into_iter().map(listing_item).collect();
    items.extend(report.raw_items.iter().cloned());
    if let Some(Extension(Injected(FaultKind::SizeMismatch, _))) = injected
        && let Some(item) = items.iter_mut().find(|i| i.get("size").is_some())
        && let Some(size) = item.get("size").and_then(Value::as_u64)
    {
        item["size"] = json!(size + 1);
    }
    report.listings_served = report.listings_served.saturating_add(1);
    apply_flips(report);
    Json(json!({ "items": items })).into_response()
}

pub(super) fn listing_item(s: &StoredEntry) -> Value {
    let mut item = serde_json::Map::new();
    if s.spec.with_id {
        item.insert("id".into(), json!(s.id));
    }
    item.insert("report_format".into(), json!(s.spec.format));
    if s.spec.with_size {
        let size = match s.spec.listed_size {
            ListedSize::Wire => s.wire.len(),
            ListedSize::Uncompressed => s.spec.content.len(),
            ListedSize::Exactly(n) => n as usize,
        };
        item.insert("size".into(), json!(size));
    }
    let pattern = if s.spec.offset_in_created_at {
        "%Y-%m-%dT%H:%M:%S+00:00"
    } else {
        "%Y-%m-%dT%H:%M:%S"
    };
    item.insert(
        "created_at".into(),
        json!(s.spec.created_at.format(pattern).to_string()),
    );
    item.insert("status".into(), json!(s.spec.status.as_wire()));
    Value::Object(item)
}

pub(super) async fn download(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path((report_id, stored_id)): Path<(String, String)>,
    injected: Option<Extension<Injected>>,
) -> Response {
    let st = cloud.lock();
    let Some(report) = st.report(&report_id).filter(|r| !r.deleted) else {
        return api_error(StatusCode::NOT_FOUND, "Report not found");
    };
    let Some(item) = report
        .stored
        .iter()
        .find(|s| s.id == stored_id && s.spec.status == FakeStatus::Saved && !s.removed)
    else {
        return api_error(StatusCode::NOT_FOUND, "Stored report not found");
    };
    let (wire, shape) = (item.wire.clone(), item.spec.shape);
    drop(st);
    let length = wire.len();
    let body = match injected {
        Some(Extension(Injected(FaultKind::Truncated, _))) => faults::truncated(wire),
        Some(Extension(Injected(FaultKind::Stall, stall))) => faults::stalled(wire, stall),
        _ => counted_body(cloud.clone(), stored_id, wire),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if shape == BodyShape::GzipWithHeader {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Request counters, for tools outside the process (the benchmark).
pub(super) async fn stats(State(cloud): State<FakeCloud>) -> Response {
    let st = cloud.lock();
    Json(json!({
        "requests": st.requests,
        "token_requests": st.token_requests,
        "listing_requests": st.listing_requests,
        "listing_requests_by_report": st.listing_requests_by_report,
        "report_requests": st.report_requests,
        "download_requests": st.download_requests,
        "downloads_in_flight_peak": st.downloads_in_flight_peak,
    }))
    .into_response()
}

/// The body in 256 KiB chunks; the download counts when the last chunk is handed over, so a
/// client that gives up half-way through a large body is not counted as served.
pub(super) fn counted_body(
    cloud: FakeCloud,
    stored_id: String,
    wire: bytes::Bytes,
) -> axum::body::Body {
    const CHUNK: usize = 256 * 1024;
    if wire.is_empty() {
        *cloud.lock().downloads.entry(stored_id).or_insert(0) += 1;
        return axum::body::Body::empty();
    }
    let stream = futures::stream::unfold(0usize, move |offset| {
        let (cloud, stored_id, wire) = (cloud.clone(), stored_id.clone(), wire.clone());
        async move {
            if offset >= wire.len() {
                return None;
            }
            let end = (offset + CHUNK).min(wire.len());
            if end == wire.len() {
                *cloud.lock().downloads.entry(stored_id).or_insert(0) += 1;
            }
            Some((Ok::<_, std::io::Error>(wire.slice(offset..end)), end))
        }
    });
    axum::body::Body::from_stream(stream)
}
