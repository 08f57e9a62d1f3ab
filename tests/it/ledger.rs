//! `ledger list`, `ledger stats` and `ledger export` on a real archive, through the binary.

use report_archiver::fake_cloud::FakeCloud;
use serde_json::Value;

use crate::support::{TestApp, bin_without_config, run, spawn_app};

async fn archived_app() -> TestApp {
    let app = spawn_app(FakeCloud::seeded(3, 2, &["csv", "json_v2_0", "html"])).await;
    let reports = app.run_once().await;
    assert!(reports.iter().all(|r| r.fetched() > 0), "{reports:?}");
    app
}

/// The table's data lines (header and the trailing count line dropped), split on spaces.
fn table_rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with("item(s)"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_list_table_and_json_agree_and_filters_apply() {
    let app = archived_app().await;
    let rows = app.ledger_rows().await;

    let (code, table, text) = run(&mut app.bin(&["ledger", "list"]));
    assert_eq!(code, Some(0), "{text}");
    let (code, json, text) = run(&mut app.bin(&["ledger", "list", "--json"]));
    assert_eq!(code, Some(0), "{text}");
    let json: Vec<Value> = serde_json::from_str(&json).expect("JSON list");
    let table = table_rows(&table);
    assert_eq!(json.len(), rows.len());
    assert_eq!(table.len(), json.len());
    for (line, item) in table.iter().zip(&json) {
        assert_eq!(line[0], item["account"].as_str().expect("account"));
        assert_eq!(line[1], item["report_id"].as_str().expect("report"));
        assert_eq!(line[2], item["stored_id"].as_str().expect("stored id"));
        assert_eq!(line[3], item["report_format"].as_str().expect("format"));
        assert_eq!(line[5], item["stored_bytes"].to_string());
        assert_eq!(line[6], item["path"].as_str().expect("path"));
    }

    let (_, csv_only, _) = run(&mut app.bin(&["ledger", "list", "--format", "html", "--json"]));
    let csv_only: Vec<Value> = serde_json::from_str(&csv_only).expect("JSON");
    assert!(!csv_only.is_empty());
    assert!(csv_only.iter().all(|i| i["report_format"] == "html"));
    let want = rows.iter().filter(|r| r.report_format == "html").count();
    assert_eq!(csv_only.len(), want);

    // The seeded generations are created in August, September and October 2026.
    let (_, recent, _) = run(&mut app.bin(&["ledger", "list", "--since", "2026-10-01", "--json"]));
    let recent: Vec<Value> = serde_json::from_str(&recent).expect("JSON");
    let want = rows
        .iter()
        .filter(|r| r.created_at.as_str() >= "2026-10-01")
        .count();
    assert_eq!(recent.len(), want);
    assert!(want > 0 && want < rows.len());

    let (code, _, text) = run(&mut app.bin(&["ledger", "list", "--since", "last tuesday"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("YYYY-MM-DD"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_stats_table_and_json_agree() {
    let app = archived_app().await;
    let rows = app.ledger_rows().await;
    let bytes: i64 = rows.iter().map(|r| r.stored_bytes).sum();

    let (code, json, text) = run(&mut app.bin(&["ledger", "stats", "--json"]));
    assert_eq!(code, Some(0), "{text}");
    let stats: Value = serde_json::from_str(&json).expect("JSON stats");
    assert_eq!(stats["total"]["files"], rows.len());
    assert_eq!(stats["total"]["bytes"], bytes);
    let last = rows
        .iter()
        .map(|r| r.fetched_at.clone())
        .max()
        .expect("rows");
    assert_eq!(stats["last_fetch"], last.as_str());

    let (code, table, text) = run(&mut app.bin(&["ledger", "stats"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        table.starts_with(&format!("files {}, stored bytes {bytes},", rows.len())),
        "{table}"
    );
    assert!(table.contains(&format!("last fetch {last}")), "{table}");
    for (group, key) in [
        ("account", "per_account"),
        ("report", "per_report"),
        ("format", "per_format"),
    ] {
        let map = stats[key].as_object().expect("map");
        for (name, tally) in map {
            let line = table
                .lines()
                .find(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.first() == Some(&group) && f.get(1) == Some(&name.as_str())
                })
                .unwrap_or_else(|| panic!("no {group} line for {name} in\n{table}"));
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f[2], tally["files"].to_string(), "{line}");
            assert_eq!(f[3], tally["bytes"].to_string(), "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_export_writes_csv_json_and_checksums_for_every_row() {
    let app = archived_app().await;
    let rows = app.ledger_rows().await;
    let (code, csv, text) = run(&mut app.bin(&["ledger", "export", "--format", "csv"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(csv.lines().count(), rows.len() + 1);
    assert!(csv.starts_with("account,report_id,stored_id,"), "{csv}");
    let (_, json, _) = run(&mut app.bin(&["ledger", "export", "--format", "json"]));
    let json: Vec<Value> = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json.len(), rows.len());
    let (_, sums, _) = run(&mut app.bin(&["ledger", "export", "--format", "sha256sum"]));
    for row in &rows {
        assert!(sums.contains(&format!("{}  {}\n", row.sha256, row.path)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_archive_is_read_with_ledger_and_archive_flags_and_no_config() {
    let app = archived_app().await;
    let copy = tempfile::tempdir().expect("dir");
    let (ledger, archive) = (copy.path().join("ledger.db"), copy.path().join("archive"));
    std::fs::copy(&app.ledger_path, &ledger).expect("copy ledger");
    copy_dir(&app.archive_dir, &archive);
    let place = [
        "--ledger",
        ledger.to_str().expect("utf-8"),
        "--archive",
        archive.to_str().expect("utf-8"),
    ];
    fn joined<'a>(args: &[&'a str], place: &[&'a str]) -> Vec<&'a str> {
        [args, place].concat()
    }
    let with = |args: &[&'static str]| -> Vec<String> {
        joined(args, &place)
            .into_iter()
            .map(str::to_owned)
            .collect()
    };

    let (code, json, text) = run(&mut bin_without_config_owned(&with(&[
        "ledger", "list", "--json",
    ])));
    assert_eq!(code, Some(0), "{text}");
    let json: Vec<Value> = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json.len(), app.ledger_rows().await.len());
    let (code, _, text) = run(&mut bin_without_config_owned(&with(&["verify"])));
    assert_eq!(code, Some(0), "{text}");

    let (code, _, text) = run(&mut bin_without_config_owned(&with(&[
        "verify", "--repair",
    ])));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("needs the config"), "{text}");
    let (code, _, text) = run(&mut bin_without_config_owned(&with(&["reports"])));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("needs the config"), "{text}");
    let (code, _, text) = run(&mut bin_without_config(&[
        "ledger", "stats", "--ledger", "x.db",
    ]));
    assert_eq!(
        code,
        Some(2),
        "--ledger without --archive is a usage error: {text}"
    );
}

fn bin_without_config_owned(args: &[String]) -> std::process::Command {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bin_without_config(&args)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn the_operator_commands_work_on_what_demo_leaves_behind() {
    let dir = tempfile::tempdir().expect("dir");
    let demo = bin_without_config(&["demo", "--dir", dir.path().to_str().expect("utf-8")])
        .output()
        .expect("demo runs");
    assert!(demo.status.success());
    let config = dir.path().join("demo.toml");
    let config = config.to_str().expect("utf-8");
    for args in [
        &["ledger", "list"][..],
        &["ledger", "stats", "--json"],
        &["ledger", "export", "--format", "sha256sum"],
        &["verify"],
    ] {
        let (code, out, text) = run(bin_without_config(
            &[&["--config", config][..], args].concat(),
        )
        .current_dir(dir.path()));
        assert_eq!(code, Some(0), "{args:?}: {text}");
        assert!(!out.is_empty(), "{args:?}");
    }
    // The demo's fake cloud stopped with the demo: `reports` says it cannot reach it
    // (without retries, which would only make the test slow).
    let (code, _, text) = run(bin_without_config(&["--config", config, "reports"])
        .env("REPORT_ARCHIVER__HTTP__RETRIES", "0"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("cannot reach"), "{text}");
}
