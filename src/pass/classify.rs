//! The decision for one listed item: [`classify`] tells what a pass does with it from the
//! listing, what the ledger knows and the settings alone. No I/O, so every rule is tested
//! here; planning acts on the [`Disposition`] (counts, ledger writes, downloads).

use std::collections::{HashMap, HashSet};

use crate::api::client::{ListedItem, Malformed};
use crate::api::{ApiError, StoredStatus};
use crate::archive::{ArchiveError, check_component};

use super::PassSettings;
use super::error::{ItemError, listed_size};

/// What the ledger and the archive say about one report's listed items.
#[derive(Debug, Clone, Default)]
pub struct LedgerFacts {
    /// The listed items already archived: stored id → the kept file's relative path.
    pub archived: HashMap<String, Option<String>>,
    /// The archived items whose kept file is no longer in the archive: stored id → path.
    pub gone: HashMap<String, String>,
    /// The items that failed several passes in a row: stored id → when they may be tried.
    pub deferred: HashMap<String, String>,
    /// The items the cloud lost before they were archived (their download answered 404
    /// or 410 on two passes): never asked for again.
    pub vanished: HashSet<String>,
}

/// What a pass does with one listed item.
#[derive(Debug)]
pub enum Disposition {
    /// Not ready yet; looked at again next pass. Counted pending.
    Pending(Pending),
    /// Cannot be handled at all. Counted failed.
    Failed(Unusable),
    /// In a format the configuration does not want. Counted excluded.
    Excluded,
    /// The cloud reports it failed: recorded in the ledger, never fetched. Counted
    /// cloud-failed.
    CloudFailed,
    /// Its id was listed before in this listing; the first one is the one handled.
    Duplicate,
    /// Archived, and its kept file is still there. Counted skipped.
    Skipped,
    /// The cloud lost it before it was archived: told once, when found (see `pass/gone.rs`),
    /// and never fetched again. Not counted.
    Vanished,
    /// It keeps failing and waits for `next_try`. Counted deferred.
    Deferred {
        stored_id: String,
        next_try: String,
        missing: Option<String>,
    },
    /// Refused before any request. Counted failed.
    Refused {
        stored_id: String,
        why: Refusal,
        missing: Option<String>,
    },
    /// To download. Counted once the download is over.
    Download {
        stored_id: String,
        missing: Option<String>,
    },
}

/// Why an item is not ready yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Does not parse, but says `in_progress`: the cloud may still be filling it in.
    Incomplete(Malformed),
    /// `in_progress`.
    InProgress,
    /// A status this version does not know.
    UnknownStatus(String),
}

/// Why an item cannot be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// Does not parse.
    Malformed(Malformed),
    /// Saved, but without an id to download it by.
    NoId,
}

/// Why an item is refused before any request.
#[derive(Debug)]
pub enum Refusal {
    /// Its id or its format cannot name a path part.
    Unsafe(ArchiveError),
    /// Its listed size is negative or over `max_file_size`. A failed try like a failed
    /// download, recorded as one, so an item that keeps being refused waits.
    Size(ItemError),
}

impl Disposition {
    /// An archived item whose kept file is gone: its stored id and the file's relative
    /// path. The ledger marks it missing before the item is handled, whatever comes next.
    pub fn missing(&self) -> Option<(&str, &str)> {
        match self {
            Self::Deferred {
                stored_id, missing, ..
            }
            | Self::Refused {
                stored_id, missing, ..
            }
            | Self::Download { stored_id, missing } => {
                missing.as_deref().map(|path| (stored_id.as_str(), path))
            }
            _ => None,
        }
    }
}

/// Decides what a pass does with `listed`. `seen`: the stored ids already handled in this
/// listing (updated here), so a listing that names an item twice fetches it once.
pub fn classify(
    listed: &ListedItem,
    facts: &LedgerFacts,
    settings: &PassSettings,
    seen: &mut HashSet<String>,
) -> Disposition {
    let item = match listed {
        Ok(item) => item,
        Err(e) if e.in_progress => return Disposition::Pending(Pending::Incomplete(e.clone())),
        Err(e) => return Disposition::Failed(Unusable::Malformed(e.clone())),
    };
    let format = item.report_format.as_str();
    if !settings.formats.is_empty() && !settings.formats.iter().any(|f| f == format) {
        return Disposition::Excluded;
    }
    match &item.status {
        StoredStatus::Saved => {}
        StoredStatus::InProgress => return Disposition::Pending(Pending::InProgress),
        StoredStatus::Failed => return Disposition::CloudFailed,
        StoredStatus::Other(s) => return Disposition::Pending(Pending::UnknownStatus(s.clone())),
    }
    let Some(stored_id) = item.id.as_deref() else {
        return Disposition::Failed(Unusable::NoId);
    };
    if !seen.insert(stored_id.to_owned()) {
        return Disposition::Duplicate;
    }
    let missing = match (
        facts.archived.contains_key(stored_id),
        facts.gone.get(stored_id),
    ) {
        (true, None) => return Disposition::Skipped,
        (true, Some(path)) => Some(path.clone()),
        (false, _) => None,
    };
    // Still listed, but its download answered 404/410 twice: asking again would only fail
    // again, and the pass must not turn a fact it told once into a failure every pass.
    if facts.vanished.contains(stored_id) {
        return Disposition::Vanished;
    }
    let stored_id = stored_id.to_owned();
    if let Some(next_try) = facts.deferred.get(&stored_id) {
        let next_try = next_try.clone();
        return Disposition::Deferred {
            stored_id,
            next_try,
            missing,
        };
    }
    let why = match check_component("stored id", &stored_id)
        .and_then(|()| check_component("report format", format))
    {
        Err(e) => Refusal::Unsafe(e),
        // Checked before any request: the body's own length is checked again as it streams.
        Ok(()) => match listed_size(item.size, settings.max_file_size) {
            Err(e) => Refusal::Size(e),
            Ok(_) => return Disposition::Download { stored_id, missing },
        },
    };
    Disposition::Refused {
        stored_id,
        why,
        missing,
    }
}

/// What a 404/410 on a report's stored list means, given what the report's settings
/// (`GET /reports/{id}`) answered in the same pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingNotFound {
    /// The settings answered 404/410 too: the report was deleted.
    Gone,
    /// The settings are there, or could not be read: not trusted as a deletion, and the
    /// report fails this pass (and is asked again next pass).
    Unconfirmed,
}

/// Decides whether a report whose stored list answered 404/410 is gone. The spec declares
/// no 404 for the stored list but does for the settings, so only the two together are
/// taken for a deletion: a discovered report that is gone is not asked again, and one
/// stray 404 must not close that door on a report that still bills.
pub fn listing_not_found(settings: Result<(), &ApiError>) -> ListingNotFound {
    match settings {
        Err(e) if e.not_found().is_some() => ListingNotFound::Gone,
        Ok(()) | Err(_) => ListingNotFound::Unconfirmed,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::api::{ReportFormat, StoredItem};

    fn settings(formats: &[&str]) -> PassSettings {
        PassSettings {
            reports: Vec::new(),
            formats: formats.iter().map(|f| (*f).to_owned()).collect(),
            concurrency: 4,
            max_file_size: 1000,
            failure_backoff: Duration::from_secs(600),
        }
    }

    fn item(id: Option<&str>, format: ReportFormat, status: StoredStatus) -> ListedItem {
        Ok(StoredItem {
            id: id.map(str::to_owned),
            report_format: format,
            size: Some(100),
            created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            status,
        })
    }

    fn saved(id: &str) -> ListedItem {
        item(Some(id), ReportFormat::Csv, StoredStatus::Saved)
    }

    fn sized(id: &str, size: i64) -> ListedItem {
        let mut listed = saved(id);
        if let Ok(i) = &mut listed {
            i.size = Some(size);
        }
        listed
    }

    fn malformed(in_progress: bool) -> ListedItem {
        Err(Malformed {
            message: "missing field `created_at`".into(),
            in_progress,
        })
    }

    /// Classifies `listed` alone, with no facts and every format wanted.
    fn alone(listed: &ListedItem) -> Disposition {
        classify(
            listed,
            &LedgerFacts::default(),
            &settings(&[]),
            &mut HashSet::new(),
        )
    }

    fn archived(id: &str, path: &str) -> LedgerFacts {
        LedgerFacts {
            archived: HashMap::from([(id.to_owned(), Some(path.to_owned()))]),
            ..LedgerFacts::default()
        }
    }

    #[test]
    fn a_malformed_item_waits_while_in_progress_and_fails_otherwise() {
        assert!(matches!(
            alone(&malformed(true)),
            Disposition::Pending(Pending::Incomplete(m)) if m.in_progress
        ));
        assert!(matches!(
            alone(&malformed(false)),
            Disposition::Failed(Unusable::Malformed(m)) if m.message.contains("created_at")
        ));
    }

    #[test]
    fn a_format_not_configured_is_excluded_before_its_status_counts() {
        let html = item(Some("a"), ReportFormat::Html, StoredStatus::Failed);
        let d = classify(
            &html,
            &LedgerFacts::default(),
            &settings(&["csv"]),
            &mut HashSet::new(),
        );
        assert!(matches!(d, Disposition::Excluded));
        let csv = saved("a");
        let d = classify(
            &csv,
            &LedgerFacts::default(),
            &settings(&["csv"]),
            &mut HashSet::new(),
        );
        assert!(matches!(d, Disposition::Download { missing: None, .. }));
    }

    #[test]
    fn in_progress_and_unknown_statuses_wait() {
        let d = alone(&item(
            Some("a"),
            ReportFormat::Csv,
            StoredStatus::InProgress,
        ));
        assert!(matches!(d, Disposition::Pending(Pending::InProgress)));
        let other = StoredStatus::Other("archived".into());
        let d = alone(&item(Some("a"), ReportFormat::Csv, other));
        assert!(matches!(d, Disposition::Pending(Pending::UnknownStatus(s)) if s == "archived"));
    }

    #[test]
    fn a_failed_item_is_a_cloud_failure_with_or_without_an_id() {
        for id in [Some("a"), None] {
            let d = alone(&item(id, ReportFormat::Csv, StoredStatus::Failed));
            assert!(matches!(d, Disposition::CloudFailed));
        }
    }

    #[test]
    fn a_saved_item_without_an_id_fails() {
        let d = alone(&item(None, ReportFormat::Csv, StoredStatus::Saved));
        assert!(matches!(d, Disposition::Failed(Unusable::NoId)));
    }

    #[test]
    fn an_id_listed_twice_is_handled_once() {
        let (facts, settings) = (LedgerFacts::default(), settings(&[]));
        let mut seen = HashSet::new();
        let first = classify(&saved("a"), &facts, &settings, &mut seen);
        let again = classify(&saved("a"), &facts, &settings, &mut seen);
        let other = classify(&saved("b"), &facts, &settings, &mut seen);
        assert!(matches!(first, Disposition::Download { .. }));
        assert!(matches!(again, Disposition::Duplicate));
        assert!(matches!(other, Disposition::Download { .. }));
    }

    #[test]
    fn an_item_that_is_not_saved_does_not_hide_a_later_saved_one() {
        let (facts, settings) = (LedgerFacts::default(), settings(&[]));
        let mut seen = HashSet::new();
        let waiting = item(Some("a"), ReportFormat::Csv, StoredStatus::InProgress);
        classify(&waiting, &facts, &settings, &mut seen);
        let d = classify(&saved("a"), &facts, &settings, &mut seen);
        assert!(matches!(d, Disposition::Download { .. }));
    }

    #[test]
    fn an_archived_item_is_skipped_while_its_file_is_there() {
        let facts = archived("a", "acme/r/a.csv");
        let d = classify(&saved("a"), &facts, &settings(&[]), &mut HashSet::new());
        assert!(matches!(d, Disposition::Skipped));
        assert_eq!(d.missing(), None);
    }

    #[test]
    fn an_archived_item_whose_file_is_gone_is_fetched_again_and_marked_missing() {
        let mut facts = archived("a", "acme/r/a.csv");
        facts.gone.insert("a".into(), "acme/r/a.csv".into());
        let d = classify(&saved("a"), &facts, &settings(&[]), &mut HashSet::new());
        assert!(
            matches!(&d, Disposition::Download { missing: Some(p), .. } if p == "acme/r/a.csv")
        );
        assert_eq!(d.missing(), Some(("a", "acme/r/a.csv")));
    }

    #[test]
    fn a_deferred_item_waits_and_a_gone_file_is_marked_missing_all_the_same() {
        let mut facts = LedgerFacts::default();
        facts
            .deferred
            .insert("a".into(), "2026-01-01T01:00:00Z".into());
        let d = classify(&saved("a"), &facts, &settings(&[]), &mut HashSet::new());
        assert!(matches!(
            &d,
            Disposition::Deferred { next_try, missing: None, .. } if next_try == "2026-01-01T01:00:00Z"
        ));
        let mut facts = archived("a", "p");
        facts.gone.insert("a".into(), "p".into());
        facts.deferred.insert("a".into(), "later".into());
        let d = classify(&saved("a"), &facts, &settings(&[]), &mut HashSet::new());
        assert!(matches!(d, Disposition::Deferred { .. }));
        assert_eq!(d.missing(), Some(("a", "p")));
    }

    #[test]
    fn an_id_or_format_that_cannot_name_a_path_part_is_refused() {
        let d = alone(&saved("../../etc/x"));
        assert!(matches!(
            d,
            Disposition::Refused {
                why: Refusal::Unsafe(ArchiveError::UnsafeComponent {
                    what: "stored id",
                    ..
                }),
                missing: None,
                ..
            }
        ));
        let odd = ReportFormat::Other("../x".into());
        let d = alone(&item(Some("a"), odd, StoredStatus::Saved));
        assert!(matches!(
            d,
            Disposition::Refused {
                why: Refusal::Unsafe(ArchiveError::UnsafeComponent {
                    what: "report format",
                    ..
                }),
                ..
            }
        ));
    }

    #[test]
    fn a_listed_size_negative_or_over_the_maximum_is_refused_before_any_request() {
        let d = alone(&sized("a", -5));
        assert!(matches!(
            d,
            Disposition::Refused {
                why: Refusal::Size(ItemError::NegativeSize(-5)),
                missing: None,
                ..
            }
        ));
        let d = alone(&sized("a", 1001));
        assert!(matches!(
            d,
            Disposition::Refused {
                why: Refusal::Size(ItemError::TooLarge {
                    size: 1001,
                    max: 1000
                }),
                ..
            }
        ));
        assert!(matches!(
            alone(&sized("a", 1000)),
            Disposition::Download { .. }
        ));
    }

    #[test]
    fn a_vanished_item_is_never_fetched_again_but_an_archived_one_is_skipped() {
        let mut facts = LedgerFacts::default();
        facts.vanished.insert("a".into());
        let d = classify(&saved("a"), &facts, &settings(&[]), &mut HashSet::new());
        assert!(matches!(d, Disposition::Vanished));
        assert_eq!(d.missing(), None);
        // Vanished wins over a deferral: the item is not tried at all.
        facts.deferred.insert("a".into(), "later".into());
        let d = classify(&saved("a"), &facts, &settings(&[]), &mut HashSet::new());
        assert!(matches!(d, Disposition::Vanished));
        // An item archived before its download went 404 stays what it is: archived.
        let mut facts = archived("a", "acme/r/a.csv");
        facts.vanished.insert("a".into());
        let d = classify(&saved("a"), &facts, &settings(&[]), &mut HashSet::new());
        assert!(matches!(d, Disposition::Skipped));
        // Not saved, or another id: the usual rules.
        let waiting = item(Some("a"), ReportFormat::Csv, StoredStatus::InProgress);
        let mut facts = LedgerFacts::default();
        facts.vanished.insert("a".into());
        let d = classify(&waiting, &facts, &settings(&[]), &mut HashSet::new());
        assert!(matches!(d, Disposition::Pending(Pending::InProgress)));
        let d = classify(&saved("b"), &facts, &settings(&[]), &mut HashSet::new());
        assert!(matches!(d, Disposition::Download { .. }));
    }

    #[test]
    fn a_listing_404_is_a_deletion_only_when_the_settings_answer_404_or_410_too() {
        let not_found = |status| ApiError::NotFound {
            url: "u".into(),
            status,
            message: "Report not found".into(),
        };
        for status in [404, 410] {
            let e = not_found(status);
            assert_eq!(listing_not_found(Err(&e)), ListingNotFound::Gone);
        }
        assert_eq!(listing_not_found(Ok(())), ListingNotFound::Unconfirmed);
        let unavailable = ApiError::Status {
            url: "u".into(),
            status: 503,
            message: "down".into(),
            retry_after: None,
        };
        let d = listing_not_found(Err(&unavailable));
        assert_eq!(d, ListingNotFound::Unconfirmed);
        let forbidden = ApiError::Status {
            url: "u".into(),
            status: 403,
            message: "Access denied".into(),
            retry_after: None,
        };
        let d = listing_not_found(Err(&forbidden));
        assert_eq!(d, ListingNotFound::Unconfirmed);
    }

    #[test]
    fn a_new_saved_item_is_downloaded_without_a_size_too() {
        let mut listed = saved("a");
        if let Ok(i) = &mut listed {
            i.size = None;
        }
        assert!(matches!(
            alone(&listed),
            Disposition::Download { missing: None, .. }
        ));
    }
}
