//! The archive pipeline on real temp dirs: names, inflation, length and gzip checks, and
//! that a failure leaves no file.

use std::ffi::OsStr;
use std::io::Write;

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use futures::Stream;

use super::path::{is_temp_name, temp_name};
use super::stage::gzip_drift_bound;
use super::*;
use crate::api::ReportFormat;

/// What a directory archive does with a body: stage it, then place it.
trait StageAndPlace {
    async fn store<S, E>(
        &self,
        target: &ArchiveTarget<'_>,
        info: BodyInfo,
        body: S,
    ) -> Result<ArchivedFile, ArchiveError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static;
}

impl StageAndPlace for Archive {
    async fn store<S, E>(
        &self,
        target: &ArchiveTarget<'_>,
        info: BodyInfo,
        body: S,
    ) -> Result<ArchivedFile, ArchiveError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let staged = self.stage(target, info, body).await?;
        self.place(staged).await
    }
}
use sha2::{Digest, Sha256};

fn target<'a>(format: &'a ReportFormat, stored_id: &'a str) -> ArchiveTarget<'a> {
    ArchiveTarget {
        account: "acme",
        report_id: "r-1",
        stored_id,
        format,
        created_at: Utc.with_ymd_and_hms(2026, 3, 2, 4, 5, 6).single().unwrap(),
    }
}

#[test]
fn path_follows_the_documented_layout() {
    let f = ReportFormat::CsvV2;
    let p = Archive::relative_path(&target(&f, "abc-1"), false).unwrap();
    assert_eq!(p, "acme/r-1/2026/03/20260302T040506Z_abc-1.csv");
    let gz = Archive::relative_path(&target(&f, "abc-1"), true).unwrap();
    assert!(gz.ends_with(".csv.gz"));
    let other = ReportFormat::Other("xlsx".into());
    let p = Archive::relative_path(&target(&other, "abc-1"), false).unwrap();
    assert!(p.ends_with("_abc-1.xlsx.bin"));
}

#[test]
fn hostile_ids_are_refused() {
    let f = ReportFormat::Csv;
    for bad in ["../../etc/x", "a/b", "nul\0byte", "", ".", "..", "x y"] {
        let err = Archive::relative_path(&target(&f, bad), false);
        assert!(
            matches!(err, Err(ArchiveError::UnsafeComponent { .. })),
            "{bad:?}"
        );
    }
    let evil = ReportFormat::Other("../x".into());
    assert!(Archive::relative_path(&target(&evil, "ok"), false).is_err());
}

#[test]
fn resolve_refuses_paths_that_leave_the_root() {
    let a = Archive::at(Path::new("/arch"), false);
    assert!(a.resolve("../x").is_err());
    assert!(a.resolve("/etc/passwd").is_err());
    assert!(a.resolve("a/./b").is_ok());
    assert_eq!(a.resolve("a/b").unwrap(), Path::new("/arch/a/b"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use flate2::{Compression, write::GzEncoder};
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn body(bytes: &[u8], chunk: usize) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin {
    let chunks: Vec<Result<Bytes, io::Error>> = bytes
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks)
}

async fn store(
    archive: &Archive,
    bytes: &[u8],
    info: BodyInfo,
) -> Result<ArchivedFile, ArchiveError> {
    let f = ReportFormat::Csv;
    archive
        .store(&target(&f, "item-1"), info, body(bytes, 7))
        .await
}

/// A body whose end the transport marks (chunked): complete as far as framing goes.
fn framed() -> BodyInfo {
    BodyInfo {
        framed: true,
        ..BodyInfo::default()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn a_gzip_body_is_inflated_hashed_and_placed() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let plain = b"a,b\n1,2\n".repeat(50);
    let wire = gzip(&plain);
    let info = BodyInfo {
        listed_size: Some(wire.len() as u64),
        content_length: Some(wire.len() as u64),
        ..BodyInfo::default()
    };
    let file = store(&archive, &wire, info).await.unwrap();
    assert_eq!(file.wire_bytes, wire.len() as u64);
    assert_eq!(file.stored_bytes, plain.len() as u64);
    assert_eq!(file.sha256, hex::encode(Sha256::digest(&plain)));
    let on_disk = std::fs::read(dir.path().join(&file.relative_path)).unwrap();
    assert_eq!(on_disk, plain);
}

#[tokio::test]
async fn gzip_bodies_on_and_across_the_inflate_chunk_boundary_are_stored_whole() {
    const CHUNK: usize = 256 * 1024;
    for size in [CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12_345] {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path(), false).await.unwrap();
        // Text that does not compress to nothing, so the stream has real blocks.
        let mut state = size as u32;
        let plain: Vec<u8> = (0..size)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                b"0123456789,\n"[(state >> 16) as usize % 12]
            })
            .collect();
        let wire = gzip(&plain);
        let info = BodyInfo {
            content_length: Some(wire.len() as u64),
            ..BodyInfo::default()
        };
        let file = store(&archive, &wire, info).await.unwrap();
        assert_eq!(file.stored_bytes, size as u64, "{size}");
        assert_eq!(file.sha256, hex::encode(Sha256::digest(&plain)), "{size}");
        let on_disk = std::fs::read(dir.path().join(&file.relative_path)).unwrap();
        assert!(
            on_disk == plain,
            "{size}: the file differs from what was served"
        );
    }
}

#[tokio::test]
async fn a_truncated_gzip_stream_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let wire = gzip(&b"x,y\n".repeat(500));
    let cut = &wire[..wire.len() - 12];
    let err = store(&archive, cut, BodyInfo::default()).await.unwrap_err();
    assert!(matches!(err, ArchiveError::BadGzip(_)), "{err}");
    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
}

#[tokio::test]
async fn keeping_compressed_still_checks_the_gzip_stream() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), true).await.unwrap();
    let wire = gzip(&b"x,y\n".repeat(500));
    let err = store(&archive, &wire[..wire.len() - 3], BodyInfo::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ArchiveError::BadGzip(_)), "{err}");
    let file = store(&archive, &wire, BodyInfo::default()).await.unwrap();
    assert!(file.compressed && file.relative_path.ends_with(".csv.gz"));
    assert_eq!(
        std::fs::read(dir.path().join(&file.relative_path)).unwrap(),
        wire
    );
    assert_eq!(files_under(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_body_that_disagrees_with_the_listed_size_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let info = BodyInfo {
        listed_size: Some(100),
        ..BodyInfo::default()
    };
    let err = store(&archive, b"plain,report\n", info).await.unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::LengthMismatch {
                expected: 100,
                got: 13,
                ..
            }
        ),
        "{err}"
    );
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test]
async fn a_body_error_mid_stream_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let chunks: Vec<Result<Bytes, io::Error>> = vec![
        Ok(Bytes::from_static(b"col\n1\n")),
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
    ];
    let f = ReportFormat::Csv;
    // Chunked: the transport would tell a cut from an end, so the error is the body's.
    let info = BodyInfo {
        framed: true,
        ..BodyInfo::default()
    };
    let err = archive
        .store(&target(&f, "item-2"), info, futures::stream::iter(chunks))
        .await
        .unwrap_err();
    assert!(matches!(err, ArchiveError::Body { got: 6, .. }), "{err}");
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_once_it_inflates_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let wire = gzip(&vec![b'0'; 1 << 20]);
    let info = BodyInfo {
        max_bytes: Some(64 * 1024),
        ..BodyInfo::default()
    };
    assert!(wire.len() < 64 * 1024, "small on the wire");
    let err = store(&archive, &wire, info).await.unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooLarge { limit: 65536 }),
        "{err}"
    );
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test]
async fn opening_the_archive_clears_leftover_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(PARTIAL_DIR)).unwrap();
    std::fs::write(
        dir.path().join(PARTIAL_DIR).join("item-1.4242.7.tmp"),
        b"half",
    )
    .unwrap();
    Archive::open(dir.path(), false).await.unwrap();
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test]
async fn a_plain_body_without_any_length_or_framing_is_not_archived() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let err = store(&archive, b"half,a,repo", BodyInfo::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ArchiveError::Unproven), "{err}");
    assert!(files_under(dir.path()).is_empty());
    // Chunked framing proves the end; so does a declared length.
    let framed = BodyInfo {
        framed: true,
        ..BodyInfo::default()
    };
    store(&archive, b"whole,report\n", framed).await.unwrap();
}

#[tokio::test]
async fn an_empty_body_is_archived_only_when_the_listing_says_size_0() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let unlisted = BodyInfo {
        content_length: Some(0),
        framed: true,
        ..BodyInfo::default()
    };
    let err = store(&archive, b"", unlisted).await.unwrap_err();
    assert!(matches!(err, ArchiveError::EmptyBody), "{err}");
    assert!(files_under(dir.path()).is_empty());
    let listed_empty = BodyInfo {
        listed_size: Some(0),
        content_length: Some(0),
        ..BodyInfo::default()
    };
    let file = store(&archive, b"", listed_empty).await.unwrap();
    assert_eq!(file.stored_bytes, 0);
}

#[tokio::test]
async fn a_body_longer_than_the_listed_size_is_refused_as_it_passes_it() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let info = BodyInfo {
        listed_size: Some(10),
        framed: true,
        ..BodyInfo::default()
    };
    // An endless body: only a refusal at byte 11 ends this store.
    let endless =
        futures::stream::repeat_with(|| Ok::<_, io::Error>(Bytes::from_static(b"0123456")));
    let f = ReportFormat::Csv;
    let err = archive
        .store(&target(&f, "item-3"), info, endless)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Overrun {
                expected: 10,
                got: 14,
                ..
            }
        ),
        "{err}"
    );
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test]
async fn a_gzip_body_may_drift_from_the_listed_size_but_not_without_bound() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path(), false).await.unwrap();
    let plain = b"a,b\n1,2\n".repeat(500);
    let wire = gzip(&plain);
    // The listing counts the uncompressed bytes: the trailer proves the body whole.
    let drifted = BodyInfo {
        listed_size: Some(plain.len() as u64),
        content_length: Some(wire.len() as u64),
        ..BodyInfo::default()
    };
    let file = store(&archive, &wire, drifted).await.unwrap();
    assert_eq!(file.sha256, hex::encode(Sha256::digest(&plain)));
    assert_eq!(file.wire_bytes, wire.len() as u64);
    // Far past the listing (a tiny size for a big stream) is still refused as it passes.
    let big = gzip(
        &(0..3_000_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let tiny = BodyInfo {
        listed_size: Some(10),
        framed: true,
        ..BodyInfo::default()
    };
    let f = ReportFormat::Csv;
    let err = archive
        .store(&target(&f, "item-9"), tiny, body(&big, 64 * 1024))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArchiveError::Overrun { expected, .. } if expected == gzip_drift_bound(10)),
        "{err}"
    );
}

#[test]
fn only_names_made_by_temp_name_count_as_our_temp_files() {
    let ours = temp_name("abc-1_X");
    assert!(is_temp_name(OsStr::new(&ours)), "{ours}");
    for other in [
        "old.tmp",
        "x.1.tmp",
        "a.b.c.tmp",
        "a.1.2.tmp.bak",
        "a.1.2.TMP",
        ".1.2.tmp",
        "a b.1.2.tmp",
        "a.1x.2.tmp",
        "a.1.2x.tmp",
        "report.csv",
    ] {
        assert!(!is_temp_name(OsStr::new(other)), "{other}");
    }
}

/// A folder outside the archive with a file in it, and the archive root beside it.
fn outside_and_root() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("precious.txt"), b"not yours").unwrap();
    std::fs::write(outside.join("item-1.1.1.tmp"), b"named like ours").unwrap();
    let root = dir.path().join("archive");
    std::fs::create_dir(&root).unwrap();
    (dir, outside, root)
}

#[tokio::test]
async fn a_partial_symlink_stops_the_open_and_nothing_behind_it_is_deleted() {
    let (_dir, outside, root) = outside_and_root();
    std::os::unix::fs::symlink(&outside, root.join(PARTIAL_DIR)).unwrap();
    let err = Archive::open(&root, false).await.unwrap_err();
    assert!(matches!(err, ArchiveError::NotOwnFolder { .. }), "{err}");
    assert!(err.is_config());
    let text = err.to_string();
    assert!(
        text.contains(&root.join(PARTIAL_DIR).display().to_string()),
        "{text}"
    );
    assert!(
        text.contains("a symlink") && text.contains("remove the link"),
        "{text}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 2);
}

#[tokio::test]
async fn a_partial_or_quarantine_that_is_a_file_or_a_link_stops_the_open() {
    let (_dir, outside, root) = outside_and_root();
    std::fs::write(root.join(PARTIAL_DIR), b"a file").unwrap();
    let err = Archive::open(&root, false).await.unwrap_err();
    assert!(err.to_string().contains("not a folder"), "{err}");
    assert!(err.is_config());

    std::fs::remove_file(root.join(PARTIAL_DIR)).unwrap();
    std::os::unix::fs::symlink(&outside, root.join(QUARANTINE_DIR)).unwrap();
    let err = Archive::open(&root, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&root.join(QUARANTINE_DIR).display().to_string()),
        "{err}"
    );
    assert!(err.is_config());
}

#[tokio::test]
async fn clearing_partial_removes_only_our_temp_files_and_never_through_a_link() {
    let (_dir, outside, root) = outside_and_root();
    let partial = root.join(PARTIAL_DIR);
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join("item-1.77.3.tmp"), b"ours").unwrap();
    std::fs::write(partial.join("notes.txt"), b"someone's").unwrap();
    std::fs::create_dir(partial.join("item-2.1.1.tmp")).unwrap();
    std::fs::write(partial.join("item-2.1.1.tmp").join("inner"), b"x").unwrap();
    std::os::unix::fs::symlink(
        outside.join("item-1.1.1.tmp"),
        partial.join("item-3.1.1.tmp"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, partial.join("dir-link")).unwrap();

    let archive = Archive::open(&root, false).await.unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&partial)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["dir-link", "item-2.1.1.tmp", "item-3.1.1.tmp", "notes.txt"]
    );
    assert!(partial.join("item-2.1.1.tmp").join("inner").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 2);
    assert_eq!(archive.clear_partial().await.unwrap(), 0);
}

#[tokio::test]
async fn a_root_given_through_a_symlink_is_used_by_its_real_path() {
    let (dir, _outside, root) = outside_and_root();
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink(&root, &alias).unwrap();
    let archive = Archive::open(&alias, false).await.unwrap();
    assert_eq!(archive.root(), std::fs::canonicalize(&root).unwrap());
    let file = store(&archive, b"a,b\n", framed()).await.unwrap();
    assert!(root.join(&file.relative_path).is_file());
}

#[tokio::test]
async fn an_account_folder_linked_outside_fails_the_item_and_writes_nothing_there() {
    let (_dir, outside, root) = outside_and_root();
    std::os::unix::fs::symlink(&outside, root.join("acme")).unwrap();
    let archive = Archive::open(&root, false).await.unwrap();
    let err = store(&archive, b"a,b\n", framed()).await.unwrap_err();
    assert!(matches!(err, ArchiveError::Escapes { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&archive.root().join("acme").display().to_string()),
        "names the link: {text}"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        2,
        "nothing written outside"
    );
    assert!(
        files_under(&root.join(PARTIAL_DIR)).is_empty(),
        "no temp left"
    );
}

#[tokio::test]
async fn a_link_that_stays_inside_the_archive_is_followed() {
    let (_dir, _outside, root) = outside_and_root();
    std::fs::create_dir(root.join("moved")).unwrap();
    std::os::unix::fs::symlink(root.join("moved"), root.join("acme")).unwrap();
    let archive = Archive::open(&root, false).await.unwrap();
    let file = store(&archive, b"a,b\n", framed()).await.unwrap();
    let rest = file.relative_path.strip_prefix("acme/").unwrap();
    assert_eq!(
        std::fs::read(root.join("moved").join(rest)).unwrap(),
        b"a,b\n"
    );
}

#[tokio::test]
async fn a_file_where_a_folder_belongs_fails_the_item_and_stays() {
    let (_dir, _outside, root) = outside_and_root();
    std::fs::write(root.join("acme"), b"in the way").unwrap();
    let archive = Archive::open(&root, false).await.unwrap();
    let err = store(&archive, b"a,b\n", framed()).await.unwrap_err();
    assert!(matches!(err, ArchiveError::InTheWay { .. }), "{err}");
    assert_eq!(std::fs::read(root.join("acme")).unwrap(), b"in the way");
}

fn item_path(root: &Path) -> PathBuf {
    let f = ReportFormat::Csv;
    root.join(Archive::relative_path(&target(&f, "item-1"), false).unwrap())
}

/// Every file under `.quarantine/`, with its content.
fn quarantined(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let q = root.join(QUARANTINE_DIR);
    if !q.exists() {
        return Vec::new();
    }
    files_under(&q)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

#[tokio::test]
async fn an_untracked_file_at_the_final_path_is_quarantined_never_replaced() {
    let (_dir, _outside, root) = outside_and_root();
    let archive = Archive::open(&root, false).await.unwrap();
    let at = item_path(archive.root());
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::write(&at, b"someone else's report").unwrap();

    let file = store(&archive, b"a,b\n1,2\n", framed()).await.unwrap();
    assert_eq!(std::fs::read(&at).unwrap(), b"a,b\n1,2\n");
    let moved = quarantined(archive.root());
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].1, b"someone else's report");
    let name = moved[0]
        .0
        .strip_prefix(archive.root())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!("{QUARANTINE_DIR}/{}.", file.relative_path)),
        "{name}"
    );
    assert!(files_under(&root.join(PARTIAL_DIR)).is_empty());
}

#[tokio::test]
async fn the_same_file_already_at_the_final_path_is_kept_and_nothing_is_quarantined() {
    let (_dir, _outside, root) = outside_and_root();
    let archive = Archive::open(&root, false).await.unwrap();
    let at = item_path(archive.root());
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::write(&at, b"a,b\n1,2\n").unwrap();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&at).unwrap());

    let file = store(&archive, b"a,b\n1,2\n", framed()).await.unwrap();
    assert_eq!(file.sha256, hex::encode(Sha256::digest(b"a,b\n1,2\n")));
    let now = std::fs::metadata(&at).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&now),
        inode,
        "kept, not replaced"
    );
    assert!(!archive.root().join(QUARANTINE_DIR).exists());
    assert!(files_under(&root.join(PARTIAL_DIR)).is_empty());
}

#[tokio::test]
async fn a_symlink_at_the_final_path_is_moved_aside_not_written_through() {
    let (_dir, outside, root) = outside_and_root();
    let archive = Archive::open(&root, false).await.unwrap();
    let at = item_path(archive.root());
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(outside.join("precious.txt"), &at).unwrap();

    store(&archive, b"a,b\n", framed()).await.unwrap();
    assert_eq!(
        std::fs::read(outside.join("precious.txt")).unwrap(),
        b"not yours"
    );
    assert!(
        !std::fs::symlink_metadata(&at)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&at).unwrap(), b"a,b\n");
    let q = archive.root().join(QUARANTINE_DIR);
    let links: Vec<_> = walk_all(&q)
        .into_iter()
        .filter(|p| {
            std::fs::symlink_metadata(p)
                .unwrap()
                .file_type()
                .is_symlink()
        })
        .collect();
    assert_eq!(links.len(), 1, "the link itself went to the quarantine");
}

/// Every entry under `dir`, links included (not followed).
fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_all(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn two_quarantines_of_one_path_in_one_second_keep_both() {
    let (_dir, _outside, root) = outside_and_root();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 4, 5, 6).single().unwrap();
    std::fs::create_dir_all(root.join("acme")).unwrap();
    std::fs::write(root.join("acme/x.csv"), b"first").unwrap();
    let first = Archive::at(&root, false)
        .quarantine("acme/x.csv", now)
        .await
        .unwrap();
    std::fs::write(root.join("acme/x.csv"), b"second").unwrap();
    let second = Archive::at(&root, false)
        .quarantine("acme/x.csv", now)
        .await
        .unwrap();
    assert_eq!(first, ".quarantine/acme/x.csv.20260302T040506Z");
    assert_eq!(second, ".quarantine/acme/x.csv.20260302T040506Z.1");
    assert_eq!(std::fs::read(root.join(first)).unwrap(), b"first");
    assert_eq!(std::fs::read(root.join(second)).unwrap(), b"second");
}

#[tokio::test]
async fn placing_several_files_at_once_places_each_and_fails_only_the_bad_one() {
    let (_dir, _outside, root) = outside_and_root();
    std::fs::write(root.join("blocked"), b"in the way").unwrap();
    let archive = Archive::open(&root, false).await.unwrap();
    let f = ReportFormat::Csv;
    let mut staged = Vec::new();
    for (account, id) in [("acme", "one"), ("blocked", "two"), ("acme", "three")] {
        let t = ArchiveTarget {
            account,
            ..target(&f, id)
        };
        let bytes = format!("{id}\n");
        let body = body(bytes.as_bytes(), 3);
        staged.push(archive.stage(&t, framed(), body).await.unwrap());
    }
    let placed = archive.place_all(staged).await;
    assert_eq!(placed.len(), 3, "one result per file, in order");
    for (i, id) in [(0, "one"), (2, "three")] {
        let file = placed[i].as_ref().unwrap();
        assert!(file.relative_path.contains(id), "{}", file.relative_path);
        let on_disk = std::fs::read(root.join(&file.relative_path)).unwrap();
        assert_eq!(on_disk, format!("{id}\n").as_bytes());
    }
    assert!(
        matches!(placed[1], Err(ArchiveError::InTheWay { .. })),
        "{:?}",
        placed[1]
    );
    assert_eq!(std::fs::read(root.join("blocked")).unwrap(), b"in the way");
    assert!(
        files_under(&root.join(PARTIAL_DIR)).is_empty(),
        "no temp file left, placed or failed"
    );
}
