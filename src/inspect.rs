//! Views of the ledger for operators: `ledger list`, `ledger stats` and `ledger export`.
//!
//! Pure functions over [`ArchivedRow`]s, so the tables, the JSON and the exports are built
//! from one set of data and cannot disagree.
//!
//! - [`RowFilter`]: which rows `ledger list` shows.
//! - [`Stats`]: files and bytes in total and per account, report and format.
//! - [`render_list`], [`render_stats`]: the human tables; [`export`]: csv, json, sha256sum.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::api::model::parse_created_at;
use crate::ledger::{ArchivedRow, ObjectRef};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("invalid date `{0}`: use YYYY-MM-DD or an RFC 3339 time such as 2026-08-01T00:00:00Z")]
    Date(String),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses `--since`: a day (midnight UTC) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, InspectError> {
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    parse_created_at(s).ok_or_else(|| InspectError::Date(s.to_owned()))
}

/// What `ledger list` keeps; `None` keeps everything.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    pub account: Option<String>,
    pub report: Option<String>,
    pub format: Option<String>,
    /// Items created at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl RowFilter {
    pub fn keeps(&self, row: &ArchivedRow) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        same(&self.account, &row.account)
            && same(&self.report, &row.report_id)
            && same(&self.format, &row.report_format)
            && self.since.is_none_or(|since| {
                parse_created_at(&row.created_at).is_some_and(|created| created >= since)
            })
    }

    pub fn apply(&self, rows: Vec<ArchivedRow>) -> Vec<ArchivedRow> {
        rows.into_iter().filter(|r| self.keeps(r)).collect()
    }
}

/// Files and bytes of one group of rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub files: u64,
    /// Bytes in the archived files.
    pub bytes: u64,
    /// Bytes that came over the wire for them.
    pub wire_bytes: u64,
}

impl Tally {
    fn add(&mut self, row: &ArchivedRow) {
        self.files += 1;
        self.bytes += u64::try_from(row.stored_bytes).unwrap_or(0);
        self.wire_bytes += u64::try_from(row.wire_bytes).unwrap_or(0);
    }
}

/// What `ledger stats` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub total: Tally,
    pub per_account: BTreeMap<String, Tally>,
    /// Keyed `account/report_id`.
    pub per_report: BTreeMap<String, Tally>,
    pub per_format: BTreeMap<String, Tally>,
    /// The latest `fetched_at`, RFC 3339.
    pub last_fetch: Option<String>,
    /// The oldest and newest `created_at` archived.
    pub oldest_item: Option<String>,
    pub newest_item: Option<String>,
}

pub fn stats(rows: &[ArchivedRow]) -> Stats {
    let mut s = Stats::default();
    for row in rows {
        s.total.add(row);
        s.per_account
            .entry(row.account.clone())
            .or_default()
            .add(row);
        s.per_report
            .entry(format!("{}/{}", row.account, row.report_id))
            .or_default()
            .add(row);
        s.per_format
            .entry(row.report_format.clone())
            .or_default()
            .add(row);
        // RFC 3339 UTC strings with the same precision order as their times.
        max_into(&mut s.last_fetch, &row.fetched_at);
        max_into(&mut s.newest_item, &row.created_at);
        if s.oldest_item
            .as_deref()
            .is_none_or(|o| row.created_at.as_str() < o)
        {
            s.oldest_item = Some(row.created_at.clone());
        }
    }
    s
}

fn max_into(slot: &mut Option<String>, value: &str) {
    if slot.as_deref().is_none_or(|v| value > v) {
        *slot = Some(value.to_owned());
    }
}

/// The `ledger list` table: one row per archived item.
pub fn render_list(rows: &[ArchivedRow]) -> String {
    let mut out = format!(
        "{:<16} {:<38} {:<38} {:<10} {:<20} {:>12}  {}\n",
        "ACCOUNT", "REPORT", "STORED_ID", "FORMAT", "CREATED_AT", "STORED_BYTES", "PATH"
    );
    // The ids and the format came from a server (allow-listed when they were stored, but
    // a ledger from an older version or another tool may hold anything): escaped.
    let cell = crate::untrusted::cell;
    for r in rows {
        out.push_str(&format!(
            "{:<16} {:<38} {:<38} {:<10} {:<20} {:>12}  {}\n",
            cell(&r.account),
            cell(&r.report_id),
            cell(&r.stored_id),
            cell(&r.report_format),
            cell(&r.created_at),
            r.stored_bytes,
            cell(&r.path)
        ));
    }
    out.push_str(&format!("{} item(s)\n", rows.len()));
    out
}

/// The `ledger stats` table: totals, then one line per group. Stored bytes are on disk
/// (decompressed unless `keep_compressed`); wire bytes were downloaded (the `once` table's
/// WIRE_BYTES).
pub fn render_stats(s: &Stats) -> String {
    let none = || "-".to_owned();
    let mut out = format!(
        "files {}, stored bytes {}, wire bytes {}\nlast fetch {}\nitems created {} .. {}\n\n",
        s.total.files,
        s.total.bytes,
        s.total.wire_bytes,
        s.last_fetch.clone().unwrap_or_else(none),
        s.oldest_item.clone().unwrap_or_else(none),
        s.newest_item.clone().unwrap_or_else(none),
    );
    out.push_str(&format!(
        "{:<8} {:<56} {:>7} {:>14} {:>14}\n",
        "GROUP", "NAME", "FILES", "STORED_BYTES", "WIRE_BYTES"
    ));
    for (group, map) in [
        ("account", &s.per_account),
        ("report", &s.per_report),
        ("format", &s.per_format),
    ] {
        for (name, t) in map {
            out.push_str(&format!(
                "{:<8} {:<56} {:>7} {:>14} {:>14}\n",
                group,
                crate::untrusted::cell(name),
                t.files,
                t.bytes,
                t.wire_bytes
            ));
        }
    }
    out
}

/// `ledger export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
    /// `<sha256>  <path>` lines, for `sha256sum -c` run from the archive dir.
    Sha256sum,
}

/// One exported row: the ledger's, plus the object it was uploaded to on the S3 target
/// (its version id names the exact, possibly locked, version an auditor can fetch).
#[derive(Serialize)]
struct ExportRow<'a> {
    #[serde(flatten)]
    row: &'a ArchivedRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    e_tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<&'a str>,
}

impl<'a> ExportRow<'a> {
    fn new(row: &'a ArchivedRow, objects: &'a HashMap<String, ObjectRef>) -> Self {
        let object = objects.get(&row.path);
        Self {
            row,
            e_tag: object.and_then(|o| o.e_tag.as_deref()),
            version_id: object.and_then(|o| o.version_id.as_deref()),
        }
    }
}

/// `objects`: the ledger's object references by path (empty for a local archive).
pub fn export(
    rows: &[ArchivedRow],
    objects: &HashMap<String, ObjectRef>,
    format: ExportFormat,
) -> Result<String, InspectError> {
    let with_object = |row| ExportRow::new(row, objects);
    Ok(match format {
        ExportFormat::Json => {
            let rows: Vec<ExportRow<'_>> = rows.iter().map(with_object).collect();
            let mut s = serde_json::to_string_pretty(&rows)?;
            s.push('\n');
            s
        }
        ExportFormat::Sha256sum => rows
            .iter()
            // Two spaces: text mode in coreutils' format. Paths are allow-listed when
            // written (letters, digits, `-`, `_`, `/`, `.`), so they need no escaping.
            .map(|r| format!("{}  {}\n", r.sha256, r.path))
            .collect(),
        ExportFormat::Csv => {
            let mut out = String::from(
                "account,report_id,stored_id,report_format,created_at,listed_size,wire_bytes,stored_bytes,sha256,compressed,path,fetched_at,e_tag,version_id\n",
            );
            for r in rows.iter().map(with_object) {
                let row = r.row;
                let fields = [
                    row.account.clone(),
                    row.report_id.clone(),
                    row.stored_id.clone(),
                    row.report_format.clone(),
                    row.created_at.clone(),
                    row.listed_size.map(|s| s.to_string()).unwrap_or_default(),
                    row.wire_bytes.to_string(),
                    row.stored_bytes.to_string(),
                    row.sha256.clone(),
                    row.compressed.to_string(),
                    row.path.clone(),
                    row.fetched_at.clone(),
                    r.e_tag.unwrap_or_default().to_owned(),
                    r.version_id.unwrap_or_default().to_owned(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            out
        }
    })
}

/// RFC 4180 quoting, only where needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(account: &str, report: &str, format: &str, created: &str, bytes: i64) -> ArchivedRow {
        ArchivedRow {
            account: account.into(),
            report_id: report.into(),
            stored_id: format!("{report}-{created}"),
            report_format: format.into(),
            created_at: created.into(),
            listed_size: Some(bytes / 2),
            wire_bytes: bytes / 2,
            stored_bytes: bytes,
            sha256: "ab".repeat(32),
            compressed: false,
            path: format!("{account}/{report}/x.csv"),
            fetched_at: "2026-09-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn filters_combine_and_since_takes_a_day_or_a_time() {
        let rows = vec![
            row("a", "r1", "csv", "2026-07-01T00:00:00Z", 10),
            row("a", "r2", "html", "2026-08-01T00:00:00Z", 20),
            row("b", "r1", "csv", "2026-08-02T03:00:00Z", 30),
        ];
        let f = RowFilter {
            since: Some(parse_since("2026-08-01").unwrap()),
            ..RowFilter::default()
        };
        assert_eq!(f.apply(rows.clone()).len(), 2);
        let f = RowFilter {
            account: Some("a".into()),
            format: Some("csv".into()),
            ..RowFilter::default()
        };
        assert_eq!(f.apply(rows.clone()).len(), 1);
        assert!(parse_since("2026-08-02T03:00:01Z").is_ok());
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn stats_group_by_account_report_and_format() {
        let rows = vec![
            row("a", "r1", "csv", "2026-07-01T00:00:00Z", 10),
            row("a", "r1", "html", "2026-08-01T00:00:00Z", 20),
        ];
        let s = stats(&rows);
        assert_eq!(s.total.files, 2);
        assert_eq!(s.total.bytes, 30);
        assert_eq!(s.per_report["a/r1"].files, 2);
        assert_eq!(s.per_format["html"].bytes, 20);
        assert_eq!(s.oldest_item.as_deref(), Some("2026-07-01T00:00:00Z"));
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
