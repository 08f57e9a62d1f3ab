//! The places on disk the config names: the archive folder (with `[archive.s3]`, the staging
//! folder) and the ledger's folder. [`check`] says whether they can be used without writing
//! anything lasting (`check-config`); [`prepare`] creates what is missing, as far as it is
//! allowed to, and logs every folder it creates (`run`, `once`, before the first lock).
//!
//! The rule: the archive folder and the ledger file are created when their parent folder
//! exists (a first start in a state directory the service manager made); a parent folder
//! that does not exist is an error, unless `--create-dirs` / `[daemon] create_dirs` says
//! to create it. A typo in a path must stop the daemon, not start a new, empty ledger that
//! downloads everything again.

use std::io;
use std::path::{Path, PathBuf};

use crate::archive::{PARTIAL_DIR, QUARANTINE_DIR};
use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(
        "{key}: `{}` is under `{}`, which is a file, not a folder; set {key} to a path in a folder",
        path.display(), file.display()
    )]
    UnderFile {
        key: &'static str,
        path: PathBuf,
        file: PathBuf,
    },
    #[error(
        "{key}: the folder `{}` (for `{}`) does not exist; fix {key} if it is a typo, create the folder (mkdir -p), or let report-archiver create it: run/once --create-dirs, or [daemon] create_dirs = true",
        missing.display(), path.display()
    )]
    MissingParent {
        key: &'static str,
        path: PathBuf,
        missing: PathBuf,
    },
    #[error("{key}: `{}` is not a folder; {fix}", path.display())]
    NotAFolder {
        key: &'static str,
        path: PathBuf,
        fix: &'static str,
    },
    #[error(
        "{key}: `{}` is a folder; set {key} to a file in it, e.g. `{}`",
        path.display(), path.join("ledger.db").display()
    )]
    LedgerIsFolder { key: &'static str, path: PathBuf },
    #[error(
        "{key}: cannot write in `{}` ({source}); give this user write access there, or choose another path",
        dir.display()
    )]
    NotWritable {
        key: &'static str,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{key}: `{}` is on another filesystem than `{}`; files are renamed from there into the archive, which cannot cross filesystems: remove that mount (or link) and let report-archiver make the folder",
        inner.display(), dir.display()
    )]
    OtherFilesystem {
        key: &'static str,
        dir: PathBuf,
        inner: PathBuf,
    },
    #[error("{key}: cannot {action} `{}`: {source}; check the path and its permissions", path.display())]
    Io {
        key: &'static str,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

const ARCHIVE_KEY: &str = "archive.dir";
const LEDGER_KEY: &str = "ledger.path";

/// What [`check`] found about one place: its key, its absolute path, what will happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub key: &'static str,
    pub path: PathBuf,
    pub state: &'static str,
}

/// Checks the archive folder and the ledger's folder as `run` would use them, writing
/// nothing that stays (writability is tried with a file that is removed at once).
///
/// # Errors
/// The first place that cannot be used, naming its key.
pub fn check(settings: &Settings) -> Result<Vec<Finding>, LocationError> {
    let create = settings.daemon.create_dirs;
    let archive = absolute(&settings.archive.dir);
    let archive_state = match inspect_folder(ARCHIVE_KEY, &archive, create, true)? {
        Plan::Exists => {
            check_same_filesystem(&archive)?;
            "exists, writable"
        }
        Plan::Create => "missing; created at the first run",
        Plan::CreateParents => "missing, with its parent; created at the first run (create_dirs)",
    };
    let ledger = absolute(&settings.ledger.path);
    let ledger_state = match inspect_ledger(&ledger, create, true)? {
        (_, true) => "exists, its folder writable",
        (Plan::Exists, false) => "missing; a new ledger is started at the first run",
        (_, false) => "missing, with its folder; created at the first run (create_dirs)",
    };
    Ok(vec![
        Finding {
            key: ARCHIVE_KEY,
            path: archive,
            state: archive_state,
        },
        Finding {
            key: LEDGER_KEY,
            path: ledger,
            state: ledger_state,
        },
    ])
}

/// Makes the archive folder and the ledger's folder ready for a writing run: creates the
/// archive folder, and missing parent folders when `[daemon] create_dirs` is set; logs each
/// folder it creates and a new ledger.
///
/// # Errors
/// As [`check`], or a folder that could not be created.
pub fn prepare(settings: &Settings) -> Result<(), LocationError> {
    let create = settings.daemon.create_dirs;
    let ledger = absolute(&settings.ledger.path);
    let archive = absolute(&settings.archive.dir);
    // Both looked at before anything is made: a bad archive path creates no ledger folder.
    let (ledger_plan, ledger_exists) = inspect_ledger(&ledger, create, false)?;
    let archive_plan = inspect_folder(ARCHIVE_KEY, &archive, create, false)?;
    if archive_plan == Plan::Exists {
        check_same_filesystem(&archive)?;
    }
    if ledger_plan == Plan::CreateParents
        && let Some(parent) = ledger.parent()
    {
        create_logged(LEDGER_KEY, parent, "the ledger's folder")?;
    }
    if !ledger_exists {
        tracing::info!(
            ledger = %ledger.display(),
            "no ledger at {} yet: starting a new one (a first start; if you expected one, check ledger.path)",
            ledger.display()
        );
    }
    if archive_plan != Plan::Exists {
        create_logged(ARCHIVE_KEY, &archive, "the archive folder")?;
    }
    Ok(())
}

/// What a folder needs before it can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Exists,
    /// Missing; its parent exists and is writable.
    Create,
    /// Missing with its parent, and `create_dirs` allows making both.
    CreateParents,
}

/// `dir` is a folder that can be used, or can be made as `create` allows.
///
/// `probe` tries a write there (`check`); a run skips it: it writes anyway, and a probe
/// file in the root of an archive another daemon works on could be seen as untracked.
fn inspect_folder(
    key: &'static str,
    dir: &Path,
    create: bool,
    probe: bool,
) -> Result<Plan, LocationError> {
    let existing = nearest_existing(key, dir)?;
    if !existing.is_dir() {
        return Err(if existing == dir {
            LocationError::NotAFolder {
                key,
                path: dir.to_owned(),
                fix: "it is a file; set it to a folder (created if missing)",
            }
        } else {
            LocationError::UnderFile {
                key,
                path: dir.to_owned(),
                file: existing,
            }
        });
    }
    if probe {
        try_write(key, &existing)?;
    }
    if existing == dir {
        return Ok(Plan::Exists);
    }
    let parent = dir.parent().unwrap_or(dir);
    if existing == parent {
        Ok(Plan::Create)
    } else if create {
        Ok(Plan::CreateParents)
    } else {
        Err(LocationError::MissingParent {
            key,
            path: dir.to_owned(),
            missing: parent.to_owned(),
        })
    }
}

/// The ledger's folder as [`inspect_folder`] sees it (`Exists` or `CreateParents`), and
/// whether the ledger file is there already.
fn inspect_ledger(ledger: &Path, create: bool, probe: bool) -> Result<(Plan, bool), LocationError> {
    let Some(folder) = ledger.parent() else {
        return Err(LocationError::LedgerIsFolder {
            key: LEDGER_KEY,
            path: ledger.to_owned(),
        });
    };
    let plan = match inspect_folder(LEDGER_KEY, folder, create, probe) {
        Ok(Plan::Create) if !create => Err(LocationError::MissingParent {
            key: LEDGER_KEY,
            path: ledger.to_owned(),
            missing: folder.to_owned(),
        }),
        Ok(Plan::Create) => Ok(Plan::CreateParents),
        Err(LocationError::MissingParent { missing, .. }) => Err(LocationError::MissingParent {
            key: LEDGER_KEY,
            path: ledger.to_owned(),
            missing,
        }),
        other => other,
    }?;
    let exists = match std::fs::metadata(ledger) {
        Ok(meta) if meta.is_dir() => {
            return Err(LocationError::LedgerIsFolder {
                key: LEDGER_KEY,
                path: ledger.to_owned(),
            });
        }
        Ok(_) => true,
        Err(_) => false,
    };
    Ok((plan, exists))
}

/// `path` itself, or the closest of its ancestors that exists (as the OS follows links).
fn nearest_existing(key: &'static str, path: &Path) -> Result<PathBuf, LocationError> {
    // Bounded by the number of components: each step drops one.
    for candidate in path.ancestors() {
        match std::fs::metadata(candidate) {
            Ok(_) => return Ok(candidate.to_owned()),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::NotADirectory => {}
            Err(source) => {
                return Err(LocationError::Io {
                    key,
                    action: "examine",
                    path: candidate.to_owned(),
                    source,
                });
            }
        }
    }
    Err(LocationError::Io {
        key,
        action: "find any existing folder above",
        path: path.to_owned(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })
}

/// Creates and removes a file in `dir`: the only test of writability that also sees
/// read-only mounts, ACLs and root, without unsafe calls.
fn try_write(key: &'static str, dir: &Path) -> Result<(), LocationError> {
    let probe = dir.join(format!(".report-archiver-probe-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match written {
        Ok(file) => {
            drop(file);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(LocationError::NotWritable {
            key,
            dir: dir.to_owned(),
            source,
        }),
    }
}

/// `.partial` and `.quarantine`, when they exist, are on the archive's filesystem: files
/// are renamed from and into them.
fn check_same_filesystem(archive: &Path) -> Result<(), LocationError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let examine = |path: &Path| {
            std::fs::metadata(path).map_err(|source| LocationError::Io {
                key: ARCHIVE_KEY,
                action: "examine",
                path: path.to_owned(),
                source,
            })
        };
        let device = examine(archive)?.dev();
        for name in [PARTIAL_DIR, QUARANTINE_DIR] {
            let inner = archive.join(name);
            if !inner.exists() {
                continue;
            }
            if examine(&inner)?.dev() != device {
                return Err(LocationError::OtherFilesystem {
                    key: ARCHIVE_KEY,
                    dir: archive.to_owned(),
                    inner,
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (archive, PARTIAL_DIR, QUARANTINE_DIR);
    Ok(())
}

fn create_logged(key: &'static str, dir: &Path, what: &str) -> Result<(), LocationError> {
    std::fs::create_dir_all(dir).map_err(|source| LocationError::Io {
        key,
        action: "create",
        path: dir.to_owned(),
        source,
    })?;
    tracing::info!(path = %dir.display(), "created {what} {}", dir.display());
    Ok(())
}

/// The path as the process will use it: relative paths are relative to the working folder.
#[must_use]
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn settings(archive: &Path, ledger: &Path, create: bool) -> Settings {
        let toml = format!(
            "[archive]\ndir = {:?}\n[ledger]\npath = {:?}\n[daemon]\ncreate_dirs = {create}\n\
             [[accounts]]\nname = \"a\"\nbase_url = \"https://x.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
            archive.display().to_string(),
            ledger.display().to_string()
        );
        parse_str(&toml).expect("valid").settings
    }

    #[test]
    fn an_archive_under_a_file_names_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let s = settings(&file.join("x"), &dir.path().join("l.db"), true);
        let e = check(&s).unwrap_err();
        assert!(matches!(e, LocationError::UnderFile { .. }), "{e}");
        assert!(e.to_string().starts_with("archive.dir: "), "{e}");
    }

    #[test]
    fn a_ledger_in_a_missing_folder_is_an_error_unless_create_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("nope/deeper/l.db");
        let s = settings(&dir.path().join("a"), &ledger, false);
        let e = prepare(&s).unwrap_err();
        assert!(e.to_string().contains("nope/deeper"), "{e}");
        assert!(e.to_string().contains("--create-dirs"), "{e}");
        assert!(!dir.path().join("nope").exists());
        let s = settings(&dir.path().join("a"), &ledger, true);
        prepare(&s).unwrap();
        assert!(dir.path().join("nope/deeper").is_dir());
        assert!(dir.path().join("a").is_dir());
    }

    #[test]
    fn the_archive_folder_itself_is_created_but_not_its_parents() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&dir.path().join("a/b"), &dir.path().join("l.db"), false);
        assert!(matches!(
            check(&s).unwrap_err(),
            LocationError::MissingParent { .. }
        ));
        let s = settings(&dir.path().join("a"), &dir.path().join("l.db"), false);
        let found = check(&s).unwrap();
        assert_eq!(found[0].state, "missing; created at the first run");
        assert!(!dir.path().join("a").exists(), "check creates nothing");
        prepare(&s).unwrap();
        assert!(dir.path().join("a").is_dir());
        assert_eq!(check(&s).unwrap()[0].state, "exists, writable");
    }

    #[test]
    fn a_ledger_that_is_a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&dir.path().join("a"), dir.path(), false);
        assert!(matches!(
            check(&s).unwrap_err(),
            LocationError::LedgerIsFolder { .. }
        ));
    }
}
