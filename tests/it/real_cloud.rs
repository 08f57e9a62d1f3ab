//! What the real cloud may do that the spec leaves open (issue 17), against the fake cloud.

use report_archiver::fake_cloud::{BodyShape, FakeCloud, FakeReport, FakeStored, ListedSize};

use crate::support::{run, sha256_hex, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_expires_on_still_completes_the_pass_with_one_warning() {
    // The server's clock off by `skew`: its two-hour tokens then state an `expires_on`
    // 3 h in the past, or 5 h ahead, of ours.
    for (skew, says) in [(-5 * 3600, "3h in the past"), (3 * 3600, "5h ahead")] {
        let fake = FakeCloud::seeded(3, 2, &["csv"]);
        fake.set_clock_skew(skew);
        let app = spawn_app(fake).await;
        let (code, _, text) = run(&mut app.bin(&["once"]));
        assert_eq!(code, Some(0), "skew {skew}: {text}");
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("expires_on is"))
            .collect();
        assert_eq!(warnings.len(), 1, "skew {skew}: {text}");
        assert!(warnings[0].contains(says), "{}", warnings[0]);
        // Exit 0 says nothing failed; the items ready in the cloud are in the ledger.
        assert!(!app.ledger_rows().await.is_empty(), "skew {skew}: {text}");
    }
}

/// One report with one csv item of `content`, served as `shape`.
fn one_item(content: &[u8], shape: BodyShape) -> (FakeCloud, String, String) {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv"]));
    let stored = fake.add_stored(
        &report,
        FakeStored::new("csv", content.to_vec()).shape(shape),
    );
    (fake, report, stored)
}

fn csv(rows: usize) -> Vec<u8> {
    let mut out = b"tenant,metric,value\n".to_vec();
    for i in 0..rows {
        out.extend_from_slice(format!("t{i},storage,{}\n", i * 7).as_bytes());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_body_whose_size_drifts_from_the_listing_is_archived_with_both_lengths() {
    let content = csv(2_000);
    let (fake, report, stored) = one_item(&content, BodyShape::GzipWithHeader);
    // The listing counts the uncompressed report, not the bytes served.
    fake.set_listed_size(&report, &stored, ListedSize::Uncompressed);
    let app = spawn_app(fake).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("listing's size differs"))
            .count(),
        1,
        "{text}"
    );
    let rows = app.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].listed_size, Some(content.len() as i64));
    assert!(rows[0].wire_bytes < content.len() as i64, "{:?}", rows[0]);
    let archived = std::fs::read(app.archive_dir.join(&rows[0].path)).expect("file");
    assert_eq!(sha256_hex(&archived), sha256_hex(&content));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_body_whose_size_disagrees_is_refused_and_fetched_by_a_later_pass() {
    let content = csv(50);
    let (fake, report, stored) = one_item(&content, BodyShape::Plain);
    fake.set_listed_size(
        &report,
        &stored,
        ListedSize::Exactly(content.len() as u64 + 5),
    );
    let app = spawn_app(fake).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("the listing's size"), "{text}");
    assert!(app.ledger_rows().await.is_empty());
    // The listing is corrected; the next pass takes the item.
    app.fake.set_listed_size(&report, &stored, ListedSize::Wire);
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(app.ledger_rows().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_in_progress_without_created_at_is_pending_not_failed() {
    let content = csv(10);
    let (fake, report, _) = one_item(&content, BodyShape::GzipWithHeader);
    // As the cloud may list an item it is still generating: no created_at, no size.
    fake.add_raw_listing_item(
        &report,
        serde_json::json!({"id": "generating-1", "report_format": "csv", "status": "in_progress"}),
    );
    let app = spawn_app(fake).await;
    let (code, stdout, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let total = stdout
        .lines()
        .find(|l| l.contains("(total)"))
        .expect("a total row");
    // ACCOUNT REPORT FETCHED SKIPPED PENDING FAILED …
    let columns: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(&columns[2..6], ["1", "0", "1", "0"], "{stdout}");
    assert!(!text.contains("malformed stored item"), "{text}");
}

/// The named scenarios `fake-cloud --scenario NAME` serves, each showing its behaviour
/// through the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_cloud_scenarios_of_fake_cloud_behave_as_documented() {
    use report_archiver::fake_cloud::scenario;
    let formats = ["csv", "json"];

    // Gzip bodies re-compressed on the way: every listed size is off, every body proves
    // itself by its trailer, so everything is archived, each with one warning.
    let app = spawn_app(scenario::recompressed(5, 2, &formats)).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let rows = app.ledger_rows().await;
    let gzip_rows = rows.iter().filter(|r| r.listed_size != Some(r.wire_bytes));
    assert!(gzip_rows.count() > 0, "{rows:?}");
    assert!(text.contains("listing's size differs"), "{text}");

    // Sizes that count the uncompressed report: the gzip bodies drift and are archived
    // with a warning each; a plain body's size is its length anyway.
    let app = spawn_app(scenario::uncompressed_size(5, 2, &formats)).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let rows = app.ledger_rows().await;
    let drifted = rows
        .iter()
        .filter(|r| r.listed_size != Some(r.wire_bytes))
        .count();
    assert!(drifted > 0, "{rows:?}");
    assert_eq!(
        text.matches("listing's size differs").count(),
        drifted,
        "{text}"
    );

    // A server clock 3 h behind: the pass completes, with the one warning.
    let app = spawn_app(scenario::skewed_clock(5, 2, &formats)).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches("expires_on is").count(), 1, "{text}");
}
