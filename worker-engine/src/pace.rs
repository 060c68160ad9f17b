//! Request pacing: a GCRA (a token bucket without a timer) per log at the
//! manager's `requests_per_sec` budget, and one per operator shared by its
//! logs when the budget has `operator_requests_per_sec`. Every request to a
//! log (get-entries, data tiles, issuers, heads) waits for a slot in its
//! log's pacer and in its operator's pacer, so that the worker never asks a
//! log faster than its budget, whatever the number of fetchers. The AIMD
//! state ([`crate::adapt::Adaptive`]) lowers the rate below the budget
//! after 429s and 5xx and raises it back ([`Pacer::set_share`]); a
//! `Retry-After` holds the whole log ([`Pacer::hold`]).
//!
//! A pacer without a limit never waits (the manager sent no budget), except
//! while it is held.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Lowest AIMD share of the budget.
pub const MIN_SHARE: f64 = 0.05;

/// The pacing state of one log or one operator.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
struct State {
    /// The budget in requests per second; `None`: no limit.
    limit: Option<f64>,
    /// The AIMD share of the budget, in `MIN_SHARE..=1`.
    share: f64,
    /// Requests that may go back to back after a quiet spell.
    burst: u32,
    /// GCRA's theoretical arrival time of the next request.
    tat: Option<Instant>,
    /// No request before this instant (`Retry-After`, backoff).
    hold_until: Option<Instant>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new(None)
    }
}

/// A usable rate: positive and finite, else none.
pub fn valid_rate(rate: f64) -> Option<f64> {
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

impl Pacer {
    /// A pacer at `limit` requests per second (`None`: unlimited), burst 1.
    pub fn new(limit: Option<f64>) -> Self {
        Pacer {
            state: Mutex::new(State {
                limit: limit.and_then(valid_rate),
                share: 1.0,
                burst: 1,
                tat: None,
                hold_until: None,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// A new budget (`None`, zero, negative or not finite: unlimited).
    pub fn set_limit(&self, limit: Option<f64>) {
        self.with(|s| s.limit = limit.and_then(valid_rate));
    }

    /// The budget, if any.
    pub fn limit(&self) -> Option<f64> {
        self.with(|s| s.limit)
    }

    /// The AIMD share of the budget (clamped to `MIN_SHARE..=1`).
    pub fn set_share(&self, share: f64) {
        let share = if share.is_finite() { share } else { 1.0 };
        self.with(|s| s.share = share.clamp(MIN_SHARE, 1.0));
    }

    /// Requests that may go back to back after a quiet spell (at least 1).
    pub fn set_burst(&self, burst: u32) {
        self.with(|s| s.burst = burst.max(1));
    }

    /// The rate requests go out at now: the budget times the AIMD share.
    pub fn rate(&self) -> Option<f64> {
        self.with(|s| s.rate())
    }

    /// No request before `now + delay` (keeps a later hold).
    pub fn hold(&self, delay: Duration) {
        let until = Instant::now() + delay;
        self.with(|s| {
            s.hold_until = Some(s.hold_until.map_or(until, |h| h.max(until)));
        });
    }

    /// When the pacer is held, until when.
    pub fn held_until(&self) -> Option<Instant> {
        let now = Instant::now();
        self.with(|s| s.hold_until.filter(|h| *h > now))
    }

    /// Waits for a slot in this pacer alone.
    pub async fn acquire(&self) {
        acquire(&[self]).await;
    }
}

impl State {
    fn rate(&self) -> Option<f64> {
        self.limit.map(|l| l * self.share)
    }

    /// When a request may go: `None` at `now`, else not before the instant.
    fn next_slot(&self, now: Instant) -> Option<Instant> {
        let mut at = now;
        if let Some(h) = self.hold_until {
            at = at.max(h);
        }
        if let (Some(rate), Some(tat)) = (self.rate(), self.tat) {
            let tolerance = Duration::from_secs_f64(f64::from(self.burst - 1) / rate);
            at = at.max(tat.checked_sub(tolerance).unwrap_or(tat));
        }
        (at > now).then_some(at)
    }

    /// Takes the slot at `now` (which [`Self::next_slot`] allowed).
    fn take(&mut self, now: Instant) {
        if let Some(rate) = self.rate() {
            let interval = Duration::from_secs_f64(1.0 / rate);
            let base = self.tat.map_or(now, |t| t.max(now));
            self.tat = Some(base + interval);
        }
    }
}

/// Waits until every pacer of `pacers` has a slot, and takes them together
/// (so that no slot is wasted while another pacer makes the request wait).
/// Pacers are locked in the order given: always a log's before its
/// operator's.
pub async fn acquire(pacers: &[&Pacer]) {
    loop {
        let now = Instant::now();
        let wait = {
            let mut guards: Vec<_> = pacers
                .iter()
                .map(|p| p.state.lock().unwrap_or_else(|e| e.into_inner()))
                .collect();
            let wait = guards.iter().filter_map(|g| g.next_slot(now)).max();
            if wait.is_none() {
                for g in &mut guards {
                    g.take(now);
                }
            }
            wait
        };
        match wait {
            None => return,
            Some(t) => tokio::time::sleep_until(t).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes slots at the instants the pacer gives, `n` times: the instants.
    fn schedule(p: &Pacer, t0: Instant, n: usize) -> Vec<Duration> {
        let mut now = t0;
        let mut out = Vec::new();
        for _ in 0..n {
            p.with(|s| {
                if let Some(t) = s.next_slot(now) {
                    now = t;
                }
                assert!(s.next_slot(now).is_none());
                s.take(now);
            });
            out.push(now - t0);
        }
        out
    }

    #[test]
    fn unlimited_never_waits() {
        let p = Pacer::new(None);
        let t0 = Instant::now();
        assert!(schedule(&p, t0, 100).iter().all(|d| d.is_zero()));
        assert_eq!(p.rate(), None);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Pacer::new(Some(bad)).limit(), None, "{bad}");
        }
    }

    #[test]
    fn slots_are_spaced_at_the_rate() {
        let p = Pacer::new(Some(5.0));
        let t0 = Instant::now();
        let at = schedule(&p, t0, 11);
        assert_eq!(at[0], Duration::ZERO);
        assert!(at[10] >= Duration::from_millis(1999), "{at:?}");
        assert!(at[10] <= Duration::from_millis(2001), "{at:?}");
    }

    #[test]
    fn a_burst_goes_back_to_back_then_the_rate_holds() {
        let p = Pacer::new(Some(10.0));
        p.set_burst(3);
        let t0 = Instant::now();
        let at = schedule(&p, t0, 6);
        assert!(at[..3].iter().all(|d| d.is_zero()), "{at:?}");
        assert!(at[5] >= Duration::from_millis(299), "{at:?}");
    }

    #[test]
    fn the_share_lowers_the_rate_within_bounds() {
        let p = Pacer::new(Some(10.0));
        p.set_share(0.5);
        assert_eq!(p.rate(), Some(5.0));
        p.set_share(0.0);
        assert_eq!(p.rate(), Some(10.0 * MIN_SHARE));
        p.set_share(7.0);
        assert_eq!(p.rate(), Some(10.0));
    }

    #[test]
    fn a_hold_delays_even_an_unlimited_pacer() {
        let p = Pacer::new(None);
        p.hold(Duration::from_secs(2));
        let t0 = Instant::now();
        let at = schedule(&p, t0, 2);
        assert!(at[0] >= Duration::from_millis(1990), "{at:?}");
        // A shorter hold later does not shorten it.
        p.hold(Duration::from_millis(10));
        assert!(
            p.held_until()
                .is_some_and(|h| h >= t0 + Duration::from_millis(1990))
        );
    }

    #[tokio::test]
    async fn two_pacers_are_taken_together() {
        let log = Pacer::new(Some(1000.0));
        let operator = Pacer::new(Some(10.0));
        let t0 = Instant::now();
        for _ in 0..4 {
            acquire(&[&log, &operator]).await;
        }
        // The operator's 10/s decides: three intervals of 100 ms.
        assert!(t0.elapsed() >= Duration::from_millis(290));
    }
}
