//! Group commit: the downloads of a pass hand their verified, fsynced temp files to one
//! commit stage, which keeps whatever has queued up together (each folder fsynced once for
//! all of them, `Store::publish_all`) and then records their rows in one ledger transaction
//! (one WAL fsync). Many small reports then cost one folder fsync per folder and one commit
//! per batch instead of several of each per file, and the ledger's single connection is
//! taken once per batch instead of five statements' worth per file.
//!
//! Invariant 2 holds as before: a batch's rows are written only after every file of the
//! batch is durable under its final name; a crash in between leaves files without rows,
//! which the next pass finds in place (same length and SHA-256) and records.
//!
//! No timer: a batch is whatever arrived while the previous one was being committed, so a
//! lone file is committed at once and a burst waits at most one commit.

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};

use crate::archive::Staged;
use crate::ledger::{ArchivedRow, Ledger, ObjectRef};

use super::{ItemError, PassContext};

/// The most files one batch keeps: bounds one transaction. The downloads in flight
/// (`run.rs`) bound it long before that.
const MAX_BATCH: usize = 256;

/// A file to keep (or already kept) and its row, and where to send how that went.
pub(super) struct Job {
    file: ToKeep,
    row: ArchivedRow,
    reply: oneshot::Sender<Result<ArchivedRow, ItemError>>,
}

/// What a job's file needs before its row may be written.
enum ToKeep {
    /// Staged: kept with the batch (`Store::publish_all`).
    Staged(Staged),
    /// Already uploaded to the bucket by its download (uploads gain nothing from a batch):
    /// only the row is batched, with the object's ETag and version.
    Uploaded(Option<ObjectRef>),
}

/// The downloads' side of the commit stage.
pub(super) struct Committer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Committer {
    /// The sending side and the queue [`run_commits`] drains; the stage ends once every
    /// `Committer` is dropped and the queue is empty.
    pub(super) fn new() -> (Self, mpsc::UnboundedReceiver<Job>) {
        // Unbounded: what waits in it is bounded by the downloads in flight.
        let (jobs, queue) = mpsc::unbounded();
        (Self { jobs }, queue)
    }

    /// Keeps `staged` and records `row` (whose file fields are `staged`'s) with the next
    /// batch; returns the row once it is in the ledger.
    pub(super) async fn commit(
        &self,
        staged: Staged,
        row: ArchivedRow,
    ) -> Result<ArchivedRow, ItemError> {
        self.send(ToKeep::Staged(staged), row).await
    }

    /// Records `row` of a file the bucket already holds (`object`) with the next batch.
    pub(super) async fn record(
        &self,
        row: ArchivedRow,
        object: Option<ObjectRef>,
    ) -> Result<ArchivedRow, ItemError> {
        self.send(ToKeep::Uploaded(object), row).await
    }

    async fn send(&self, file: ToKeep, row: ArchivedRow) -> Result<ArchivedRow, ItemError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .unbounded_send(Job { file, row, reply })
            .map_err(|_| ItemError::CommitStopped)?;
        answer.await.map_err(|_| ItemError::CommitStopped)?
    }
}

/// The commit stage: runs beside the downloads until they are done and the queue drained.
pub(super) async fn run_commits(
    ctx: &PassContext,
    ledger: &Ledger,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    while let Some(first) = queue.next().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                // Empty for now, or closed: commit what there is.
                Err(_) => break,
            }
        }
        commit_batch(ctx, ledger, batch).await;
    }
}

/// Keeps a batch's files, then records the rows of those that were kept.
async fn commit_batch(ctx: &PassContext, ledger: &Ledger, batch: Vec<Job>) {
    tracing::debug!(files = batch.len(), "committing a batch");
    let mut kept = Vec::with_capacity(batch.len());
    let mut staged = Vec::new();
    let mut waiting = Vec::new();
    for Job { file, row, reply } in batch {
        match file {
            ToKeep::Staged(s) => {
                staged.push(s);
                waiting.push((row, reply));
            }
            ToKeep::Uploaded(object) => kept.push((row, object, reply)),
        }
    }
    if !staged.is_empty() {
        let published = ctx.store.publish_all(staged).await;
        for ((row, reply), published) in waiting.into_iter().zip(published) {
            match published {
                Ok(p) => kept.push((row, p.object, reply)),
                // The downloader may be gone (cancelled): then no one is waiting.
                Err(e) => drop(reply.send(Err(e.into()))),
            }
        }
    }
    let rows: Vec<(&ArchivedRow, Option<&ObjectRef>)> = kept
        .iter()
        .map(|(row, object, _)| (row, object.as_ref()))
        .collect();
    match ledger.record_all(&rows).await {
        Ok(()) => {
            for (row, _, reply) in kept {
                let _ = reply.send(Ok(row));
            }
        }
        // One row at a time, so that each item gets its own answer and one bad row does
        // not fail the rest.
        Err(_) => {
            for (row, object, reply) in kept {
                let recorded = ledger.record_with_object(&row, object.as_ref()).await;
                let _ = reply.send(recorded.map(|()| row).map_err(ItemError::from));
            }
        }
    }
}
