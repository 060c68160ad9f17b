//! The TUI's plain state ([`App`]), what can happen to it ([`Action`]) and
//! [`update`], which applies an action and says what the engine must be told
//! ([`Command`]). [`App::refresh`] samples the engine's shared view at each
//! render tick; the engine never waits on the UI.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use worker_engine::stats::{LogState, LogStats, Outlook};
use worker_engine::view::{EngineView, ScalingEvent, Standing};

use super::logs::LogBuffer;

/// Seconds of throughput history kept (one sample a second).
pub const HISTORY: usize = 600;
/// Latest matching names kept for the feed.
const FEED: usize = 200;
/// Log lines kept for the log pane.
const LOG_LINES: usize = 200;

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Main,
    Detail,
}

/// One log as last sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub name: String,
    pub kind: &'static str,
    pub state: LogState,
    /// Start, end (exclusive) and next index of the current range.
    pub range: Option<(u64, u64, u64)>,
    pub entries: u64,
    pub matches: u64,
    pub errors: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    pub requests: u64,
    pub fetchers_active: u32,
    pub fetchers_allowed: u32,
    /// Entries per second, one sample a second, oldest first.
    pub history: VecDeque<u64>,
    /// The newest matching names of this log.
    pub latest: Vec<String>,
    /// How the manager last said the log stands (entries left, the fleet's rate).
    pub outlook: Option<Outlook>,
}

impl LogRow {
    fn new(name: &str) -> Self {
        LogRow {
            name: name.to_owned(),
            kind: "",
            state: LogState::Idle,
            range: None,
            entries: 0,
            matches: 0,
            errors: 0,
            rate_limited: 0,
            server_errors: 0,
            requests: 0,
            fetchers_active: 0,
            fetchers_allowed: 0,
            history: VecDeque::new(),
            latest: Vec::new(),
            outlook: None,
        }
    }

    /// When the log is collected at the fleet's rate (see [`Outlook::eta`]).
    pub fn eta(&self) -> Option<Duration> {
        self.outlook.and_then(|o| o.eta())
    }

    /// Entries per second over the last five seconds.
    pub fn rate(&self) -> f64 {
        mean_tail(&self.history, 5)
    }

    /// Share of the current range fetched, 0..=1.
    pub fn progress(&self) -> Option<f64> {
        let (start, end, next) = self.range?;
        let len = end.saturating_sub(start);
        if len == 0 {
            return Some(1.0);
        }
        Some((next.saturating_sub(start) as f64 / len as f64).clamp(0.0, 1.0))
    }
}

/// Mean of the last `n` samples (0 when empty).
pub fn mean_tail(h: &VecDeque<u64>, n: usize) -> f64 {
    let k = h.len().min(n);
    if k == 0 {
        return 0.0;
    }
    h.iter().rev().take(k).sum::<u64>() as f64 / k as f64
}

/// Everything the screen shows; plain data, filled from the engine's view.
#[derive(Debug, Clone)]
pub struct App {
    pub screen: Screen,
    pub help: bool,
    pub selected: usize,
    pub logs: Vec<LogRow>,
    /// Entries per second over all logs, one sample a second.
    pub total_history: VecDeque<u64>,
    pub scaling: Vec<ScalingEvent>,
    pub manager: String,
    pub worker: String,
    /// The name's lifetime totals and rank, as the manager last told them.
    pub standing: Option<Standing>,
    pub spool_batches: u64,
    pub uploaded: u64,
    pub tasks_done: u64,
    pub active_tasks: u32,
    pub paused: bool,
    pub user_cap: u32,
    pub max_fetchers: u32,
    /// Newest last: (log, name).
    pub feed: VecDeque<(String, String)>,
    pub log_lines: Vec<String>,
    /// Where the log files go, shown in the log pane's title.
    pub log_path: String,
    pub uptime: Duration,
    pub drain_timeout: Duration,
    /// Set when shutdown began.
    pub drain_started: Option<Instant>,
    /// Time left of the drain timeout, refreshed each tick.
    pub drain_left: Option<Duration>,
    started: Instant,
    last_sample: Option<(Instant, HashMap<String, u64>)>,
}

/// What the user (or a signal) asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    TogglePause,
    Up,
    Down,
    Enter,
    Back,
    CapUp,
    CapDown,
    Help,
    /// The cancellation token fired (a key, SIGTERM or SIGINT).
    DrainStarted(Instant),
}

/// What the event loop must do for the engine after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    SetPaused(bool),
    SetCap(u32),
    /// Start the drain: cancel the engine's token.
    Cancel,
    /// Leave at once (the second quit while draining).
    ExitNow,
}

impl App {
    pub fn new(max_fetchers: u32, drain_timeout: Duration, now: Instant) -> Self {
        App {
            screen: Screen::Main,
            help: false,
            selected: 0,
            logs: Vec::new(),
            total_history: VecDeque::new(),
            scaling: Vec::new(),
            manager: "connecting".into(),
            worker: String::new(),
            standing: None,
            spool_batches: 0,
            uploaded: 0,
            tasks_done: 0,
            active_tasks: 0,
            paused: false,
            user_cap: 0,
            max_fetchers: max_fetchers.max(1),
            feed: VecDeque::new(),
            log_lines: Vec::new(),
            log_path: String::new(),
            uptime: Duration::ZERO,
            drain_timeout,
            drain_started: None,
            drain_left: None,
            started: now,
            last_sample: None,
        }
    }

    pub fn selected_log(&self) -> Option<&LogRow> {
        self.logs.get(self.selected)
    }

    /// Total entries per second over the last five seconds.
    pub fn total_rate(&self) -> f64 {
        mean_tail(&self.total_history, 5)
    }

    pub fn totals(&self) -> (u64, u64) {
        self.logs
            .iter()
            .fold((0, 0), |(e, m), l| (e + l.entries, m + l.matches))
    }

    /// Samples the engine's view. Rates are sampled once a second.
    pub fn refresh(&mut self, view: &EngineView, logs: &LogBuffer, now: Instant) {
        self.uptime = now.saturating_duration_since(self.started);
        self.manager = view.manager_state();
        self.worker = view.worker();
        self.standing = view.standing();
        self.spool_batches = EngineView::get(&view.spool_batches);
        self.uploaded = EngineView::get(&view.uploaded);
        self.tasks_done = EngineView::get(&view.tasks_done);
        self.active_tasks = view.active_tasks.load(Relaxed);
        self.paused = view.paused.load(Relaxed);
        self.user_cap = view.user_cap.load(Relaxed);
        self.scaling = view.scaling();
        for stats in view.logs() {
            let i = match self.logs.iter().position(|r| r.name == stats.name) {
                Some(i) => i,
                None => {
                    self.logs.push(LogRow::new(&stats.name));
                    self.logs.len() - 1
                }
            };
            let row = &mut self.logs[i];
            copy_stats(row, &stats);
            let latest = stats.latest_names();
            for name in new_names(&row.latest, &latest) {
                self.feed.push_back((row.name.clone(), name.clone()));
            }
            while self.feed.len() > FEED {
                self.feed.pop_front();
            }
            row.latest = latest;
        }
        self.log_lines = logs.recent(LOG_LINES);
        if let Some(started) = self.drain_started {
            let spent = now.saturating_duration_since(started);
            self.drain_left = Some(self.drain_timeout.saturating_sub(spent));
        }
        self.sample_rates(now);
    }

    fn sample_rates(&mut self, now: Instant) {
        let current: HashMap<String, u64> = self
            .logs
            .iter()
            .map(|l| (l.name.clone(), l.entries))
            .collect();
        let Some((at, before)) = &self.last_sample else {
            self.last_sample = Some((now, current));
            return;
        };
        let secs = now.saturating_duration_since(*at).as_secs_f64();
        if secs < 1.0 {
            return;
        }
        let mut total = 0.0;
        for row in &mut self.logs {
            let prev = before.get(&row.name).copied().unwrap_or(0);
            let rate = row.entries.saturating_sub(prev) as f64 / secs;
            total += rate;
            push_capped(&mut row.history, rate.round() as u64);
        }
        push_capped(&mut self.total_history, total.round() as u64);
        self.last_sample = Some((now, current));
    }
}

fn push_capped(h: &mut VecDeque<u64>, v: u64) {
    h.push_back(v);
    while h.len() > HISTORY {
        h.pop_front();
    }
}

fn copy_stats(row: &mut LogRow, s: &LogStats) {
    row.kind = s.kind();
    row.state = s.state();
    row.range = s.range();
    row.entries = LogStats::get(&s.entries);
    row.matches = LogStats::get(&s.matches);
    row.errors = LogStats::get(&s.errors);
    row.rate_limited = LogStats::get(&s.rate_limited);
    row.server_errors = LogStats::get(&s.server_errors);
    row.requests = LogStats::get(&s.requests);
    row.fetchers_active = s.fetchers_active.load(Relaxed);
    row.fetchers_allowed = s.fetchers_allowed.load(Relaxed);
    row.outlook = s.outlook();
}

/// The names of `cur` that came after the newest one of `prev`.
fn new_names<'a>(prev: &[String], cur: &'a [String]) -> &'a [String] {
    if prev == cur {
        return &[];
    }
    match prev.last() {
        Some(last) => match cur.iter().rposition(|n| n == last) {
            Some(i) => &cur[i + 1..],
            None => cur,
        },
        None => cur,
    }
}

/// Applies an action; returns what the engine must be told, if anything.
pub fn update(app: &mut App, action: Action) -> Option<Command> {
    if app.help && !matches!(action, Action::Quit | Action::DrainStarted(_)) {
        // Any key closes the help.
        app.help = false;
        return None;
    }
    match action {
        Action::Quit => {
            if app.drain_started.is_some() {
                Some(Command::ExitNow)
            } else {
                Some(Command::Cancel)
            }
        }
        Action::DrainStarted(at) => {
            app.drain_started.get_or_insert(at);
            app.drain_left.get_or_insert(app.drain_timeout);
            None
        }
        Action::TogglePause => {
            app.paused = !app.paused;
            Some(Command::SetPaused(app.paused))
        }
        Action::Up => {
            app.selected = app.selected.saturating_sub(1);
            None
        }
        Action::Down => {
            if app.selected + 1 < app.logs.len() {
                app.selected += 1;
            }
            None
        }
        Action::Enter => {
            if !app.logs.is_empty() {
                app.screen = Screen::Detail;
            }
            None
        }
        Action::Back => {
            app.screen = Screen::Main;
            None
        }
        Action::CapUp => {
            // No cap is the top: `--max-fetchers` and the manager decide.
            app.user_cap = match app.user_cap {
                0 => 0,
                c if c + 1 >= app.max_fetchers => 0,
                c => c + 1,
            };
            Some(Command::SetCap(app.user_cap))
        }
        Action::CapDown => {
            let base = match app.user_cap {
                0 => app.max_fetchers,
                c => c,
            };
            app.user_cap = base.saturating_sub(1).max(1);
            Some(Command::SetCap(app.user_cap))
        }
        Action::Help => {
            app.help = true;
            None
        }
    }
}
