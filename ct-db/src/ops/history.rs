//! Snapshots over time: each log's [`Progress`](crate::progress::Progress)
//! once an hour (`log_progress_history`), the leaderboard once a day
//! (`rank_snapshots`), both taken by [`snapshot`]; and what is read from
//! them: progress over time, the overall progress with an ETA at the
//! current rate, and ranks with their change since the day before.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::error::{Result, retrying};
use crate::progress::progress_all;
use crate::workers::by_name;

use super::outcomes::{OutcomeTotals, compact, completed_entries_since, totals_since};
use super::{HOUR_MS, day_of, hour_of};

/// The most names a rank snapshot holds (the top of the leaderboard).
pub const MAX_RANKED: u32 = 10_000;

/// What one [`snapshot`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// The hour whose progress rows were written (Unix ms of its start).
    pub hour: i64,
    /// The day whose ranks were written (Unix ms of its start, UTC).
    pub day: i64,
    /// Logs recorded.
    pub logs: u64,
    /// Names ranked.
    pub names: u64,
    /// Rows of earlier hours' outcomes folded into one per shard group.
    pub outcome_rows_folded: u64,
}

/// Records every log's progress under the hour of `now`, today's ranks
/// under the day of `now` (replacing earlier snapshots of that hour and
/// day), and folds the shards of the hours before `now`'s.
pub async fn snapshot(pool: &MySqlPool, now: i64) -> Result<Snapshot> {
    let hour = hour_of(now);
    let day = day_of(now);
    let logs = snapshot_progress(pool, hour, now).await?;
    let names = snapshot_ranks(pool, day, now).await?;
    let outcome_rows_folded = compact(pool, hour).await?;
    Ok(Snapshot {
        hour,
        day,
        logs,
        names,
        outcome_rows_folded,
    })
}

async fn snapshot_progress(pool: &MySqlPool, hour: i64, now: i64) -> Result<u64> {
    let all = progress_all(pool).await?;
    if all.is_empty() {
        return Ok(0);
    }
    let mut sql = String::from(
        "INSERT INTO log_progress_history (log_id, hour, taken_at, tree_size, entries_collected, \
         verified_until, entries_faulty, entries_missing) VALUES ",
    );
    sql.push_str(&vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; all.len()].join(", "));
    sql.push_str(
        " ON DUPLICATE KEY UPDATE taken_at = VALUES(taken_at), tree_size = VALUES(tree_size), \
         entries_collected = VALUES(entries_collected), verified_until = VALUES(verified_until), \
         entries_faulty = VALUES(entries_faulty), entries_missing = VALUES(entries_missing)",
    );
    let mut q = sqlx::query(&sql);
    let mut sorted: Vec<_> = all.values().collect();
    sorted.sort_by_key(|p| p.log_id);
    for p in sorted {
        q = q
            .bind(p.log_id)
            .bind(hour)
            .bind(now)
            .bind(p.tree_size)
            .bind(p.entries_verified)
            .bind(p.verified_until)
            .bind(p.entries_faulty)
            .bind(p.entries_missing);
    }
    q.execute(pool).await?;
    Ok(all.len() as u64)
}

async fn snapshot_ranks(pool: &MySqlPool, day: i64, now: i64) -> Result<u64> {
    // The one definition of the leaderboard: flagged and revoked names are
    // not in it, so they are never ranked.
    let board = by_name(pool, MAX_RANKED, 0).await?;
    retrying(|| async {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM rank_snapshots WHERE day = ?")
            .bind(day)
            .execute(&mut *tx)
            .await?;
        for (n, chunk) in board.chunks(500).enumerate() {
            let sql = format!(
                "INSERT INTO rank_snapshots (day, name, place, entries, matches, tasks_done, machines, taken_at) \
                 VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (i, t) in chunk.iter().enumerate() {
                let place = u32::try_from(n * 500 + i + 1).unwrap_or(u32::MAX);
                q = q
                    .bind(day)
                    .bind(&t.name)
                    .bind(place)
                    .bind(t.entries)
                    .bind(t.matches)
                    .bind(t.tasks_done)
                    .bind(t.machines)
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(board.len() as u64)
    })
    .await
}

/// One log's progress at the last snapshot of an hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressPoint {
    pub log_id: u64,
    /// The start of the hour (Unix ms).
    pub hour: i64,
    /// When the snapshot was taken (Unix ms).
    pub taken_at: i64,
    /// The largest verified tree head.
    pub tree_size: u64,
    /// Entries in collected, proven ranges.
    pub entries_collected: u64,
    /// `[start, verified_until)` is collected and proven.
    pub verified_until: u64,
    /// Entries the log serves with bytes that are not in its tree.
    pub entries_faulty: u64,
    /// Entries up to `tree_size` not collected yet.
    pub entries_missing: u64,
}

/// Progress over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressHistory {
    /// The start of the first hour (Unix ms).
    pub since: i64,
    pub log_id: Option<u64>,
    /// By log, then hour; hours without a snapshot are absent.
    pub points: Vec<ProgressPoint>,
}

const POINT_COLUMNS: &str = "log_id, hour, taken_at, tree_size, entries_collected, verified_until, \
    entries_faulty, entries_missing";

/// Progress per hour from the hour starting at `since`, of one log or of all.
pub async fn progress_history(
    pool: &MySqlPool,
    since: i64,
    log_id: Option<u64>,
) -> Result<ProgressHistory> {
    let points = match log_id {
        Some(id) => {
            sqlx::query_as(&format!(
                "SELECT {POINT_COLUMNS} FROM log_progress_history WHERE log_id = ? AND hour >= ? ORDER BY hour"
            ))
            .bind(id)
            .bind(since)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {POINT_COLUMNS} FROM log_progress_history WHERE hour >= ? ORDER BY log_id, hour"
            ))
            .bind(since)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(ProgressHistory {
        since,
        log_id,
        points,
    })
}

/// One log in the [`Summary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogSummary {
    pub log_id: u64,
    pub enabled: bool,
    /// The latest snapshot of its progress.
    pub progress: ProgressPoint,
    /// `entries_collected` of `tree_size`, in percent (0 before a tree head).
    pub percent_collected: f64,
    /// Entries left: not collected and not the log's fault.
    pub entries_remaining: u64,
    /// Entries of its main tasks completed per hour, over the previous and
    /// the current hour.
    pub entries_per_hour: f64,
    /// Seconds until `entries_remaining` are collected at that rate (0 when
    /// none remain; `None` when nothing was collected in that time).
    pub eta_seconds: Option<u64>,
}

/// The whole collection now: progress of the enabled logs, the rate of the
/// last hour or so, the time left at that rate, and how leases ended in the
/// last day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// When this was computed (Unix ms).
    pub now: i64,
    /// The oldest of the progress snapshots summed (Unix ms); `None`
    /// before the first snapshot.
    pub progress_as_of: Option<i64>,
    /// Enabled logs with a snapshot, summed below.
    pub logs: u64,
    pub tree_size: u64,
    pub entries_collected: u64,
    pub entries_faulty: u64,
    pub entries_remaining: u64,
    /// `entries_collected` of `tree_size`, in percent (0 before a tree head).
    pub percent_collected: f64,
    /// Entries of main tasks completed per hour, over the time from the
    /// start of the previous hour to `now`.
    pub entries_per_hour: f64,
    /// Seconds until `entries_remaining` are collected at that rate (0 when
    /// none remain; `None` when nothing was collected in that time).
    pub eta_seconds: Option<u64>,
    /// `now` plus `eta_seconds` (Unix ms).
    pub eta_at: Option<i64>,
    /// Leases that ended in the current hour and the 23 before it.
    pub last_24h: OutcomeTotals,
    /// Every log with a snapshot, enabled or not, by id.
    pub per_log: Vec<LogSummary>,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 100.0 / whole as f64).min(100.0)
    }
}

fn eta_seconds(remaining: u64, per_hour: f64) -> Option<u64> {
    if remaining == 0 {
        return Some(0);
    }
    if per_hour <= 0.0 || !per_hour.is_finite() {
        return None;
    }
    let secs = (remaining as f64 / per_hour * 3600.0).ceil();
    // Beyond u64 seconds is no estimate at all.
    (secs < 1.8e19).then_some(secs as u64)
}

#[derive(sqlx::FromRow)]
struct Latest {
    enabled: bool,
    #[sqlx(flatten)]
    point: ProgressPoint,
}

/// The [`Summary`] at `now`: from the latest progress snapshot of each log
/// and the outcomes since the start of the previous hour (the rate) and of
/// the last 24 hours.
pub async fn summary(pool: &MySqlPool, now: i64) -> Result<Summary> {
    let latest: Vec<Latest> = sqlx::query_as(
        "SELECT l.enabled, h.log_id, h.hour, h.taken_at, h.tree_size, h.entries_collected, \
         h.verified_until, h.entries_faulty, h.entries_missing \
         FROM logs l JOIN log_progress_history h ON h.log_id = l.id \
         AND h.hour = (SELECT MAX(x.hour) FROM log_progress_history x WHERE x.log_id = l.id) \
         ORDER BY l.id",
    )
    .fetch_all(pool)
    .await?;
    let window_start = hour_of(now) - HOUR_MS;
    let window_hours = (now - window_start).max(1) as f64 / HOUR_MS as f64;
    let completed = completed_entries_since(pool, window_start).await?;
    let last_24h = totals_since(pool, hour_of(now) - 23 * HOUR_MS).await?;
    let rate = |log: u64| completed.get(&log).copied().unwrap_or(0) as f64 / window_hours;
    let remaining = |p: &ProgressPoint| {
        p.tree_size
            .saturating_sub(p.entries_collected)
            .saturating_sub(p.entries_faulty)
    };
    let mut s = Summary {
        now,
        progress_as_of: None,
        logs: 0,
        tree_size: 0,
        entries_collected: 0,
        entries_faulty: 0,
        entries_remaining: 0,
        percent_collected: 0.0,
        entries_per_hour: 0.0,
        eta_seconds: None,
        eta_at: None,
        last_24h,
        per_log: Vec::with_capacity(latest.len()),
    };
    let mut enabled_ids = BTreeSet::new();
    for Latest { enabled, point: p } in latest {
        if enabled {
            s.logs += 1;
            s.tree_size = s.tree_size.saturating_add(p.tree_size);
            s.entries_collected = s.entries_collected.saturating_add(p.entries_collected);
            s.entries_faulty = s.entries_faulty.saturating_add(p.entries_faulty);
            s.entries_remaining = s.entries_remaining.saturating_add(remaining(&p));
            s.progress_as_of = Some(s.progress_as_of.map_or(p.taken_at, |t| t.min(p.taken_at)));
            enabled_ids.insert(p.log_id);
        }
        let per_hour = rate(p.log_id);
        s.per_log.push(LogSummary {
            log_id: p.log_id,
            enabled,
            percent_collected: percent(p.entries_collected, p.tree_size),
            entries_remaining: remaining(&p),
            entries_per_hour: per_hour,
            eta_seconds: eta_seconds(remaining(&p), per_hour),
            progress: p,
        });
    }
    s.percent_collected = percent(s.entries_collected, s.tree_size);
    s.entries_per_hour = completed
        .iter()
        .filter(|(log, _)| enabled_ids.contains(*log))
        .map(|(_, n)| *n as f64)
        .sum::<f64>()
        / window_hours;
    s.eta_seconds = eta_seconds(s.entries_remaining, s.entries_per_hour);
    s.eta_at = s
        .eta_seconds
        .map(|e| now.saturating_add(i64::try_from(e).unwrap_or(i64::MAX).saturating_mul(1000)));
    Ok(s)
}

/// One name in a rank snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rank {
    /// 1 for the most entries.
    pub place: u32,
    pub name: String,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    pub machines: u64,
    /// Its place in the previous snapshot; `None` when it was not ranked.
    pub previous_place: Option<u32>,
    /// `previous_place - place`: places gained (negative: lost); `None`
    /// when it was not ranked before.
    #[sqlx(skip)]
    pub change: Option<i64>,
}

/// The latest rank snapshot, compared with the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ranks {
    /// The day of the latest snapshot (Unix ms of its start, UTC); `None`
    /// before the first.
    pub day: Option<i64>,
    /// The day of the snapshot compared with (yesterday's, unless the
    /// manager took none that day).
    pub previous_day: Option<i64>,
    /// When the latest snapshot was taken (Unix ms).
    pub taken_at: Option<i64>,
    /// By place.
    pub ranks: Vec<Rank>,
}

/// `limit` places from `offset` of the latest rank snapshot, each with its
/// place in the snapshot of the day before it (or the latest before that).
pub async fn ranks(pool: &MySqlPool, limit: u32, offset: u32) -> Result<Ranks> {
    let (day, taken_at): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT MAX(day), (SELECT MAX(taken_at) FROM rank_snapshots WHERE day = (SELECT MAX(day) FROM rank_snapshots)) \
         FROM rank_snapshots",
    )
    .fetch_one(pool)
    .await?;
    let Some(day) = day else {
        return Ok(Ranks {
            day: None,
            previous_day: None,
            taken_at: None,
            ranks: Vec::new(),
        });
    };
    let previous_day = snapshot_day_before(pool, day).await?;
    let mut ranks: Vec<Rank> = sqlx::query_as(
        "SELECT r.place, r.name, r.entries, r.matches, r.tasks_done, r.machines, p.place AS previous_place \
         FROM rank_snapshots r LEFT JOIN rank_snapshots p ON p.day = ? AND p.name = r.name \
         WHERE r.day = ? AND NOT EXISTS (SELECT 1 FROM identities i JOIN workers w ON w.identity_id = i.id \
           WHERE i.name = r.name AND (w.flagged <> 0 OR w.revoked <> 0)) \
         ORDER BY r.place LIMIT ? OFFSET ?",
    )
    .bind(previous_day.unwrap_or(i64::MIN))
    .bind(day)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    for r in &mut ranks {
        r.change = r.previous_place.map(|p| i64::from(p) - i64::from(r.place));
    }
    Ok(Ranks {
        day: Some(day),
        previous_day,
        taken_at,
        ranks,
    })
}

/// The day of the newest rank snapshot before `day` (Unix ms of its start,
/// UTC); `None` when there is none.
async fn snapshot_day_before(pool: &MySqlPool, day: i64) -> Result<Option<i64>> {
    let (previous,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(day) FROM rank_snapshots WHERE day < ?")
            .bind(day)
            .fetch_one(pool)
            .await?;
    Ok(previous)
}

/// `name`'s place in the newest rank snapshot of a day before `day` (the
/// start of a UTC day, e.g. [`day_of`] now: yesterday's place, or the
/// latest before it when the manager took none yesterday); `None` when
/// there is no such snapshot or the name is not in it.
pub async fn place_before(pool: &MySqlPool, name: &str, day: i64) -> Result<Option<u32>> {
    let Some(previous) = snapshot_day_before(pool, day).await? else {
        return Ok(None);
    };
    let place: Option<(u32,)> =
        sqlx::query_as("SELECT place FROM rank_snapshots WHERE day = ? AND name = ?")
            .bind(previous)
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(place.map(|(p,)| p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_remaining_over_rate() {
        assert_eq!(eta_seconds(0, 0.0), Some(0));
        assert_eq!(eta_seconds(10, 0.0), None);
        assert_eq!(eta_seconds(10, f64::NAN), None);
        assert_eq!(eta_seconds(100, 100.0), Some(3600));
        assert_eq!(eta_seconds(1, 7200.0), Some(1));
        assert_eq!(percent(1, 4), 25.0);
        assert_eq!(percent(1, 0), 0.0);
    }
}
