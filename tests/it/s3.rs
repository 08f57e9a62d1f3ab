//! The S3 target against a real s3s-fs on 127.0.0.1: every item at its key with its bytes,
//! create-only writes, multipart uploads aborted after a crash.

use std::collections::HashMap;
use std::time::SystemTime;

use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::multipart::MultipartStore;
use object_store::path::Path as KeyPath;
use report_archiver::app::Mode;
use report_archiver::fake_cloud::{BodyShape, FakeCloud, FakeReport, FakeStored, StoredView};
use report_archiver::ledger::Ledger;

use crate::s3_server::{self, ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};
use crate::support::{ACCOUNT, Options, TestApp, run, sha256_hex, spawn_app_with};

const PREFIX: &str = "acronis";
/// Over two 5 MiB parts: a multipart upload with a short last part.
const BIG: usize = 12 * 1024 * 1024;

fn small(n: usize) -> Vec<u8> {
    format!("tenant,metric,value\n{}", "acme,storage,1\n".repeat(50 + n)).into_bytes()
}

fn big() -> Vec<u8> {
    let line = b"tenant-000042,storage_bytes,1073741824,2026-11-29T00:00:00Z\n";
    line.iter().copied().cycle().take(BIG).collect()
}

/// One report with three small items in every body shape and one big plain one.
fn cloud_with_big_and_small() -> FakeCloud {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    let shapes = [
        BodyShape::GzipWithHeader,
        BodyShape::GzipNoHeader,
        BodyShape::Plain,
    ];
    for (n, shape) in shapes.into_iter().enumerate() {
        fake.add_stored(&report, FakeStored::new("csv", small(n)).shape(shape));
    }
    fake.add_stored(
        &report,
        FakeStored::new("csv", big()).shape(BodyShape::Plain),
    );
    fake
}

async fn spawn_with_s3(fake: FakeCloud, server: &S3Server) -> TestApp {
    let options = Options {
        extra_sections: server.config_section(&format!("{PREFIX}/")),
        ..Options::default()
    };
    spawn_app_with(fake, options).await
}

fn key_of(report_id: &str, item: &StoredView) -> String {
    s3_server::key_of(PREFIX, report_id, item)
}

fn mtimes(server: &S3Server) -> HashMap<String, SystemTime> {
    server
        .keys()
        .into_iter()
        .map(|k| {
            let path = server.root.path().join(BUCKET).join(&k);
            let modified = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .expect("mtime");
            (k, modified)
        })
        .collect()
}

#[tokio::test]
async fn a_full_pass_puts_every_item_at_its_key_and_a_second_pass_uploads_nothing() {
    let server = s3_server::start();
    let app = spawn_with_s3(cloud_with_big_and_small(), &server).await;

    let first = app.run_once().await;
    assert!(first[0].succeeded(), "{first:?}");
    assert_eq!(first[0].fetched(), 4);

    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 4);
    let ledger = Ledger::open(&app.ledger_path, std::time::Duration::from_secs(10))
        .await
        .expect("ledger opens");
    let objects = ledger.object_refs().await.expect("object refs");
    ledger.close().await;
    for (report_id, item) in app.fake.saved_items() {
        let key = key_of(&report_id, &item);
        let stored = server
            .object(&key)
            .unwrap_or_else(|| panic!("no object at {key}"));
        assert_eq!(
            stored, item.plain,
            "{key} holds other bytes than the report"
        );
        let row = rows
            .iter()
            .find(|r| r.stored_id == item.id)
            .expect("a ledger row");
        assert_eq!(format!("{PREFIX}/{}", row.path), key);
        assert_eq!(row.sha256, sha256_hex(&item.plain));
        let e_tag = objects.get(&row.path).and_then(|o| o.e_tag.clone());
        assert!(e_tag.is_some(), "no ETag recorded for {key}");
    }
    assert_eq!(server.keys().len(), 4, "{:?}", server.keys());
    // Only staged: nothing stays in the local archive, no upload stays open.
    assert!(
        app.archived_files().is_empty(),
        "{:?}",
        app.archived_files()
    );
    assert!(app.partial_files().is_empty());
    assert!(
        server.open_uploads().is_empty(),
        "{:?}",
        server.open_uploads()
    );

    let before = mtimes(&server);
    let downloads = app.fake.download_requests();
    let second = app.run_once().await;
    assert!(second[0].succeeded(), "{second:?}");
    assert_eq!(second[0].fetched(), 0);
    assert_eq!(second[0].skipped(), 4);
    assert_eq!(app.fake.download_requests(), downloads);
    assert_eq!(mtimes(&server), before, "an object was written again");
    // The staging folder is empty, yet a dry run knows the items are archived.
    let dry = app.run_mode(Mode::DryRun).await;
    assert!(dry[0].planned.is_empty(), "{:?}", dry[0].planned);
}

#[tokio::test]
async fn an_object_already_at_the_key_is_never_replaced_and_its_item_is_not_recorded() {
    let server = s3_server::start();
    let fake = cloud_with_big_and_small();
    let app = spawn_with_s3(fake.clone(), &server).await;
    let items = fake.saved_items();
    let foreign = b"someone else's object".to_vec();
    // One small (single PUT) and the big (multipart) item find a foreign object at their key.
    let small_item = items
        .iter()
        .find(|(_, i)| i.plain.len() < 1024 * 1024)
        .expect("a small item");
    let big_item = items
        .iter()
        .find(|(_, i)| i.plain.len() == BIG)
        .expect("the big item");
    let taken: Vec<(String, String)> = [small_item, big_item]
        .iter()
        .map(|(report, item)| (item.id.clone(), key_of(report, item)))
        .collect();
    for (_, key) in &taken {
        server.plant(key, &foreign);
    }

    let reports = app.run_once().await;
    assert_eq!(reports[0].failed(), 2, "{reports:?}");
    assert_eq!(reports[0].fetched(), 2);
    let rows = app.ledger_rows().await;
    for (stored_id, key) in &taken {
        assert_eq!(
            server.object(key).as_deref(),
            Some(foreign.as_slice()),
            "{key} replaced"
        );
        assert!(
            rows.iter().all(|r| &r.stored_id != stored_id),
            "{stored_id} recorded although not archived"
        );
    }
    assert_eq!(rows.len(), 2);
    // The refused multipart upload was aborted, not left open.
    assert!(
        server.open_uploads().is_empty(),
        "{:?}",
        server.open_uploads()
    );
    assert!(app.partial_files().is_empty());
}

#[tokio::test]
async fn an_identical_object_already_at_the_key_is_adopted() {
    let server = s3_server::start();
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    fake.add_stored(&report, FakeStored::new("csv", small(1)));
    let app = spawn_with_s3(fake.clone(), &server).await;
    let (report_id, item) = fake.saved_items().into_iter().next().expect("an item");
    // As if an earlier attempt's PUT went through and its answer was lost.
    server.plant(&key_of(&report_id, &item), &item.plain);

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].sha256, sha256_hex(&item.plain));
}

#[tokio::test]
async fn a_multipart_upload_left_open_by_a_crash_is_aborted_at_the_next_start() {
    let server = s3_server::start();
    let fake = FakeCloud::new();
    fake.add_report(FakeReport::new(&["csv"]));
    let app = spawn_with_s3(fake, &server).await;
    // What a crash between CreateMultipartUpload and its completion leaves: an open upload
    // with a part, recorded in the ledger, and nothing at the final key.
    let key = format!("{PREFIX}/{ACCOUNT}/crashed/2026/11/20261129T000000Z_x.csv");
    let store = AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_endpoint(&server.endpoint)
        .with_allow_http(true)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .build()
        .expect("client");
    let path = KeyPath::parse(&key).expect("key");
    let upload_id = store.create_multipart(&path).await.expect("create");
    store
        .put_part(&path, &upload_id, 0, vec![7u8; 5 * 1024 * 1024].into())
        .await
        .expect("part");
    let ledger = Ledger::open(&app.ledger_path, std::time::Duration::from_secs(10))
        .await
        .expect("ledger opens");
    ledger
        .record_upload(&key, &upload_id)
        .await
        .expect("record");
    ledger.close().await;
    assert_eq!(server.open_uploads().len(), 1);

    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert!(
        server.open_uploads().is_empty(),
        "{:?}",
        server.open_uploads()
    );
    assert!(
        server.object(&key).is_none(),
        "the crashed upload left an object"
    );
    assert!(store.head(&path).await.is_err());
    let ledger = Ledger::open(&app.ledger_path, std::time::Duration::from_secs(10))
        .await
        .expect("ledger opens");
    assert!(ledger.open_uploads().await.expect("uploads").is_empty());
    ledger.close().await;
}

// Multi-threaded: the fake cloud must keep serving while the test waits on the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_streams_objects_back_and_repair_restores_missing_objects_only() {
    let server = s3_server::start();
    let fake = cloud_with_big_and_small();
    let app = spawn_with_s3(fake.clone(), &server).await;
    assert!(app.run_once().await[0].succeeded());
    let (code, out, all) = run(&mut app.bin(&["verify", "--json"]));
    assert_eq!(code, Some(0), "{all}");
    let clean: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(clean["intact"], 4);
    assert_eq!(
        clean["bytes_hashed"].as_u64(),
        Some(
            fake.saved_items()
                .iter()
                .map(|(_, i)| i.plain.len() as u64)
                .sum()
        )
    );

    let rows = app.ledger_rows().await;
    let big_row = rows
        .iter()
        .find(|r| r.stored_bytes as usize == BIG)
        .expect("big row");
    let small_row = rows
        .iter()
        .find(|r| r.stored_bytes as usize != BIG)
        .expect("small row");
    // Changed behind the store's back (bit rot, a bad actor), one gone, one stray.
    server.plant(&format!("{PREFIX}/{}", big_row.path), b"tampered");
    std::fs::remove_file(
        server
            .root
            .path()
            .join(BUCKET)
            .join(format!("{PREFIX}/{}", small_row.path)),
    )
    .expect("delete object");
    server.plant(&format!("{PREFIX}/stray.csv"), b"x");

    let (code, out, all) = run(&mut app.bin(&["verify", "--json"]));
    assert_eq!(code, Some(1), "{all}");
    let found: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(found["intact"], 2, "{found}");
    assert_eq!(
        found["changed"][0]["path"],
        big_row.path.as_str(),
        "{found}"
    );
    assert_eq!(
        found["missing"][0]["path"],
        small_row.path.as_str(),
        "{found}"
    );
    assert_eq!(
        found["untracked"],
        serde_json::json!(["stray.csv"]),
        "{found}"
    );

    // --repair uploads the missing object again; the changed one is never replaced.
    let before = app.fake.download_count(&small_row.stored_id);
    let (code, out, all) = run(&mut app.bin(&["verify", "--repair", "--json"]));
    assert_eq!(code, Some(1), "{all}");
    let repaired: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        repaired["repair"]["restored"],
        serde_json::json!([small_row.path]),
        "{repaired}"
    );
    assert_eq!(
        repaired["repair"]["not_restored"][0]["path"],
        big_row.path.as_str(),
        "{repaired}"
    );
    assert_eq!(app.fake.download_count(&small_row.stored_id), before + 1);
    let small_key = format!("{PREFIX}/{}", small_row.path);
    let restored = server.object(&small_key).expect("restored object");
    assert_eq!(sha256_hex(&restored), small_row.sha256);
    let big_key = format!("{PREFIX}/{}", big_row.path);
    assert_eq!(server.object(&big_key).as_deref(), Some(&b"tampered"[..]));
}

#[tokio::test]
async fn an_item_whose_upload_fails_is_not_recorded_and_is_archived_by_a_later_pass() {
    let mut server = s3_server::start();
    let fake = cloud_with_big_and_small();
    let options = Options {
        extra_sections: server.config_section(&format!("{PREFIX}/")),
        http: "retries = 1\nmax_backoff = \"1s\"".to_owned(),
        ..Options::default()
    };
    let app = spawn_app_with(fake.clone(), options).await;
    server.stop();

    let down = app.run_once().await;
    assert_eq!(down[0].failed(), 4, "{down:?}");
    assert!(app.ledger_rows().await.is_empty());
    assert!(app.partial_files().is_empty(), "{:?}", app.partial_files());

    server.restart();
    let up = app.run_once().await;
    assert!(up[0].succeeded(), "{up:?}");
    assert_eq!(up[0].fetched(), 4);
    assert_eq!(server.keys().len(), 4, "{:?}", server.keys());
    assert!(
        server.open_uploads().is_empty(),
        "{:?}",
        server.open_uploads()
    );
}

// Multi-threaded: the fake cloud serves the killed binary while the test polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_upload_leaves_no_object_and_the_next_start_aborts_its_upload() {
    let server = s3_server::start();
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    // Many parts sent one at a time: the upload stays open long enough to be caught.
    let body: Vec<u8> = big().into_iter().cycle().take(3 * BIG).collect();
    fake.add_stored(
        &report,
        FakeStored::new("csv", body).shape(BodyShape::Plain),
    );
    let options = Options {
        extra_sections: format!(
            "{}upload_concurrency = 1\n",
            server.config_section(&format!("{PREFIX}/"))
        ),
        ..Options::default()
    };
    let app = spawn_app_with(fake.clone(), options).await;
    let (report_id, item) = fake.saved_items().into_iter().next().expect("an item");
    let key = key_of(&report_id, &item);

    let mut child = app
        .bin(&["once"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("once starts");
    // Killed once the upload is open and in the ledger. (Between CreateMultipartUpload's
    // answer and the ledger's commit there is a window no restart can clean up without
    // ListMultipartUploads; the README asks for a lifecycle rule as the backstop.)
    let caught = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let mut ledger = None;
        loop {
            if ledger.is_none() {
                ledger = Ledger::open_read_only(&app.ledger_path)
                    .await
                    .ok()
                    .flatten();
            }
            if let Some(ledger) = &ledger
                && !ledger.open_uploads().await.unwrap_or_default().is_empty()
            {
                ledger.close().await;
                return true;
            }
            if child.try_wait().expect("child status").is_some() {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the upload starts within two minutes");
    assert!(caught, "the run finished before its upload could be killed");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    assert_eq!(server.open_uploads().len(), 1);
    assert!(
        server.object(&key).is_none(),
        "a killed upload left an object at {key}"
    );

    // The next start aborts the upload it recorded; its pass then archives the item whole.
    let reports = app.run_once().await;
    assert!(reports[0].succeeded(), "{reports:?}");
    assert!(
        server.open_uploads().is_empty(),
        "{:?}",
        server.open_uploads()
    );
    let stored = server.object(&key).expect("archived by the next pass");
    assert_eq!(sha256_hex(&stored), sha256_hex(&item.plain));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lock_on_a_server_without_it_stops_the_start_with_a_config_error() {
    let server = s3_server::start();
    let options = Options {
        extra_sections: format!(
            "{}object_lock = {{ mode = \"governance\", retain = \"1y\" }}\n",
            server.config_section(&format!("{PREFIX}/"))
        ),
        ..Options::default()
    };
    let app = spawn_app_with(cloud_with_big_and_small(), options).await;

    let (code, _, output) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains(&format!(
            "archive.s3.object_lock: bucket `{BUCKET}` is on a server that does not implement Object Lock"
        )),
        "{output}"
    );
    assert!(server.keys().is_empty(), "{:?}", server.keys());
    assert_eq!(app.fake.download_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_objects_older_than_keep_from_the_bucket_and_no_pass_fetches_them_again() {
    let server = s3_server::start();
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    let old = fake.add_stored(
        &report,
        FakeStored::new("csv", small(0)).created_at(
            chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2015, 1, 2, 3, 0, 0).unwrap(),
        ),
    );
    fake.add_stored(&report, FakeStored::new("csv", small(1)));
    let options = Options {
        extra_sections: server.config_section(&format!("{PREFIX}/")),
        keep: Some("7y".into()),
        ..Options::default()
    };
    let app = spawn_app_with(fake, options).await;
    assert_eq!(app.run_once().await[0].fetched(), 2);
    let rows = app.ledger_rows().await;
    let old_key = format!(
        "{PREFIX}/{}",
        rows.iter().find(|r| r.stored_id == old).expect("old").path
    );
    assert_eq!(server.keys().len(), 2);

    let (code, table, text) = run(&mut app.bin(&["prune", "--dry-run"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(table.starts_with("would prune 1 file(s)"), "{table}");
    assert_eq!(server.keys().len(), 2, "a dry run deletes nothing");

    let (code, table, text) = run(&mut app.bin(&["prune"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(table.starts_with("pruned 1 file(s)"), "{table}");
    let keys = server.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys.contains(&old_key), "{keys:?}");
    // The row stays, marked pruned: verify does not miss the object, no pass fetches it.
    let (code, _, text) = run(&mut app.bin(&["verify"]));
    assert_eq!(code, Some(0), "{text}");
    let downloads = app.fake.download_count(&old);
    assert_eq!(app.run_once().await[0].fetched(), 0);
    assert_eq!(app.fake.download_count(&old), downloads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_the_start_says_what_to_configure_and_no_upload_waits_forever() {
    let server = s3_server::start();
    // The AWS chain's last link, the metadata service, accepting connections and never
    // answering (the kernel queues them; nothing reads).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let section: String = server
        .config_section(&format!("{PREFIX}/"))
        .lines()
        .filter(|l| !l.contains("_file ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let options = Options {
        extra_sections: section,
        http: "connect_timeout = \"1s\"".into(),
        ..Options::default()
    };
    let app = spawn_app_with(cloud_with_big_and_small(), options).await;

    let mut once = app.bin(&["once"]);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        once.env_remove(var);
    }
    once.env(
        "AWS_METADATA_ENDPOINT",
        format!("http://{}", silent.local_addr().expect("addr")),
    );
    let (code, _, output) = run(&mut once);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("no S3 credentials now"), "{output}");
    assert!(
        output.contains("set archive.s3.access_key_id_file and secret_access_key_file"),
        "{output}"
    );
    assert!(output.contains("none within 2 s"), "{output}");
    assert!(server.keys().is_empty(), "{:?}", server.keys());
    assert!(app.ledger_rows().await.is_empty());
    assert!(app.partial_files().is_empty(), "{:?}", app.partial_files());
}
