//! The local archive folder: where a report is staged, checked and (for a directory
//! archive) placed. It knows nothing of buckets; `crate::store` decides where a staged file
//! goes.
//!
//! - [`Archive::stage`] (`stage.rs`) streams a body into `.partial/`, checks it whole and
//!   fsyncs it: a [`Staged`] file.
//! - [`Archive::place`] (`place.rs`) puts a staged file at its archive path: fsync + link
//!   or rename + folder fsync (invariant 1), never replacing anything and never leaving
//!   the archive's real path. [`Archive::place_all`] (`place_all.rs`) places several at
//!   once, each folder fsynced once for all of them (a pass's group commit).
//! - `path.rs` holds the path rules: every part that came from the network is checked
//!   against an allow-list (invariant 6).
//! - The archive's own folders are its own (`folders.rs`): [`Archive::open`] refuses a
//!   `.partial/` or `.quarantine/` that is a symlink or not a folder, clears only our own
//!   temp files, and a file already at an item's path is never replaced: the same content
//!   is kept, anything else is moved to `.quarantine/` first.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

mod error;
mod folders;
mod path;
mod place;
mod place_all;
mod stage;
#[cfg(test)]
mod tests;
mod write;

pub use error::ArchiveError;
pub use path::{ArchiveTarget, ArchivedFile, BodyInfo, check_component};
pub use place::file_sha256;
pub use stage::Staged;

/// Temp files live here, under the archive root, so the final rename never crosses a
/// filesystem.
pub const PARTIAL_DIR: &str = ".partial";
/// Files found where they should not be are moved here, under the archive root (a rename,
/// never a copy, never a delete).
pub const QUARANTINE_DIR: &str = ".quarantine";

#[derive(Debug, Clone)]
pub struct Archive {
    root: PathBuf,
    keep_compressed: bool,
}

impl Archive {
    /// Creates the root, checks the archive's own folders and clears `.partial/`: anything
    /// of ours there is from a run that died. The caller holds the
    /// [`InstanceLock`](crate::instance::InstanceLock) on this archive, so no other daemon's
    /// temp files are there.
    ///
    /// The root's real path is resolved once here and used from then on: a root that is a
    /// symlink (the operator's choice) is fine, and everything below it is checked against
    /// where it really is.
    pub async fn open(root: &Path, keep_compressed: bool) -> Result<Self, ArchiveError> {
        let given = root.to_owned();
        let real = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&given)
                .map_err(ArchiveError::io("create archive folder", &given))?;
            let real = std::fs::canonicalize(&given)
                .map_err(ArchiveError::io("resolve archive folder", &given))?;
            folders::own_folder(&real, PARTIAL_DIR, true)?;
            // Made when first needed; a link or a file there is refused now, not when a
            // file has to be moved aside.
            folders::own_folder(&real, QUARANTINE_DIR, false)?;
            Ok::<_, ArchiveError>(real)
        })
        .await
        .map_err(|e| ArchiveError::Writer(e.to_string()))??;
        let archive = Self {
            root: real,
            keep_compressed,
        };
        archive.clear_partial().await?;
        Ok(archive)
    }

    /// A view of an existing archive that writes nothing (dry runs, reports, verify). The
    /// root is taken as given, not resolved: `stage` and `place` need [`Archive::open`].
    pub fn at(root: &Path, keep_compressed: bool) -> Self {
        Self {
            root: root.to_owned(),
            keep_compressed,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes our temp files from `.partial/`; returns how many there were.
    ///
    /// Only regular files named as `stage` names them are removed, looked at without
    /// following links; a folder, a symlink or any other file is left alone with a warning
    /// (it is not ours to delete, and it does not stop the start). A `.partial` that is
    /// not a real folder (any more) is an error: nothing is read or deleted through it.
    pub async fn clear_partial(&self) -> Result<usize, ArchiveError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || folders::clear_partial_in(&root))
            .await
            .map_err(|e| ArchiveError::Writer(e.to_string()))?
    }

    /// Puts a staged file at its archive path and makes that durable; see `place.rs`.
    pub async fn place(&self, staged: Staged) -> Result<ArchivedFile, ArchiveError> {
        let Staged {
            file,
            temp,
            mut guard,
        } = staged;
        let final_path = self.resolve(&file.relative_path)?;
        place::place_file(
            &temp,
            &final_path,
            &self.root,
            file.stored_bytes,
            &file.sha256,
        )
        .await?;
        guard.disarm();
        Ok(file)
    }

    /// Moves the file (or whatever is) at `relative` to `.quarantine/<relative>.<UTC
    /// timestamp>`; returns that path, relative to the root. The root is resolved first,
    /// and nothing moves through a folder that leads out of the archive.
    pub async fn quarantine(
        &self,
        relative: &str,
        now: DateTime<Utc>,
    ) -> Result<String, ArchiveError> {
        folders::quarantine(&self.root, relative, now).await
    }

    /// Deletes the archived file at `relative` (retention); a file already gone is not an
    /// error. Never through a folder that leads out of the archive: that is refused, naming
    /// the link, like a write would be.
    pub async fn remove(&self, relative: &str) -> Result<(), ArchiveError> {
        folders::remove(&self.root, relative).await
    }

    /// Every file in the archive, relative and `/`-separated, without following links.
    /// `own_folders_only`: leave out only `.partial/` and `.quarantine/` (verify reports
    /// anything else); otherwise every folder at the top whose name starts with a dot.
    pub async fn files(&self, own_folders_only: bool) -> Result<HashSet<String>, ArchiveError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let skip = |name: &std::ffi::OsStr| {
                if own_folders_only {
                    name == PARTIAL_DIR || name == QUARANTINE_DIR
                } else {
                    name.to_string_lossy().starts_with('.')
                }
            };
            folders::files_under(&root, &skip)
        })
        .await
        .map_err(|e| ArchiveError::Writer(e.to_string()))?
    }

    /// The archive path of an item, relative to the root; `compressed` adds `.gz`.
    pub fn relative_path(
        target: &ArchiveTarget<'_>,
        compressed: bool,
    ) -> Result<String, ArchiveError> {
        path::relative_path(target, compressed)
    }

    /// Joins a relative archive path to the root, refusing anything that could leave it.
    pub fn resolve(&self, relative: &str) -> Result<PathBuf, ArchiveError> {
        path::resolve(&self.root, relative)
    }
}
