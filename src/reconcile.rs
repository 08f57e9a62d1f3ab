//! Start-up reconciliation of the archive with the ledger.
//!
//! - A ledger row whose file is gone is reported and marked missing, so the next pass
//!   fetches the item again if the cloud still has it.
//! - A file under a final name with no ledger row (a crash between the rename and the row,
//!   or a file put there by hand) is reported; the next pass fetches the item again and the
//!   atomic rename replaces the file with a verified copy. If the cloud no longer has it,
//!   the file is left where it is: nothing is ever deleted.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::archive::Archive;
use crate::ledger::{ItemKey, Ledger, LedgerError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot read the archive folder `{path}`: {source}")]
    Walk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What reconciliation found, as paths relative to the archive root.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub missing: Vec<String>,
    pub untracked: Vec<String>,
}

pub async fn reconcile(
    ledger: &Ledger,
    archive: &Archive,
) -> Result<Reconciliation, ReconcileError> {
    let root = archive.root().to_owned();
    let files = tokio::task::spawn_blocking(move || archive_files(&root))
        .await
        .map_err(|e| ReconcileError::Walk {
            path: archive.root().to_owned(),
            source: std::io::Error::other(e.to_string()),
        })??;
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

/// Every file under the root, `/`-separated and relative, skipping top-level dot folders
/// (`.partial/`, `.quarantine/`).
fn archive_files(root: &Path) -> Result<HashSet<String>, ReconcileError> {
    let mut out = HashSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ReconcileError::Walk { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| ReconcileError::Walk {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|source| ReconcileError::Walk {
                path: path.clone(),
                source,
            })?;
            if kind.is_dir() {
                let hidden = dir == root && entry.file_name().to_string_lossy().starts_with('.');
                if !hidden {
                    stack.push(path);
                }
            } else if let Ok(rel) = path.strip_prefix(root) {
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(rel.join("/"));
            }
        }
    }
    Ok(out)
}
