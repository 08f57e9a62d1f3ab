//! `reports`: what an account offers, next to what the ledger holds of it.
//!
//! Read-only against the cloud: the same discovery as a pass (`/clients/{id}` → tenant →
//! `/tenants/{tenant}/reports` → `/reports/{id}`, or the configured ids), then each
//! report's stored list, counted by status. Only GETs; nothing is downloaded.
//!
//! - [`ReportView`]: one report's row, for the table and `--json` alike.
//! - [`overview`]: the rows of one account; [`render`]: the table; [`nothing_to_archive`]:
//!   the hint for an account none of whose reports stores anything.
//! - [`create`] and [`delete`]: the two writes, `reports create` and `reports delete`.

use std::collections::HashSet;

use serde::Serialize;

use crate::api::manage::ReportPost;
pub use crate::api::manage::{BILLING_FORMATS, FORMATS, KINDS, LEVELS, ScheduleType};
use crate::api::{ApiError, CloudClient, StoredStatus};
use crate::archive::check_component;
use crate::config::Account;
use crate::ledger::{Ledger, LedgerError};

#[derive(Debug, thiserror::Error)]
pub enum ReportsError {
    #[error("account `{account}`: {source}")]
    Cloud {
        account: String,
        #[source]
        source: ApiError,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(
        "account `{account}`: the API client may not {action} reports (HTTP 403: {message}). Creating and deleting reports needs an administrator role (root, partner, company or unit administrator); a read-only administrator client can archive but not create. Use an administrator's API client for this once, or create the report in the portal"
    )]
    Forbidden {
        account: String,
        action: &'static str,
        message: String,
    },
    #[error(
        "account `{account}`: there is no report {report_id} (HTTP 404); `report-archiver reports` lists the ones the API client sees"
    )]
    NotFound { account: String, report_id: String },
    #[error(
        "account `{account}`: report {report_id} is not at version {version} (HTTP {status}: {message}); it changed since. Leave out --version to delete its current version"
    )]
    Version {
        account: String,
        report_id: String,
        version: i64,
        status: u16,
        message: String,
    },
    #[error(
        "account `{account}`: the cloud's answer for report {report_id} has no version; cannot delete it"
    )]
    NoVersion { account: String, report_id: String },
}

/// What `reports create` asks for; the tenant is the API client's own.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub kind: String,
    pub level: String,
    pub formats: Vec<String>,
    pub schedule: ScheduleType,
}

/// Creates a `save` report of the account's tenant; its id, as the cloud gave it (the
/// caller shows it through `untrusted::cell`).
pub async fn create(
    account: &Account,
    client: &CloudClient,
    request: &CreateRequest,
) -> Result<String, ReportsError> {
    let fail = |e: ApiError| write_error(account, "create", "", None, e);
    let tenant = client.tenant_id().await.map_err(fail)?;
    let body = ReportPost::save(
        &tenant,
        &request.kind,
        &request.level,
        &request.formats,
        request.schedule,
    );
    let created = client.create_report(&body).await.map_err(fail)?;
    Ok(created.id)
}

/// Deletes one report: at `version` when given, else at the version the cloud states
/// now (`GET /reports/{id}` first). Returns the version deleted.
pub async fn delete(
    account: &Account,
    client: &CloudClient,
    report_id: &str,
    version: Option<i64>,
) -> Result<i64, ReportsError> {
    let fail = |e: ApiError| write_error(account, "delete", report_id, version, e);
    let version = match version {
        Some(v) => v,
        None => {
            let current = client.report_ref(report_id).await.map_err(fail)?;
            current.version.ok_or_else(|| ReportsError::NoVersion {
                account: account.name.clone(),
                report_id: report_id.to_owned(),
            })?
        }
    };
    client
        .delete_report(report_id, version)
        .await
        .map_err(|e| write_error(account, "delete", report_id, Some(version), e))?;
    Ok(version)
}

/// A write's failure in the operator's terms: 403 names the role it needs, 404 the id,
/// 409 (or the API's "version mismatch", code 1001) the stale version.
fn write_error(
    account: &Account,
    action: &'static str,
    report_id: &str,
    version: Option<i64>,
    e: ApiError,
) -> ReportsError {
    let (account, report_id) = (account.name.clone(), report_id.to_owned());
    match (e, version) {
        (
            ApiError::Status {
                status: 403,
                message,
                ..
            },
            _,
        ) => ReportsError::Forbidden {
            account,
            action,
            message,
        },
        // A 404 (or 410) is its own variant, whatever the endpoint.
        (e, _) if e.not_found().is_some() && !report_id.is_empty() => {
            ReportsError::NotFound { account, report_id }
        }
        (
            ApiError::Status {
                status, message, ..
            },
            Some(version),
        ) if status == 409 || message.contains("code 1001") => ReportsError::Version {
            account,
            report_id,
            version,
            status,
            message,
        },
        (source, _) => ReportsError::Cloud { account, source },
    }
}

/// The hint for `account` when none of its reports stores anything (all `send`, or none
/// seen): what `once` fails with, said beside the table.
pub fn nothing_to_archive(account: &str, views: &[ReportView]) -> Option<String> {
    let mine: Vec<&ReportView> = views.iter().filter(|v| v.account == account).collect();
    if !mine.iter().all(|v| v.stores_nothing) {
        return None;
    }
    let seen = match mine.len() {
        0 => "sees no reports".to_owned(),
        n => format!("sees {n} report(s), all e-mailed (result_action = send)"),
    };
    Some(format!(
        "account `{account}`: nothing to archive: its API client {seen}, and only reports with result_action = save store results; create one with `report-archiver reports create --account {account}`"
    ))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportView {
    pub account: String,
    pub report_id: String,
    pub kind: Option<String>,
    pub level: Option<String>,
    pub formats: Vec<String>,
    /// The schedule type (`monthly`, …), `(disabled)` appended when it is off.
    pub schedule: Option<String>,
    pub result_action: Option<String>,
    /// `send` reports are mailed and store nothing the API could return.
    pub stores_nothing: bool,
    pub saved: u64,
    pub in_progress: u64,
    pub failed: u64,
    /// Items in a status this version does not know.
    pub other: u64,
    /// Saved items the ledger holds.
    pub archived: u64,
    /// The cloud deleted the report: its settings and its stored list answer 404/410 (the
    /// note starts with GONE).
    pub gone: bool,
    /// Items the ledger records as lost by the cloud before they were archived.
    pub vanished: u64,
    pub note: Option<String>,
}

/// Every report `account` can see (or its configured ones), with counts.
pub async fn overview(
    account: &Account,
    client: &CloudClient,
    ledger: Option<&Ledger>,
) -> Result<Vec<ReportView>, ReportsError> {
    let cloud = |source| ReportsError::Cloud {
        account: account.name.clone(),
        source,
    };
    let ids = if account.reports.is_empty() {
        let tenant = client.tenant_id().await.map_err(cloud)?;
        client.tenant_reports(&tenant).await.map_err(cloud)?
    } else {
        account.reports.clone()
    };
    let mut views = Vec::new();
    for id in ids {
        let mut view = ReportView {
            account: account.name.clone(),
            report_id: id.clone(),
            ..ReportView::default()
        };
        let mut notes = Vec::new();
        // A discovered id passes the same allow-list as a configured one before any request.
        if let Err(e) = check_component("report id", &id) {
            view.note = Some(e.to_string());
            views.push(view);
            continue;
        }
        let mut settings_gone = false;
        match client.report(&id).await {
            Err(e) if e.not_found().is_some() => settings_gone = true,
            Ok(r) => {
                view.stores_nothing = r.stores_nothing();
                view.result_action = r.result_action.clone();
                if let Some(p) = r.parameters {
                    view.kind = p.kind;
                    view.level = p.level;
                    view.formats = p.formats;
                }
                view.schedule = r.schedule.and_then(|s| {
                    let disabled = if s.enabled == Some(false) {
                        " (disabled)"
                    } else {
                        ""
                    };
                    s.kind.map(|k| format!("{k}{disabled}"))
                });
                if view.stores_nothing {
                    notes.push("result_action is send: nothing is stored".to_owned());
                }
            }
            Err(e) => notes.push(format!("cannot read the report: {e}")),
        }
        if !view.stores_nothing {
            count_stored(client, ledger, &mut view, &mut notes, settings_gone).await?;
        }
        // Notes quote the server's errors, and `--json` prints them as they are: a secret
        // it echoed goes now (the table escapes the rest when it renders).
        view.note =
            (!notes.is_empty()).then(|| crate::redact::scrub(&notes.join("; ")).into_owned());
        views.push(view);
    }
    Ok(views)
}

/// Counts the report's stored items by status, and what the ledger holds of them.
/// `settings_gone`: `GET /reports/{id}` answered 404/410; with a stored list that answers
/// so too, the report is GONE, as a pass would find it.
async fn count_stored(
    client: &CloudClient,
    ledger: Option<&Ledger>,
    view: &mut ReportView,
    notes: &mut Vec<String>,
    settings_gone: bool,
) -> Result<(), ReportsError> {
    if let Some(ledger) = ledger {
        let (vanished, _) = ledger
            .not_found_items(&view.account, &view.report_id)
            .await?;
        view.vanished = vanished.len() as u64;
        if view.vanished > 0 {
            notes.push(format!(
                "{} item(s) lost by the cloud before they were archived",
                view.vanished
            ));
        }
    }
    let items = match client.stored_list(&view.report_id).await {
        Ok(items) => items,
        Err(e) => {
            match e.not_found() {
                Some((status, _)) if settings_gone => {
                    view.gone = true;
                    notes.insert(0, format!("GONE: deleted in the cloud (HTTP {status}); its archived files are kept"));
                }
                _ => notes.push(format!("cannot list stored items: {e}")),
            }
            return Ok(());
        }
    };
    if settings_gone {
        notes.push("cannot read the report: its settings answer not found".to_owned());
    }
    let archived = match ledger {
        Some(l) => l.archived_ids(&view.account, &view.report_id).await?,
        None => HashSet::new(),
    };
    let mut malformed = 0;
    for item in items {
        let item = match item {
            Ok(item) => item,
            Err(e) if e.in_progress => {
                view.in_progress += 1;
                continue;
            }
            Err(_) => {
                malformed += 1;
                continue;
            }
        };
        match item.status {
            StoredStatus::Saved => {
                view.saved += 1;
                if item.id.as_ref().is_some_and(|id| archived.contains(id)) {
                    view.archived += 1;
                }
            }
            StoredStatus::InProgress => view.in_progress += 1,
            StoredStatus::Failed => view.failed += 1,
            StoredStatus::Other(_) => view.other += 1,
        }
    }
    if malformed > 0 {
        notes.push(format!("{malformed} malformed stored item(s)"));
    }
    Ok(())
}

/// The `reports` table. Every cell but the counts is the server's text: escaped, capped.
pub fn render(views: &[ReportView]) -> String {
    let cell = crate::untrusted::cell;
    let dash = |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), cell);
    let mut out = format!(
        "{:<16} {:<38} {:<16} {:<16} {:<12} {:<7} {:>5} {:>11} {:>6} {:>8}  {:<}\n",
        "ACCOUNT",
        "REPORT",
        "KIND",
        "LEVEL",
        "SCHEDULE",
        "ACTION",
        "SAVED",
        "IN_PROGRESS",
        "FAILED",
        "ARCHIVED",
        "FORMATS / NOTE"
    );
    for v in views {
        let formats = if v.formats.is_empty() {
            "-".to_owned()
        } else {
            cell(&v.formats.join(","))
        };
        let note = v
            .note
            .as_ref()
            .map(|n| format!("  {}", cell(n)))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<16} {:<38} {:<16} {:<16} {:<12} {:<7} {:>5} {:>11} {:>6} {:>8}  {formats}{note}\n",
            cell(&v.account),
            cell(&v.report_id),
            dash(&v.kind),
            dash(&v.level),
            dash(&v.schedule),
            dash(&v.result_action),
            v.saved,
            v.in_progress,
            v.failed,
            v.archived,
        ));
    }
    out
}
