//! Fetching one planned item: a bounded download through the archive, recorded in the
//! ledger; [`refetch`] does the same for `verify --repair`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use futures::{Stream, StreamExt};
use tokio::sync::Semaphore;
use tracing::{Instrument, Span, info, info_span, warn};

use crate::api::StoredItem;
use crate::archive::{ArchiveTarget, ArchivedFile, BodyInfo, Staged, check_component};
use crate::ledger::{ArchivedRow, ItemKey, Ledger, rfc3339};
use crate::store::{Published, StoreError};

use super::commit::Committer;
use super::error::listed_size;
use super::run::ItemOutcome;
use super::{Download, ItemError, PassContext};

/// The span of one item's download: every line about the item carries its fields.
pub(super) fn download_span(
    ctx: &PassContext,
    report_id: &str,
    stored_id: &str,
    format: &str,
) -> Span {
    info_span!("download", account = %ctx.account.name, report_id = %report_id, stored_id = %stored_id, format = %format)
}

/// Downloads, archives and records one item, with the client's retries.
pub(super) async fn download_one(
    ctx: &PassContext,
    ledger: &Ledger,
    d: &Download,
    slots: &Arc<Semaphore>,
    committer: &Committer,
) -> ItemOutcome {
    let format = d.item.report_format.as_str();
    let span = download_span(ctx, &d.report_id, &d.stored_id, format);
    async {
        let started = Instant::now();
        let policy = ctx.client.retry_policy();
        let result = policy
            .run(&d.stored_id, || {
                fetch_and_record(ctx, Keep::Batched(committer), d, Some(slots))
            })
            .await;
        match result {
            Ok(row) => {
                ctx.observer.item_archived(&ctx.account.name);
                info!(
                    name: super::FILE_ARCHIVED_EVENT,
                    bytes = row.wire_bytes,
                    stored_bytes = row.stored_bytes,
                    path = %row.path,
                    seconds = started.elapsed().as_secs_f64(),
                    "archived"
                );
                ItemOutcome::Archived {
                    bytes: row.wire_bytes as u64,
                }
            }
            Err(e) => {
                // Not a failed try: a deletion, trusted at its second answer (`gone.rs`).
                if let Some(answer) = e.not_found() {
                    return super::gone::item_not_found(ctx, ledger, d, answer).await;
                }
                let key = ItemKey {
                    account: &ctx.account.name,
                    report_id: &d.report_id,
                    stored_id: &d.stored_id,
                };
                record_failure(ctx, ledger, &key, &e).await;
                ItemOutcome::Failed(e)
            }
        }
    }
    .instrument(span)
    .await
}

/// A failed try of an item: recorded (after several in a row, the item waits) and told.
pub(super) async fn record_failure(
    ctx: &PassContext,
    ledger: &Ledger,
    key: &ItemKey<'_>,
    error: &ItemError,
) {
    let message = error.to_string();
    let attempts = ledger
        .record_item_failure(key, &message, ctx.settings.failure_backoff)
        .await
        .unwrap_or_else(|le| {
            warn!(error.message = %le, "cannot record the failure in the ledger");
            0
        });
    warn!(error.message = %message, attempts, "download failed; left for a later pass");
}

/// Fetches one stored item again, archives and records it exactly as a pass does, with
/// the same checks and retries (`verify --repair`); returns the new ledger row.
pub async fn refetch(
    ctx: &PassContext,
    report_id: &str,
    item: StoredItem,
) -> Result<ArchivedRow, ItemError> {
    check_component("report id", report_id)?;
    let stored_id = item.id.clone().ok_or(ItemError::NoId)?;
    check_component("stored id", &stored_id)?;
    listed_size(item.size, ctx.settings.max_file_size)?;
    let d = Download {
        report_id: report_id.to_owned(),
        stored_id,
        item,
    };
    let keep = Keep::Alone(ctx.mode.writes());
    let policy = ctx.client.retry_policy();
    policy
        .run(&d.stored_id, || fetch_and_record(ctx, keep, &d, None))
        .await
}

/// How an attempt keeps its file and records its row.
#[derive(Clone, Copy)]
enum Keep<'a> {
    /// With the pass's other downloads, in the commit stage's next batch (`commit.rs`).
    Batched(&'a Committer),
    /// On its own, recorded in this ledger if any (`verify --repair`).
    Alone(Option<&'a Ledger>),
}

/// One attempt: the request, the body into the archive, the row into the ledger. With
/// `slots`, holds one of them from the request until the body has been read. The listed
/// size was checked when the item was planned.
async fn fetch_and_record(
    ctx: &PassContext,
    keep: Keep<'_>,
    d: &Download,
    slots: Option<&Arc<Semaphore>>,
) -> Result<ArchivedRow, ItemError> {
    let listed_size = d.item.size.and_then(|s| u64::try_from(s).ok());
    let slot = match slots {
        // The semaphore is never closed; were it, the download would simply go unbounded.
        Some(slots) => Arc::clone(slots).acquire_owned().await.ok(),
        None => None,
    };
    let response = ctx.client.download(&d.report_id, &d.stored_id).await?;
    let info = body_info(&response, listed_size, ctx.settings.max_file_size)?;
    // The slot goes back when the archive drops the body, right after its end.
    let body = response.bytes_stream().map(move |chunk| {
        let _slot = &slot;
        chunk
    });
    let staged = stage(ctx, d, info, body).await?;
    let file = &staged.file;
    if let Some(listed) = listed_size
        && listed != file.wire_bytes
    {
        warn!(
            listed_size = listed,
            wire_bytes = file.wire_bytes,
            "the listing's size differs from the bytes served; the gzip stream's CRC and length check out, so it is archived, with both lengths in the ledger"
        );
    }
    // What is kept is the staged file as it is: the row's file fields are final now.
    let row = archived_row(ctx, d, file.clone());
    match keep {
        Keep::Batched(committer) if ctx.store.publishes_in_batches() => {
            committer.commit(staged, row).await
        }
        Keep::Batched(committer) => {
            let Published { object, .. } = ctx.store.publish(staged).await?;
            committer.record(row, object).await
        }
        Keep::Alone(ledger) => {
            let Published { object, .. } = ctx.store.publish(staged).await?;
            if let Some(ledger) = ledger {
                ledger.record_with_object(&row, object.as_ref()).await?;
            }
            Ok(row)
        }
    }
}

/// What the response's headers tell the archive about its body.
fn body_info(
    response: &reqwest::Response,
    listed_size: Option<u64>,
    max_file_size: u64,
) -> Result<BodyInfo, ItemError> {
    let gzip_header = content_encoding(response.headers())?;
    // Chunked framing (HTTP/1.1) and HTTP/2 streams mark their own end, so a cut connection
    // is an error there; a body delimited only by the connection closing is not.
    let chunked = response
        .headers()
        .get_all(reqwest::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
        });
    Ok(BodyInfo {
        gzip_header,
        content_length: response.content_length(),
        listed_size,
        max_bytes: Some(max_file_size),
        framed: chunked || response.version() >= reqwest::Version::HTTP_2,
    })
}

/// Streams the body into the store's staging folder: the one place a pass hands a body
/// to storage.
async fn stage(
    ctx: &PassContext,
    d: &Download,
    info: BodyInfo,
    body: impl Stream<Item = reqwest::Result<Bytes>> + Unpin,
) -> Result<Staged, StoreError> {
    let target = ArchiveTarget {
        account: &ctx.account.name,
        report_id: &d.report_id,
        stored_id: &d.stored_id,
        format: &d.item.report_format,
        created_at: d.item.created_at,
    };
    ctx.store.stage(&target, info, body).await
}

/// The ledger row of an archived item.
fn archived_row(ctx: &PassContext, d: &Download, file: ArchivedFile) -> ArchivedRow {
    ArchivedRow {
        account: ctx.account.name.clone(),
        report_id: d.report_id.clone(),
        stored_id: d.stored_id.clone(),
        report_format: d.item.report_format.as_str().to_owned(),
        created_at: rfc3339(d.item.created_at),
        listed_size: d.item.size,
        wire_bytes: file.wire_bytes as i64,
        stored_bytes: file.stored_bytes as i64,
        sha256: file.sha256,
        compressed: file.compressed,
        path: file.relative_path,
        fetched_at: rfc3339(Utc::now()),
    }
}

/// Whether the body is gzip by its `Content-Encoding`; an encoding we cannot undo (`br`,
/// `zstd`, `deflate`, a list of several) is refused, so it is never archived as if it
/// were the report.
fn content_encoding(headers: &reqwest::header::HeaderMap) -> Result<bool, ItemError> {
    let mut values = headers.get_all(reqwest::header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(false);
    };
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    let single = values.next().is_none();
    match text.as_str() {
        "gzip" | "x-gzip" if single => Ok(true),
        "identity" | "" if single => Ok(false),
        _ => Err(ItemError::Encoding(
            String::from_utf8_lossy(value.as_bytes())
                .chars()
                .take(64)
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{CONTENT_ENCODING, HeaderMap, HeaderValue};

    use super::content_encoding;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CONTENT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_gzip_and_identity_are_accepted() {
        assert!(!content_encoding(&with(&[])).unwrap());
        assert!(!content_encoding(&with(&["identity"])).unwrap());
        assert!(content_encoding(&with(&["GZip"])).unwrap());
        assert!(content_encoding(&with(&["x-gzip"])).unwrap());
        for refused in [&["br"][..], &["gzip, br"], &["deflate"], &["gzip", "gzip"]] {
            let err = content_encoding(&with(refused)).unwrap_err().to_string();
            assert!(err.contains("cannot decode"), "{err}");
        }
        let err = content_encoding(&with(&["br"])).unwrap_err().to_string();
        assert_eq!(
            err,
            "the server sent Content-Encoding \"br\", which this version cannot decode; refused rather than archived undecoded"
        );
    }
}
