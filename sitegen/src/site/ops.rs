//! The operations page (`ops/index.html`): the whole collection's progress
//! with an ETA at the current rate, how leases ended hour by hour over the
//! last 48 hours and how long they lasted, the current leases per public
//! name and log, each log's progress over the last 7 days, and the latest
//! daily leaderboard with each name's change since the day before.
//!
//! Everything is read through [`ct_db::ops`], as the manager's `/v1/ops/*`
//! answer it. Names the public leaderboard leaves out (a machine of theirs
//! was flagged or revoked) are left out here too, and nothing names a
//! machine or its address.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use ct_db::TaskOutcome;
use ct_db::ops::{
    self, HOUR_MS, LeaseGroup, LogSummary, OutcomeCounts, Outcomes, ProgressHistory, ProgressPoint,
    Rank, Ranks, Summary, since_hours,
};
use minijinja::{Value, context};
use serde::Serialize;
use sqlx::MySqlPool;

use super::Site;
use super::workers::Identity;
use crate::charts::{self, Bar, Stack};
use crate::db::LogRow;
use crate::error::Result;
use crate::templates;

/// Hours of the outcome chart and table.
pub const OUTCOME_HOURS: u32 = 48;
/// Hours of the progress charts.
pub const PROGRESS_HOURS: u32 = 7 * 24;
/// Places of the daily leaderboard listed.
const RANKS_LISTED: usize = 100;

/// Everything the operations page shows.
#[derive(Debug, Clone)]
pub struct OpsData {
    pub summary: Summary,
    /// The last [`OUTCOME_HOURS`] hours, per hour.
    pub hourly: Outcomes,
    /// The same hours, each outcome and kind summed (the durations).
    pub window: Outcomes,
    pub leases: Vec<LeaseGroup>,
    /// The last [`PROGRESS_HOURS`] hours.
    pub progress: ProgressHistory,
    /// The latest daily snapshot, whole (its previous places give the
    /// workers list its change since yesterday).
    pub ranks: Ranks,
}

impl OpsData {
    pub async fn load(pool: &MySqlPool, now_ms: i64) -> Result<Self> {
        let since = since_hours(now_ms, OUTCOME_HOURS);
        let (summary, hourly, window, leases, progress, ranks) = tokio::try_join!(
            ops::summary(pool, now_ms),
            ops::outcomes(pool, since, None),
            ops::outcomes_over(pool, since, None),
            ops::leases_by_name(pool),
            ops::progress_history(pool, since_hours(now_ms, PROGRESS_HOURS), None),
            ops::ranks(pool, ops::MAX_RANKED, 0),
        )?;
        Ok(Self {
            summary,
            hourly,
            window,
            leases,
            progress,
            ranks,
        })
    }
}

/// The outcomes shown, in the order of the chart's series.
const OUTCOMES: [TaskOutcome; 5] = [
    TaskOutcome::Completed,
    TaskOutcome::Failed,
    TaskOutcome::Expired,
    TaskOutcome::Refused,
    TaskOutcome::Released,
];

/// Leases that ended in one hour, main tasks and checks together.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct HourView {
    at: i64,
    counts: OutcomeCounts,
    /// Of them, check tasks.
    checks: u64,
}

/// Every hour of the window, oldest first, hours without an ended lease
/// too.
fn hours(o: &Outcomes, count: u32) -> Vec<HourView> {
    let mut by: BTreeMap<i64, HourView> = (0..i64::from(count))
        .map(|i| {
            let at = o.since + i * HOUR_MS;
            (
                at,
                HourView {
                    at,
                    ..HourView::default()
                },
            )
        })
        .collect();
    for r in &o.rows {
        let h = by.entry(r.hour).or_insert(HourView {
            at: r.hour,
            ..HourView::default()
        });
        h.counts.add(r.outcome, r.tasks);
        if r.check {
            h.checks = h.checks.saturating_add(r.tasks);
        }
    }
    by.into_values().collect()
}

/// One log's progress: its latest figures (with its rate and ETA) and the
/// change over the 24 hours before them.
#[derive(Debug, Clone, Serialize)]
struct LogProgress {
    log: String,
    latest: LogSummary,
    /// Entries collected since the snapshot 24 hours before the latest;
    /// `None` when there is none of that hour.
    gained_24h: Option<i64>,
    chart: Value,
}

/// The entries collected gained since the snapshot 24 hours before the
/// latest of `points` (one log's, oldest first).
fn gained_24h(points: &[&ProgressPoint], latest: &ProgressPoint) -> Option<i64> {
    let before = points
        .iter()
        .find(|p| p.hour == latest.hour - 24 * HOUR_MS)?;
    let now = i128::from(latest.entries_collected);
    i64::try_from(now - i128::from(before.entries_collected)).ok()
}

impl Site {
    /// The operations page; `workers` are the leaderboard's names (links,
    /// and the only names shown).
    pub(super) fn render_ops(
        &self,
        ops: &OpsData,
        workers: &[Identity],
        logs: &[LogRow],
        dir: &Path,
        common: &Value,
    ) -> Result<usize> {
        let tz = &self.config().timezone;
        let hour_label =
            |at: i64, pattern: &str| templates::fmt_time(at, tz, pattern).unwrap_or_default();
        let page_of: HashMap<&str, i64> = workers.iter().map(|w| (w.name.as_str(), w.id)).collect();
        let log_name: HashMap<u64, &str> = logs
            .iter()
            .filter_map(|l| Some((u64::try_from(l.id).ok()?, l.description.as_str())))
            .collect();
        let log_label = |id: u64| {
            log_name
                .get(&id)
                .filter(|d| !d.is_empty())
                .map_or_else(|| format!("log {id}"), |d| (*d).to_owned())
        };

        // Outcomes per hour.
        let hourly = hours(&ops.hourly, OUTCOME_HOURS);
        let series: Vec<String> = OUTCOMES.iter().map(|o| o.as_str().to_owned()).collect();
        let columns: Vec<Stack> = hourly
            .iter()
            .map(|h| Stack {
                label: hour_label(h.at, "%H"),
                tooltip: hour_label(h.at, "%m-%d %H:00"),
                values: OUTCOMES.iter().map(|o| h.counts.get(*o) as f64).collect(),
            })
            .collect();
        let chart_outcomes = charts::stacked_chart(
            "Leases ended per hour by outcome, last 48 hours",
            &series,
            &columns,
            false,
            6,
        );
        let mut window = OutcomeCounts::default();
        for h in &hourly {
            for o in OUTCOMES {
                window.add(o, h.counts.get(o));
            }
        }

        // Leases now, of the leaderboard's names.
        let leases: Vec<Value> = ops
            .leases
            .iter()
            .map(|l| {
                context! {
                    lease => l,
                    log => log_label(l.log_id),
                    page => page_of.get(l.name.as_str()),
                }
            })
            .collect();

        // Progress per log.
        let mut points: BTreeMap<u64, Vec<&ProgressPoint>> = BTreeMap::new();
        for p in &ops.progress.points {
            points.entry(p.log_id).or_default().push(p);
        }
        let progress: Vec<LogProgress> = ops
            .summary
            .per_log
            .iter()
            .map(|s| {
                let mine = points.get(&s.log_id).map_or(&[][..], Vec::as_slice);
                let at: HashMap<i64, &ProgressPoint> = mine.iter().map(|p| (p.hour, *p)).collect();
                let bars: Vec<Bar> = (0..i64::from(PROGRESS_HOURS))
                    .map(|i| {
                        let hour = ops.progress.since + i * HOUR_MS;
                        let when = hour_label(hour, "%m-%d %H:00");
                        match at.get(&hour) {
                            Some(p) => Bar {
                                label: hour_label(hour, "%m-%d"),
                                tooltip: format!(
                                    "{when}: {} of {} collected ({}%)",
                                    templates::num(Value::from(p.entries_collected)),
                                    templates::num(Value::from(p.tree_size)),
                                    templates::pct(p.entries_collected as f64, p.tree_size as f64),
                                ),
                                value: p.entries_collected as f64,
                            },
                            None => Bar {
                                label: hour_label(hour, "%m-%d"),
                                tooltip: format!("{when}: no snapshot"),
                                value: 0.0,
                            },
                        }
                    })
                    .collect();
                let log = log_label(s.log_id);
                let chart = charts::bar_chart(
                    &format!("Entries of {log} collected, hour by hour, last 7 days"),
                    &bars,
                    24,
                );
                LogProgress {
                    log,
                    latest: s.clone(),
                    gained_24h: gained_24h(mine, &s.progress),
                    chart: Value::from_safe_string(chart),
                }
            })
            .collect();

        // The daily leaderboard, of the names still on it.
        let public: HashSet<&str> = workers.iter().map(|w| w.name.as_str()).collect();
        let ranks: Vec<Value> = ops
            .ranks
            .ranks
            .iter()
            .filter(|r| public.contains(r.name.as_str()))
            .take(RANKS_LISTED)
            .map(|r: &Rank| context! { rank => r, page => page_of.get(r.name.as_str()) })
            .collect();

        self.page(
            dir,
            "ops/index.html",
            "ops.html",
            context! {
                root => "../",
                section => "ops",
                summary => &ops.summary,
                hours => OUTCOME_HOURS,
                chart_outcomes => Value::from_safe_string(chart_outcomes),
                series => series,
                hourly => hourly.iter().rev().collect::<Vec<_>>(),
                window => window,
                durations => &ops.window.rows,
                leases => leases,
                log_progress => progress,
                ranks => ranks,
                ranks_day => ops.ranks.day,
                ranks_previous_day => ops.ranks.previous_day,
                ..common.clone()
            },
        )?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_db::ops::{Durations, OutcomeRow};

    fn row(hour: i64, outcome: TaskOutcome, check: bool, tasks: u64) -> OutcomeRow {
        OutcomeRow {
            hour,
            outcome,
            check,
            tasks,
            entries: 0,
            durations: Durations::default(),
        }
    }

    #[test]
    fn every_hour_is_listed_with_checks_among_the_counts() {
        let o = Outcomes {
            since: 10 * HOUR_MS,
            log_id: None,
            rows: vec![
                row(10 * HOUR_MS, TaskOutcome::Completed, false, 2),
                row(10 * HOUR_MS, TaskOutcome::Completed, true, 1),
                row(12 * HOUR_MS, TaskOutcome::Expired, false, 3),
            ],
        };
        let h = hours(&o, 3);
        assert_eq!(h.len(), 3);
        assert_eq!((h[0].counts.completed, h[0].checks), (3, 1));
        assert_eq!(h[1].counts, OutcomeCounts::default());
        assert_eq!((h[2].at, h[2].counts.expired), (12 * HOUR_MS, 3));
    }

    #[test]
    fn gains_compare_with_the_same_hour_a_day_before() {
        let p = |hour: i64, entries_collected: u64| ProgressPoint {
            log_id: 1,
            hour,
            taken_at: hour,
            tree_size: 1000,
            entries_collected,
            verified_until: 0,
            entries_faulty: 0,
            entries_missing: 0,
        };
        let (a, b, c) = (p(0, 10), p(24 * HOUR_MS, 300), p(25 * HOUR_MS, 256));
        assert_eq!(gained_24h(&[&a, &b], &b), Some(290));
        assert_eq!(gained_24h(&[&a, &b, &c], &c), None);
        let shrunk = p(48 * HOUR_MS, 100);
        assert_eq!(gained_24h(&[&b, &shrunk], &shrunk), Some(-200));
    }
}
