//! Hostile servers against the text side: plain http refused off loopback, server text
//! that cannot forge a log line or reach the terminal raw, echoed secrets that never
//! leave (stdout, stderr, the ledger, the webhook).

use std::process::Output;

use serde_json::json;

use super::{
    CLIENT_ID, Hostile, HostileApp, REPORT, Reply, Request, SECRET, TENANT, TOKEN, benign,
};

use crate::support::{bin_without_config, run};

use benign::BODY;
const REPORT2: &str = "7b8c9d0e-0000-4000-8000-000000000003";
/// The timestamp a forged line would start with; ours are never this old.
const FORGED_TS: &str = "1999-12-31T23:59:59.000000Z";

/// Server text built to forge a log line and to reach the terminal raw: a newline and a
/// whole fake line, ESC sequences (clear screen, set the window title), BEL, NUL, a C1
/// control and a right-to-left override.
fn forged(tag: &str) -> String {
    format!(
        "{tag}\n{FORGED_TS}  INFO injected: archived path=/etc/passwd \u{1b}[2J\u{1b}]0;owned\u{7}\u{0}\u{85}\u{202e}fdp.exe"
    )
}

/// Characters that must never reach a terminal or a log line raw (a test's own list, not
/// the crate's): C0 but the line feed, DEL, C1, bidi controls, zero-width characters.
fn raw_control(c: char) -> bool {
    (c < ' ' && c != '\n')
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || ('\u{200b}'..='\u{200f}').contains(&c)
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || c == '\u{feff}'
}

fn assert_no_raw_controls(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|&c| raw_control(c)) {
        panic!("{what}: raw {c:?} in:\n{text}");
    }
}

/// Every stderr line is one of ours: it starts with our RFC 3339 timestamp (`[log] format
/// = "auto"`, piped), never with the forged one.
fn assert_log_lines_are_ours(stderr: &str) {
    for line in stderr.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(first).is_ok(),
            "a stderr line that does not start with a timestamp: {line:?}\n{stderr}"
        );
        assert!(!line.starts_with(FORGED_TS), "forged line: {line:?}");
    }
}

/// Every row of a table starts with the account (the header with its name); a note too
/// long to sit beside its row continues on lines of ours, indented (under REPORT).
fn assert_table_rows_are_ours(stdout: &str) {
    assert!(!stdout.trim().is_empty(), "no table");
    for line in stdout.lines() {
        assert!(
            line.starts_with("ACCOUNT") || line.starts_with("acme ") || line.starts_with("    "),
            "a table line that is not a row of ours: {line:?}\n{stdout}"
        );
    }
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The names of every table of the ledger.
async fn ledger_tables(app: &HostileApp) -> Vec<String> {
    let url = format!("sqlite://{}?mode=ro", app.ledger_path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("ledger opens");
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .expect("table names");
    pool.close().await;
    names.into_iter().map(|(n,)| n).collect()
}

/// Every table of the ledger, dumped, with its name.
async fn ledger_dump(app: &HostileApp) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in ledger_tables(app).await {
        let text = app.table_text(&table).await;
        out.push((table, text));
    }
    out
}

/// Every text cell of every ledger table is free of raw controls, newlines included.
async fn assert_ledger_cells_are_safe(app: &HostileApp) {
    use sqlx::Row;
    let url = format!("sqlite://{}?mode=ro", app.ledger_path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("ledger opens");
    for table in ledger_tables(app).await {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&pool)
            .await
            .expect("rows");
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                    assert!(
                        !text.chars().any(|c| c == '\n' || raw_control(c)),
                        "ledger {table}: {text:?}"
                    );
                }
            }
        }
    }
    pool.close().await;
}

/// Sets `[log] format`.
fn set_log_format(app: &HostileApp, format: &str) {
    let toml = std::fs::read_to_string(&app.config_path).expect("config");
    let toml = toml.replace("format = \"auto\"", &format!("format = {format:?}"));
    std::fs::write(&app.config_path, toml).expect("config");
}

fn notify_section(hooks: &Hostile) -> String {
    format!(
        "[notify]\nwebhook_url = \"{}/hook\"\ntimeout = \"5s\"\n",
        hooks.base_url
    )
}

/// A webhook receiver that takes everything.
async fn hooks() -> Hostile {
    Hostile::start(|_| Reply::full(200, &[], b"ok")).await
}

// ---- 5. TLS or loopback ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_base_url_off_loopback_exits_2_unless_allow_http_which_warns_and_runs() {
    let server = Hostile::start(benign::cloud).await;
    let port = server.base_url.rsplit(':').next().expect("port").to_owned();
    // 0.0.0.0 is not a loopback address to the config, yet Linux connects it to this host:
    // a non-loopback http:// URL that still reaches the test server.
    let plain = format!("http://0.0.0.0:{port}");

    let app = HostileApp::new(&plain, "", "", "");
    for command in ["check-config", "run"] {
        let out = app.bin(&[command]).output().expect("runs");
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("accounts[0].base_url"),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("allow_http = true"), "{command}: {stderr}");
    }
    assert!(server.requests().is_empty(), "nothing may be sent");

    let app = HostileApp::new(&plain, "", "allow_http = true", "");
    let out = app.bin(&["check-config"]).output().expect("runs");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("allow_http = true"), "{stdout}");
    assert!(
        stderr.contains("WARN") && stderr.contains("accounts[0].base_url: plain http://"),
        "{stderr}"
    );
    let out = app.bin(&["once"]).output().expect("runs");
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("plain http://"), "{stderr}");
    assert_eq!(app.archived_files().len(), 1, "{stderr}");

    // Loopback by name or address needs nothing (every other test uses 127.0.0.1).
    for url in [
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        let app = HostileApp::new(&url, "", "", "");
        let out = app.bin(&["check-config"]).output().expect("runs");
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{url}: {stderr}");
        assert!(!stderr.contains("plain http://"), "{url}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_notify_urls_off_loopback_exit_2_unless_notify_allow_http() {
    let token = "hook-token-that-must-not-leak-0001";
    for key in ["webhook_url", "ping_url"] {
        let section = format!("[notify]\n{key} = \"http://hooks.example.com/{token}\"\n");
        let app = HostileApp::new("http://127.0.0.1:9", "", "", &section);
        for command in ["check-config", "run"] {
            let out = app.bin(&[command]).output().expect("runs");
            let (stdout, stderr) = texts(&out);
            assert_eq!(out.status.code(), Some(2), "{key} {command}: {stderr}");
            assert!(stderr.contains(&format!("notify.{key}")), "{stderr}");
            assert!(stderr.contains("notify.allow_http = true"), "{stderr}");
            assert!(!format!("{stdout}{stderr}").contains(token), "{stderr}");
        }

        let section = format!("{section}allow_http = true\n");
        let app = HostileApp::new("http://127.0.0.1:9", "", "", &section);
        let out = app.bin(&["check-config"]).output().expect("runs");
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{key}: {stderr}");
        assert!(
            stderr.contains(&format!("notify.{key}: plain http://")),
            "{stderr}"
        );
        assert!(
            !format!("{stdout}{stderr}").contains(token),
            "{stdout}{stderr}"
        );
    }
}

// ---- 6. Nothing from the server is trusted as text ----

/// A tenant whose second report id forges a log line; the first report's details, an
/// item's status and another's format do the same, and so does every error body.
fn injecting(id: String) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |r| {
        let path = r.path.as_str();
        if path == format!("/api/2/tenants/{TENANT}/reports") {
            return benign::reports(&[REPORT, &id]);
        }
        if path == format!("/api/2/reports/{REPORT}") {
            return Reply::json(
                200,
                &json!({
                    "id": REPORT,
                    "result_action": forged("action"),
                    "parameters": {
                        "kind": forged("kind"),
                        "level": forged("level"),
                        "formats": ["csv", forged("format")],
                    },
                    "schedule": {"enabled": true, "type": forged("schedule")},
                }),
            );
        }
        if let Some(reply) = benign::route(r) {
            return reply;
        }
        if path == format!("/api/2/reports/{REPORT}/stored") {
            return Reply::json(
                200,
                &json!({"items": [
                    {"id": "item-1", "report_format": "csv", "status": "saved",
                     "created_at": "2026-11-01T23:59:59Z", "size": BODY.len()},
                    {"id": "item-2", "report_format": "csv", "status": forged("status"),
                     "created_at": "2026-11-02T23:59:59Z"},
                    {"id": "item-3", "report_format": forged("fmt"), "status": "failed",
                     "created_at": "2026-11-03T23:59:59Z"},
                ]}),
            );
        }
        if path == format!("/api/2/reports/{REPORT}/stored/item-1") {
            return Reply::full(200, &[("content-type", "text/csv")], BODY);
        }
        Reply::json(
            404,
            &json!({"error": {"code": 404, "message": forged("message")}}),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_never_forges_a_log_line_or_reaches_the_terminal_raw() {
    let id = format!(
        "evil\n{FORGED_TS}  INFO injected: archived path=/etc/passwd\u{1b}[31m\u{202e}\u{0}"
    );
    let server = Hostile::start(injecting(id)).await;
    let app = HostileApp::new(&server.base_url, "retries = 0", "", "");

    let out = app.bin(&["once"]).output().expect("once runs");
    let (stdout, stderr) = texts(&out);
    // The hostile report fails; the well-behaved item is archived all the same.
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(app.archived_files().len(), 1, "{stderr}");
    assert!(
        stderr.contains("injected"),
        "the hostile text was logged: {stderr}"
    );
    assert!(
        stderr.contains("\\n1999-12-31"),
        "its newline shown escaped: {stderr}"
    );
    assert_log_lines_are_ours(&stderr);
    assert_no_raw_controls("once stderr", &stderr);
    assert_table_rows_are_ours(&stdout);
    assert_no_raw_controls("once table", &stdout);
    assert_ledger_cells_are_safe(&app).await;

    let out = app.bin(&["reports"]).output().expect("reports runs");
    let (stdout, stderr) = texts(&out);
    assert!(
        stdout.contains("\\n"),
        "the escaped text is shown: {stdout}"
    );
    assert_table_rows_are_ours(&stdout);
    assert_no_raw_controls("reports table", &stdout);
    assert_log_lines_are_ours(&stderr);
    assert_no_raw_controls("reports stderr", &stderr);

    set_log_format(&app, "json");
    for command in ["once", "reports"] {
        let out = app.bin(&[command]).output().expect("runs");
        let (_, stderr) = texts(&out);
        assert!(!stderr.trim().is_empty(), "{command}: no log");
        for line in stderr.lines() {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {line:?}"));
            assert!(value.is_object(), "{line}");
        }
        assert_no_raw_controls(&format!("{command} JSON stderr"), &stderr);
        if command == "once" {
            assert!(stderr.contains("injected"), "{stderr}");
        }
    }
}

// ---- 7. Secrets never leave ----

fn basic() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{SECRET}"))
}

/// Greps stdout, stderr, every ledger table and every webhook body for each of `secrets`;
/// returns everything it looked at, for the caller to check the scenario really ran.
async fn assert_nowhere(
    secrets: &[&str],
    out: &Output,
    app: &HostileApp,
    hooks: &Hostile,
) -> String {
    let (stdout, stderr) = texts(out);
    let mut places = vec![("stdout".to_owned(), stdout), ("stderr".to_owned(), stderr)];
    for (table, text) in ledger_dump(app).await {
        places.push((format!("ledger table {table}"), text));
    }
    let bodies: Vec<Request> = hooks.requests();
    assert!(!bodies.is_empty(), "the webhook heard nothing");
    for r in &bodies {
        places.push((
            format!("webhook {}", r.path),
            String::from_utf8_lossy(&r.body).into_owned(),
        ));
    }
    for (place, text) in &places {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} in {place}:\n{text}");
        }
    }
    places
        .into_iter()
        .map(|(place, text)| format!("== {place}\n{text}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_echoing_the_credentials_leaks_them_nowhere() {
    let basic = basic();
    // 30 characters of the Basic form already hold two bytes of the secret.
    let secrets = [SECRET, basic.as_str(), &basic[..30]];
    // As JSON (the OAuth shape), and as a long text body that whoever reads it first cuts
    // off in the middle of the credential.
    for (shape, format) in [("json", "auto"), ("text", "auto"), ("json", "json")] {
        let server = Hostile::start(move |r| {
            if !r.path.ends_with("/idp/token") {
                return benign::not_found();
            }
            let auth = r.header("authorization").unwrap_or("none").to_owned();
            if shape == "json" {
                Reply::json(
                    401,
                    &json!({"error": "invalid_client",
                            "error_description": format!("got {auth} for secret {SECRET}")}),
                )
            } else {
                // Cut at 200 characters, 26 of the Basic form's into the secret's part.
                let body = format!("{}\nAuthorization: {auth}\n", "x".repeat(126));
                Reply::full(401, &[("content-type", "text/plain")], body.as_bytes())
            }
        })
        .await;
        let hooks = hooks().await;
        let app = HostileApp::new(&server.base_url, "", "", &notify_section(&hooks));
        set_log_format(&app, format);
        let out = app.bin(&["once"]).output().expect("once runs");
        assert_eq!(out.status.code(), Some(1), "{shape}/{format}");
        assert!(
            server.requests().iter().any(|r| r
                .header("authorization")
                .is_some_and(|a| a.contains(&basic))),
            "the credential was sent, so there was something to echo"
        );
        let seen = assert_nowhere(&secrets, &out, &app, &hooks).await;
        assert!(seen.contains("[redacted]"), "{shape}/{format}: {seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_and_download_errors_echoing_the_bearer_token_leak_it_nowhere() {
    let server = Hostile::start(|r| {
        let auth = r.header("authorization").unwrap_or("none").to_owned();
        let echo = |what: &str| {
            Reply::json(
                403,
                &json!({"error": {"code": 403,
                        "message": format!("{what}: {auth} may not (token {TOKEN})")}}),
            )
        };
        let path = r.path.as_str();
        if path == format!("/api/2/tenants/{TENANT}/reports") {
            return benign::reports(&[REPORT, REPORT2]);
        }
        if let Some(reply) = benign::route(r) {
            return reply;
        }
        match path {
            p if p == format!("/api/2/reports/{REPORT}/stored") => echo("listing"),
            p if p == format!("/api/2/reports/{REPORT2}/stored") => {
                benign::stored(&[("item-1", Some(BODY.len() as u64))])
            }
            p if p == format!("/api/2/reports/{REPORT2}/stored/item-1") => echo("download"),
            _ => benign::not_found(),
        }
    })
    .await;
    let hooks = hooks().await;
    let app = HostileApp::new(&server.base_url, "retries = 0", "", &notify_section(&hooks));
    let out = app.bin(&["once"]).output().expect("once runs");
    assert_eq!(out.status.code(), Some(1));
    let seen = assert_nowhere(&[TOKEN, SECRET, &basic()], &out, &app, &hooks).await;
    assert!(seen.contains("[redacted]"), "{seen}");
    assert!(
        !app.table_text("item_failures").await.is_empty(),
        "the download failure was recorded: {seen}"
    );

    // `reports` reads the same listing and prints its error.
    let out = app.bin(&["reports"]).output().expect("reports runs");
    let (stdout, stderr) = texts(&out);
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("[redacted]"), "{stdout}");
}

/// `health` prints what the probed URL answered, a line at a time and each line escaped:
/// whatever listens there (the daemon's port taken over, a mistyped URL) cannot reach the
/// terminal raw, and the daemon's own answer still reads as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_what_the_probed_server_said_escaped_line_by_line() {
    let body = format!("{{\"status\":\"ok\"}}\r\n{}\n", forged("health"));
    let server = Hostile::start(move |_| {
        Reply::full(200, &[("Content-Type", "text/plain")], body.as_bytes())
    })
    .await;
    let url = format!("{}/healthz", server.base_url);
    let (code, stdout, text) = run(&mut bin_without_config(&[
        "health",
        "--url",
        &url,
        "--timeout",
        "5s",
    ]));
    assert_eq!(code, Some(0), "{text}");
    assert_no_raw_controls("health's stdout", &stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "{\"status\":\"ok\"}", "{stdout}");
    assert_eq!(lines[1], "health", "{stdout}");
    assert!(
        lines[2].contains("\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{0}\\u{85}\\u{202e}fdp.exe"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 3, "{stdout}");
}
