//! `task_outcomes`: every lease that ends is counted once, by the
//! transition that ends it, in its transaction ([`record_outcome`], one
//! statement), under the hour it ended in, its log, its [`TaskOutcome`],
//! whether it was a check task, and a power-of-two bucket of its duration.
//! Reads sum the shards and buckets back and estimate percentiles from the
//! buckets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::{MySqlConnection, MySqlPool};

use crate::error::Result;
use crate::rows::TaskRow;
use crate::states::TaskOutcome;
use crate::store::sat_add;

use super::{hour_of, sum_u64};

/// Duration buckets: 0 is under 1 s, `k` is `[2^(k-1), 2^k)` s, the last
/// one open-ended.
pub const BUCKETS: u8 = 21;
/// The bucket of a lease whose start was not recorded.
pub const UNTIMED: u8 = 255;
/// Rows of `task_outcomes` per hour, log, outcome, kind and bucket: see the
/// migration.
const SHARDS: u32 = 8;

/// The bucket of a lease of `ms` milliseconds.
pub fn bucket_of(ms: u64) -> u8 {
    let secs = ms / 1000;
    let bits = u64::BITS - secs.leading_zeros();
    u8::try_from(bits).unwrap_or(u8::MAX).min(BUCKETS - 1)
}

/// The bounds of bucket `b` in ms: from, and below (`None`: open-ended).
fn bounds(b: u8) -> (u64, Option<u64>) {
    match b {
        0 => (0, Some(1000)),
        b if b >= BUCKETS - 1 => (1000 << (BUCKETS - 2), None),
        b => (1000 << (b - 1), Some(1000 << b)),
    }
}

/// Counts the end of `t`'s lease as `outcome` at `now` (Unix ms), in the
/// caller's transaction: one upsert into the caller's connection's shard.
pub(crate) async fn record_outcome(
    conn: &mut MySqlConnection,
    t: &TaskRow,
    outcome: TaskOutcome,
    now: i64,
) -> Result<()> {
    let duration = t
        .leased_at
        .map(|at| u64::try_from(now.saturating_sub(at)).unwrap_or(0));
    let bucket = duration.map_or(UNTIMED, bucket_of);
    sqlx::query(&format!(
        "INSERT INTO task_outcomes (hour, log_id, outcome, is_check, bucket, shard, n, entries, \
         duration_ms_sum, duration_ms_max) VALUES (?, ?, ?, ?, ?, CONNECTION_ID() % {SHARDS}, 1, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE {}, {}, {}, duration_ms_max = GREATEST(duration_ms_max, VALUES(duration_ms_max))",
        sat_add("n", "1"),
        sat_add("entries", "VALUES(entries)"),
        sat_add("duration_ms_sum", "VALUES(duration_ms_sum)"),
    ))
    .bind(hour_of(now))
    .bind(t.log_id)
    .bind(outcome)
    .bind(t.check_of != 0)
    .bind(bucket)
    .bind(t.span())
    .bind(duration.unwrap_or(0))
    .bind(duration.unwrap_or(0))
    .execute(conn)
    .await?;
    Ok(())
}

/// Folds the shards of the hours before `before` into shard 0; the rows
/// folded. The sums do not change: the rows read are locked (repeatable
/// read) until the delete, so a late transition of a past hour either lands
/// before and is folded, or waits and stays for the next fold. The shards
/// are listed so that the index range is `(shard, hour < before)` for each,
/// leaving the current hour's rows alone.
pub(super) async fn compact(pool: &MySqlPool, before: i64) -> Result<u64> {
    let shards = (1..SHARDS)
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    crate::error::retrying(|| async {
        let mut tx = pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO task_outcomes (hour, log_id, outcome, is_check, bucket, shard, n, entries, \
             duration_ms_sum, duration_ms_max) \
             SELECT hour, log_id, outcome, is_check, bucket, 0, {}, {}, {}, MAX(duration_ms_max) \
             FROM task_outcomes WHERE shard IN ({shards}) AND hour < ? GROUP BY hour, log_id, outcome, is_check, bucket \
             ON DUPLICATE KEY UPDATE {}, {}, {}, duration_ms_max = GREATEST(duration_ms_max, VALUES(duration_ms_max))",
            sum_u64("n"),
            sum_u64("entries"),
            sum_u64("duration_ms_sum"),
            sat_add("n", "VALUES(n)"),
            sat_add("entries", "VALUES(entries)"),
            sat_add("duration_ms_sum", "VALUES(duration_ms_sum)"),
        ))
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let delete = format!("DELETE FROM task_outcomes WHERE shard IN ({shards}) AND hour < ?");
        let folded = sqlx::query(&delete)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(folded)
    })
    .await
}

/// Leases by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeCounts {
    pub completed: u64,
    pub failed: u64,
    pub expired: u64,
    pub refused: u64,
    pub released: u64,
}

impl OutcomeCounts {
    /// The leases that ended as `outcome`.
    pub fn get(&self, outcome: TaskOutcome) -> u64 {
        match outcome {
            TaskOutcome::Completed => self.completed,
            TaskOutcome::Failed => self.failed,
            TaskOutcome::Expired => self.expired,
            TaskOutcome::Refused => self.refused,
            TaskOutcome::Released => self.released,
        }
    }

    /// Counts `n` more leases that ended as `outcome` (saturating).
    pub fn add(&mut self, outcome: TaskOutcome, n: u64) {
        let slot = match outcome {
            TaskOutcome::Completed => &mut self.completed,
            TaskOutcome::Failed => &mut self.failed,
            TaskOutcome::Expired => &mut self.expired,
            TaskOutcome::Refused => &mut self.refused,
            TaskOutcome::Released => &mut self.released,
        };
        *slot = slot.saturating_add(n);
    }
}

/// Leases of main tasks and of check tasks, apart: a check is counted once,
/// as a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeTotals {
    pub main: OutcomeCounts,
    pub checks: OutcomeCounts,
}

/// Leases ended in one bucket of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DurationBucket {
    /// Durations from this (ms) ...
    pub from_ms: u64,
    /// ... and below this; `None`: no upper bound.
    pub below_ms: Option<u64>,
    pub tasks: u64,
}

/// How long leases lasted, from claim to their end. Percentiles come from
/// the buckets (powers of two seconds): each is the upper bound of the
/// bucket holding it, never above `max_ms`, so the true value is at most
/// that and more than half of it (or under 1 s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Durations {
    /// Leases whose start was recorded (those taken before are left out of
    /// the figures below).
    pub timed: u64,
    pub mean_ms: Option<u64>,
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub max_ms: Option<u64>,
    /// The buckets with leases in them, shortest first.
    pub histogram: Vec<DurationBucket>,
}

/// Bucket counts and sums, folded into [`Durations`].
#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: BTreeMap<u8, u64>,
    sum_ms: u64,
    max_ms: u64,
}

impl Histogram {
    fn add(&mut self, bucket: u8, n: u64, sum_ms: u64, max_ms: u64) {
        if bucket == UNTIMED {
            return;
        }
        let c = self.counts.entry(bucket).or_default();
        *c = c.saturating_add(n);
        self.sum_ms = self.sum_ms.saturating_add(sum_ms);
        self.max_ms = self.max_ms.max(max_ms);
    }

    fn percentile(&self, timed: u64, p: u64) -> Option<u64> {
        // The rank of the p-th percentile, 1-based: ceil(timed * p / 100).
        let want = u64::try_from((u128::from(timed) * u128::from(p)).div_ceil(100)).ok()?;
        let mut seen = 0u64;
        for (b, n) in &self.counts {
            seen = seen.saturating_add(*n);
            if seen >= want.max(1) {
                let (_, below) = bounds(*b);
                return Some(below.unwrap_or(self.max_ms).min(self.max_ms));
            }
        }
        None
    }

    fn durations(&self) -> Durations {
        let timed = self.counts.values().fold(0u64, |a, n| a.saturating_add(*n));
        if timed == 0 {
            return Durations::default();
        }
        Durations {
            timed,
            mean_ms: Some(self.sum_ms / timed),
            p50_ms: self.percentile(timed, 50),
            p90_ms: self.percentile(timed, 90),
            max_ms: Some(self.max_ms),
            histogram: self
                .counts
                .iter()
                .map(|(b, n)| {
                    let (from_ms, below_ms) = bounds(*b);
                    DurationBucket {
                        from_ms,
                        below_ms,
                        tasks: *n,
                    }
                })
                .collect(),
        }
    }
}

/// The leases of one hour that ended one way, of main or of check tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeRow {
    /// The start of the hour (Unix ms).
    pub hour: i64,
    pub outcome: TaskOutcome,
    /// Check tasks (hidden-entry checks), counted here only.
    pub check: bool,
    /// Leases.
    pub tasks: u64,
    /// Entries of their ranges.
    pub entries: u64,
    pub durations: Durations,
}

/// Outcomes per hour, of every log or of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outcomes {
    /// The start of the first hour (Unix ms); rows run to the current hour.
    pub since: i64,
    /// The log, or `None` for every log together.
    pub log_id: Option<u64>,
    /// By hour, then outcome, main tasks before checks; only what happened.
    pub rows: Vec<OutcomeRow>,
}

#[derive(sqlx::FromRow)]
struct BucketRow {
    hour: i64,
    outcome: TaskOutcome,
    is_check: bool,
    bucket: u8,
    n: u64,
    entries: u64,
    duration_ms_sum: u64,
    duration_ms_max: u64,
}

/// Outcomes per hour from the hour starting at `since`, of one log or of
/// all.
pub async fn outcomes(pool: &MySqlPool, since: i64, log_id: Option<u64>) -> Result<Outcomes> {
    read_outcomes(pool, since, log_id, true).await
}

/// Outcomes from the hour starting at `since`, of one log or of all, each
/// outcome and kind summed over the whole window: one row each, whose
/// `hour` is `since` and whose durations are those of all its leases.
pub async fn outcomes_over(pool: &MySqlPool, since: i64, log_id: Option<u64>) -> Result<Outcomes> {
    read_outcomes(pool, since, log_id, false).await
}

async fn read_outcomes(
    pool: &MySqlPool,
    since: i64,
    log_id: Option<u64>,
    per_hour: bool,
) -> Result<Outcomes> {
    let sql = format!(
        "SELECT {}, outcome, is_check, bucket, {} AS n, {} AS entries, {} AS duration_ms_sum, \
         CAST(MAX(duration_ms_max) AS UNSIGNED) AS duration_ms_max \
         FROM task_outcomes WHERE hour >= ? {} GROUP BY {}outcome, is_check, bucket",
        if per_hour {
            "hour"
        } else {
            "MIN(hour) AS hour"
        },
        sum_u64("n"),
        sum_u64("entries"),
        sum_u64("duration_ms_sum"),
        if log_id.is_some() {
            "AND log_id = ?"
        } else {
            ""
        },
        if per_hour { "hour, " } else { "" },
    );
    let mut q = sqlx::query_as::<_, BucketRow>(&sql).bind(since);
    if let Some(id) = log_id {
        q = q.bind(id);
    }
    /// One row being summed.
    struct Sum {
        outcome: TaskOutcome,
        tasks: u64,
        entries: u64,
        histogram: Histogram,
    }
    // By hour, outcome (by its name) and kind.
    let mut by: BTreeMap<(i64, &'static str, bool), Sum> = BTreeMap::new();
    for r in q.fetch_all(pool).await? {
        // Over the window, every row is the window's (its MIN(hour) aside).
        let hour = if per_hour { r.hour } else { since };
        let sum = by
            .entry((hour, r.outcome.as_str(), r.is_check))
            .or_insert_with(|| Sum {
                outcome: r.outcome,
                tasks: 0,
                entries: 0,
                histogram: Histogram::default(),
            });
        sum.tasks = sum.tasks.saturating_add(r.n);
        sum.entries = sum.entries.saturating_add(r.entries);
        sum.histogram
            .add(r.bucket, r.n, r.duration_ms_sum, r.duration_ms_max);
    }
    Ok(Outcomes {
        since,
        log_id,
        rows: by
            .into_iter()
            .map(|((hour, _, check), sum)| OutcomeRow {
                hour,
                outcome: sum.outcome,
                check,
                tasks: sum.tasks,
                entries: sum.entries,
                durations: sum.histogram.durations(),
            })
            .collect(),
    })
}

/// Every lease that ended from the hour starting at `since` on, by outcome.
pub async fn totals_since(pool: &MySqlPool, since: i64) -> Result<OutcomeTotals> {
    let rows: Vec<(TaskOutcome, bool, u64)> = sqlx::query_as(&format!(
        "SELECT outcome, is_check, {} FROM task_outcomes WHERE hour >= ? GROUP BY outcome, is_check",
        sum_u64("n")
    ))
    .bind(since)
    .fetch_all(pool)
    .await?;
    let mut t = OutcomeTotals::default();
    for (outcome, check, n) in rows {
        if check {
            t.checks.add(outcome, n);
        } else {
            t.main.add(outcome, n);
        }
    }
    Ok(t)
}

/// Entries of the main tasks completed from the hour starting at `since`
/// on, per log.
pub(super) async fn completed_entries_since(
    pool: &MySqlPool,
    since: i64,
) -> Result<BTreeMap<u64, u64>> {
    let rows: Vec<(u64, u64)> = sqlx::query_as(&format!(
        "SELECT log_id, {} FROM task_outcomes WHERE hour >= ? AND outcome = ? AND is_check = 0 \
         GROUP BY log_id",
        sum_u64("entries")
    ))
    .bind(since)
    .bind(TaskOutcome::Completed)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_seconds() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(999), 0);
        assert_eq!(bucket_of(1000), 1);
        assert_eq!(bucket_of(1999), 1);
        assert_eq!(bucket_of(2000), 2);
        assert_eq!(bucket_of(3999), 2);
        assert_eq!(bucket_of(4000), 3);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bounds(0), (0, Some(1000)));
        assert_eq!(bounds(3), (4000, Some(8000)));
        assert_eq!(bounds(BUCKETS - 1), (1000 << 19, None));
        // Every duration lies in its bucket's bounds.
        for ms in [0, 1, 999, 1000, 65_432, 1 << 30, (1000 << 19) + 5] {
            let (from, below) = bounds(bucket_of(ms));
            assert!(from <= ms && below.is_none_or(|b| ms < b), "{ms}");
        }
    }

    #[test]
    fn percentiles_are_bucket_bounds_at_most_the_max() {
        let mut h = Histogram::default();
        // Nine leases of 1.5 s (bucket 1), one of 10 s (bucket 4), one untimed.
        h.add(1, 9, 9 * 1500, 1500);
        h.add(4, 1, 10_000, 10_000);
        h.add(UNTIMED, 1, 0, 0);
        let d = h.durations();
        assert_eq!(d.timed, 10);
        assert_eq!(d.mean_ms, Some((9 * 1500 + 10_000) / 10));
        assert_eq!(d.p50_ms, Some(2000));
        assert_eq!(d.p90_ms, Some(2000));
        assert_eq!(d.max_ms, Some(10_000));
        assert_eq!(d.histogram.len(), 2);
        let mut short = Histogram::default();
        short.add(0, 3, 60, 30);
        let d = short.durations();
        assert_eq!(
            (d.p50_ms, d.p90_ms, d.max_ms),
            (Some(30), Some(30), Some(30))
        );
        assert_eq!(Histogram::default().durations(), Durations::default());
    }
}
