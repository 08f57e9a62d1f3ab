//! `run` under systemd's notify protocol, spoken to a datagram socket the test owns (what
//! systemd does for `Type=notify`): READY once up, WATCHDOG pings when `WATCHDOG_USEC` is
//! set, STOPPING on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use report_archiver::fake_cloud::FakeCloud;

use crate::support::spawn_app;

/// Receives datagrams until one contains `want`; returns everything received.
fn receive_until(socket: &UnixDatagram, want: &str) -> Result<Vec<String>, String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .map_err(|e| format!("no {want} from the daemon ({e}); got {seen:?}"))?;
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = message.lines().any(|l| l == want);
        seen.push(message);
        if done {
            return Ok(seen);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_tells_systemd_ready_pings_the_watchdog_and_says_stopping() {
    let app = spawn_app(FakeCloud::new()).await;
    let socket_path = app.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let log = std::fs::File::create(app.dir.path().join("run.log")).expect("log");
    let mut child = app
        .bin(&["run"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("run starts");

    let outcome = tokio::task::spawn_blocking(move || {
        let up = receive_until(&socket, "READY=1")
            .and_then(|ready| receive_until(&socket, "WATCHDOG=1").map(|_| ready));
        // SIGTERM either way, so a failing test leaves no daemon behind.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let stopping = up
            .clone()
            .and_then(|_| receive_until(&socket, "STOPPING=1"));
        let exit = child.wait().expect("exit status");
        (up, stopping, exit)
    })
    .await
    .expect("joined");
    let (ready, stopping, exit) = outcome;
    let ready = ready.unwrap_or_else(|e| panic!("{e}"));
    stopping.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ready.last().is_some_and(|m| m.contains("STATUS=")),
        "{ready:?}"
    );
    let log = std::fs::read_to_string(app.dir.path().join("run.log")).unwrap_or_default();
    assert_eq!(exit.code(), Some(0), "{log}");
}
