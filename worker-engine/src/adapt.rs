//! Per-log adaptation: additive increase / multiplicative decrease of the
//! number of concurrent fetchers, and jittered exponential backoff on 429s and
//! errors (honouring `Retry-After`).

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// First backoff delay.
const BASE_DELAY: Duration = Duration::from_millis(200);
/// Longest backoff delay.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// The AIMD window and backoff state of one log.
#[derive(Debug, Clone)]
pub struct Adaptive {
    /// What the manager (or the user) allows.
    allowed: u32,
    /// The AIMD window, in fetchers.
    window: f64,
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

    /// A request succeeded: grow by about one fetcher per window of successes.
    pub fn on_success(&mut self) {
        self.failures = 0;
        self.window = (self.window + 1.0 / self.window.max(1.0)).min(f64::from(self.allowed));
    }

    /// The log said 429: halve the window and wait.
    pub fn on_rate_limited(&mut self, retry_after: Option<Duration>) -> Duration {
        self.window = (self.window / 2.0).max(1.0);
        self.failures = self.failures.saturating_add(1);
        let delay = retry_after.unwrap_or_else(|| backoff(self.failures));
        self.pause(delay);
        delay
    }

    /// A 5xx, a timeout or a broken connection: wait, exponentially longer.
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
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= BASE_DELAY);
        assert!(backoff(5) >= BASE_DELAY * 8);
        assert!(backoff(100) <= MAX_DELAY);
    }
}
