//! Which failures are worth another try, and how long to wait before it.
//!
//! Backoff doubles from `min(1 s, max_backoff)` with jitter, capped at `max_backoff`; a
//! server's `Retry-After` (seconds or an HTTP date) wins when it asks for longer, up to
//! [`MAX_RETRY_AFTER`]. Each failure type says whether it is transient through
//! [`Transient`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A `Retry-After` longer than this is not waited out within a pass: the item is left
/// for the next one.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
const BASE_BACKOFF: Duration = Duration::from_secs(1);

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again; the server may have said when.
    Retry { after: Option<Duration> },
    /// Retrying cannot help (bad request, bad credentials, a full disk, ...).
    GiveUp,
}

/// Implemented by every error a retried operation can return.
pub trait Transient {
    fn verdict(&self) -> Verdict;
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let base = BASE_BACKOFF.min(self.max_backoff);
        let ceiling = base
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .min(self.max_backoff);
        // "Equal jitter": at least half the ceiling, so waits still grow, spread over the rest
        // so parallel downloads that failed together do not retry in lockstep.
        let half = ceiling / 2;
        let jittered = half + half.mul_f64(jitter_fraction());
        match retry_after {
            Some(after) => after.max(jittered),
            None => jittered,
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the retries are spent. Each retry is
    /// logged at WARN: attempt n/N, the cause, the wait.
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut op: F) -> Result<T, E>
    where
        E: Transient + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            let error = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Verdict::Retry { after } = error.verdict() else {
                return Err(error);
            };
            if attempt >= self.retries || after.is_some_and(|a| a > MAX_RETRY_AFTER) {
                return Err(error);
            }
            let wait = self.backoff(attempt, after);
            // WARN, not DEBUG: minutes of retries against a dead host must not be silence.
            let attempts = self.retries.saturating_add(1);
            tracing::warn!(
                what,
                attempt = attempt + 1,
                attempts,
                wait_ms = wait.as_millis() as u64,
                error.message = %error,
                "attempt {}/{attempts} failed; retrying in {}",
                attempt + 1,
                humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Reads `Retry-After`: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// A cheap, lock-free source of jitter; quality does not matter, spread does.
fn jitter_fraction() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ u64::from(Utc::now().timestamp_subsec_nanos());
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            max_backoff: Duration::from_secs(8),
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = policy();
        for _ in 0..50 {
            let first = p.backoff(0, None);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let third = p.backoff(2, None);
            assert!(third >= Duration::from_secs(2) && third <= Duration::from_secs(4));
            let late = p.backoff(30, None);
            assert!(late >= Duration::from_secs(4) && late <= Duration::from_secs(8));
        }
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let p = policy();
        assert_eq!(
            p.backoff(0, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert!(p.backoff(5, Some(Duration::from_millis(1))) >= Duration::from_secs(4));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 29, 8, 0, 0)
            .single()
            .unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[derive(Debug)]
    struct Flaky(Verdict);
    impl std::fmt::Display for Flaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "flaky")
        }
    }
    impl Transient for Flaky {
        fn verdict(&self) -> Verdict {
            self.0
        }
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_transient_failures_and_stops_at_the_limit() {
        let p = policy();
        let mut calls = 0;
        let result: Result<(), Flaky> = p
            .run("test", || {
                calls += 1;
                async { Err(Flaky(Verdict::Retry { after: None })) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 4, "one attempt plus three retries");

        let mut calls = 0;
        let result: Result<(), Flaky> = p
            .run("test", || {
                calls += 1;
                async { Err(Flaky(Verdict::GiveUp)) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1, "permanent failures are not retried");
    }

    #[test]
    fn throttling_and_unavailability_are_retried_with_or_without_retry_after() {
        use super::super::client::{ApiError, error_message};
        let status = |status: u16, retry_after: Option<Duration>| ApiError::Status {
            url: "u".into(),
            status,
            message: error_message("<html><h1>503 Service Unavailable</h1></html>"),
            retry_after,
        };
        let after = Some(Duration::from_secs(3));
        assert_eq!(status(429, None).verdict(), Verdict::Retry { after: None });
        assert_eq!(status(429, after).verdict(), Verdict::Retry { after });
        assert_eq!(status(503, None).verdict(), Verdict::Retry { after: None });
        assert_eq!(status(403, None).verdict(), Verdict::GiveUp);
    }
}
