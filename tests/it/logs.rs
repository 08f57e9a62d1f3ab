//! `[log] format = "json"`: the real binary writes one JSON object per line, and every
//! archived file and every pass is one event carrying what an operator searches for.

use report_archiver::fake_cloud::{FakeCloud, FakeReport, FakeStored};

use crate::support::{Options, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_an_event_per_file_and_per_pass() {
    let fake = FakeCloud::new();
    let report = fake.add_report(FakeReport::new(&["csv", "json_v2_0"]));
    let stored = fake.add_stored(&report, FakeStored::new("csv", b"a\n1\n".to_vec()));
    fake.add_stored(&report, FakeStored::new("json_v2_0", b"{}".to_vec()));
    let app = spawn_app_with(
        fake,
        Options {
            log_format: Some("json".into()),
            ..Options::default()
        },
    )
    .await;
    let mut cmd = app.bin(&["once"]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("joined")
        .expect("once runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(FakeCloud::CLIENT_SECRET));

    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect();
    let archived: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["message"] == "archived")
        .collect();
    assert_eq!(archived.len(), 2, "{stderr}");
    let csv = archived
        .iter()
        .find(|e| e["span"]["stored_id"] == stored.as_str())
        .expect("the csv item's event");
    assert_eq!(csv["span"]["account"], "acme", "{csv}");
    assert_eq!(csv["span"]["report_id"], report.as_str(), "{csv}");
    assert_eq!(csv["span"]["format"], "csv", "{csv}");
    assert!(csv["bytes"].as_u64().is_some_and(|b| b > 0), "{csv}");
    assert_eq!(csv["stored_bytes"], 4, "{csv}");
    assert!(csv["seconds"].is_number(), "{csv}");
    assert!(csv["timestamp"].is_string(), "{csv}");

    let pass = events
        .iter()
        .find(|e| e["message"] == "pass finished")
        .expect("a pass event");
    assert_eq!(pass["span"]["account"], "acme", "{pass}");
    assert_eq!(pass["fetched"], 2, "{pass}");
    assert!(pass["seconds"].is_number(), "{pass}");
}
