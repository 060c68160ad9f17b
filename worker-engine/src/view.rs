//! What the engine shows its frontends: per-log counters, the manager's
//! scaling decisions, the connection state, spool depth, this session's
//! totals and the lifetime ones the manager counts ([`Standing`]). The
//! engine writes; frontends read snapshots and never block it. The figures
//! both frontends show are formatted here ([`fmt_ratio`], [`fmt_eta`]).

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

/// A duration for display: `45s`, `4m30s`, `2h05m`, `3d04h`.
pub fn fmt_span(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}d{:02}h", s / 86_400, s / 3600 % 24)
    }
}

/// What shows a figure that is not known (yet).
pub const UNKNOWN: &str = "—";

/// The share of examined entries that matched, for display: `0.011%`,
/// `1.25%`, `0%`; [`UNKNOWN`] before any entry. At most 7 characters.
pub fn fmt_ratio(matches: u64, entries: u64) -> String {
    if entries == 0 {
        return UNKNOWN.to_owned();
    }
    let p = matches as f64 * 100.0 / entries as f64;
    if matches == 0 {
        "0%".to_owned()
    } else if p >= 10.0 {
        format!("{p:.1}%")
    } else if p >= 1.0 {
        format!("{p:.2}%")
    } else if p >= 0.01 {
        format!("{p:.3}%")
    } else if p >= 0.0001 {
        format!("{p:.4}%")
    } else {
        "<.0001%".to_owned()
    }
}

/// An ETA for display: `done`, a span ([`fmt_span`]), or [`UNKNOWN`].
pub fn fmt_eta(eta: Option<Duration>) -> String {
    match eta {
        Some(d) if d.is_zero() => "done".to_owned(),
        Some(d) => fmt_span(d),
        None => UNKNOWN.to_owned(),
    }
}

/// The manager's lifetime figures for this worker's public name (all its
/// machines), as of `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub name: String,
    pub machines: u64,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    /// Place on the leaderboard; `None`: not ranked.
    pub rank: Option<u64>,
    /// Place in the manager's latest daily rank snapshot before today;
    /// `None`: not known (no snapshot, not in it, or an older manager).
    pub rank_yesterday: Option<u64>,
    /// Names on the leaderboard.
    pub of: u64,
    /// This machine's page on the dashboards (with `--site-url`).
    pub page_url: Option<String>,
    pub at: SystemTime,
}

impl Standing {
    /// `rank 3 of 17`, or `not ranked`.
    pub fn rank_text(&self) -> String {
        match self.rank {
            Some(r) => format!("rank {r} of {}", self.of),
            None => "not ranked".to_owned(),
        }
    }

    /// Places gained since yesterday (negative: lost); `None` when either
    /// place is not known.
    pub fn rank_change(&self) -> Option<i64> {
        let now = i64::try_from(self.rank?).ok()?;
        let before = i64::try_from(self.rank_yesterday?).ok()?;
        Some(before - now)
    }

    /// The change since yesterday for display: `▲2` (places gained), `▼1`
    /// (lost), `=`; `None` when it is not known.
    pub fn rank_change_text(&self) -> Option<String> {
        self.rank_change().map(|c| match c {
            0 => "=".to_owned(),
            c if c > 0 => format!("▲{c}"),
            c => format!("▼{}", c.unsigned_abs()),
        })
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
    standing: Mutex<Option<Standing>>,
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

    /// The manager's latest lifetime figures for this worker's name.
    pub fn set_standing(&self, s: Standing) {
        if let Ok(mut g) = self.standing.lock() {
            *g = Some(s);
        }
    }

    pub fn standing(&self) -> Option<Standing> {
        self.standing.lock().ok().and_then(|g| g.clone())
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
        assert_eq!(
            fmt_span(Duration::from_secs(3 * 86_400 + 4 * 3600 + 59)),
            "3d04h"
        );
    }

    #[test]
    fn ratios_and_etas_read_well_and_stay_short() {
        assert_eq!(fmt_ratio(0, 0), UNKNOWN);
        assert_eq!(fmt_ratio(0, 10), "0%");
        assert_eq!(fmt_ratio(10, 90_600), "0.011%");
        assert_eq!(fmt_ratio(1, 13_800), "0.0072%");
        assert_eq!(fmt_ratio(5, 400), "1.25%");
        assert_eq!(fmt_ratio(1, 1), "100.0%");
        assert_eq!(fmt_ratio(1, u64::MAX), "<.0001%");
        for (m, e) in [(1, 3), (1, 7), (1, 70_001), (9_999, 10_000), (1, 1_000_003)] {
            assert!(fmt_ratio(m, e).chars().count() <= 7, "{}", fmt_ratio(m, e));
        }
        assert_eq!(fmt_eta(None), UNKNOWN);
        assert_eq!(fmt_eta(Some(Duration::ZERO)), "done");
        assert_eq!(fmt_eta(Some(Duration::from_secs(75))), "1m15s");
    }

    #[test]
    fn a_rank_change_is_places_gained_since_yesterday() {
        let s = |rank, rank_yesterday| Standing {
            name: "ivy".into(),
            machines: 1,
            entries: 0,
            matches: 0,
            tasks_done: 0,
            rank,
            rank_yesterday,
            of: 12,
            page_url: None,
            at: SystemTime::UNIX_EPOCH,
        };
        let text = |r, y| s(r, y).rank_change_text();
        assert_eq!(text(Some(3), Some(5)).as_deref(), Some("▲2"));
        assert_eq!(text(Some(4), Some(3)).as_deref(), Some("▼1"));
        assert_eq!(text(Some(3), Some(3)).as_deref(), Some("="));
        assert_eq!(text(Some(3), None), None);
        assert_eq!(text(None, Some(3)), None);
        assert_eq!(s(Some(1), Some(u64::MAX)).rank_change(), None);
    }
}
