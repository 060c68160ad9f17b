//! Per-log adaptation: additive increase / multiplicative decrease of the
//! number of concurrent fetchers and of the share of the log's request
//! budget used (see [`crate::pace`]), and jittered exponential backoff on
//! 429s and errors (honouring `Retry-After`). Neither ever goes above what
//! the manager allows: the window stays within `1..=allowed` fetchers, the
//! share within `MIN_SHARE..=1` of the budget.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// First backoff delay.
const BASE_DELAY: Duration = Duration::from_millis(200);
/// Longest backoff delay.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Share of the budget regained per success (20 successes from half to whole).
const SHARE_STEP: f64 = 0.025;

/// The AIMD window and backoff state of one log.
#[derive(Debug, Clone)]
pub struct Adaptive {
    /// What the manager (or the user) allows.
    allowed: u32,
    /// The AIMD window, in fetchers.
    window: f64,
    /// The share of the log's request budget used, in `MIN_SHARE..=1`.
    share: f64,
    /// Consecutive failures, for the exponential backoff.
    failures: u32,
    /// No request before this instant.
    resume_at: Option<Instant>,
}

impl Adaptive {
    pub fn new(allowed: u32) -> Self {
        let allowed = allowed.max(1);
        Adaptive {
            allowed,
            window: f64::from(allowed.min(2)),
            share: 1.0,
            failures: 0,
            resume_at: None,
        }
    }

    /// Fetchers that may run now.
    pub fn limit(&self) -> u32 {
        // The window is kept within 1..=allowed, so the cast is exact enough.
        (self.window.floor() as u32).clamp(1, self.allowed)
    }

    pub fn allowed(&self) -> u32 {
        self.allowed
    }

    /// A new cap from the manager or the user; the window shrinks at once.
    pub fn set_allowed(&mut self, allowed: u32) {
        self.allowed = allowed.max(1);
        self.window = self.window.min(f64::from(self.allowed));
    }

    /// The share of the request budget to use now (see [`crate::pace::Pacer::set_share`]).
    pub fn share(&self) -> f64 {
        self.share
    }

    /// A request succeeded: grow by about one fetcher per window of
    /// successes, and the budget share by a step.
    pub fn on_success(&mut self) {
        self.failures = 0;
        self.window = (self.window + 1.0 / self.window.max(1.0)).min(f64::from(self.allowed));
        self.share = (self.share + SHARE_STEP).min(1.0);
    }

    fn decrease(&mut self) {
        self.window = (self.window / 2.0).max(1.0);
        self.share = (self.share / 2.0).max(crate::pace::MIN_SHARE);
    }

    /// The log said 429: halve the window and the rate, and wait.
    pub fn on_rate_limited(&mut self, retry_after: Option<Duration>) -> Duration {
        self.decrease();
        self.failures = self.failures.saturating_add(1);
        let delay = retry_after.unwrap_or_else(|| backoff(self.failures));
        self.pause(delay);
        delay
    }

    /// A 5xx: the log is overloaded; halve the window and the rate, and
    /// wait (as long as its `Retry-After` says, else exponentially longer).
    pub fn on_server_error(&mut self, retry_after: Option<Duration>) -> Duration {
        self.decrease();
        self.failures = self.failures.saturating_add(1);
        let delay = retry_after.unwrap_or_else(|| backoff(self.failures));
        self.pause(delay);
        delay
    }

    /// A timeout, a broken connection or a bad answer: wait, exponentially longer.
    pub fn on_error(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = backoff(self.failures);
        self.pause(delay);
        delay
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn pause(&mut self, delay: Duration) {
        let until = Instant::now() + delay;
        self.resume_at = Some(self.resume_at.map_or(until, |r| r.max(until)));
    }

    /// When requests may resume, if the log is in backoff.
    pub fn resume_at(&self) -> Option<Instant> {
        self.resume_at.filter(|r| *r > Instant::now())
    }
}

/// Jittered exponential backoff: base * 2^(n-1), capped, times 0.5..1.0.
pub fn backoff(failures: u32) -> Duration {
    let exp = BASE_DELAY.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(MAX_DELAY);
    capped.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd() {
        let mut a = Adaptive::new(8);
        assert_eq!(a.limit(), 2);
        for _ in 0..100 {
            a.on_success();
        }
        assert_eq!(a.limit(), 8);
        a.on_rate_limited(Some(Duration::from_millis(1)));
        assert_eq!(a.limit(), 4);
        a.set_allowed(3);
        assert_eq!(a.limit(), 3);
        for _ in 0..10 {
            a.on_rate_limited(Some(Duration::ZERO));
        }
        assert_eq!(a.limit(), 1);
    }

    #[test]
    fn the_budget_share_falls_on_429_and_5xx_and_recovers_to_whole() {
        let mut a = Adaptive::new(4);
        assert_eq!(a.share(), 1.0);
        a.on_rate_limited(Some(Duration::ZERO));
        assert_eq!(a.share(), 0.5);
        a.on_server_error(Some(Duration::ZERO));
        assert_eq!(a.share(), 0.25);
        for _ in 0..100 {
            a.on_rate_limited(Some(Duration::ZERO));
        }
        assert_eq!(a.share(), crate::pace::MIN_SHARE);
        for _ in 0..1000 {
            a.on_success();
        }
        assert_eq!(a.share(), 1.0);
        assert_eq!(a.limit(), 4);
        // Timeouts and bad answers back off but keep the rate.
        a.on_error();
        assert_eq!(a.share(), 1.0);
    }

    #[test]
    fn a_retry_after_is_the_delay() {
        let mut a = Adaptive::new(2);
        let d = a.on_server_error(Some(Duration::from_secs(3)));
        assert_eq!(d, Duration::from_secs(3));
        assert!(a.resume_at().is_some());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= BASE_DELAY);
        assert!(backoff(5) >= BASE_DELAY * 8);
        assert!(backoff(100) <= MAX_DELAY);
    }
}
