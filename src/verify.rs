//! `verify`: is every archived file still the one the ledger recorded?
//!
//! - [`verify`] has the store re-hash every file (or object) the ledger names (streamed,
//!   [`PARALLEL_FILES`] at a time, so memory stays bounded however large the archive) and
//!   list what it holds that no row names.
//! - [`repair`] sets changed files aside (`<archive>/.quarantine/`, never deleted; a changed
//!   object stays), fetches missing and set-aside items again through the pass's own code
//!   path, and gives objects the Object Lock retention they lack.
//! - [`VerifyReport`] says what was found and done; [`render`] is its human form.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;

use crate::api::StoredStatus;
/// Changed files are moved here, under the archive root (a rename, never a copy).
pub use crate::archive::QUARANTINE_DIR;
use crate::ledger::ArchivedRow;
use crate::pass::{PassContext, refetch};
use crate::progress::Progress;
use crate::store::{Check, Store, StoreError};

/// Files hashed at once: enough to keep a disk busy, few enough to stay gentle.
pub const PARALLEL_FILES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot list what the archive holds: {0}")]
    List(#[from] StoreError),
    /// Checked before any file: with an unreadable root every file would look unreadable
    /// (or missing), and an empty ledger would look fine.
    #[error(
        "cannot read the archive folder `{}`: {source}; check --archive or archive.dir, and that this user may read it",
        path.display()
    )]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One archived item that is not as the ledger says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub account: String,
    pub report_id: String,
    pub stored_id: String,
    /// Relative to the archive dir.
    pub path: String,
    pub expected_sha256: String,
    /// What is on disk now, when it could be read.
    pub actual_sha256: Option<String>,
    pub detail: String,
    /// For an object not locked as `object_lock` asks: the retain-until date it should
    /// have (archive time + `retain`), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<String>,
}

impl Finding {
    fn new(row: &ArchivedRow, actual: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            account: row.account.clone(),
            report_id: row.report_id.clone(),
            stored_id: row.stored_id.clone(),
            path: row.path.clone(),
            expected_sha256: row.sha256.clone(),
            actual_sha256: actual,
            detail: detail.into(),
            retain_until: None,
        }
    }
}

/// What `--repair` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// Where each changed file went, relative to the archive dir.
    pub quarantined: Vec<String>,
    /// Archive paths fetched again and recorded.
    pub restored: Vec<String>,
    /// What could not be restored, with the reason in `detail`.
    pub not_restored: Vec<Finding>,
    /// Objects given the Object Lock retention they lacked (S3 target).
    pub locked: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Ledger rows looked at.
    pub checked: u64,
    pub intact: u64,
    pub bytes_hashed: u64,
    pub missing: Vec<Finding>,
    pub changed: Vec<Finding>,
    /// There but not readable (an I/O error): not counted as changed, never quarantined
    /// or fetched over by `--repair`; an operator looks at it.
    pub unreadable: Vec<Finding>,
    /// Files under the archive dir that no ledger row names (`.partial/` and
    /// `.quarantine/` aside), relative.
    pub untracked: Vec<String>,
    /// S3 with `object_lock`: intact objects without the retention it asks for (written
    /// before it was set, or shortened in governance mode).
    pub unlocked: Vec<Finding>,
    pub repair: Option<RepairReport>,
}

impl VerifyReport {
    /// True when nothing needs an operator: exit 0.
    pub fn is_clean(&self) -> bool {
        if !self.untracked.is_empty() || !self.unreadable.is_empty() {
            return false;
        }
        match &self.repair {
            Some(r) => r.not_restored.is_empty(),
            None => self.missing.is_empty() && self.changed.is_empty() && self.unlocked.is_empty(),
        }
    }
}

/// Re-hashes the file (or object) of every row and looks for untracked ones, wherever the
/// store keeps them.
pub async fn verify(
    store: &Store,
    rows: Vec<ArchivedRow>,
    progress: &Progress,
) -> Result<VerifyReport, VerifyError> {
    if let Some(root) = store.folder_root() {
        root_readable(root).await?;
    }
    let tracked: HashSet<String> = rows.iter().map(|r| r.path.clone()).collect();
    progress.add_work(
        rows.len() as u64,
        rows.iter()
            .map(|r| u64::try_from(r.stored_bytes).unwrap_or(0))
            .sum(),
    );
    let mut report = VerifyReport {
        checked: rows.len() as u64,
        ..VerifyReport::default()
    };
    let now = Utc::now();
    let mut checks = futures::stream::iter(rows)
        .map(|row| async move {
            let check = store.check(&row, now).await;
            (row, check)
        })
        .buffer_unordered(PARALLEL_FILES);
    while let Some((row, check)) = checks.next().await {
        progress.item_done(u64::try_from(row.stored_bytes).unwrap_or(0));
        record(&mut report, &row, check);
    }
    report.missing.sort_by(|a, b| a.path.cmp(&b.path));
    report.changed.sort_by(|a, b| a.path.cmp(&b.path));
    report.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
    report.unlocked.sort_by(|a, b| a.path.cmp(&b.path));
    report.untracked = store.untracked(&tracked).await?;
    Ok(report)
}

/// The archive folder can be listed: it exists, is a folder, and this user may read it.
async fn root_readable(root: &std::path::Path) -> Result<(), VerifyError> {
    let path = root.to_owned();
    let listed = tokio::task::spawn_blocking(move || std::fs::read_dir(&path).map(|_| ()))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    listed.map_err(|source| VerifyError::Root {
        path: root.to_owned(),
        source,
    })
}

/// Counts one row's check into the report.
fn record(report: &mut VerifyReport, row: &ArchivedRow, check: Check) {
    match check {
        Check::Intact { len, unlocked } => {
            report.bytes_hashed += len;
            report.intact += 1;
            if let Some(u) = unlocked {
                let mut finding = Finding::new(row, Some(row.sha256.clone()), u.detail);
                finding.retain_until = Some(u.retain_until);
                report.unlocked.push(finding);
            }
        }
        Check::Changed { actual, detail } => {
            let actual = actual.map(|(sha, len)| {
                report.bytes_hashed += len;
                sha
            });
            report.changed.push(Finding::new(row, actual, detail));
        }
        Check::Missing { detail } => report.missing.push(Finding::new(row, None, detail)),
        Check::Unreadable { detail } => report.unreadable.push(Finding::new(row, None, detail)),
    }
}

/// Sets changed files aside (quarantined, never deleted; a changed object is left as it
/// is and reported), fetches missing and set-aside items again from the cloud of the
/// account that archived them (`contexts`, one per configured account), and gives objects
/// the Object Lock retention they lack.
pub async fn repair(
    report: &mut VerifyReport,
    store: &Store,
    contexts: &[PassContext],
    now: DateTime<Utc>,
) {
    let mut result = RepairReport::default();
    let mut wanted: Vec<Finding> = report.missing.clone();
    for finding in &report.changed {
        match store.set_aside(&finding.path, now).await {
            Ok(to) => {
                tracing::warn!(path = %finding.path, quarantined = %to, "changed file quarantined");
                result.quarantined.push(to);
                wanted.push(finding.clone());
            }
            Err(why) => {
                // Fetching over it would destroy the evidence; leave it for the operator.
                let mut f = finding.clone();
                f.detail = format!("{}; {why}", f.detail);
                result.not_restored.push(f);
            }
        }
    }
    refetch_findings(wanted, contexts, &mut result).await;
    for finding in &report.unlocked {
        let outcome = match finding.retain_until.as_deref() {
            Some(until) => store.lock_until(&finding.path, until).await,
            None => Ok(()),
        };
        match outcome {
            Ok(()) => result.locked.push(finding.path.clone()),
            Err(e) => {
                let mut f = finding.clone();
                f.detail = format!("cannot set its retention: {e}");
                result.not_restored.push(f);
            }
        }
    }
    report.repair = Some(result);
}

/// Fetches the items of `wanted` again, through the pass's own code path, from the cloud
/// of the account that archived them.
async fn refetch_findings(
    wanted: Vec<Finding>,
    contexts: &[PassContext],
    result: &mut RepairReport,
) {
    let mut by_report: BTreeMap<(String, String), Vec<Finding>> = BTreeMap::new();
    for f in wanted {
        by_report
            .entry((f.account.clone(), f.report_id.clone()))
            .or_default()
            .push(f);
    }
    for ((account, report_id), findings) in by_report {
        let Some(ctx) = contexts.iter().find(|c| c.account.name == account) else {
            let reason = format!("account `{account}` is not in the configuration");
            not_restored(result, findings, &reason);
            continue;
        };
        let listing = match ctx.client.stored_list(&report_id).await {
            Ok(l) => l,
            Err(e) => {
                let reason = format!("cannot list the report's stored items: {e}");
                not_restored(result, findings, &reason);
                continue;
            }
        };
        for finding in findings {
            let item = listing
                .iter()
                .filter_map(|i| i.as_ref().ok())
                .find(|i| i.id.as_deref() == Some(finding.stored_id.as_str()));
            let outcome = match item {
                None => Err("the cloud no longer has this stored item".to_owned()),
                Some(i) if i.status != StoredStatus::Saved => Err(format!(
                    "the cloud lists this stored item as {}",
                    i.status.as_str()
                )),
                Some(i) => refetch(ctx, &report_id, i.clone())
                    .await
                    .map_err(|e| e.to_string()),
            };
            match outcome {
                Ok(row) => {
                    if row.sha256 != finding.expected_sha256 {
                        tracing::warn!(path = %row.path, "fetched again, but the cloud's copy differs from the one archived before; the ledger now holds the new hash");
                    }
                    result.restored.push(row.path);
                }
                Err(reason) => {
                    let mut f = finding;
                    f.detail = reason;
                    result.not_restored.push(f);
                }
            }
        }
    }
    result.restored.sort();
}

fn not_restored(result: &mut RepairReport, findings: Vec<Finding>, reason: &str) {
    for mut f in findings {
        f.detail = reason.to_owned();
        result.not_restored.push(f);
    }
}

/// The human form: a summary line, then one line per finding and repair.
pub fn render(r: &VerifyReport) -> String {
    // Only the S3 target with `object_lock` can have unlocked objects.
    let unlocked = if r.unlocked.is_empty() {
        String::new()
    } else {
        format!(", {} not locked", r.unlocked.len())
    };
    let mut out = format!(
        "checked {} file(s): {} intact, {} missing, {} changed, {} unreadable, {} untracked{unlocked}; {} byte(s) hashed\n",
        r.checked,
        r.intact,
        r.missing.len(),
        r.changed.len(),
        r.unreadable.len(),
        r.untracked.len(),
        r.bytes_hashed
    );
    // Paths may be names someone else put in the archive, details may quote a server (a
    // failed re-fetch): both escaped, one finding per line.
    let text = |s: &str| crate::untrusted::sanitize(s, crate::untrusted::STORED_MAX);
    for f in &r.missing {
        out.push_str(&format!(
            "MISSING      {}  ({})\n",
            text(&f.path),
            text(&f.detail)
        ));
    }
    for f in &r.changed {
        out.push_str(&format!(
            "CHANGED      {}  (expected {}, {})\n",
            text(&f.path),
            f.expected_sha256,
            text(&f.detail)
        ));
    }
    for f in &r.unreadable {
        out.push_str(&format!(
            "UNREADABLE   {}  ({}; left as it is)\n",
            text(&f.path),
            text(&f.detail)
        ));
    }
    for p in &r.untracked {
        out.push_str(&format!("UNTRACKED    {}\n", text(p)));
    }
    for f in &r.unlocked {
        out.push_str(&format!(
            "UNLOCKED     {}  ({})\n",
            text(&f.path),
            text(&f.detail)
        ));
    }
    if let Some(repair) = &r.repair {
        for p in &repair.quarantined {
            out.push_str(&format!("QUARANTINED  {}\n", text(p)));
        }
        for p in &repair.restored {
            out.push_str(&format!("RESTORED     {}\n", text(p)));
        }
        for p in &repair.locked {
            out.push_str(&format!("LOCKED       {}\n", text(p)));
        }
        for f in &repair.not_restored {
            out.push_str(&format!(
                "NOT RESTORED {}  ({})\n",
                text(&f.path),
                text(&f.detail)
            ));
        }
    }
    out.push_str(if r.is_clean() {
        "ok\n"
    } else {
        "findings: see above\n"
    });
    out
}
