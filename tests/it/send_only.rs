//! A configuration that archives nothing says so, and the tool can fix it (issue 17):
//! an account whose every report is e-mailed (`send`) fails `once` and `/healthz` with
//! what to do, `reports create` makes a `save` report the next passes archive, `reports
//! delete` removes one, and the fake cloud follows the vendor's documented sequence.

use std::time::Duration;

use report_archiver::app::{Daemon, Mode};
use report_archiver::config;
use report_archiver::fake_cloud::{FakeCloud, FakeReport, scenario};
use serde_json::{Value, json};

use crate::support::{Options, run, spawn_app, spawn_app_with};

/// Polls at most this many times, [`POLL`] apart.
const POLLS: u32 = 200;
const POLL: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_send_tenant_fails_once_with_what_to_do_and_a_created_report_is_archived() {
    let app = spawn_app(scenario::all_send(2, &["csv"])).await;
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("nothing to archive"), "{text}");
    assert!(text.contains("all 2 report(s)"), "{text}");
    assert!(
        text.contains("report-archiver reports create --account acme"),
        "{text}"
    );

    // `reports` marks them, and says the same beside its table.
    let (code, table, text) = run(&mut app.bin(&["reports"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        table
            .matches("result_action is send: nothing is stored")
            .count(),
        2,
        "{table}"
    );
    assert!(
        table.contains("account `acme`: nothing to archive"),
        "{table}"
    );

    let (code, stdout, text) = run(&mut app.bin(&["reports", "create", "--schedule", "once"]));
    assert_eq!(code, Some(0), "{text}");
    let id = stdout.trim().to_owned();
    assert!(app.fake.report_ids().contains(&id), "{stdout}");
    let formats: Vec<String> = app
        .fake
        .stored(&id)
        .iter()
        .map(|s| s.format.clone())
        .collect();
    assert_eq!(formats, ["csv_v2_0", "json_v2_0"]);
    // The account archives only csv (its `formats`): the default `Options` keep every one.

    // The items are in progress at first; a later pass archives both.
    let mut rows = Vec::new();
    for _ in 0..5 {
        let (code, _, text) = run(&mut app.bin(&["once"]));
        assert_eq!(code, Some(0), "{text}");
        rows = app.ledger_rows().await;
        if rows.len() == 2 {
            break;
        }
    }
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.report_id == id), "{rows:?}");
}

/// `/healthz`'s status and body.
async fn health(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("healthz answers");
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_an_account_has_nothing_to_archive_until_a_save_report_exists() {
    let options = Options {
        schedule: Some("* * * * * *".into()),
        extra_sections: "[server]\nlisten = \"127.0.0.1:0\"\nstaleness = \"1h\"\n".into(),
        ..Options::default()
    };
    let app = spawn_app_with(scenario::all_send(1, &["csv"]), options).await;
    let config = config::load(Some(&app.config_path)).expect("config loads");
    let daemon = Daemon::build(config, Mode::Service)
        .await
        .expect("daemon builds");
    let url = format!("http://{}/healthz", daemon.server_addr().expect("listen"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let until = async move {
            let _ = stopped.await;
        };
        daemon.run_until_stopped(true, until).await
    });

    let mut last = (0, Value::Null);
    for _ in 0..POLLS {
        last = health(&url).await;
        if last.0 == 503 && last.1["reasons"].to_string().contains("nothing to archive") {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(last.0, 503, "{}", last.1);
    let reason = last.1["reasons"][0].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.starts_with("account `acme`: nothing to archive"),
        "{reason}"
    );
    assert!(reason.contains("reports create --account acme"), "{reason}");

    let (code, _, text) = run(&mut app.bin(&["reports", "create", "--schedule", "once"]));
    assert_eq!(code, Some(0), "{text}");
    for _ in 0..POLLS {
        last = health(&url).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(last.0, 200, "{}", last.1);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("daemon stops")
        .expect("daemon task joins")
        .expect("daemon ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_is_told_which_permission_creating_needs() {
    let fake = scenario::all_send(1, &["csv"]);
    fake.set_read_only(true);
    let app = spawn_app(fake).await;
    let (code, stdout, text) = run(&mut app.bin(&["reports", "create"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(text.contains("HTTP 403"), "{text}");
    assert!(text.contains("administrator role"), "{text}");
    assert!(text.contains("read-only administrator"), "{text}");
    assert!(!text.contains(FakeCloud::CLIENT_SECRET), "{text}");
    assert_eq!(app.fake.report_ids().len(), 1, "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_delete_removes_a_report_and_a_wrong_version_or_missing_id_says_so() {
    let fake = FakeCloud::new();
    let keep = fake.add_report(FakeReport::new(&["csv"]));
    let gone = fake.add_report(FakeReport::new(&["csv"]));
    let app = spawn_app(fake).await;

    let (code, _, text) = run(&mut app.bin(&["reports", "delete", &gone, "--version", "7"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("is not at version 7"), "{text}");
    assert!(text.contains("HTTP 409"), "{text}");

    let missing = "00000000-0000-4000-8000-000000000000";
    let (code, _, text) = run(&mut app.bin(&["reports", "delete", missing]));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("there is no report {missing}")),
        "{text}"
    );

    let (code, stdout, text) = run(&mut app.bin(&["reports", "delete", &gone]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        stdout.contains(&format!("deleted report {gone} (version 1)")),
        "{stdout}"
    );
    assert_eq!(app.fake.report_ids(), [keep]);
}

/// The vendor's guide step by step, with nothing of the archiver: a token, a `save`
/// report, its stored list polled until an item is saved, the item downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendors_documented_sequence_works_against_the_fake_cloud() {
    let fake = FakeCloud::new();
    let server = fake.spawn().await.expect("fake cloud starts");
    let api = format!("{}/api/2", server.base_url);
    let http = reqwest::Client::new();

    let token = vendor_token(&http, &api).await;
    let client: Value = http
        .get(format!("{api}/clients/{}", FakeCloud::CLIENT_ID))
        .bearer_auth(&token)
        .send()
        .await
        .expect("client")
        .json()
        .await
        .expect("client JSON");
    let tenant = client["tenant_id"].as_str().expect("tenant_id");

    let body = json!({
        "parameters": {"tenant_id": tenant, "level": "accounts", "kind": "usage_current",
                       "formats": ["csv_v2_0"]},
        "schedule": {"type": "once"},
        "result_action": "save",
        "recipients": [],
    });
    let created = http
        .post(format!("{api}/reports"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200);
    let report: Value = created.json().await.expect("report JSON");
    let id = report["id"].as_str().expect("id").to_owned();
    assert_eq!(report["version"], 1);
    assert_eq!(report["result_action"], "save");

    let mut saved = None;
    let mut statuses = Vec::new();
    for _ in 0..POLLS {
        let list: Value = http
            .get(format!("{api}/reports/{id}/stored"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("stored")
            .json()
            .await
            .expect("stored JSON");
        let items = list["items"].as_array().cloned().unwrap_or_default();
        statuses.extend(items.iter().map(|i| i["status"].to_string()));
        saved = items.into_iter().find(|i| i["status"] == "saved");
        if saved.is_some() {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let saved = saved.expect("an item is saved within the polls");
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("\"in_progress\"")
    );
    let stored_id = saved["id"].as_str().expect("stored id");
    let download = http
        .get(format!("{api}/reports/{id}/stored/{stored_id}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    let bytes = download.bytes().await.expect("body");
    assert_eq!(saved["size"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(bytes.to_vec(), fake.stored(&id)[0].wire);
}

/// The write endpoints' refusals keep the spec's `errorScheme` body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_clouds_writes_refuse_as_the_spec_says() {
    let fake = FakeCloud::new();
    let monthly = fake.add_report(FakeReport::new(&["csv"]));
    let server = fake.spawn().await.expect("fake cloud starts");
    let api = format!("{}/api/2", server.base_url);
    let http = reqwest::Client::new();
    let token = vendor_token(&http, &api).await;
    let good = json!({
        "parameters": {"tenant_id": FakeCloud::TENANT_ID, "level": "itself", "kind": "usage_summary"},
        "schedule": {"type": "monthly"}, "result_action": "save", "recipients": [],
    });
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{api}{path}"))
            .bearer_auth(&token)
    };
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let error = &body["error"];
        assert!(
            error["message"].is_string() && error.get("code").is_some(),
            "{status}: {body}"
        );
        assert!(error["details"].is_object(), "{body}");
        status
    };

    let plain = call(reqwest::Method::POST, "/reports").body(good.to_string());
    assert_eq!(answer(plain.send().await.expect("415")).await, 415);
    let mut bad = good.clone();
    bad["schedule"]["type"] = json!("weekly");
    let r = call(reqwest::Method::POST, "/reports").json(&bad);
    assert_eq!(answer(r.send().await.expect("400")).await, 400);
    let mut extra = good.clone();
    extra["colour"] = json!("blue");
    let r = call(reqwest::Method::POST, "/reports").json(&extra);
    assert_eq!(answer(r.send().await.expect("400")).await, 400);

    // PUT changes what a scheduled report allows and bumps its version.
    let change = json!({"schedule": {"enabled": false}});
    let path = format!("/reports/{monthly}?version=1");
    let r = call(reqwest::Method::PUT, &path).json(&change).send().await;
    let updated: Value = r.expect("put").json().await.expect("report");
    assert_eq!(
        (
            updated["version"].clone(),
            updated["schedule"]["enabled"].clone()
        ),
        (json!(2), json!(false))
    );
    let r = call(reqwest::Method::PUT, &path).json(&change);
    assert_eq!(answer(r.send().await.expect("409")).await, 409);
    let r = call(reqwest::Method::DELETE, &format!("/reports/{monthly}"));
    assert_eq!(answer(r.send().await.expect("400")).await, 400);

    fake.set_read_only(true);
    let r = call(reqwest::Method::POST, "/reports").json(&good);
    assert_eq!(answer(r.send().await.expect("403")).await, 403);
    let r = call(
        reqwest::Method::DELETE,
        &format!("/reports/{monthly}?version=2"),
    );
    assert_eq!(answer(r.send().await.expect("403")).await, 403);
    fake.set_read_only(false);
    let r = call(
        reqwest::Method::DELETE,
        &format!("/reports/{monthly}?version=2"),
    );
    assert_eq!(r.send().await.expect("204").status(), 204);
    assert!(fake.report_ids().is_empty());
}

/// Step 1 of the vendor's guide: a token by the client-credentials grant, HTTP Basic.
async fn vendor_token(http: &reqwest::Client, api: &str) -> String {
    let token: Value = http
        .post(format!("{api}/idp/token"))
        .basic_auth(FakeCloud::CLIENT_ID, Some(FakeCloud::CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON");
    token["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}
