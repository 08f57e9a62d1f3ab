//! Wire types of the Account Management API v2 that the archiver reads.
//!
//! Every enum that comes from the server has an `Other(String)` arm: the vendor's spec and
//! its guides disagree on the list of formats, so an unseen value must never fail a parse.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};

/// `POST /idp/token` success body. Only the fields we use; the rest are ignored.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub expires_on: Option<i64>,
}

// A hand-written Debug keeps the token out of any `{:?}` (invariant 7).
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("expires_on", &self.expires_on)
            .finish()
    }
}

/// `GET /clients/{id}`: only the tenant matters to us.
#[derive(Debug, Deserialize)]
pub struct ApiClientInfo {
    pub tenant_id: String,
}

/// `GET /tenants/{id}/reports`: `{"items": [uuid, ...]}`.
#[derive(Debug, Deserialize)]
pub struct ReportIdList {
    #[serde(default)]
    pub items: Vec<String>,
}

/// `GET /reports/{id}`: the parts that decide whether a report stores anything.
#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    pub id: String,
    #[serde(default)]
    pub result_action: Option<String>,
    #[serde(default)]
    pub parameters: Option<ReportParameters>,
    #[serde(default)]
    pub schedule: Option<ReportSchedule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportParameters {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub formats: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportSchedule {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl Report {
    /// A `send` report mails its result and stores nothing the API could return.
    pub fn stores_nothing(&self) -> bool {
        self.result_action.as_deref() == Some("send")
    }
}

/// `GET /reports/{id}/stored`: `{"items": [...]}`, unpaginated.
#[derive(Debug, Deserialize)]
pub struct StoredList {
    #[serde(default)]
    pub items: Vec<StoredItem>,
}

/// One stored item. The spec makes only `report_format`, `created_at` and `status`
/// required, so `id` and `size` may be absent (seen while an item is in progress).
#[derive(Debug, Clone, Deserialize)]
pub struct StoredItem {
    #[serde(default)]
    pub id: Option<String>,
    pub report_format: ReportFormat,
    /// The compressed length in bytes, as served on the wire.
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(deserialize_with = "de_created_at")]
    pub created_at: DateTime<Utc>,
    pub status: StoredStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoredStatus {
    InProgress,
    Saved,
    Failed,
    Other(String),
}

impl StoredStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::InProgress => "in_progress",
            Self::Saved => "saved",
            Self::Failed => "failed",
            Self::Other(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for StoredStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "in_progress" => Self::InProgress,
            "saved" => Self::Saved,
            "failed" => Self::Failed,
            _ => Self::Other(s),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    Csv,
    CsvV2,
    JsonV1,
    JsonV2,
    Html,
    Other(String),
}

impl ReportFormat {
    pub fn parse(s: &str) -> Self {
        match s {
            "csv" => Self::Csv,
            "csv_v2_0" => Self::CsvV2,
            "json_v1" => Self::JsonV1,
            "json_v2_0" => Self::JsonV2,
            "html" => Self::Html,
            _ => Self::Other(s.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Csv => "csv",
            Self::CsvV2 => "csv_v2_0",
            Self::JsonV1 => "json_v1",
            Self::JsonV2 => "json_v2_0",
            Self::Html => "html",
            Self::Other(s) => s,
        }
    }

    /// The file extension a user opens the report with; unknown formats get a generic
    /// `<format>.bin` so nothing claims a type we have not seen.
    pub fn extension(&self) -> String {
        match self {
            Self::Csv | Self::CsvV2 => "csv".into(),
            Self::JsonV1 | Self::JsonV2 => "json".into(),
            Self::Html => "html".into(),
            Self::Other(s) => format!("{s}.bin"),
        }
    }
}

impl<'de> Deserialize<'de> for ReportFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

/// Reads `created_at` with or without an offset; an offset-less value is UTC.
pub fn parse_created_at(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

fn de_created_at<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_created_at(&s).ok_or_else(|| {
        serde::de::Error::custom(format!("created_at `{s}` is not an RFC 3339 timestamp"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_without_offset_is_read_as_utc() {
        let a = parse_created_at("2017-01-01T12:07:53").map(|t| t.to_rfc3339());
        let b = parse_created_at("2017-01-01T12:07:53+00:00").map(|t| t.to_rfc3339());
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Some("2017-01-01T12:07:53+00:00"));
    }

    #[test]
    fn created_at_with_offset_and_fraction_is_normalised_to_utc() {
        let t = parse_created_at("2019-08-08T09:36:57.123+02:00").map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2019-08-08T07:36:57.123+00:00"));
    }

    #[test]
    fn unknown_status_and_format_parse_into_other() {
        let item: StoredItem = serde_json::from_str(
            r#"{"report_format":"xlsx","created_at":"2020-01-01T00:00:00","status":"queued"}"#,
        )
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(item.report_format, ReportFormat::Other("xlsx".into()));
        assert_eq!(item.status, StoredStatus::Other("queued".into()));
        assert_eq!(item.report_format.extension(), "xlsx.bin");
        assert!(item.id.is_none() && item.size.is_none());
    }
}
