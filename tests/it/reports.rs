//! `reports`: what the account offers next to what is archived, read-only against the cloud.

use report_archiver::fake_cloud::FakeCloud;
use serde_json::Value;

use crate::support::{run, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_lists_every_report_with_counts_and_the_table_agrees_with_json() {
    // Three save reports plus one `send` report.
    let app = spawn_app(FakeCloud::seeded(4, 3, &["csv", "html"])).await;
    app.run_once().await;
    let downloads = app.fake.download_requests();

    let (code, json, text) = run(&mut app.bin(&["reports", "--json"]));
    assert_eq!(code, Some(0), "{text}");
    let views: Vec<Value> = serde_json::from_str(&json).expect("JSON");
    assert_eq!(views.len(), app.fake.report_ids().len());
    let send: Vec<&Value> = views
        .iter()
        .filter(|v| v["stores_nothing"] == true)
        .collect();
    assert_eq!(send.len(), 1);
    assert!(send[0]["note"].as_str().is_some_and(|n| n.contains("send")));
    let rows = app.ledger_rows().await;
    for v in views.iter().filter(|v| v["stores_nothing"] == false) {
        assert_eq!(v["kind"], "usage_summary");
        assert_eq!(v["schedule"], "monthly");
        assert_eq!(v["formats"], serde_json::json!(["csv", "html"]));
        let report = v["report_id"].as_str().expect("id");
        let archived = rows.iter().filter(|r| r.report_id == report).count();
        assert_eq!(v["archived"], archived, "{v}");
    }
    // The one item that was in progress during the pass is saved now, not yet archived.
    let sum = |key: &str| -> u64 { views.iter().map(|v| v[key].as_u64().unwrap_or(0)).sum() };
    assert_eq!(sum("saved"), sum("archived") + 1, "{views:?}");
    assert_eq!(sum("failed"), 1, "the seeded data holds one failed item");

    let (code, table, text) = run(&mut app.bin(&["reports"]));
    assert_eq!(code, Some(0), "{text}");
    for v in &views {
        let id = v["report_id"].as_str().expect("id");
        let line = table
            .lines()
            .find(|l| l.contains(id))
            .expect("a line per report");
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[0], "acme");
        assert_eq!(f[5], v["result_action"].as_str().expect("action"), "{line}");
        for (i, key) in [
            (6, "saved"),
            (7, "in_progress"),
            (8, "failed"),
            (9, "archived"),
        ] {
            assert_eq!(f[i], v[key].to_string(), "{key}: {line}");
        }
    }
    assert_eq!(
        app.fake.download_requests(),
        downloads,
        "reports downloads nothing"
    );

    let (code, _, text) = run(&mut app.bin(&["reports", "--account", "nobody"]));
    assert_eq!(code, Some(2), "{text}");
}
