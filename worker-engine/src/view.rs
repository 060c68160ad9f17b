//! What the engine shows its frontends: per-log counters, the manager's
//! scaling decisions, the connection state, spool depth and totals. The engine
//! writes; frontends read snapshots and never block it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::stats::LogStats;

/// One scaling decision of the manager, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingEvent {
    pub at: SystemTime,
    pub log: String,
    pub fetchers: u32,
    pub reason: String,
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
