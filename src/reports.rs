//! `reports`: what an account offers, next to what the ledger holds of it.
//!
//! Read-only against the cloud: the same discovery as a pass (`/clients/{id}` → tenant →
//! `/tenants/{tenant}/reports` → `/reports/{id}`, or the configured ids), then each
//! report's stored list, counted by status. Only GETs; nothing is downloaded.
//!
//! - [`ReportView`]: one report's row, for the table and `--json` alike.
//! - [`overview`]: the rows of one account; [`render`]: the table.

use std::collections::HashSet;

use serde::Serialize;

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
