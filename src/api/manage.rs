//! The writes of the reports API: create a report (`POST /reports`, the `reportPost` body)
//! and delete one (`DELETE /reports/{id}?version=N`, after `GET /reports/{id}` for its
//! version). Everything else of the client reads.
//!
//! Neither is retried: the API has no idempotency keys, so a `POST` sent again after an
//! answer lost in transit may create a second report; the operator sees the error and
//! decides. A 401 is still renewed once (`send`): a refused token did nothing.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{ApiError, CloudClient, read_error, segment};
use super::transport;

/// The formats billing automation reads: the same data as CSV and as JSON (vendor
/// guidance); `csv`/`html` are the human-readable e-mail ones.
pub const BILLING_FORMATS: [&str; 2] = ["csv_v2_0", "json_v2_0"];
/// The formats `POST /reports` accepts.
pub const FORMATS: [&str; 5] = ["csv", "html", "json_v1", "csv_v2_0", "json_v2_0"];
pub const KINDS: [&str; 4] = [
    "usage_current",
    "usage_summary",
    "usage_daily",
    "usage_breakdown",
];
pub const LEVELS: [&str; 5] = [
    "accounts",
    "all_customers",
    "all_partners",
    "direct_partners",
    "itself",
];

/// `schedule.type`: generated once now, or every month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleType {
    Once,
    Monthly,
}

/// `reportPost`, for a report that stores its results (`result_action: save`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportPost {
    pub parameters: PostParameters,
    pub schedule: PostSchedule,
    pub result_action: &'static str,
    /// Required by the spec (`additionalProperties: false`) and meaningless for `save`:
    /// sent empty, as the vendor's own integration does.
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostParameters {
    pub tenant_id: String,
    pub kind: String,
    pub level: String,
    pub formats: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostSchedule {
    #[serde(rename = "type")]
    pub kind: ScheduleType,
    /// Only scheduled reports have the switch; a `once` report leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl ReportPost {
    /// A `save` report of `tenant_id`, scheduled as `schedule` (a monthly one enabled).
    pub fn save(
        tenant_id: &str,
        kind: &str,
        level: &str,
        formats: &[String],
        schedule: ScheduleType,
    ) -> Self {
        Self {
            parameters: PostParameters {
                tenant_id: tenant_id.to_owned(),
                kind: kind.to_owned(),
                level: level.to_owned(),
                formats: formats.to_vec(),
            },
            schedule: PostSchedule {
                kind: schedule,
                enabled: (schedule == ScheduleType::Monthly).then_some(true),
            },
            result_action: "save",
            recipients: Vec::new(),
        }
    }
}

/// What `POST /reports` and `GET /reports/{id}` say of a report that a write needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportRef {
    pub id: String,
    /// Auto-incremented by the cloud; `DELETE` wants the current one.
    #[serde(default)]
    pub version: Option<i64>,
}

impl CloudClient {
    /// `POST /reports`: the new report's id (and version). Sent once, never retried.
    pub async fn create_report(&self, body: &ReportPost) -> Result<ReportRef, ApiError> {
        let body = serde_json::to_value(body).map_err(|source| ApiError::Decode {
            url: "(the create body)".into(),
            source,
        })?;
        let (response, deadline) = self
            .send(Method::POST, "/reports", Some(&body), false)
            .await?;
        let url = response.url().to_string();
        let bytes = transport::read_limited(response, self.options.max_json, deadline)
            .await
            .map_err(|e| read_error(e, &url, &self.options))?;
        serde_json::from_slice(&bytes).map_err(|source| ApiError::Decode { url, source })
    }

    /// `GET /reports/{id}`, for its id and version only.
    pub async fn report_ref(&self, report_id: &str) -> Result<ReportRef, ApiError> {
        self.get_json(&format!("/reports/{}", segment("report id", report_id)?))
            .await
    }

    /// `DELETE /reports/{id}?version=N`. Sent once: a second try after a lost answer would
    /// meet a report that is gone, which says less than the first error.
    pub async fn delete_report(&self, report_id: &str, version: i64) -> Result<(), ApiError> {
        let path = format!(
            "/reports/{}?version={version}",
            segment("report id", report_id)?
        );
        self.send(Method::DELETE, &path, None, false)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_once_report_body_is_the_documented_report_post_without_a_schedule_switch() {
        let formats: Vec<String> = BILLING_FORMATS.map(String::from).to_vec();
        let body = ReportPost::save(
            "t-1",
            "usage_current",
            "accounts",
            &formats,
            ScheduleType::Once,
        );
        assert_eq!(
            serde_json::to_value(&body).ok(),
            Some(json!({
                "parameters": {"tenant_id": "t-1", "kind": "usage_current", "level": "accounts",
                               "formats": ["csv_v2_0", "json_v2_0"]},
                "schedule": {"type": "once"},
                "result_action": "save",
                "recipients": [],
            }))
        );
    }

    #[test]
    fn a_monthly_report_body_is_enabled() {
        let body = ReportPost::save(
            "t",
            "usage_summary",
            "all_customers",
            &["csv".into()],
            ScheduleType::Monthly,
        );
        let v = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(v["schedule"], json!({"type": "monthly", "enabled": true}));
        assert_eq!(v["result_action"], "save");
    }
}
