//! The headless frontend (`--no-tui`): logs to stdout (human or JSON) and to
//! daily files, and prints a summary line every 10 seconds (per log: state,
//! fetchers, and when the manager gave one the pace and budget, and any
//! cooldown).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use worker_engine::stats::LogStats;
use worker_engine::view::{EngineView, describe_budget, fmt_rate, fmt_span};

/// Prints a summary every `every` until `cancel` fires.
pub async fn summaries(view: Arc<EngineView>, every: Duration, cancel: CancellationToken) {
    let mut last = (Instant::now(), view.totals().0);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
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
