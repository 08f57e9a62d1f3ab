//! Start-up reconciliation of the archive with the ledger.
//!
//! - A ledger row whose file is gone is reported and marked missing, so the next pass
//!   fetches the item again if the cloud still has it.
//! - A file under a final name with no ledger row (a crash between the rename and the row,
//!   or a file put there by hand) is reported; the next pass fetches the item again and the
//!   atomic rename replaces the file with a verified copy. If the cloud no longer has it,
//!   the file is left where it is: nothing is ever deleted.

use std::collections::HashSet;

use crate::ledger::{ItemKey, Ledger, LedgerError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot read the archive folder: {0}")]
    Walk(#[from] StoreError),
}

/// What reconciliation found, as paths relative to the archive root.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub missing: Vec<String>,
    pub untracked: Vec<String>,
}

/// Compares what the store's folder holds with the ledger; a bucket is not listed at start
/// (see [`Store::files`]), so there is nothing to compare and nothing is found.
pub async fn reconcile(ledger: &Ledger, store: &Store) -> Result<Reconciliation, ReconcileError> {
    let Some(files) = store.files().await? else {
        return Ok(Reconciliation::default());
    };
    // Pruned rows name files retention deleted on purpose: marking them missing would make
    // the next pass fetch them again and undo the retention.
    let rows = ledger.live_rows().await?;
    let mut found = Reconciliation::default();
    let mut recorded = HashSet::with_capacity(rows.len());
    for row in &rows {
        recorded.insert(row.path.as_str());
        if !files.contains(&row.path) {
            tracing::warn!(path = %row.path, report_id = %row.report_id, stored_id = %row.stored_id, "archived file is missing; it is fetched again if the cloud still has it");
            ledger
                .mark_missing(&ItemKey {
                    account: &row.account,
                    report_id: &row.report_id,
                    stored_id: &row.stored_id,
                })
                .await?;
            found.missing.push(row.path.clone());
        }
    }
    for file in &files {
        if !recorded.contains(file.as_str()) {
            tracing::warn!(path = %file, "file in the archive is not in the ledger; the next pass fetches its item again if the cloud still has it, else it stays as it is");
            found.untracked.push(file.clone());
        }
    }
    found.untracked.sort();
    Ok(found)
}
