//! SIGKILL at random moments: no partial or corrupt file ever sits under a final name, the
//! ledger never claims a file that is not there whole, and a final pass completes the set.

use std::collections::HashMap;
use std::time::Duration;

use report_archiver::fake_cloud::{BodyShape, FakeCloud, FakeReport, FakeStored};

use crate::support::{Options, TestApp, sha256_hex, spawn_app_with};

const KILLS: u64 = 30;

fn populated() -> FakeCloud {
    let fake = FakeCloud::new();
    let shapes = [
        BodyShape::GzipWithHeader,
        BodyShape::GzipNoHeader,
        BodyShape::Plain,
    ];
    for r in 0..20u64 {
        let report = fake.add_report(FakeReport::new(&["csv", "json_v2_0"]));
        for i in 0..10u64 {
            let n = r * 10 + i;
            let body = format!(
                "tenant,metric,value\n{}",
                format!("t{n},m,{n}\n").repeat(200 + n as usize * 20)
            );
            let mut item = FakeStored::new(
                if i % 2 == 0 { "csv" } else { "json_v2_0" },
                body.into_bytes(),
            );
            item.shape = shapes[(n % 3) as usize];
            item.created_at =
                chrono::DateTime::from_timestamp(1_780_000_000 + n as i64 * 60, 0).expect("time");
            fake.add_stored(&report, item);
        }
    }
    // Slow enough that a pass spans the kill window.
    fake.set_latency(Duration::from_millis(30));
    fake
}

fn served_bytes(fake: &FakeCloud) -> HashMap<String, Vec<u8>> {
    fake.saved_items()
        .into_iter()
        .map(|(_, v)| (v.id, v.plain))
        .collect()
}

/// Every file under a final name is whole; every ledger row names such a file.
async fn assert_consistent(app: &TestApp, served: &HashMap<String, Vec<u8>>, kill: u64) {
    for rel in app.archived_files() {
        let name = rel.rsplit('/').next().unwrap_or_default();
        let stored_id = name
            .split_once('_')
            .and_then(|(_, rest)| rest.split_once('.'))
            .map(|(id, _)| id)
            .expect("file name has a stored id");
        let bytes = std::fs::read(app.archive_dir.join(&rel)).expect("read");
        assert_eq!(
            &bytes, &served[stored_id],
            "kill {kill}: {rel} is not whole"
        );
    }
    for row in app.ledger_rows().await {
        let bytes = std::fs::read(app.archive_dir.join(&row.path)).unwrap_or_else(|e| {
            panic!("kill {kill}: ledger row without its file {}: {e}", row.path)
        });
        assert_eq!(sha256_hex(&bytes), row.sha256, "kill {kill}: {}", row.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_leaves_a_partial_file_or_a_false_ledger_row() {
    let app = spawn_app_with(populated(), Options::default()).await;
    let report_ids = app.fake.report_ids();
    let mut seed: u64 = 0x5EED_2026;
    let mut killed_mid_pass = 0;
    for kill in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(50 + seed % 700);
        // New items every round, so every pass has downloads to be killed in.
        for k in 0..16u64 {
            let report = &report_ids[((seed >> 8) as usize + k as usize) % report_ids.len()];
            let body = format!("tenant,metric,value\nround{kill},k{k},{seed}\n").repeat(300);
            let mut item = FakeStored::new("csv", body.into_bytes());
            item.created_at =
                chrono::DateTime::from_timestamp(1_790_000_000 + (kill * 16 + k) as i64 * 60, 0)
                    .expect("time");
            app.fake.add_stored(report, item);
        }
        let served = served_bytes(&app.fake);
        let mut child = app
            .bin(&["once"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("once starts");
        tokio::time::sleep(delay).await;
        if child.try_wait().expect("status").is_none() {
            killed_mid_pass += 1;
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        assert_consistent(&app, &served, kill).await;
    }
    eprintln!(
        "crash: {KILLS} SIGKILLs, {killed_mid_pass} while a pass ran, {} of {} items archived before the final pass",
        app.ledger_rows().await.len(),
        app.fake.saved_items().len()
    );
    assert!(
        killed_mid_pass >= KILLS / 2,
        "most kills must land mid-pass to mean anything"
    );

    let served = served_bytes(&app.fake);
    let out = app.bin(&["once"]).output().expect("final pass");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::support::output_text(&out)
    );
    assert_consistent(&app, &served, KILLS).await;
    assert_eq!(app.ledger_rows().await.len(), served.len());
    assert_eq!(app.archived_files().len(), served.len());
    assert!(
        app.partial_files().is_empty(),
        "temp files are cleared at start"
    );
}
