//! `[archive.s3] object_lock` and the start-up cleanup of unrecorded multipart uploads,
//! against moto's S3 server on 127.0.0.1 (s3s-fs implements neither).

use chrono::{DateTime, Utc};
use report_archiver::fake_cloud::{BodyShape, FakeCloud, FakeReport, FakeStored, StoredView};

use crate::moto_server::{self, MotoServer, between_all};
use crate::s3_server;
use crate::support::{ACCOUNT, Options, TestApp, run, spawn_app_with};

const BUCKET: &str = "locked-reports";
const PREFIX: &str = "acronis";
const LOCK: &str = "object_lock = { mode = \"compliance\", retain = \"30d\" }";
/// Over two 5 MiB parts: a multipart upload.
const BIG: usize = 11 * 1024 * 1024;

fn cloud() -> FakeCloud {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    let small = b"tenant,metric,value\nacme,storage,1\n".repeat(40);
    fake.add_stored(&report, FakeStored::new("csv", small));
    let big: Vec<u8> = b"tenant-000042,storage_bytes,1073741824\n"
        .iter()
        .copied()
        .cycle()
        .take(BIG)
        .collect();
    fake.add_stored(&report, FakeStored::new("csv", big).shape(BodyShape::Plain));
    fake
}

async fn app_on(fake: FakeCloud, moto: &MotoServer, bucket: &str, extra: &str) -> TestApp {
    let options = Options {
        extra_sections: moto.config_section(bucket, &format!("{PREFIX}/"), extra),
        ..Options::default()
    };
    spawn_app_with(fake, options).await
}

fn key_of(report_id: &str, item: &StoredView) -> String {
    s3_server::key_of(PREFIX, report_id, item)
}

/// The retain-until date in `value`, checked to be `retain` days after `from` (give or
/// take the minutes a pass takes).
fn assert_until(value: Option<&str>, from: DateTime<Utc>, days: i64, what: &str) {
    let until = value
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .unwrap_or_else(|| panic!("{what}: no retain-until date"))
        .with_timezone(&Utc);
    let span = until - from;
    let expected = chrono::Duration::days(days);
    assert!(
        span > expected - chrono::Duration::minutes(1)
            && span < expected + chrono::Duration::minutes(5),
        "{what}: locked until {until}, {span} after the pass began"
    );
}

#[tokio::test]
async fn every_object_is_locked_as_it_is_written_and_cannot_be_deleted() {
    let moto = moto_server::start();
    moto.create_bucket(BUCKET, true).await;
    let app = app_on(cloud(), &moto, BUCKET, LOCK).await;

    let started = Utc::now();
    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert_eq!(reports[0].fetched(), 2);

    let items = app.fake.saved_items();
    for (report_id, item) in &items {
        let key = key_of(report_id, item);
        let got = moto
            .signed("GET", &format!("/{BUCKET}/{key}"), &[], Vec::new())
            .await;
        assert_eq!(got.status, 200, "no object at {key}");
        assert_eq!(got.text.as_bytes(), item.plain.as_slice(), "{key} bytes");
    }

    // The single PUT: moto keeps its retention and enforces it.
    let (report_id, small) = items
        .iter()
        .find(|(_, i)| i.plain.len() < BIG)
        .expect("the small item");
    let key = key_of(report_id, small);
    let head = moto
        .signed("HEAD", &format!("/{BUCKET}/{key}"), &[], Vec::new())
        .await;
    assert_eq!(
        head.header("x-amz-object-lock-mode"),
        Some("COMPLIANCE"),
        "{key}"
    );
    assert_until(
        head.header("x-amz-object-lock-retain-until-date"),
        started,
        30,
        &key,
    );
    // Compliance mode: not even the owner can remove the version.
    let version = head.header("x-amz-version-id").expect("a version id");
    let delete = moto
        .signed(
            "DELETE",
            &format!("/{BUCKET}/{key}?versionId={version}"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(delete.status, 403, "{key} version deleted: {}", delete.text);
    // The export names the exact (locked) version, for an auditor to fetch.
    let (code, json, output) = run(&mut app.bin(&["ledger", "export", "--format", "json"]));
    assert_eq!(code, Some(0), "{output}");
    let exported: Vec<serde_json::Value> = serde_json::from_str(&json).expect("JSON");
    let row = exported
        .iter()
        .find(|r| key.ends_with(r["path"].as_str().unwrap_or("-")))
        .expect("the small item exported");
    assert_eq!(row["version_id"].as_str(), Some(version), "{row}");
    assert!(row["e_tag"].as_str().is_some(), "{row}");
    let (_, csv, _) = run(&mut app.bin(&["ledger", "export", "--format", "csv"]));
    assert!(
        csv.starts_with("account,")
            && csv
                .lines()
                .next()
                .unwrap_or("")
                .ends_with(",e_tag,version_id"),
        "{csv}"
    );
    assert!(csv.contains(&format!(",{version}\n")), "{csv}");

    // The multipart upload: moto 5.2.1 drops the lock headers of CreateMultipartUpload
    // (AWS applies them at completion), so what it received is checked instead.
    let (report_id, big) = items
        .iter()
        .find(|(_, i)| i.plain.len() == BIG)
        .expect("the big item");
    let key = key_of(report_id, big);
    let requests = moto.requests();
    let create = requests
        .iter()
        .find(|r| {
            r["method"] == "POST"
                && r["url"]
                    .as_str()
                    .is_some_and(|u| u.contains(&format!("/{BUCKET}/{key}?uploads")))
        })
        .unwrap_or_else(|| panic!("no CreateMultipartUpload for {key}"));
    let header = |name: &str| {
        create["headers"]
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    assert_until(
        header("x-amz-object-lock-retain-until-date"),
        started,
        30,
        &key,
    );
    // Signed: S3 refuses x-amz-* headers the signature does not cover.
    let authorization = header("authorization").expect("signed");
    assert!(
        authorization.contains("x-amz-object-lock-mode;x-amz-object-lock-retain-until-date"),
        "{authorization}"
    );
    assert!(moto.open_uploads(BUCKET).await.is_empty());

    let second = app.run_once().await;
    assert!(second[0].succeeded(), "{second:?}");
    assert_eq!(second[0].fetched(), 0);
}

#[tokio::test]
async fn a_foreign_object_at_the_key_is_not_replaced_by_a_locked_write() {
    let moto = moto_server::start();
    moto.create_bucket(BUCKET, true).await;
    let fake = cloud();
    let app = app_on(fake.clone(), &moto, BUCKET, LOCK).await;
    let items = fake.saved_items();
    let foreign = b"someone else's object".to_vec();
    for (report_id, item) in &items {
        let key = key_of(report_id, item);
        let put = moto
            .signed(
                "PUT",
                &format!("/{BUCKET}/{key}"),
                &[("content-type", "application/octet-stream")],
                foreign.clone(),
            )
            .await;
        assert_eq!(put.status, 200, "plant {key}: {}", put.text);
    }

    let reports = app.run_once().await;
    assert_eq!(reports[0].failed(), 2, "{reports:?}");
    assert!(app.ledger_rows().await.is_empty());
    for (report_id, item) in &items {
        let key = key_of(report_id, item);
        let got = moto
            .signed("GET", &format!("/{BUCKET}/{key}"), &[], Vec::new())
            .await;
        assert_eq!(got.text.as_bytes(), foreign.as_slice(), "{key} replaced");
    }
    // The refused multipart upload (the big item) was aborted.
    assert!(moto.open_uploads(BUCKET).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_without_object_lock_stops_the_start_with_a_config_error() {
    let moto = moto_server::start();
    moto.create_bucket(BUCKET, false).await;
    let app = app_on(cloud(), &moto, BUCKET, LOCK).await;

    let (code, _, output) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains(&format!(
            "archive.s3.object_lock: bucket `{BUCKET}` does not have Object Lock enabled"
        )),
        "{output}"
    );
    assert!(moto.keys(BUCKET).await.is_empty());
    assert_eq!(
        app.fake.download_requests(),
        0,
        "downloaded before refusing"
    );
    assert!(app.ledger_rows().await.is_empty());
}

// Multi-threaded: the fake cloud must keep serving while the test waits on the binary.
#[tokio::test(flavor = "multi_thread")]
async fn a_multipart_upload_a_crash_left_unrecorded_is_aborted_at_start() {
    let moto = moto_server::start();
    moto.create_bucket(BUCKET, false).await;
    // Begun by an earlier run that died before its ledger knew the upload id, one under
    // the prefix in the archive's layout; and two that are not the archive's.
    let ours = format!("{PREFIX}/{ACCOUNT}/r-1/2026/11/20261129T000000Z_s-1.csv");
    let foreign = [
        "elsewhere/eu2/r-1/2026/11/20261129T000000Z_s-1.csv".to_owned(),
        format!("{PREFIX}/notes/backup.tar"),
    ];
    for key in std::iter::once(&ours).chain(&foreign) {
        let reply = moto
            .signed("POST", &format!("/{BUCKET}/{key}?uploads"), &[], Vec::new())
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(
            between_all(&reply.text, "<Key>", "</Key>"),
            std::slice::from_ref(key)
        );
    }
    let app = app_on(cloud(), &moto, BUCKET, "").await;

    let (code, _, output) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{output}");
    let mut open = moto.open_uploads(BUCKET).await;
    open.sort();
    let mut expected = foreign.to_vec();
    expected.sort();
    assert_eq!(open, expected, "{output}");
    assert!(output.contains(&ours), "the abort is not logged: {output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_objects_written_before_object_lock_was_set_and_repair_locks_them() {
    let moto = moto_server::start();
    moto.create_bucket(BUCKET, true).await;
    let app = app_on(cloud(), &moto, BUCKET, "").await;
    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");

    // The operator turns Object Lock on afterwards.
    let options = Options {
        extra_sections: moto.config_section(BUCKET, &format!("{PREFIX}/"), LOCK),
        ..Options::default()
    };
    app.write_config(&app.config_toml(&options));

    let (code, stdout, output) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(1), "{output}");
    assert!(stdout.contains("2 intact"), "{stdout}");
    assert!(stdout.contains("2 not locked"), "{stdout}");
    let lines = |start: &str| stdout.lines().filter(|l| l.starts_with(start)).count();
    assert_eq!(lines("UNLOCKED "), 2, "{stdout}");
    assert!(
        stdout.contains("no Object Lock retention; object_lock asks for COMPLIANCE until"),
        "{stdout}"
    );

    let (code, stdout, output) = run(&mut app.bin(&["verify", "--repair"]));
    assert_eq!(code, Some(0), "{output}");
    let lines = |start: &str| stdout.lines().filter(|l| l.starts_with(start)).count();
    assert_eq!(lines("LOCKED "), 2, "{stdout}");

    let rows = app.ledger_rows().await;
    for row in &rows {
        let key = format!("{PREFIX}/{}", row.path);
        let head = moto
            .signed("HEAD", &format!("/{BUCKET}/{key}"), &[], Vec::new())
            .await;
        assert_eq!(
            head.header("x-amz-object-lock-mode"),
            Some("COMPLIANCE"),
            "{key}"
        );
        let archived = DateTime::parse_from_rfc3339(&row.fetched_at)
            .expect("an RFC 3339 time")
            .with_timezone(&Utc);
        assert_until(
            head.header("x-amz-object-lock-retain-until-date"),
            archived,
            30,
            &key,
        );
    }

    let (code, stdout, output) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(0), "{output}");
    assert!(stdout.ends_with("ok\n"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_leaves_objects_whose_lock_still_runs() {
    let moto = moto_server::start();
    moto.create_bucket(BUCKET, true).await;
    let options = Options {
        extra_sections: moto.config_section(BUCKET, &format!("{PREFIX}/"), LOCK),
        // Shorter than the lock's 30 days: the fake cloud's items are months old.
        keep: Some("1d".into()),
        ..Options::default()
    };
    let app = spawn_app_with(cloud(), options).await;
    assert_eq!(app.run_once().await[0].fetched(), 2);

    let (code, table, text) = run(&mut app.bin(&["prune"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(table.starts_with("pruned 0 file(s)"), "{table}");
    assert!(
        table.contains("2 older item(s) left: their objects are still under Object Lock retention"),
        "{table}"
    );
    assert_eq!(moto.keys(BUCKET).await.len(), 2);
    assert_eq!(app.ledger_rows().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_writes_carry_the_server_side_encryption_object_store_is_told_to_use() {
    let moto = moto_server::start();
    moto.create_bucket(BUCKET, true).await;
    let app = app_on(cloud(), &moto, BUCKET, LOCK).await;

    let mut once = app.bin(&["once"]);
    once.env("AWS_SERVER_SIDE_ENCRYPTION", "AES256");
    let (code, _, output) = run(&mut once);
    assert_eq!(code, Some(0), "{output}");
    for (report_id, item) in app.fake.saved_items() {
        let key = key_of(&report_id, &item);
        let head = moto
            .signed("HEAD", &format!("/{BUCKET}/{key}"), &[], Vec::new())
            .await;
        assert_eq!(head.status, 200, "no object at {key}");
        assert_eq!(
            head.header("x-amz-server-side-encryption"),
            Some("AES256"),
            "{key} ({} bytes)",
            item.plain.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_of_our_own_signed_requests_is_tried_again() {
    let moto = moto_server::start();
    moto.create_bucket(BUCKET, true).await;
    // The requests object_store cannot make and we sign ourselves: each fails once.
    let proxy = moto
        .flaky_proxy(|method, path| match method {
            "PUT" if !path.contains('?') => Some("locked put"),
            "POST" if path.ends_with("?uploads") => Some("locked create"),
            "POST" if path.contains("?uploadId=") => Some("complete"),
            "GET" if path.contains("?uploads&") => Some("list uploads"),
            "GET" if path.ends_with("?object-lock") => Some("lock check"),
            _ => None,
        })
        .await;
    let options = Options {
        extra_sections: moto.config_section_at(
            &proxy.endpoint,
            BUCKET,
            &format!("{PREFIX}/"),
            LOCK,
        ),
        ..Options::default()
    };
    let app = spawn_app_with(cloud(), options).await;

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert_eq!(reports[0].fetched(), 2);
    let mut injected = proxy.injected.lock().expect("lock").clone();
    injected.sort_unstable();
    assert_eq!(
        injected,
        [
            "complete",
            "list uploads",
            "lock check",
            "locked create",
            "locked put"
        ]
    );
    for (report_id, item) in app.fake.saved_items() {
        let key = key_of(&report_id, &item);
        let got = moto
            .signed("GET", &format!("/{BUCKET}/{key}"), &[], Vec::new())
            .await;
        assert_eq!(got.text.as_bytes(), item.plain.as_slice(), "{key}");
    }
    assert!(moto.open_uploads(BUCKET).await.is_empty());
}
