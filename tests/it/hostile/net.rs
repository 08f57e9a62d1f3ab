//! Hostile servers against the network side: bodies bounded in size and time, completeness
//! proven or nothing recorded, redirects and ids kept in their lane.

use super::{Hostile, HostileApp, REPORT, Reply, benign};
use crate::support::sha256_hex;

const BODY: &[u8] = b"tenant,usage\nacme,42\n";

/// The harness itself: a well-behaved script is archived byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_script_is_archived_byte_for_byte() {
    let server = Hostile::start(|r| {
        if let Some(reply) = benign::route(r) {
            return reply;
        }
        match r.path.as_str() {
            p if p == format!("/api/2/reports/{REPORT}/stored") => {
                benign::stored(&[("item-1", Some(BODY.len() as u64))])
            }
            p if p == format!("/api/2/reports/{REPORT}/stored/item-1") => {
                Reply::full(200, &[("content-type", "text/csv")], BODY)
            }
            _ => benign::not_found(),
        }
    })
    .await;
    let app = HostileApp::new(&server.base_url, "", "", "");
    let (code, _, text) = crate::support::run(&mut app.bin(&["once"]));
    assert_eq!(code, Some(0), "{text}");
    let files = app.archived_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(app.archive_dir.join(&files[0])).expect("archived file");
    assert_eq!(sha256_hex(&stored), sha256_hex(BODY));
}
