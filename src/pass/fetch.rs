//! Fetching one planned item: a bounded download through the archive, recorded in the
//! ledger; [`refetch`] does the same for `verify --repair`.

use super::*;

/// Downloads, archives and records one item; returns the wire bytes.
pub(super) async fn download_one(
    ctx: &PassContext,
    d: &Download,
    slots: &Arc<Semaphore>,
) -> Result<u64, String> {
    let span = info_span!("download", account = %ctx.account.name, report_id = %d.report_id, stored_id = %d.stored_id, format = %d.item.report_format.as_str());
    async {
        let started = Instant::now();
        let policy = ctx.client.retry_policy();
        let result = policy
            .run(&d.stored_id, || fetch_and_record(ctx, d, Some(slots)))
            .await;
        match result {
            Ok(row) => {
                ctx.observer.item_archived(&ctx.account.name);
                info!(
                    bytes = row.wire_bytes,
                    stored_bytes = row.stored_bytes,
                    path = %row.path,
                    seconds = started.elapsed().as_secs_f64(),
                    "archived"
                );
                Ok(row.wire_bytes as u64)
            }
            Err(e) => {
                let message = e.to_string();
                let key = ItemKey {
                    account: &ctx.account.name,
                    report_id: &d.report_id,
                    stored_id: &d.stored_id,
                };
                let attempts = match ctx.mode.writes() {
                    Some(ledger) => ledger
                        .record_item_failure(&key, &message, ctx.settings.failure_backoff)
                        .await
                        .unwrap_or_else(|le| {
                            warn!(error.message = %le, "cannot record the failure in the ledger");
                            0
                        }),
                    None => 0,
                };
                warn!(error.message = %message, attempts, "download failed; left for a later pass");
                Err(message)
            }
        }
    }
    .instrument(span)
    .await
}

/// Fetches one stored item again, archives and records it exactly as a pass does, with
/// the same retries (`verify --repair`); returns the new ledger row.
pub async fn refetch(
    ctx: &PassContext,
    report_id: &str,
    item: StoredItem,
) -> Result<ArchivedRow, String> {
    check_component("report id", report_id).map_err(|e| e.to_string())?;
    let stored_id = item
        .id
        .clone()
        .ok_or_else(|| "the stored item has no id".to_owned())?;
    check_component("stored id", &stored_id).map_err(|e| e.to_string())?;
    let d = Download {
        report_id: report_id.to_owned(),
        stored_id,
        item,
    };
    let policy = ctx.client.retry_policy();
    policy
        .run(&d.stored_id, || fetch_and_record(ctx, &d, None))
        .await
        .map_err(|e| e.to_string())
}

/// Why one item could not be archived in one attempt.
#[derive(Debug, thiserror::Error)]
enum ItemError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Refused(String),
}

impl Transient for ItemError {
    fn verdict(&self) -> Verdict {
        match self {
            // The client already retried the request itself; only a body that broke in
            // transit is worth downloading again.
            Self::Archive(e) => e.verdict(),
            Self::Api(_) | Self::Ledger(_) | Self::Refused(_) => Verdict::GiveUp,
        }
    }
}

/// With `slots`, holds one of them from the request until the body has been read.
async fn fetch_and_record(
    ctx: &PassContext,
    d: &Download,
    slots: Option<&Arc<Semaphore>>,
) -> Result<ArchivedRow, ItemError> {
    let listed_size = match d.item.size {
        Some(s) if s < 0 => {
            return Err(ItemError::Refused(format!(
                "the listing gives a negative size ({s}); refused"
            )));
        }
        Some(s) if s as u64 > ctx.settings.max_file_size => {
            return Err(ItemError::Refused(format!(
                "the listing gives {s} bytes, more than max_file_size ({}); refused",
                ctx.settings.max_file_size
            )));
        }
        Some(s) => Some(s as u64),
        None => None,
    };
    let slot = match slots {
        // The semaphore is never closed; were it, the download would simply go unbounded.
        Some(slots) => Arc::clone(slots).acquire_owned().await.ok(),
        None => None,
    };
    let response = ctx.client.download(&d.report_id, &d.stored_id).await?;
    let gzip_header = match content_encoding(response.headers()) {
        Ok(gzip) => gzip,
        Err(refused) => return Err(ItemError::Refused(refused)),
    };
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
    let framed = chunked || response.version() >= reqwest::Version::HTTP_2;
    let info = BodyInfo {
        gzip_header,
        content_length: response.content_length(),
        listed_size,
        max_bytes: Some(ctx.settings.max_file_size),
        framed,
    };
    let target = ArchiveTarget {
        account: &ctx.account.name,
        report_id: &d.report_id,
        stored_id: &d.stored_id,
        format: &d.item.report_format,
        created_at: d.item.created_at,
    };
    let file = ctx
        .archive
        .store(
            &target,
            info,
            // The slot goes back when the archive drops the body, right after its end.
            response.bytes_stream().map(move |chunk| {
                let _slot = &slot;
                chunk
            }),
        )
        .await?;
    if let Some(listed) = listed_size
        && listed != file.wire_bytes
    {
        warn!(
            listed_size = listed,
            wire_bytes = file.wire_bytes,
            "the listing's size differs from the bytes served; the gzip stream's CRC and length check out, so it is archived, with both lengths in the ledger"
        );
    }
    let row = ArchivedRow {
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
    };
    if let Some(ledger) = ctx.mode.writes() {
        let object = file.object.map(|o| o.object);
        ledger.record_with_object(&row, object.as_ref()).await?;
    }
    Ok(row)
}

/// Whether the body is gzip by its `Content-Encoding`; an encoding we cannot undo (`br`,
/// `zstd`, `deflate`, a list of several) is refused, so it is never archived as if it
/// were the report.
fn content_encoding(headers: &reqwest::header::HeaderMap) -> Result<bool, String> {
    let mut values = headers.get_all(reqwest::header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(false);
    };
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    let single = values.next().is_none();
    match text.as_str() {
        "gzip" | "x-gzip" if single => Ok(true),
        "identity" | "" if single => Ok(false),
        _ => Err(format!(
            "the server sent Content-Encoding {:?}, which this version cannot decode; refused rather than archived undecoded",
            String::from_utf8_lossy(value.as_bytes())
                .chars()
                .take(64)
                .collect::<String>()
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
        assert_eq!(content_encoding(&with(&[])), Ok(false));
        assert_eq!(content_encoding(&with(&["identity"])), Ok(false));
        assert_eq!(content_encoding(&with(&["GZip"])), Ok(true));
        assert_eq!(content_encoding(&with(&["x-gzip"])), Ok(true));
        for refused in [&["br"][..], &["gzip, br"], &["deflate"], &["gzip", "gzip"]] {
            let err = content_encoding(&with(refused)).unwrap_err();
            assert!(err.contains("cannot decode"), "{err}");
        }
    }
}
