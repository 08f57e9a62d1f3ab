//! [`PassObserver`]: what a running pass tells whoever watches it (the progress bar, the
//! health state), without the pass knowing who they are.
//!
//! The pass owns this trait and the watchers implement it, so the pass imports neither the
//! progress bar nor `/healthz`; they import the pass (its [`super::PassReport`]) instead.

use std::sync::Arc;

/// Told of a pass while it runs. Every method does nothing unless overridden; they are
/// called from the pass's tasks and must not block.
pub trait PassObserver: Send + Sync {
    /// Downloads became known (one report's listing is in): `items` of `bytes` listed
    /// bytes in all. Not called in a dry run, which downloads nothing.
    fn work_planned(&self, _items: u64, _bytes: u64) {}

    /// One planned download is over, whatever its outcome; `bytes`: its listed size.
    fn item_done(&self, _bytes: u64) {}

    /// An item of `account` reached the archive and the ledger.
    fn item_archived(&self, _account: &str) {}
}

/// Tells every one of its observers, in order.
#[derive(Clone, Default)]
pub struct Observers(Vec<Arc<dyn PassObserver>>);

impl Observers {
    pub fn new(observers: impl IntoIterator<Item = Arc<dyn PassObserver>>) -> Self {
        Self(observers.into_iter().collect())
    }
}

impl PassObserver for Observers {
    fn work_planned(&self, items: u64, bytes: u64) {
        for o in &self.0 {
            o.work_planned(items, bytes);
        }
    }

    fn item_done(&self, bytes: u64) {
        for o in &self.0 {
            o.item_done(bytes);
        }
    }

    fn item_archived(&self, account: &str) {
        for o in &self.0 {
            o.item_archived(account);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Calls(Mutex<Vec<String>>);

    impl PassObserver for Calls {
        fn work_planned(&self, items: u64, bytes: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("planned {items} {bytes}"));
        }
        fn item_archived(&self, account: &str) {
            self.0.lock().unwrap().push(format!("archived {account}"));
        }
    }

    #[test]
    fn every_observer_hears_every_call_and_unimplemented_ones_do_nothing() {
        let (a, b) = (Arc::new(Calls::default()), Arc::new(Calls::default()));
        let all = Observers::new([a.clone() as Arc<dyn PassObserver>, b.clone()]);
        all.work_planned(2, 30);
        all.item_done(15);
        all.item_archived("acme");
        for calls in [a, b] {
            assert_eq!(*calls.0.lock().unwrap(), ["planned 2 30", "archived acme"]);
        }
    }
}
