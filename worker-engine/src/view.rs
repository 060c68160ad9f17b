//! What the engine shows its frontends: per-log counters, the manager's
//! scaling decisions, the connection state, spool depth and totals. The engine
//! writes; frontends read snapshots and never block it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ct_core::protocol::FetchBudget;

use crate::stats::LogStats;

/// One scaling decision of the manager, as it arrived: a new number of
/// fetchers or a new budget for a log (the budget is in the reason, after
/// the manager's own reason, see [`describe_budget`]), or a cooldown (the
/// reason starts with [`ScalingEvent::COOLDOWN`]; `fetchers` is 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingEvent {
    pub at: SystemTime,
    pub log: String,
    pub fetchers: u32,
    pub reason: String,
}

impl ScalingEvent {
    /// How the reason of a cooldown event starts.
    pub const COOLDOWN: &'static str = "cooling down";

    /// The manager keeps this worker off the log for `left`.
    pub fn cooldown(at: SystemTime, log: String, left: Duration, reason: &str) -> Self {
        let mut text = format!("{} {}", Self::COOLDOWN, fmt_span(left));
        if !reason.is_empty() {
            text.push_str(": ");
            text.push_str(reason);
        }
        ScalingEvent {
            at,
            log,
            fetchers: 0,
            reason: text,
        }
    }

    pub fn is_cooldown(&self) -> bool {
        self.reason.starts_with(Self::COOLDOWN)
    }
}

/// A rate for display: `5`, `0.5`, `12.5`.
pub fn fmt_rate(r: f64) -> String {
    if (r - r.round()).abs() < 0.05 {
        format!("{r:.0}")
    } else if r < 1.0 {
        format!("{r:.2}")
    } else {
        format!("{r:.1}")
    }
}

/// A duration for display: `45s`, `4m30s`, `2h05m`.
pub fn fmt_span(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    }
}

/// A budget for display: `5 req/s, 256/req` (and `, operator 20 req/s`).
pub fn describe_budget(b: &FetchBudget) -> String {
    let mut s = format!(
        "{} req/s, {}/req",
        fmt_rate(b.requests_per_sec),
        b.entries_per_request
    );
    if let Some(op) = b.operator_requests_per_sec {
        s.push_str(&format!(", operator {} req/s", fmt_rate(op)));
    }
    s
}

/// The engine's state for display.
#[derive(Debug, Default)]
pub struct EngineView {
    logs: Mutex<Vec<Arc<LogStats>>>,
    scaling: Mutex<VecDeque<ScalingEvent>>,
    manager: Mutex<String>,
    worker: Mutex<String>,
    /// Batches waiting in the spool.
    pub spool_batches: AtomicU64,
    /// Matches acknowledged by the manager this session.
    pub uploaded: AtomicU64,
    /// Tasks completed this session.
    pub tasks_done: AtomicU64,
    pub active_tasks: AtomicU32,
    /// Claiming is paused by the user.
    pub paused: AtomicBool,
    /// The user's own cap on fetchers per log (0: none).
    pub user_cap: AtomicU32,
    /// Set once shutdown has begun.
    pub draining: AtomicBool,
}

impl EngineView {
    pub fn new() -> Arc<Self> {
        Arc::new(EngineView {
            manager: Mutex::new("connecting".into()),
            ..EngineView::default()
        })
    }

    /// The counters of a log, created on first use.
    pub fn log(&self, name: &str) -> Arc<LogStats> {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = logs.iter().find(|l| l.name == name) {
            return l.clone();
        }
        let l = Arc::new(LogStats::new(name));
        logs.push(l.clone());
        l
    }

    pub fn logs(&self) -> Vec<Arc<LogStats>> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn push_scaling(&self, e: ScalingEvent) {
        if let Ok(mut s) = self.scaling.lock() {
            s.push_back(e);
            while s.len() > 100 {
                s.pop_front();
            }
        }
    }

    pub fn scaling(&self) -> Vec<ScalingEvent> {
        self.scaling
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn set_manager_state(&self, s: impl Into<String>) {
        if let Ok(mut m) = self.manager.lock() {
            *m = s.into();
        }
    }

    pub fn manager_state(&self) -> String {
        self.manager.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn set_worker(&self, s: impl Into<String>) {
        if let Ok(mut m) = self.worker.lock() {
            *m = s.into();
        }
    }

    pub fn worker(&self) -> String {
        self.worker.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Entries and matches over every log this session.
    pub fn totals(&self) -> (u64, u64) {
        self.logs().iter().fold((0, 0), |(e, m), l| {
            (e + LogStats::get(&l.entries), m + LogStats::get(&l.matches))
        })
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_and_cooldowns_read_well() {
        let b = FetchBudget {
            requests_per_sec: 5.0,
            entries_per_request: 256,
            fetchers: 4,
            operator_requests_per_sec: Some(12.5),
        };
        assert_eq!(describe_budget(&b), "5 req/s, 256/req, operator 12.5 req/s");
        assert_eq!(fmt_rate(0.25), "0.25");
        let e = ScalingEvent::cooldown(
            SystemTime::UNIX_EPOCH,
            "log".into(),
            Duration::from_secs(270),
            "failures",
        );
        assert!(e.is_cooldown());
        assert_eq!(e.reason, "cooling down 4m30s: failures");
        assert_eq!(fmt_span(Duration::from_secs(7500)), "2h05m");
    }
}
