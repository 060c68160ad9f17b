//! Live counters per log, shared between the engine and its frontends. The
//! engine only writes atomics; frontends read snapshots and never block it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::SystemTime;

use ct_core::protocol::FetchBudget;

/// Why and until when the manager keeps this worker off a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooldownInfo {
    pub until: SystemTime,
    pub reason: String,
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
