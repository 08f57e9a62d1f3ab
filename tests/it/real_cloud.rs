//! What the real cloud may do that the spec leaves open (issue 17), against the fake cloud.

use report_archiver::fake_cloud::FakeCloud;

use crate::support::{run, spawn_app};

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
