//! [`TaskStore`]: the only code that changes a task. One method per
//! transition; each locks the row(s) it changes, checks its precondition
//! (who holds the lease, which state the task is in, what the range allows)
//! and retries deadlocks. Callers never write `UPDATE tasks` themselves.
//!
//! The lifecycle:
//! ```text
//!  planned -> pending --claim--> leased --complete (proven)--> done
//!               ^                  |  \--refuse (hash not the log's)--> pending (whole, excluded)
//!               |                  |   \--second independent refusal + manager's fetch--> log_fault
//!               +--fail/expire/revoke (whole: the next lease starts at `start`)
//!  done --flag of its worker / failed audit--> pending (whole)
//! ```
//! A lease that ends without `complete` always returns the task whole:
//! nothing a worker reports moves the point from which matches are
//! required. Every lease that ends is counted once, by the transition that
//! ends it and in its transaction, in `task_outcomes` ([`crate::ops`]).

mod checks;
mod claim;
mod complete;
mod lease;
mod plan;
mod upload;

use std::collections::BTreeMap;

use sqlx::{MySqlConnection, MySqlPool};

use crate::error::Result;
use crate::limits::{now_ms, placeholders};
use crate::rows::{TASK_COLUMNS, TaskRow};

pub use checks::{CheckSets, Evidence};
pub use claim::{Claimed, Claimer, Idle};
pub use complete::{Refused, VerifiedHash};
pub use lease::{Heartbeat, ReportState};
pub use upload::UploadLease;

/// The store of tasks over one pool.
#[derive(Debug, Clone)]
pub struct TaskStore {
    pool: MySqlPool,
    lease_ms: i64,
}

/// Per-log deltas of one report, for the per-minute statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub entries: u64,
    pub matches: u64,
    pub errors: u64,
    pub rate_limited: u64,
}

impl Delta {
    fn add(&mut self, o: &Delta) {
        self.entries = self.entries.saturating_add(o.entries);
        self.matches = self.matches.saturating_add(o.matches);
        self.errors = self.errors.saturating_add(o.errors);
        self.rate_limited = self.rate_limited.saturating_add(o.rate_limited);
    }

    fn is_zero(&self) -> bool {
        *self == Delta::default()
    }
}

/// SQL that sets `col` to `col + add`, saturating at the BIGINT UNSIGNED
/// maximum instead of failing with error 1690.
pub(crate) fn sat_add(col: &str, add: &str) -> String {
    format!("{col} = LEAST(18446744073709551615, CAST({col} AS DECIMAL(21)) + {add})")
}

/// Adds `add` (entries, matches, errors, rate-limit answers) to a task's
/// totals, saturating.
pub(crate) fn fold_totals(add: [&str; 4]) -> String {
    ["entries", "matches", "errors", "rate_limited"]
        .iter()
        .zip(add)
        .map(|(col, a)| sat_add(col, a))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most rate-limit answers a lease of `span` entries may report: a
/// bound so that no counter a worker sends can overflow a column.
pub fn rate_limit_cap(span: u64) -> u64 {
    span.saturating_mul(4).saturating_add(100_000)
}

impl TaskStore {
    /// A store whose leases live `lease_ms` without progress.
    pub fn new(pool: MySqlPool, lease_ms: u64) -> Self {
        TaskStore {
            pool,
            lease_ms: i64::try_from(lease_ms).unwrap_or(i64::MAX / 4),
        }
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    fn expiry(&self) -> i64 {
        now_ms().saturating_add(self.lease_ms)
    }

    /// One task, read without a lock.
    pub async fn get(&self, task_id: u64) -> Result<Option<TaskRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"))
                .bind(task_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// Locks `ids` (in id order, so concurrent callers cannot deadlock on each other).
async fn lock_tasks(conn: &mut MySqlConnection, ids: &[u64]) -> Result<Vec<TaskRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({}) ORDER BY id FOR UPDATE",
        placeholders(sorted.len())
    );
    let mut q = sqlx::query_as::<_, TaskRow>(&sql);
    for id in &sorted {
        q = q.bind(id);
    }
    Ok(q.fetch_all(conn).await?)
}

async fn lock_one(conn: &mut MySqlConnection, task_id: u64) -> Result<TaskRow> {
    lock_tasks(conn, &[task_id])
        .await?
        .pop()
        .ok_or_else(|| crate::Error::no_task(task_id))
}

/// Adds per-log deltas to `stats_minute` and the worker's totals.
async fn record_stats(
    conn: &mut MySqlConnection,
    worker_id: u64,
    deltas: &BTreeMap<u64, Delta>,
) -> Result<()> {
    let minute = now_ms() / 60_000 * 60;
    let mut total = Delta::default();
    for (log_id, d) in deltas {
        if d.is_zero() {
            continue;
        }
        total.add(d);
        sqlx::query(&format!(
            "INSERT INTO stats_minute (minute, worker_id, log_id, entries, matches, errors, rate_limit_hits) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE {}, {}, {}, {}",
            sat_add("entries", "VALUES(entries)"),
            sat_add("matches", "VALUES(matches)"),
            sat_add("errors", "VALUES(errors)"),
            sat_add("rate_limit_hits", "VALUES(rate_limit_hits)"),
        ))
        .bind(minute)
        .bind(worker_id)
        .bind(log_id)
        .bind(d.entries)
        .bind(d.matches)
        .bind(d.errors)
        .bind(d.rate_limited)
        .execute(&mut *conn)
        .await?;
    }
    if total.entries > 0 || total.matches > 0 {
        sqlx::query(&format!(
            "UPDATE workers SET {}, {} WHERE id = ?",
            sat_add("entries", "?"),
            sat_add("matches", "?"),
        ))
        .bind(total.entries)
        .bind(total.matches)
        .bind(worker_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
