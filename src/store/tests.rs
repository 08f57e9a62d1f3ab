//! The folder store on real temp dirs: publish, delete, the pass's and verify's look at
//! what is kept. (The bucket is exercised against s3s-fs and moto in `tests/it/`.)

use std::collections::HashSet;
use std::path::Path;

use bytes::Bytes;
use chrono::{TimeZone, Utc};

use super::*;
use crate::api::ReportFormat;
use crate::ledger::ArchivedRow;

fn target<'a>(format: &'a ReportFormat, stored_id: &'a str) -> ArchiveTarget<'a> {
    ArchiveTarget {
        account: "acme",
        report_id: "r-1",
        stored_id,
        format,
        created_at: Utc.with_ymd_and_hms(2026, 3, 2, 4, 5, 6).single().unwrap(),
    }
}

async fn open(dir: &Path) -> Store {
    Store::local(Archive::open(dir, false).await.unwrap())
}

/// Stages and publishes `bytes` as item `id`.
async fn keep(store: &Store, id: &str, bytes: &'static [u8]) -> Published {
    let format = ReportFormat::Csv;
    let info = BodyInfo {
        content_length: Some(bytes.len() as u64),
        ..BodyInfo::default()
    };
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(bytes))]);
    let staged = store.stage(&target(&format, id), info, body).await.unwrap();
    store.publish(staged).await.unwrap()
}

fn row(published: &Published) -> ArchivedRow {
    let file = &published.file;
    ArchivedRow {
        account: "acme".into(),
        report_id: "r-1".into(),
        stored_id: "x".into(),
        report_format: "csv".into(),
        created_at: "2026-03-02T04:05:06Z".into(),
        listed_size: None,
        wire_bytes: file.wire_bytes as i64,
        stored_bytes: file.stored_bytes as i64,
        sha256: file.sha256.clone(),
        compressed: false,
        path: file.relative_path.clone(),
        fetched_at: "2026-03-02T05:00:00Z".into(),
    }
}

#[tokio::test]
async fn a_published_file_is_in_the_folder_and_its_staged_copy_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let published = keep(&store, "item-1", b"a,b\n1,2\n").await;
    assert_eq!(published.object, None);
    let path = dir.path().join(&published.file.relative_path);
    assert_eq!(std::fs::read(&path).unwrap(), b"a,b\n1,2\n");
    let staged: Vec<_> = std::fs::read_dir(dir.path().join(crate::archive::PARTIAL_DIR))
        .unwrap()
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}

#[tokio::test]
async fn a_staged_file_dropped_unpublished_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let format = ReportFormat::Csv;
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"a\n"))]);
    let info = BodyInfo {
        content_length: Some(2),
        ..BodyInfo::default()
    };
    let staged = store
        .stage(&target(&format, "i"), info, body)
        .await
        .unwrap();
    assert!(staged.path().exists());
    let temp = staged.path().to_owned();
    drop(staged);
    assert!(!temp.exists());
    assert_eq!(store.files().await.unwrap(), Some(HashSet::new()));
}

#[tokio::test]
async fn check_tells_intact_changed_and_missing_files_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let row = row(&keep(&store, "item-1", b"a,b\n1,2\n").await);
    let now = Utc::now();
    assert_eq!(
        store.check(&row, now).await,
        Check::Intact {
            len: 8,
            unlocked: None
        }
    );
    let path = dir.path().join(&row.path);
    std::fs::write(&path, b"tampered").unwrap();
    match store.check(&row, now).await {
        Check::Changed {
            actual: Some((sha, 8)),
            detail,
        } => {
            assert_ne!(sha, row.sha256);
            assert!(detail.starts_with("content differs"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        store.check(&row, now).await,
        Check::Missing {
            detail: "no such file"
        }
    );
}

#[tokio::test]
async fn untracked_lists_what_no_row_names_but_not_our_own_folders() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let kept = keep(&store, "item-1", b"1\n").await;
    std::fs::write(dir.path().join("stray.csv"), b"?").unwrap();
    std::fs::create_dir_all(dir.path().join(".quarantine/acme")).unwrap();
    std::fs::write(dir.path().join(".quarantine/acme/old.csv"), b"?").unwrap();
    std::fs::create_dir_all(dir.path().join(".snapshot")).unwrap();
    std::fs::write(dir.path().join(".snapshot/s.csv"), b"?").unwrap();
    let tracked = HashSet::from([kept.file.relative_path.clone()]);
    assert_eq!(
        store.untracked(&tracked).await.unwrap(),
        vec![".snapshot/s.csv".to_owned(), "stray.csv".to_owned()]
    );
    // The start-up reconciliation leaves every dot folder aside.
    let files = store.files().await.unwrap().unwrap();
    assert_eq!(
        files,
        HashSet::from([kept.file.relative_path, "stray.csv".to_owned()])
    );
}

#[tokio::test]
async fn gone_reports_only_files_that_are_definitely_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let kept = keep(&store, "item-1", b"1\n").await.file.relative_path;
    let kept_list = vec![
        ("item-1".to_owned(), kept.clone()),
        ("item-2".to_owned(), "acme/r-1/2026/03/none.csv".to_owned()),
        ("item-3".to_owned(), "../outside.csv".to_owned()),
    ];
    let gone = store.gone(kept_list).await;
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert!(gone.contains_key("item-2"));
}

#[tokio::test]
async fn delete_removes_the_file_and_a_file_already_gone_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let kept = keep(&store, "item-1", b"1\n").await.file.relative_path;
    assert!(store.may_delete("2026-03-02T05:00:00Z", Utc::now()));
    store.delete(&kept).await.unwrap();
    assert!(!dir.path().join(&kept).exists());
    store.delete(&kept).await.unwrap();
    assert!(store.delete("../escape.csv").await.is_err());
}

#[tokio::test]
async fn delete_never_goes_through_a_folder_linked_out_of_the_archive() {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    std::fs::write(outside.path().join("victim.csv"), b"keep me").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("acme")).unwrap();
    let err = store.delete("acme/victim.csv").await.unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(outside.path().join("victim.csv").exists());
}

#[tokio::test]
async fn set_aside_quarantines_a_changed_file_and_says_where_it_went() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let kept = keep(&store, "item-1", b"1\n").await.file.relative_path;
    let now = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    let to = store.set_aside(&kept, now).await.unwrap();
    assert_eq!(to, format!(".quarantine/{kept}.20260401T000000Z"));
    assert!(dir.path().join(&to).exists() && !dir.path().join(&kept).exists());
    // Nothing to lock in a folder.
    store
        .lock_until(&kept, "2030-01-01T00:00:00Z")
        .await
        .unwrap();
}
