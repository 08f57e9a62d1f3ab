//! Planning a pass: which reports, their stored lists against the ledger, and the saved
//! items that are new (or whose kept file is gone).

use super::*;

/// The configured report ids, or every report the client can see.
pub(super) async fn which_reports(ctx: &PassContext) -> Result<Vec<String>, String> {
    if !ctx.settings.reports.is_empty() {
        return Ok(ctx.settings.reports.clone());
    }
    let tenant = ctx
        .client
        .tenant_id()
        .await
        .map_err(|e| format!("cannot find the API client's tenant: {e}"))?;
    ctx.client
        .tenant_reports(&tenant)
        .await
        .map_err(|e| format!("cannot list the reports of tenant {tenant}: {e}"))
}

/// Why a discovered report has nothing stored: a `send` report mails its results. Asked
/// only for empty lists, so a pass costs one request per report.
async fn explain_empty(ctx: &PassContext, report_id: &str, outcome: &mut ReportOutcome) {
    match ctx.client.report(report_id).await {
        Ok(r) if r.stores_nothing() => {
            info!(
                report_id,
                "report is emailed (result_action = send) and stores nothing"
            );
            outcome.note = Some("result_action is send: nothing is stored".into());
        }
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(report_id, error.message = %e, "cannot read the report's settings")
        }
    }
}

/// Lists one report's stored items and returns the ones to download.
pub(super) async fn plan_report(
    ctx: &PassContext,
    report_id: &str,
    deferred: &HashMap<String, HashMap<String, String>>,
    outcome: &mut ReportOutcome,
) -> Result<Vec<Download>, String> {
    check_component("report id", report_id).map_err(|e| e.to_string())?;
    let items = ctx
        .client
        .stored_list(report_id)
        .await
        .map_err(|e| e.to_string())?;
    if items.is_empty() && ctx.settings.reports.is_empty() {
        explain_empty(ctx, report_id, outcome).await;
    }
    let listed_ids: Vec<&str> = items
        .iter()
        .filter_map(|item| item.as_ref().ok()?.id.as_deref())
        .collect();
    let archived = match ctx.mode.ledger() {
        Some(ledger) => ledger
            .archived_paths(&ctx.account.name, report_id, &listed_ids)
            .await
            .map_err(|e| e.to_string())?,
        None => HashMap::new(),
    };
    let no_deferred = HashMap::new();
    let deferred = deferred.get(report_id).unwrap_or(&no_deferred);
    let gone = files_gone(ctx, &items, &archived).await;
    let mut seen = HashSet::new();
    let mut todo = Vec::new();
    for item in items {
        let item = match item {
            Ok(item) => item,
            Err(e) if e.in_progress => {
                tracing::debug!(report_id, error.message = %e, "stored item still in progress and incomplete; looking again next pass");
                outcome.pending += 1;
                continue;
            }
            Err(e) => {
                warn!(report_id, error.message = %e, "malformed stored item");
                outcome.failed += 1;
                continue;
            }
        };
        let format = item.report_format.as_str();
        if !ctx.settings.formats.is_empty() && !ctx.settings.formats.iter().any(|f| f == format) {
            outcome.excluded += 1;
            continue;
        }
        match &item.status {
            StoredStatus::Saved => {}
            StoredStatus::InProgress => {
                outcome.pending += 1;
                continue;
            }
            StoredStatus::Failed => {
                outcome.cloud_failed += 1;
                if let (Some(ledger), Some(id)) = (ctx.mode.writes(), &item.id) {
                    match ledger
                        .record_cloud_failure(
                            &ctx.account.name,
                            report_id,
                            id,
                            format,
                            item.created_at,
                        )
                        .await
                    {
                        Ok(true) => {
                            warn!(report_id, stored_id = %id, format, "the cloud reports this stored item as failed; recorded, not fetched")
                        }
                        Ok(false) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                continue;
            }
            StoredStatus::Other(s) => {
                warn!(report_id, status = %s, "stored item has a status this version does not know; looking again next pass");
                outcome.pending += 1;
                continue;
            }
        }
        let Some(stored_id) = item.id.clone() else {
            warn!(
                report_id,
                format, "saved item without an id cannot be downloaded"
            );
            outcome.failed += 1;
            continue;
        };
        if !seen.insert(stored_id.clone()) {
            continue;
        }
        if archived.contains_key(&stored_id) {
            let Some(path) = gone.get(&stored_id) else {
                outcome.skipped += 1;
                continue;
            };
            warn!(report_id, stored_id = %stored_id, path = %path, "archived file is missing; fetching it again");
            if let Some(ledger) = ctx.mode.writes() {
                let key = ItemKey {
                    account: &ctx.account.name,
                    report_id,
                    stored_id: &stored_id,
                };
                ledger.mark_missing(&key).await.map_err(|e| e.to_string())?;
            }
        }
        if let Some(next_try) = deferred.get(&stored_id) {
            tracing::debug!(report_id, stored_id = %stored_id, next_try = %next_try, "item keeps failing; waiting for its next try");
            outcome.deferred += 1;
            continue;
        }
        if let Err(e) = check_component("stored id", &stored_id)
            .and_then(|()| check_component("report format", format))
        {
            warn!(report_id, error.message = %e, "stored item refused");
            outcome.failed += 1;
            continue;
        }
        todo.push(Download {
            report_id: report_id.to_owned(),
            stored_id,
            item,
        });
    }
    Ok(todo)
}

/// The kept files, among the items the cloud lists, that are no longer in the archive
/// (stored id → relative path). Checking only what the cloud still lists keeps a pass's cost
/// independent of the ledger's size, and these are the only missing files a pass can
/// restore; `verify` and the service's start-up reconciliation look at all of them.
async fn files_gone(
    ctx: &PassContext,
    items: &[crate::api::client::ListedItem],
    archived: &HashMap<String, Option<String>>,
) -> HashMap<String, String> {
    let kept: Vec<(String, String)> = items
        .iter()
        .filter_map(|item| item.as_ref().ok())
        .filter(|item| item.status == StoredStatus::Saved)
        .filter_map(|item| {
            let id = item.id.as_ref()?;
            let path = archived.get(id)?.as_ref()?;
            Some((id.clone(), path.clone()))
        })
        .collect();
    // On the S3 target the files are objects, not files under the root; checking that they
    // are still there is `verify`'s job, not a pass's.
    if kept.is_empty() || ctx.archive.objects().is_some() {
        return HashMap::new();
    }
    let archive = Arc::clone(&ctx.archive);
    let check = tokio::task::spawn_blocking(move || {
        kept.into_iter()
            .filter(|(_, path)| {
                // Only a definite "not found" counts: an unreadable folder is not a reason to
                // download the item again.
                archive.resolve(path).is_ok_and(|p| {
                    matches!(p.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
                })
            })
            .collect::<HashMap<String, String>>()
    });
    check.await.unwrap_or_default()
}
