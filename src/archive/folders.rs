//! The archive's own folders (`.partial/`, `.quarantine/`), checked without following a
//! link and cleared of nothing but our own temp files; moving a file to the quarantine;
//! deleting an archived file (retention); and listing what is in the archive.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::path::{is_temp_name, resolve};
use super::{ArchiveError, PARTIAL_DIR, place};

/// Moves what is at `relative` under `root` to `.quarantine/`; see [`Archive::quarantine`].
/// `root` may be given as configured: it is resolved first.
pub(super) async fn quarantine(
    root: &Path,
    relative: &str,
    now: DateTime<Utc>,
) -> Result<String, ArchiveError> {
    // Only plain relative paths: the same check as for any archive path.
    resolve(root, relative)?;
    let root = root.to_owned();
    let relative = relative.to_owned();
    tokio::task::spawn_blocking(move || {
        let real = std::fs::canonicalize(&root)
            .map_err(ArchiveError::io("resolve archive folder", &root))?;
        place::quarantine_entry(&real, &relative, now).map(|(to, _)| to)
    })
    .await
    .map_err(|e| ArchiveError::Writer(e.to_string()))?
}

/// Deletes the archived file at `relative` under `root` (retention); a file already gone is
/// not an error. Never through a folder that leads out of the archive: that is refused,
/// naming the link, like a write would be.
pub(super) async fn remove(root: &Path, relative: &str) -> Result<(), ArchiveError> {
    resolve(root, relative)?;
    let root = root.to_owned();
    let relative = relative.to_owned();
    tokio::task::spawn_blocking(move || {
        let real = match std::fs::canonicalize(&root) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ArchiveError::io("resolve archive folder", &root)(e)),
        };
        let path = real.join(&relative);
        if let Some(parent) = path.parent() {
            place::ensure_folders(&real, parent, false)?;
        }
        // `unlink(2)` removes a link at the path itself, never what it names.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ArchiveError::io("delete", &path)(e))
            }
            _ => Ok(()),
        }
    })
    .await
    .map_err(|e| ArchiveError::Writer(e.to_string()))?
}
/// Checks one of the archive's own folders (`.partial`, `.quarantine`) under the real
/// `root`, looking at it without following a link: a real folder, or missing (then made
/// when `create`). A symlink there could lead our deletes and renames anywhere, so it is
/// refused, as is anything else that is not a folder.
pub(super) fn own_folder(root: &Path, name: &str, create: bool) -> Result<PathBuf, ArchiveError> {
    let path = root.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = std::fs::read_link(&path).unwrap_or_default();
            Err(ArchiveError::NotOwnFolder {
                found: format!("a symlink (to `{}`)", target.display()),
                path,
                fix: "remove the link (what it points to is left alone); the daemon makes the folder itself",
            })
        }
        Ok(_) => Err(ArchiveError::NotOwnFolder {
            path,
            found: "not a folder".to_owned(),
            fix: "move it out of the way; the daemon makes the folder itself",
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            match std::fs::create_dir(&path) {
                Ok(()) => Ok(path),
                // Made meanwhile: it gets the same look as one found.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => own_folder(root, name, false),
                Err(e) => Err(ArchiveError::io("create archive folder", &path)(e)),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path),
        Err(e) => Err(ArchiveError::io("inspect", &path)(e)),
    }
}

/// The blocking body of [`Archive::clear_partial`].
pub(super) fn clear_partial_in(root: &Path) -> Result<usize, ArchiveError> {
    let partial = own_folder(root, PARTIAL_DIR, false)?;
    let entries = match std::fs::read_dir(&partial) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(ArchiveError::io("read", &partial)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(ArchiveError::io("read", &partial))?;
        let path = entry.path();
        // The entry's own type: a symlink is seen as a symlink, never as what it names.
        let kind = entry
            .file_type()
            .map_err(ArchiveError::io("inspect", &path))?;
        let ours = kind.is_file() && is_temp_name(&entry.file_name());
        if !ours {
            let what = if kind.is_dir() {
                "a folder"
            } else if kind.is_symlink() {
                "a symlink"
            } else if kind.is_file() {
                "a file not named like our temp files"
            } else {
                "not a regular file"
            };
            tracing::warn!(
                path = %path.display(),
                "left alone in the temp folder: {what}, not one of our temp files; remove it if nothing needs it"
            );
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ArchiveError::io("remove temp file", &path)(e)),
        }
    }
    Ok(removed)
}

/// Every file under the real `root`, `/`-separated and relative, not following links.
/// A folder at the top for which `skip` says true is left out (our own folders, or every
/// dot folder).
pub(super) fn files_under(
    root: &Path,
    skip: &dyn Fn(&std::ffi::OsStr) -> bool,
) -> Result<HashSet<String>, ArchiveError> {
    let mut out = HashSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ArchiveError::io("read", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(ArchiveError::io("read", &dir))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(ArchiveError::io("inspect", &path))?;
            if kind.is_dir() {
                if !(dir == root && skip(&entry.file_name())) {
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
