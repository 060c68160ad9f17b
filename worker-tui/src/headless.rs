//! The headless frontend (`--no-tui`): logs to stdout (human or JSON) and to
//! daily files, and prints a summary line every 10 seconds (per log: state,
//! fetchers, and when the manager gave one the pace and budget, and any
//! cooldown) and a totals line every minute (`--totals-secs`): this
//! session's and the name's lifetime totals with their .jp ratios, the
//! rank and yesterday's, the dashboard link, and per log its .jp ratio, entries left and
//! ETA, the figures the screen shows.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use worker_engine::stats::LogStats;
use worker_engine::view::{
    EngineView, UNKNOWN, describe_budget, fmt_eta, fmt_rate, fmt_ratio, fmt_span,
};

/// Prints a summary every `every` and the totals every `totals_every`
/// until `cancel` fires.
pub async fn summaries(
    view: Arc<EngineView>,
    every: Duration,
    totals_every: Duration,
    cancel: CancellationToken,
) {
    let mut last = (Instant::now(), view.totals().0);
    let mut tick = tokio::time::interval(every);
    let mut totals_tick = tokio::time::interval(totals_every.max(Duration::from_secs(1)));
    tick.tick().await;
    totals_tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = totals_tick.tick() => {
                log_totals(&view);
                continue;
            }
            () = cancel.cancelled() => return,
        }
        let (entries, matches) = view.totals();
        let now = Instant::now();
        let rate = (entries - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        last = (now, entries);
        let logs: Vec<String> = view
            .logs()
            .iter()
            .map(|l| {
                let mut s = format!(
                    "{}={} {}/{}",
                    l.name,
                    l.state().as_str(),
                    l.fetchers_active.load(std::sync::atomic::Ordering::Relaxed),
                    l.fetchers_allowed
                        .load(std::sync::atomic::Ordering::Relaxed),
                );
                // The pace (budget times the AIMD share) and the budget.
                if let Some(b) = l.budget() {
                    let pace = l.pace().map(fmt_rate).unwrap_or_else(|| "-".into());
                    s.push_str(&format!(" @{pace}/s [{}]", describe_budget(&b)));
                }
                if let Some(c) = l.cooldown() {
                    let left = c
                        .until
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    s.push_str(&format!(" cooling down {} ({})", fmt_span(left), c.reason));
                }
                s
            })
            .collect();
        tracing::info!(
            entries_per_second = rate.round() as u64,
            entries,
            matches,
            uploaded = EngineView::get(&view.uploaded),
            rate_limited = view.logs().iter().map(|l| LogStats::get(&l.rate_limited)).sum::<u64>(),
            tasks.active = view.active_tasks.load(std::sync::atomic::Ordering::Relaxed),
            tasks.done = EngineView::get(&view.tasks_done),
            spool.batches = EngineView::get(&view.spool_batches),
            manager = %view.manager_state(),
            logs = %logs.join(", "),
            "summary"
        );
    }
}

/// One log for the totals line: `host/path .jp=0.011% left=3200 eta=12s`.
fn log_outlook(l: &LogStats) -> String {
    let name = l
        .name
        .strip_prefix("https://")
        .or_else(|| l.name.strip_prefix("http://"))
        .unwrap_or(&l.name)
        .trim_end_matches('/');
    let ratio = fmt_ratio(LogStats::get(&l.matches), LogStats::get(&l.entries));
    match l.outlook() {
        Some(o) => format!(
            "{name} .jp={ratio} left={} eta={}",
            o.remaining,
            fmt_eta(o.eta())
        ),
        None => format!("{name} .jp={ratio} left={UNKNOWN} eta={UNKNOWN}"),
    }
}

/// The totals line: this session's, the name's lifetime ones (as the
/// manager last told them), and each log's outlook.
fn log_totals(view: &EngineView) {
    let (entries, matches) = view.totals();
    let tasks_done = EngineView::get(&view.tasks_done);
    let logs: Vec<String> = view.logs().iter().map(|l| log_outlook(l)).collect();
    let logs = logs.join(", ");
    match view.standing() {
        Some(s) => tracing::info!(
            session.entries = entries,
            session.matches = matches,
            session.jp_ratio = %fmt_ratio(matches, entries),
            session.tasks_done = tasks_done,
            lifetime.entries = s.entries,
            lifetime.matches = s.matches,
            lifetime.jp_ratio = %fmt_ratio(s.matches, s.entries),
            lifetime.tasks_done = s.tasks_done,
            rank = %s.rank.map_or_else(|| "none".to_owned(), |r| r.to_string()),
            rank_yesterday = %s.rank_yesterday.map_or_else(|| "none".to_owned(), |r| r.to_string()),
            rank_of = s.of,
            machines = s.machines,
            dashboard = %s.page_url.as_deref().unwrap_or(UNKNOWN),
            logs = %logs,
            "totals"
        ),
        None => tracing::info!(
            session.entries = entries,
            session.matches = matches,
            session.jp_ratio = %fmt_ratio(matches, entries),
            session.tasks_done = tasks_done,
            lifetime = "not known yet (the manager has not answered)",
            logs = %logs,
            "totals"
        ),
    }
}
