//! The archive pipeline on real temp dirs: names, inflation, length and gzip checks, and
//! that a failure leaves no file.

use std::io::Write;

use super::*;
use chrono::TimeZone;
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
    std::fs::write(dir.path().join(PARTIAL_DIR).join("old.tmp"), b"half").unwrap();
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
