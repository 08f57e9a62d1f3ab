//! The writes of the reports API: `POST /reports` (CreateReport), `PUT /reports/{id}`
//! (UpdateReport) and `DELETE /reports/{id}?version=N` (DeleteReport), with the spec's
//! error answers: 415 without a JSON body type, 403 for a read-only client (or another
//! tenant), 400 for a bad body, 404 for an unknown report, 409 for a stale version.
//!
//! A created `save` report gets its stored items at once, one per format, `in_progress`
//! on the first listing and `saved` from the next, as the cloud takes a minute or two to
//! generate them. A `send` report stores nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value};

use super::content::{SplitMix64, sample_content};
use super::handlers::{Caller, api_error, report_json};
use super::{FakeCloud, FakeReport, FakeStored, wall_nanos};

/// What `reportPost` allows; the fake keeps its own lists, as the server does.
const KINDS: [&str; 4] = [
    "usage_daily",
    "usage_summary",
    "usage_current",
    "usage_breakdown",
];
const LEVELS: [&str; 5] = [
    "itself",
    "direct_partners",
    "all_partners",
    "all_customers",
    "accounts",
];
const FORMATS: [&str; 5] = ["csv", "html", "json_v1", "csv_v2_0", "json_v2_0"];
const TOP_LEVEL: [&str; 5] = [
    "parameters",
    "schedule",
    "result_action",
    "recipients",
    "generation_date",
];

type Refusal = (StatusCode, String);

fn bad(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, message.into())
}

fn refuse((status, message): Refusal) -> Response {
    api_error(status, &message)
}

fn read_only() -> Response {
    api_error(
        StatusCode::FORBIDDEN,
        "Access denied: the API client's role may not create, change or delete reports",
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// What a write is refused for before its body is read, in the spec's order: a body that
/// is not JSON (415), then a read-only client (403).
fn refuse_write(cloud: &FakeCloud, headers: &HeaderMap) -> Option<Response> {
    if !is_json(headers) {
        let why = "Unsupported media type: the body must be application/json";
        return Some(api_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, why));
    }
    cloud.lock().read_only.then(read_only)
}

pub(super) async fn create_report(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_write(&cloud, &headers) {
        return refused;
    }
    let config = match parse_post(&body) {
        Ok(config) => config,
        Err(refusal) => return refuse(refusal),
    };
    let save = config.result_action == "save";
    let formats = config.formats.clone();
    let id = cloud.add_report(config);
    if save {
        let now = Utc::now();
        let mut rng = SplitMix64(wall_nanos());
        for format in &formats {
            let content = sample_content(&mut rng, format, now);
            let item = FakeStored::new(format, content)
                .created_at(now)
                .saved_after(1);
            cloud.add_stored(&id, item);
        }
    }
    let st = cloud.lock();
    match st.report(&id) {
        Some(report) => Json(report_json(report)).into_response(),
        None => api_error(StatusCode::INTERNAL_SERVER_ERROR, "Report vanished"),
    }
}

/// `reportPost` checked as the spec describes it, into the report it asks for.
fn parse_post(body: &[u8]) -> Result<FakeReport, Refusal> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("Body is not JSON: {e}")))?;
    let top = v.as_object().ok_or_else(|| bad("Body must be an object"))?;
    if let Some(key) = top.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
        return Err(bad(format!("Additional property `{key}` is not allowed")));
    }
    let params = object(top, "parameters")?;
    let tenant = text(params, "parameters.tenant_id", "tenant_id")?;
    if tenant != FakeCloud::TENANT_ID {
        let why = "Access to the tenant is denied".to_owned();
        return Err((StatusCode::FORBIDDEN, why));
    }
    let formats = match params.get("formats") {
        None => vec!["csv".to_owned()],
        Some(v) => formats(v)?,
    };
    let schedule = object(top, "schedule")?;
    let action = one_of(top, "result_action", "result_action", &["save", "send"])?;
    let recipients = top
        .get("recipients")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`recipients` is required and must be an array"))?;
    if action == "send" && recipients.is_empty() {
        return Err(bad("A `send` report needs recipients"));
    }
    Ok(FakeReport {
        result_action: action,
        kind: one_of(params, "parameters.kind", "kind", &KINDS)?,
        level: one_of(params, "parameters.level", "level", &LEVELS)?,
        formats,
        schedule_type: one_of(schedule, "schedule.type", "type", &["once", "monthly"])?,
        enabled: schedule
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}

fn object<'a>(from: &'a Map<String, Value>, key: &str) -> Result<&'a Map<String, Value>, Refusal> {
    from.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| bad(format!("`{key}` is required and must be an object")))
}

fn text(from: &Map<String, Value>, name: &str, key: &str) -> Result<String, Refusal> {
    from.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("`{name}` is required and must be a string")))
}

fn one_of(
    from: &Map<String, Value>,
    name: &str,
    key: &str,
    allowed: &[&str],
) -> Result<String, Refusal> {
    let value = text(from, name, key)?;
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(bad(format!("`{name}` must be one of {allowed:?}")))
    }
}

fn formats(v: &Value) -> Result<Vec<String>, Refusal> {
    let list = v
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad("`parameters.formats` must be a non-empty array"))?;
    list.iter()
        .map(|f| match f.as_str() {
            Some(f) if FORMATS.contains(&f) => Ok(f.to_owned()),
            _ => Err(bad(format!(
                "`parameters.formats` items must be one of {FORMATS:?}"
            ))),
        })
        .collect()
}

/// The `version` a write names: `?version=N`, else the body's `version`.
fn version(uri: &Uri, body: Option<&Value>) -> Result<i64, Refusal> {
    let query = uri.query().unwrap_or("");
    let from_query = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("version="));
    let parsed = match from_query {
        Some(text) => text.parse::<i64>().ok(),
        None => body.and_then(|b| b.get("version")).and_then(Value::as_i64),
    };
    parsed.ok_or_else(|| bad("`version` is required and must be an integer"))
}

/// The report's current version, or the answer for an unknown one or a stale `version`.
fn check_version(cloud: &FakeCloud, report_id: &str, asked: i64) -> Result<(), Refusal> {
    let st = cloud.lock();
    let Some(report) = st.report(report_id) else {
        return Err((StatusCode::NOT_FOUND, "Report not found".into()));
    };
    if report.version != asked {
        let why = format!(
            "Version mismatch: the report is at version {}, not {asked}",
            report.version
        );
        return Err((StatusCode::CONFLICT, why));
    }
    Ok(())
}

pub(super) async fn update_report(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path(report_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_write(&cloud, &headers) {
        return refused;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return refuse(bad("Body is not JSON"));
    };
    let checked = version(&uri, Some(&body))
        .and_then(|asked| check_version(&cloud, &report_id, asked))
        .and_then(|()| update(&cloud, &report_id, &body));
    match checked {
        Ok(answer) => Json(answer).into_response(),
        Err(refusal) => refuse(refusal),
    }
}

/// What `PUT` may change: `parameters.kind`, `parameters.level`, `schedule.enabled`
/// (`recipients` too, which the fake does not keep); scheduled reports only.
fn update(cloud: &FakeCloud, report_id: &str, body: &Value) -> Result<Value, Refusal> {
    let params = body.get("parameters").and_then(Value::as_object);
    let kind = match params.filter(|p| p.contains_key("kind")) {
        Some(p) => Some(one_of(p, "parameters.kind", "kind", &KINDS)?),
        None => None,
    };
    let level = match params.filter(|p| p.contains_key("level")) {
        Some(p) => Some(one_of(p, "parameters.level", "level", &LEVELS)?),
        None => None,
    };
    let enabled = body
        .get("schedule")
        .and_then(|s| s.get("enabled"))
        .and_then(Value::as_bool);
    let mut st = cloud.lock();
    let report = st
        .report_mut(report_id)
        .ok_or_else(|| (StatusCode::NOT_FOUND, "Report not found".to_owned()))?;
    if report.config.schedule_type == "once" {
        return Err(bad("Only scheduled reports can be updated"));
    }
    let c = &mut report.config;
    if let Some(kind) = kind {
        c.kind = kind;
    }
    if let Some(level) = level {
        c.level = level;
    }
    if let Some(enabled) = enabled {
        c.enabled = enabled;
    }
    report.version += 1;
    Ok(report_json(report))
}

pub(super) async fn delete_report(
    State(cloud): State<FakeCloud>,
    _caller: Caller,
    Path(report_id): Path<String>,
    uri: Uri,
) -> Response {
    if cloud.lock().read_only {
        return read_only();
    }
    let checked = version(&uri, None).and_then(|asked| check_version(&cloud, &report_id, asked));
    match checked {
        Ok(()) => {
            cloud.remove_report(&report_id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refuse(refusal),
    }
}
