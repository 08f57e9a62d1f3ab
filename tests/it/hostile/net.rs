//! Hostile servers against the network side: bodies bounded in size and time, completeness
//! proven or nothing recorded, redirects and ids kept in their lane.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Hostile, HostileApp, REPORT, Reply, Request, Step, benign, chunk, run_measured};
use crate::support::{run, sha256_hex};

use benign::BODY;

/// The harness itself: a well-behaved script is archived byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_script_is_archived_byte_for_byte() {
    let server = Hostile::start(benign::cloud).await;
    let app = HostileApp::new(&server.base_url, "", "", "");
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let files = app.archived_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(app.archive_dir.join(&files[0])).expect("archived file");
    assert_eq!(sha256_hex(&stored), sha256_hex(BODY));
}

/// Fast retries: two attempts per request, short waits.
const FAST: &str = "retries = 1\nmax_backoff = \"50ms\"\nread_timeout = \"5s\"\ntimeout = \"10s\"";
const GIB_AND_A_HALF: u64 = 3 << 29;
/// Peak RSS the binary may reach while a server pushes 1.5 GiB at it.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

fn stored_path() -> String {
    format!("/api/2/reports/{REPORT}/stored")
}

fn download_path(id: &str) -> String {
    format!("/api/2/reports/{REPORT}/stored/{id}")
}

/// Status `status` with 1.5 GiB of body, declared or not.
fn huge(status: u16, declared: bool) -> Reply {
    let length = GIB_AND_A_HALF.to_string();
    let mut headers = vec![("content-type", "text/plain")];
    if declared {
        headers.push(("content-length", length.as_str()));
    }
    Reply::head(status, &headers).then(Step::Repeat {
        chunk: vec![b'x'; 64 * 1024],
        total: GIB_AND_A_HALF,
    })
}

/// A server that is well-behaved but for `special`, which answers when it returns Some.
async fn serve(special: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static) -> Hostile {
    Hostile::start(move |r| {
        if let Some(reply) = special(r) {
            return reply;
        }
        if let Some(reply) = benign::route(r) {
            return reply;
        }
        if r.path == stored_path() {
            return benign::stored(&[("item-1", Some(BODY.len() as u64))]);
        }
        if r.path == download_path("item-1") {
            return Reply::full(200, &[("content-type", "text/csv")], BODY);
        }
        benign::not_found()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_of_a_gigabyte_and_a_half_are_cut_short_and_memory_stays_under_64_mib() {
    type Case = (&'static str, fn(&Request) -> Option<Reply>, &'static str);
    let cases: [Case; 5] = [
        (
            "token 500",
            |r| r.path.ends_with("/idp/token").then(|| huge(500, true)),
            "HTTP 500",
        ),
        (
            "token 401",
            |r| r.path.ends_with("/idp/token").then(|| huge(401, false)),
            "HTTP 401",
        ),
        (
            "listing 503",
            |r| (r.path == stored_path()).then(|| huge(503, false)),
            "HTTP 503",
        ),
        (
            "download 503",
            |r| (r.path == download_path("item-1")).then(|| huge(503, true)),
            "HTTP 503",
        ),
        (
            "listing 200 past max_json_size",
            |r| (r.path == stored_path()).then(|| huge(200, false)),
            "max_json_size",
        ),
    ];
    for (name, special, expected) in cases {
        let server = serve(special).await;
        let http = format!("{FAST}\nmax_json_size = \"1MiB\"");
        let app = HostileApp::new(&server.base_url, &http, "", "");
        let started = Instant::now();
        let (code, stdout, stderr, rss_kib) = run_measured(&mut app.bin(&["once"]));
        let text = format!("{stdout}{stderr}");
        eprintln!(
            "{name}: exit {code:?}, peak RSS {:.1} MiB, {:.1} s",
            rss_kib as f64 / 1024.0,
            started.elapsed().as_secs_f64()
        );
        assert_eq!(code, Some(1), "{name}: {text}");
        assert!(text.contains(expected), "{name}: {text}");
        assert!(
            rss_kib < RSS_LIMIT_KIB,
            "{name}: peak RSS {rss_kib} KiB; {text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name}: took {:?}",
            started.elapsed()
        );
        assert!(app.archived_files().is_empty(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_answer_dripping_a_byte_every_two_seconds_times_out() {
    let server = serve(|r| {
        r.path.ends_with("/idp/token").then(|| {
            let body = br#"{"access_token":"slow-slow-slow","expires_in":7200}"#.to_vec();
            let length = body.len().to_string();
            Reply::head(
                200,
                &[
                    ("content-type", "application/json"),
                    ("content-length", length.as_str()),
                ],
            )
            .then(Step::Drip {
                bytes: body,
                every: Duration::from_secs(2),
            })
        })
    })
    .await;
    let http = "retries = 1\nmax_backoff = \"100ms\"\ntimeout = \"3s\"\nread_timeout = \"30s\"";
    let app = HostileApp::new(&server.base_url, http, "", "");
    let started = Instant::now();
    let (code, _, text) = run(&mut app.bin(&["once"]));
    let took = started.elapsed();
    // timeout × (retries + 1) plus backoff, and a little for the process itself.
    assert!(took < Duration::from_secs(10), "took {took:?}: {text}");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("timed out"), "{text}");
    assert!(text.contains("[http] timeout"), "{text}");
}

/// Serves `first` for the download until `switch` is set, then the whole body.
async fn flaky_download(first: Reply, listed: Option<u64>) -> (Hostile, Arc<AtomicBool>) {
    let healed = Arc::new(AtomicBool::new(false));
    let flag = healed.clone();
    let server = Hostile::start(move |r| {
        if let Some(reply) = benign::route(r) {
            return reply;
        }
        if r.path == stored_path() {
            return benign::stored(&[("item-1", listed)]);
        }
        if r.path == download_path("item-1") {
            return if flag.load(Ordering::SeqCst) {
                Reply::full(200, &[("content-type", "text/csv")], BODY)
            } else {
                first.clone()
            };
        }
        benign::not_found()
    })
    .await;
    (server, healed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_body_closed_half_way_without_any_length_is_not_recorded_and_is_fetched_later() {
    let half = Reply::head(200, &[("content-type", "text/csv")])
        .then(Step::Write(BODY[..BODY.len() / 2].to_vec()));
    let (server, healed) = flaky_download(half, None).await;
    let app = HostileApp::new(&server.base_url, FAST, "", "");
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("cannot be told from a cut connection"),
        "{text}"
    );
    assert!(app.archived_files().is_empty());
    assert!(!app.table_text("archived").await.contains("item-1"));

    healed.store(true, Ordering::SeqCst);
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let files = app.archived_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(app.archive_dir.join(&files[0])).expect("file");
    assert_eq!(stored, BODY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_cut_short_is_not_recorded_and_is_fetched_later() {
    let cut = Reply::head(
        200,
        &[
            ("content-type", "text/csv"),
            ("transfer-encoding", "chunked"),
        ],
    )
    .then(Step::Write(chunk(&BODY[..BODY.len() / 2])));
    let (server, healed) = flaky_download(cut, None).await;
    let app = HostileApp::new(&server.base_url, FAST, "", "");
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("broke off"), "{text}");
    assert!(app.archived_files().is_empty());
    assert!(!app.table_text("archived").await.contains("item-1"));

    healed.store(true, Ordering::SeqCst);
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(app.archived_files().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_longer_than_the_listed_size_is_refused_as_it_passes_it() {
    let endless = Reply::head(
        200,
        &[
            ("content-type", "text/csv"),
            ("transfer-encoding", "chunked"),
        ],
    )
    .then(Step::Repeat {
        chunk: chunk(&[b'y'; 64 * 1024]),
        total: GIB_AND_A_HALF,
    });
    let (server, _) = flaky_download(endless, Some(100)).await;
    let app = HostileApp::new(&server.base_url, FAST, "", "");
    let started = Instant::now();
    let (code, stdout, stderr, rss_kib) = run_measured(&mut app.bin(&["once"]));
    let text = format!("{stdout}{stderr}");
    eprintln!(
        "chunked past the listed size: exit {code:?}, peak RSS {:.1} MiB, {:.1} s",
        rss_kib as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("went past the listing's size"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(30), "{text}");
    assert!(rss_kib < RSS_LIMIT_KIB, "peak RSS {rss_kib} KiB: {text}");
    assert!(app.archived_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_encoding_other_than_gzip_is_refused_not_archived_raw() {
    let br = Reply::full(
        200,
        &[("content-type", "text/csv"), ("content-encoding", "br")],
        BODY,
    );
    let (server, _) = flaky_download(br, Some(BODY.len() as u64)).await;
    let app = HostileApp::new(&server.base_url, FAST, "", "");
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("cannot decode"), "{text}");
    assert!(app.archived_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_body_is_refused_unless_the_listing_says_size_0() {
    let empty = Reply::full(200, &[("content-type", "text/csv")], b"");
    let (server, _) = flaky_download(empty, None).await;
    let app = HostileApp::new(&server.base_url, FAST, "", "");
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("empty body"), "{text}");
    assert!(app.archived_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_name_their_cause() {
    // A redirect loop.
    let looping = serve(|r| {
        (r.path == stored_path()).then(|| Reply::full(302, &[("location", &stored_path())], b""))
    })
    .await;
    let app = HostileApp::new(&looping.base_url, FAST, "", "");
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("too many redirects (5)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_goes_silent_names_the_read_timeout_that_ran_out() {
    let server = serve(|r| {
        r.path.ends_with("/idp/token").then(|| {
            let body = br#"{"access_token":"silent","expires_in":7200}"#.to_vec();
            let length = body.len().to_string();
            Reply::head(
                200,
                &[
                    ("content-type", "application/json"),
                    ("content-length", length.as_str()),
                ],
            )
            .then(Step::Drip {
                bytes: body,
                every: Duration::from_secs(3),
            })
        })
    })
    .await;
    let http = "retries = 0\ntimeout = \"20s\"\nread_timeout = \"1s\"";
    let app = HostileApp::new(&server.base_url, http, "", "");
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("timed out after 1s without data ([http] read_timeout)"),
        "{text}"
    );
}

/// A port nothing listens on (bound, then closed again: the kernel refuses connections).
fn closed_port() -> std::net::SocketAddr {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_named_connection_refused_and_every_retry_is_a_warning() {
    let http = "retries = 2\nmax_backoff = \"50ms\"";
    let app = HostileApp::new(&format!("http://{}", closed_port()), http, "", "");
    let (code, stdout, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "{text}");
    // The (total) row's note: too long to sit beside it, so on the lines below.
    let total = stdout
        .lines()
        .skip_while(|l| !l.contains("(total)"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(total.contains("connection refused"), "{text}");
    assert!(!text.contains("error sending request"), "{text}");
    // Three attempts: the first two are retried, each a WARN line saying so and why.
    for n in [1, 2] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("attempt {n}/3 failed; retrying in")))
            .unwrap_or_else(|| panic!("no warning for attempt {n}: {text}"));
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("connection refused"), "{line}");
    }
    assert!(
        !text.contains("attempt 3/3"),
        "the last attempt is not retried: {text}"
    );

    // A command that fails with an `error:` line names the cause once.
    let (code, _, text) = run(&mut app.bin(&["reports"]));
    assert_eq!(code, Some(1), "{text}");
    let error = text.lines().find(|l| l.starts_with("error:")).unwrap_or("");
    assert_eq!(error.matches("connection refused").count(), 1, "{text}");
    assert_eq!(error.matches("os error 111").count(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ids_go_into_urls_encoded_and_unsafe_report_ids_are_never_requested() {
    let tenant = "t/../../x?y#z";
    let server = serve(move |r| {
        if r.path.starts_with("/api/2/clients/") {
            return Some(Reply::json(
                200,
                &serde_json::json!({ "tenant_id": tenant }),
            ));
        }
        r.path
            .starts_with("/api/2/tenants/")
            .then(|| benign::reports(&[REPORT, "../../idp/token", "bad\nid", "x?y"]))
    })
    .await;
    let app = HostileApp::new(&server.base_url, FAST, "", "");
    let (code, _, text) = run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(1), "the unsafe ids fail their reports: {text}");
    assert_eq!(app.archived_files().len(), 1, "{text}");
    // `reports` discovers the same way and asks for each report's settings.
    let (_, table, text) = run(&mut app.bin(&["reports"]));
    assert!(table.contains("refusing report id"), "{text}");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.contains(&"/api/2/tenants/t%2F..%2F..%2Fx%3Fy%23z/reports".to_owned()),
        "{paths:?}"
    );
    for p in &paths {
        assert!(!p.contains('?') && !p.contains("/../"), "{p}");
        if let Some(rest) = p.strip_prefix("/api/2/reports/") {
            assert!(rest.starts_with(REPORT), "an unsafe id was requested: {p}");
        }
    }
    assert_eq!(
        paths.iter().filter(|p| p.ends_with("/idp/token")).count(),
        2,
        "one token per run: {paths:?}"
    );
}
