//! [`Monitor`]: where a finished pass goes besides the log: the metrics, the health state
//! and the notifications. The scheduler and `once` call [`Monitor::pass_finished`] with
//! each [`PassReport`]; the pass itself knows nothing of them (while it runs, it tells
//! only a [`crate::pass::PassObserver`], which [`Health`] is).

use std::sync::Arc;

use crate::config::Config;
use crate::health::Health;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::notify::{Notifier, NotifyError};
use crate::pass::PassReport;

#[derive(Clone)]
pub struct Monitor {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    notifier: Option<Arc<Notifier>>,
}

impl Monitor {
    /// `last_outcomes`: per account, the outcome (`ok`/`failed`) the webhook last heard of,
    /// or of its last finished pass (see `Ledger::last_outcomes`). `ledger`: where delivered
    /// announcements are recorded (`None` in a dry run).
    pub fn new(
        config: &Config,
        last_outcomes: &[(String, String)],
        ledger: Option<Ledger>,
    ) -> Result<Self, NotifyError> {
        let previous = last_outcomes
            .iter()
            .map(|(account, outcome)| (account.clone(), outcome == "ok"));
        let settings = &config.settings;
        let metrics = Metrics::new();
        metrics.set_staleness(settings.server.staleness);
        Ok(Self {
            metrics: Arc::new(metrics),
            health: Arc::new(Health::new(
                config.accounts.iter().map(|a| a.name.as_str()),
                settings.server.staleness,
            )),
            notifier: Notifier::new(&settings.notify, previous, ledger)?.map(Arc::new),
        })
    }

    /// Records the pass; notifications are bounded by `notify.timeout` and never fail.
    pub async fn pass_finished(&self, report: &PassReport) {
        self.metrics.observe_pass(report);
        self.health.record(report);
        if let Some(notifier) = &self.notifier {
            notifier.pass_finished(report).await;
        }
    }
}
