//! The fake cloud against its own contract, through real HTTP.

use super::*;
use axum::http::header;
use serde_json::json;
use std::io::Read as _;

/// A running fake, its `/api/2` URL and a fresh bearer token.
async fn start(cloud: &FakeCloud) -> (RunningFakeCloud, String, String) {
    let server = cloud.spawn().await.unwrap();
    let api = format!("{}/api/2", server.base_url);
    let token = token_request(&api, FakeCloud::CLIENT_SECRET).await;
    let body: Value = token.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    (server, api, token)
}

async fn token_request(api: &str, secret: &str) -> reqwest::Response {
    let request = reqwest::Client::new().post(format!("{api}/idp/token"));
    let request = request.basic_auth(FakeCloud::CLIENT_ID, Some(secret));
    let form = [("grant_type", "client_credentials")];
    request.form(&form).send().await.unwrap()
}

async fn get(url: &str, token: &str) -> reqwest::Response {
    let request = reqwest::Client::new().get(url).bearer_auth(token);
    request.send().await.unwrap()
}

async fn get_json(url: &str, token: &str) -> Value {
    get(url, token).await.json().await.unwrap()
}

#[tokio::test]
async fn basic_credentials_get_a_bearer_token_with_expiry() {
    let server = FakeCloud::new().spawn().await.unwrap();
    let api = format!("{}/api/2", server.base_url);
    let response = token_request(&api, FakeCloud::CLIENT_SECRET).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert!(
        body.get("expires_in").is_none(),
        "the real cloud sends none"
    );
    assert!(body["expires_on"].as_i64().unwrap() > Utc::now().timestamp() + 7000);
    assert!(body["access_token"].is_string() && body["id_token"].is_string());
}

#[tokio::test]
async fn bad_or_missing_credentials_get_the_flat_idp_error() {
    let (_server, api, _) = start(&FakeCloud::new()).await;
    let wrong = token_request(&api, "nope").await;
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].is_string());
    let form = [("grant_type", "client_credentials")];
    let missing = reqwest::Client::new()
        .post(format!("{api}/idp/token"))
        .form(&form);
    let missing = missing.send().await.unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let password = [("grant_type", "password")];
    let request = reqwest::Client::new().post(format!("{api}/idp/token"));
    let request = request.basic_auth(FakeCloud::CLIENT_ID, Some(FakeCloud::CLIENT_SECRET));
    assert_eq!(request.form(&password).send().await.unwrap().status(), 400);
    let anonymous = reqwest::Client::new()
        .get(format!("{api}/reports/x"))
        .send();
    let anonymous = anonymous.await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["domain"], "PlatformAccountServer");
}

#[tokio::test]
async fn listed_size_is_the_wire_length_for_every_shape_and_gzip_inflates_to_content() {
    let cloud = FakeCloud::new();
    let report = cloud.add_report(FakeReport::new(&["csv"]));
    let content = b"tenant_name,metric,value\nAcme,servers,3\n".repeat(50);
    for shape in SHAPES {
        cloud.add_stored(
            &report,
            FakeStored::new("csv", content.clone()).shape(shape),
        );
    }
    let (_server, api, token) = start(&cloud).await;
    let listing = get_json(&format!("{api}/reports/{report}/stored"), &token).await;
    let items = listing["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for (item, shape) in items.iter().zip(SHAPES) {
        let id = item["id"].as_str().unwrap();
        let response = get(&format!("{api}/reports/{report}/stored/{id}"), &token).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let wire = response.bytes().await.unwrap();
        assert_eq!(
            item["size"].as_u64().unwrap(),
            wire.len() as u64,
            "{shape:?}"
        );
        assert_eq!(
            headers[header::CONTENT_LENGTH],
            wire.len().to_string().as_str()
        );
        let encoding = headers.get(header::CONTENT_ENCODING);
        assert_eq!(encoding.is_some(), shape == BodyShape::GzipWithHeader);
        let mut plain = wire.to_vec();
        if shape != BodyShape::Plain {
            plain.clear();
            let mut gz = flate2::read::GzDecoder::new(wire.as_ref());
            gz.read_to_end(&mut plain).unwrap();
            assert!(wire.len() < content.len());
        }
        assert_eq!(plain, content);
        assert_eq!(cloud.download_count(id), 1);
    }
}

#[tokio::test]
async fn in_progress_item_is_saved_after_one_listing() {
    let cloud = FakeCloud::new();
    let report = cloud.add_report(FakeReport::new(&["html"]));
    let item = FakeStored::new("html", b"<p>x</p>".to_vec()).saved_after(1);
    let id = cloud.add_stored(&report, item);
    let (_server, api, token) = start(&cloud).await;
    let (list, download) = (
        format!("{api}/reports/{report}/stored"),
        format!("{api}/reports/{report}/stored/{id}"),
    );
    assert_eq!(get(&download, &token).await.status(), 404);
    assert_eq!(
        get_json(&list, &token).await["items"][0]["status"],
        "in_progress"
    );
    assert_eq!(get_json(&list, &token).await["items"][0]["status"], "saved");
    assert_eq!(get(&download, &token).await.status(), 200);
    assert_eq!(
        (cloud.listing_requests(), cloud.download_requests()),
        (2, 2)
    );
}

#[tokio::test]
async fn a_token_limited_to_n_requests_is_refused_on_the_next() {
    let cloud = FakeCloud::new();
    let report = cloud.add_report(FakeReport::new(&["csv"]));
    cloud.expire_tokens_after_requests(Some(2));
    let (server, api, token) = start(&cloud).await;
    let url = format!("{api}/reports/{report}");
    assert_eq!(get(&url, &token).await.status(), 200);
    assert_eq!(get(&url, &token).await.status(), 200);
    let third = get(&url, &token).await;
    assert_eq!(third.status(), 401);
    assert_eq!(third.json::<Value>().await.unwrap()["error"]["code"], 401);
    cloud.expire_tokens_after_requests(None);
    let (_, _, fresh) = start(&cloud).await;
    assert_eq!(get(&url, &fresh).await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn injected_failures_hit_the_next_matching_requests_only() {
    let cloud = FakeCloud::new();
    let report = cloud.add_report(FakeReport::new(&["csv"]));
    cloud.fail_next_requests("/stored", 503, 1);
    let (_server, api, token) = start(&cloud).await;
    let url = format!("{api}/reports/{report}/stored");
    assert_eq!(get_json(&url, &token).await["error"]["code"], 503);
    assert_eq!(get(&url, &token).await.status(), 200);
}

#[tokio::test]
async fn seeded_data_is_deterministic_and_has_the_documented_mix() {
    let formats = ["csv", "json_v2_0", "html"];
    let (a, b) = (
        FakeCloud::seeded(7, 3, &formats),
        FakeCloud::seeded(7, 3, &formats),
    );
    assert_eq!(a.report_ids(), b.report_ids());
    let ((_sa, api_a, ta), (_sb, api_b, tb)) = (start(&a).await, start(&b).await);
    let client = get_json(&format!("{api_a}/clients/{}", FakeCloud::CLIENT_ID), &ta).await;
    assert_eq!(client["tenant_id"], FakeCloud::TENANT_ID);
    assert_eq!(
        get(&format!("{api_a}/clients/other"), &ta).await.status(),
        404
    );
    let tenant = format!("{api_a}/tenants/{}/reports", FakeCloud::TENANT_ID);
    assert_eq!(get_json(&tenant, &ta).await["items"], json!(a.report_ids()));
    let mut statuses = Vec::new();
    for report in a.report_ids() {
        let listing = get_json(&format!("{api_a}/reports/{report}/stored"), &ta).await;
        let again = get_json(&format!("{api_b}/reports/{report}/stored"), &tb).await;
        assert_eq!(listing, again);
        statuses.extend(
            listing["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["status"].clone()),
        );
    }
    assert_eq!(
        statuses.len(),
        27,
        "3 reports x 3 generations x 3 formats, send has none"
    );
    assert_eq!(statuses.iter().filter(|s| *s == "in_progress").count(), 1);
    assert_eq!(statuses.iter().filter(|s| *s == "failed").count(), 1);
    let send = get_json(&format!("{api_a}/reports/{}", a.report_ids()[3]), &ta).await;
    assert_eq!(send["result_action"], "send");
    let first = a.report_ids()[0].clone();
    assert_eq!(a.stored(&first), b.stored(&first));
    assert!(
        a.stored(&first)
            .iter()
            .all(|v| (1024..16_384).contains(&v.plain.len()))
    );
}
