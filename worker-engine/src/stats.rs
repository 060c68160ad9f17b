//! Live counters per log, shared between the engine and its frontends. The
//! engine only writes atomics; frontends read snapshots and never block it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use ct_core::protocol::FetchBudget;

/// Why and until when the manager keeps this worker off a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooldownInfo {
    pub until: SystemTime,
    pub reason: String,
}

/// How the manager last said the log's collection stands (see
/// [`ct_core::protocol::LogOutlook`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    pub tree_size: u64,
    /// Entries up to `tree_size` not collected yet.
    pub remaining: u64,
    /// The whole fleet's entries per second on this log, recently.
    pub fleet_rate: f64,
    pub at: SystemTime,
}

impl Outlook {
    /// When the log is collected up to its tree size at the fleet's rate:
    /// zero when nothing remains, `None` when the fleet's rate is unknown.
    pub fn eta(&self) -> Option<Duration> {
        if self.remaining == 0 {
            return Some(Duration::ZERO);
        }
        if !(self.fleet_rate.is_finite() && self.fleet_rate > 0.0) {
            return None;
        }
        Duration::try_from_secs_f64((self.remaining as f64 / self.fleet_rate).ceil()).ok()
    }
}

/// What a log's fetchers are doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogState {
    Idle,
    Fetching,
    BackingOff,
    Done,
    Error,
}

impl LogState {
    pub fn as_str(self) -> &'static str {
        match self {
            LogState::Idle => "idle",
            LogState::Fetching => "fetching",
            LogState::BackingOff => "backing off",
            LogState::Done => "done",
            LogState::Error => "error",
        }
    }
}

/// Counters of one log.
#[derive(Debug)]
pub struct LogStats {
    pub name: String,
    pub entries: AtomicU64,
    pub matches: AtomicU64,
    pub errors: AtomicU64,
    pub rate_limited: AtomicU64,
    pub server_errors: AtomicU64,
    pub requests: AtomicU64,
    pub fetchers_active: AtomicU32,
    pub fetchers_allowed: AtomicU32,
    /// Requests per second the log's pacer lets through now (f64 bits;
    /// NaN: no limit).
    pace: AtomicU64,
    budget: Mutex<Option<FetchBudget>>,
    cooldown: Mutex<Option<CooldownInfo>>,
    outlook: Mutex<Option<Outlook>>,
    state: Mutex<LogState>,
    kind: Mutex<&'static str>,
    range: Mutex<Option<(u64, u64, u64)>>,
    latest: Mutex<Vec<String>>,
}

impl LogStats {
    pub fn new(name: impl Into<String>) -> Self {
        LogStats {
            name: name.into(),
            entries: AtomicU64::new(0),
            matches: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            fetchers_active: AtomicU32::new(0),
            fetchers_allowed: AtomicU32::new(0),
            pace: AtomicU64::new(f64::NAN.to_bits()),
            budget: Mutex::new(None),
            cooldown: Mutex::new(None),
            outlook: Mutex::new(None),
            state: Mutex::new(LogState::Idle),
            kind: Mutex::new(""),
            range: Mutex::new(None),
            latest: Mutex::new(Vec::new()),
        }
    }

    pub fn set_state(&self, s: LogState) {
        if let Ok(mut g) = self.state.lock() {
            *g = s;
        }
    }

    pub fn state(&self) -> LogState {
        self.state.lock().map_or(LogState::Error, |g| *g)
    }

    /// The log's API: "rfc6962" or "static" (empty until the first task).
    pub fn set_kind(&self, kind: &'static str) {
        if let Ok(mut g) = self.kind.lock() {
            *g = kind;
        }
    }

    pub fn kind(&self) -> &'static str {
        self.kind.lock().map_or("", |g| *g)
    }

    /// The current range: start, end and the next index not yet fetched.
    pub fn set_range(&self, range: Option<(u64, u64, u64)>) {
        if let Ok(mut g) = self.range.lock() {
            *g = range;
        }
    }

    pub fn range(&self) -> Option<(u64, u64, u64)> {
        self.range.lock().ok().and_then(|g| *g)
    }

    /// The rate the log's requests are paced at now (`None`: unlimited).
    pub fn set_pace(&self, rate: Option<f64>) {
        self.pace.store(rate.unwrap_or(f64::NAN).to_bits(), Relaxed);
    }

    pub fn pace(&self) -> Option<f64> {
        let r = f64::from_bits(self.pace.load(Relaxed));
        (!r.is_nan()).then_some(r)
    }

    /// The manager's budget for this log (`None`: it sent none).
    pub fn set_budget(&self, budget: Option<FetchBudget>) {
        if let Ok(mut g) = self.budget.lock() {
            *g = budget;
        }
    }

    pub fn budget(&self) -> Option<FetchBudget> {
        self.budget.lock().ok().and_then(|g| *g)
    }

    /// The manager keeps this worker off the log until then (`None`: not).
    pub fn set_cooldown(&self, c: Option<CooldownInfo>) {
        if let Ok(mut g) = self.cooldown.lock() {
            *g = c;
        }
    }

    /// The cooldown, while it lasts.
    pub fn cooldown(&self) -> Option<CooldownInfo> {
        let now = SystemTime::now();
        self.cooldown
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .filter(|c| c.until > now)
    }

    /// How the manager last said the log stands.
    pub fn set_outlook(&self, o: Outlook) {
        if let Ok(mut g) = self.outlook.lock() {
            *g = Some(o);
        }
    }

    pub fn outlook(&self) -> Option<Outlook> {
        self.outlook.lock().ok().and_then(|g| *g)
    }

    /// Remembers the latest matching names (at most 50).
    pub fn push_names(&self, names: &[String]) {
        if let Ok(mut g) = self.latest.lock() {
            g.extend(names.iter().cloned());
            let excess = g.len().saturating_sub(50);
            g.drain(..excess);
        }
    }

    pub fn latest_names(&self) -> Vec<String> {
        self.latest.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_is_what_remains_at_the_fleets_rate() {
        let o = |remaining, fleet_rate| Outlook {
            tree_size: 10_000,
            remaining,
            fleet_rate,
            at: SystemTime::UNIX_EPOCH,
        };
        assert_eq!(o(0, 0.0).eta(), Some(Duration::ZERO));
        assert_eq!(o(5_000, 0.0).eta(), None);
        assert_eq!(o(5_000, f64::NAN).eta(), None);
        assert_eq!(o(5_000, 100.0).eta(), Some(Duration::from_secs(50)));
        assert_eq!(o(5_000, 3.0).eta(), Some(Duration::from_secs(1667)));
        assert!(o(u64::MAX, 1e-300).eta().is_none());
    }
}
