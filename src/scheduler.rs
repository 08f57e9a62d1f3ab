//! `run`: one cron job per account, never two passes of one account at once, and a
//! graceful drain on shutdown (invariant 8).
//!
//! tokio-cron-scheduler spawns every firing with no overlap guard and its `shutdown()` does
//! not wait for running jobs, so each account holds a lock that a tick must take, and the
//! passes run on a [`TaskTracker`] that the drain waits on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::monitor::Monitor;
use crate::pass::{PassContext, run_pass};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("cannot schedule account `{account}` with cron `{schedule}`: {source}")]
    Schedule {
        account: String,
        schedule: String,
        #[source]
        source: JobSchedulerError,
    },
    #[error("the scheduler failed: {0}")]
    Scheduler(#[source] JobSchedulerError),
}

/// One account's passes and the lock that keeps them from overlapping.
struct AccountRunner {
    ctx: PassContext,
    monitor: Monitor,
    busy: Arc<Mutex<()>>,
}

impl AccountRunner {
    /// Starts a pass unless the previous one still runs or the daemon is stopping.
    fn tick(self: &Arc<Self>, tracker: &TaskTracker, hard_stop: &CancellationToken) {
        if self.ctx.cancel.is_cancelled() {
            return;
        }
        let Ok(guard) = self.busy.clone().try_lock_owned() else {
            warn!(account = %self.ctx.account.name, "previous pass still running; this tick is skipped");
            return;
        };
        let runner = self.clone();
        let hard_stop = hard_stop.clone();
        tracker.spawn(async move {
            let _guard = guard;
            // Dropping the pass drops its downloads, whose temp files remove themselves.
            // The monitor (metrics, health, notifications) sees every pass, and its bounded
            // notifications are inside the grace period too.
            tokio::select! {
                _ = async {
                    let report = run_pass(&runner.ctx).await;
                    runner.monitor.pass_finished(&report).await;
                    runner.log_next_pass();
                } => {}
                _ = hard_stop.cancelled() => {
                    warn!(account = %runner.ctx.account.name, "pass stopped at the end of the shutdown grace period");
                }
            }
        });
    }
}

impl AccountRunner {
    /// Says when this account's next pass is due: a quiet log between passes is then
    /// expected, not a daemon that has stopped.
    fn log_next_pass(&self) {
        if self.ctx.cancel.is_cancelled() {
            return;
        }
        let account = &self.ctx.account;
        match next_due(&account.schedule) {
            Some(at) => info!(
                account = %account.name,
                next = %at,
                "next pass due at {at} (cron {:?}, UTC)",
                account.schedule
            ),
            None => warn!(
                account = %account.name,
                "cron {:?} names no future time: no further pass is due; fix the schedule",
                account.schedule
            ),
        }
    }
}

/// The next time `schedule` fires after now, as tokio-cron-scheduler reads it.
fn next_due(schedule: &str) -> Option<String> {
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(schedule)
        .ok()?;
    let at = cron.find_next_occurrence(&chrono::Utc::now(), false).ok()?;
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Schedules every account and runs until `shutdown` resolves; then stops ticking, lets
/// passes in flight finish within `grace`, and abandons the rest. `started` runs once every
/// account is scheduled and the scheduler ticks (health, systemd READY).
pub async fn run_scheduled(
    contexts: Vec<PassContext>,
    monitor: Monitor,
    cancel: CancellationToken,
    grace: Duration,
    run_at_start: bool,
    started: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> Result<(), SchedulerError> {
    let tracker = TaskTracker::new();
    let hard_stop = CancellationToken::new();
    let scheduler = JobScheduler::new()
        .await
        .map_err(SchedulerError::Scheduler)?;
    let mut runners = Vec::new();
    for ctx in contexts {
        let schedule = ctx.account.schedule.clone();
        let account = ctx.account.name.clone();
        let runner = Arc::new(AccountRunner {
            ctx,
            monitor: monitor.clone(),
            busy: Arc::new(Mutex::new(())),
        });
        let (job_runner, job_tracker, job_stop) =
            (runner.clone(), tracker.clone(), hard_stop.clone());
        let job = Job::new_async(schedule.as_str(), move |_id, _scheduler| {
            job_runner.tick(&job_tracker, &job_stop);
            Box::pin(async {})
        })
        .map_err(|source| SchedulerError::Schedule {
            account: account.clone(),
            schedule: schedule.clone(),
            source,
        })?;
        scheduler
            .add(job)
            .await
            .map_err(|source| SchedulerError::Schedule {
                account: account.clone(),
                schedule: schedule.clone(),
                source,
            })?;
        let next = next_due(&schedule).unwrap_or_else(|| "never".to_owned());
        info!(account = %account, schedule = %schedule, next = %next, "account scheduled (cron, UTC)");
        runners.push(runner);
    }
    let mut scheduler = scheduler;
    scheduler.start().await.map_err(SchedulerError::Scheduler)?;
    started();
    if run_at_start {
        for runner in &runners {
            runner.tick(&tracker, &hard_stop);
        }
    }

    shutdown.await;
    info!(
        grace_secs = grace.as_secs(),
        "stopping: no new passes; downloads in flight may finish"
    );
    cancel.cancel();
    if let Err(e) = scheduler.shutdown().await {
        warn!(error.message = %e, "the cron scheduler did not stop cleanly");
    }
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!("grace period over; abandoning downloads still in flight");
        hard_stop.cancel();
        tracker.wait().await;
    }
    Ok(())
}
