//! The pass's typed errors: why one item was not archived ([`ItemError`]) and why a report
//! or a whole pass failed ([`PassError`]). They become text only in the [`super::PassReport`],
//! where they are shown and stored as text.

use crate::api::ApiError;
use crate::api::retry::{Transient, Verdict};
use crate::archive::ArchiveError;
use crate::ledger::LedgerError;
use crate::store::StoreError;

/// Why one item was not archived: refused before any request, or one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Staging the body or keeping it (placing it, uploading it).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("the stored item has no id")]
    NoId,
    #[error("the listing gives a negative size ({0}); refused")]
    NegativeSize(i64),
    #[error("the listing gives {size} bytes, more than max_file_size ({max}); refused")]
    TooLarge { size: u64, max: u64 },
    /// An encoding we cannot undo (`br`, `zstd`, `deflate`, a list of several): refused, so
    /// it is never archived as if it were the report. Holds the header, cut short.
    #[error(
        "the server sent Content-Encoding {0:?}, which this version cannot decode; refused rather than archived undecoded"
    )]
    Encoding(String),
    /// The pass's commit stage ended before this item was recorded (it panicked): the
    /// file, if kept, is found in place and recorded by the next pass.
    #[error(
        "the pass's commit stage stopped before this item was recorded; the next pass records it"
    )]
    CommitStopped,
}

impl Transient for ItemError {
    fn verdict(&self) -> Verdict {
        match self {
            // The client already retried the request itself; only a body that broke in
            // transit is worth downloading again.
            Self::Archive(e) => e.verdict(),
            Self::Store(e) => e.verdict(),
            Self::Api(_)
            | Self::Ledger(_)
            | Self::NoId
            | Self::NegativeSize(_)
            | Self::TooLarge { .. }
            | Self::Encoding(_)
            | Self::CommitStopped => Verdict::GiveUp,
        }
    }
}

impl ItemError {
    /// The download answered 404 or 410: its status and the cloud's message.
    pub fn not_found(&self) -> Option<(u16, &str)> {
        match self {
            Self::Api(e) => e.not_found(),
            _ => None,
        }
    }
}

/// The listed size, checked before any request: a negative one, or one over `max`
/// (`[archive] max_file_size`), is refused.
pub fn listed_size(size: Option<i64>, max: u64) -> Result<Option<u64>, ItemError> {
    match size {
        None => Ok(None),
        Some(s) => match u64::try_from(s) {
            Err(_) => Err(ItemError::NegativeSize(s)),
            Ok(size) if size > max => Err(ItemError::TooLarge { size, max }),
            Ok(size) => Ok(Some(size)),
        },
    }
}

/// Why a report's part of a pass, or the whole pass, failed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A report id that cannot name a folder.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("cannot find the API client's tenant: {0}")]
    Tenant(#[source] ApiError),
    /// The stored list answered 404/410 while the report's settings did not: not taken
    /// for a deletion (see `classify::listing_not_found`).
    #[error(
        "{0}; the report's settings still answer, so this is not taken for a deletion and the report is asked again next pass"
    )]
    ListingNotFound(#[source] ApiError),
    /// A configured report that answers 404/410 and of which the ledger holds nothing: more
    /// likely a wrong id in `reports` than a deletion, so it fails the pass.
    #[error(
        "{0}; this ledger never archived anything of this report, so it is taken for a wrong id in `reports`, not a deletion"
    )]
    UnknownReport(#[source] ApiError),
    #[error("cannot list the reports of tenant {tenant}: {source}")]
    Reports {
        tenant: String,
        #[source]
        source: ApiError,
    },
    /// Only `save` reports store results; a tenant whose reports are all e-mailed (or
    /// that has none, as a new one may: portal-scheduled reports are e-mailed) has nothing
    /// for any pass to archive.
    #[error(
        "nothing to archive: {}; only reports with result_action = save store results. Create one: `report-archiver reports create --account {account}`",
        seen(*.reports)
    )]
    NothingToArchive { account: String, reports: usize },
}

impl PassError {
    /// The text a report or a pass keeps of its failure: shown by `once`, served on
    /// `/healthz`, stored in the ledger. The one place a pass's typed error becomes text.
    pub fn into_text(self) -> String {
        self.to_string()
    }
}

/// What the API client sees, for [`PassError::NothingToArchive`].
fn seen(reports: usize) -> String {
    match reports {
        0 => "the API client sees no reports".into(),
        n => format!("all {n} report(s) the API client sees are e-mailed (result_action = send)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_size_is_refused_when_negative_or_over_the_maximum() {
        assert!(matches!(listed_size(None, 10), Ok(None)));
        assert!(matches!(listed_size(Some(0), 10), Ok(Some(0))));
        assert!(matches!(listed_size(Some(10), 10), Ok(Some(10))));
        let err = listed_size(Some(-5), 10).unwrap_err();
        assert!(matches!(err, ItemError::NegativeSize(-5)));
        assert!(err.to_string().contains("negative size (-5)"), "{err}");
        let err = listed_size(Some(11), 10).unwrap_err();
        assert!(matches!(err, ItemError::TooLarge { size: 11, max: 10 }));
        assert_eq!(
            err.to_string(),
            "the listing gives 11 bytes, more than max_file_size (10); refused"
        );
    }
}
