//! systemd's notify protocol (`Type=notify`): READY once the daemon is up, STOPPING when it
//! drains, WATCHDOG pings while the unit sets `WatchdogSec=`. Outside systemd
//! (`$NOTIFY_SOCKET` unset) every call does nothing (sd-notify checks the variable).

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Config read, ledger open, scheduler armed.
pub fn notify_ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn notify_stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: draining downloads"),
    ]);
}

/// When the unit sets `WatchdogSec=`, pings at half that interval until `stop`. The ping
/// runs on the same runtime as the passes, so a wedged runtime stops it and systemd
/// restarts the service.
pub fn spawn_watchdog(stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (interval / 2).max(Duration::from_millis(100));
    tracing::debug!(
        interval_ms = interval.as_millis() as u64,
        "systemd watchdog enabled"
    );
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => send(&[NotifyState::Watchdog]),
            }
        }
    });
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error.message = %e, "cannot notify systemd");
    }
}
