//! Who holds what now: the current leases per public name and log (what
//! the public sees: names and counts, the names the leaderboard leaves out
//! left out here too), every lease in detail (the admin's), and the
//! leaderboard with the flagged and revoked names in it (the admin's).
//! Leases are read through the task state index: only leased rows.

use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::error::Result;

use super::sum_u64;

/// The most rows [`leases_by_name`] answers.
pub const MAX_LEASE_GROUPS: u32 = 10_000;

/// The current leases of one public name on one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseGroup {
    pub name: String,
    pub log_id: u64,
    pub leases: u64,
    /// Of them, check tasks.
    pub checks: u64,
    /// Entries of their ranges.
    pub entries: u64,
    /// Entries of their ranges fetched so far, as the workers report.
    pub entries_reported: u64,
    /// When the oldest of them began (Unix ms), if recorded.
    pub oldest_leased_at: Option<i64>,
}

/// The current leases per public name and log, by name and log. Names with
/// a flagged or revoked machine are left out, as on the leaderboard.
pub async fn leases_by_name(pool: &MySqlPool) -> Result<Vec<LeaseGroup>> {
    Ok(sqlx::query_as(&format!(
        "SELECT COALESCE(i.name, w.name) AS name, t.log_id, CAST(COUNT(*) AS UNSIGNED) AS leases, \
         {} AS checks, {} AS entries, {} AS entries_reported, MIN(t.leased_at) AS oldest_leased_at \
         FROM tasks t JOIN workers w ON w.id = t.lease_holder LEFT JOIN identities i ON i.id = w.identity_id \
         WHERE t.state = 'leased' AND w.flagged = 0 AND w.revoked = 0 \
           AND NOT EXISTS (SELECT 1 FROM workers x WHERE x.identity_id = w.identity_id \
             AND (x.flagged = 1 OR x.revoked = 1)) \
         GROUP BY COALESCE(i.name, w.name), t.log_id ORDER BY name, t.log_id LIMIT ?",
        sum_u64("t.check_of <> 0"),
        sum_u64("t.end_index - t.start_index"),
        sum_u64("GREATEST(t.next_index, t.start_index) - t.start_index"),
    ))
    .bind(MAX_LEASE_GROUPS)
    .fetch_all(pool)
    .await?)
}

/// One current lease, as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseDetail {
    pub task_id: u64,
    pub log_id: u64,
    pub worker_id: u64,
    /// The worker's public name.
    pub name: String,
    pub identity_id: Option<u64>,
    /// The address the worker registered from.
    pub address: String,
    pub start: u64,
    pub end: u64,
    /// The next index to fetch, as the worker reports.
    pub next_index: u64,
    /// The main task it checks; 0 for a main task.
    pub check_of: u64,
    /// Leases of this task so far, this one included.
    pub attempts: u32,
    pub leased_at: Option<i64>,
    pub lease_expires_at: Option<i64>,
    /// What the worker reported for this lease so far.
    pub lease_entries: u64,
    pub lease_matches: u64,
    pub lease_errors: u64,
    pub lease_rate_limited: u64,
}

/// `limit` current leases from `offset`, by worker, log and task.
pub async fn lease_details(pool: &MySqlPool, limit: u32, offset: u32) -> Result<Vec<LeaseDetail>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS task_id, t.log_id, w.id AS worker_id, COALESCE(i.name, w.name) AS name, \
         w.identity_id, w.address, t.start_index AS `start`, t.end_index AS `end`, t.next_index, t.check_of, \
         t.attempts, t.leased_at, t.lease_expires_at, t.lease_entries, t.lease_matches, t.lease_errors, \
         t.lease_rate_limited \
         FROM tasks t JOIN workers w ON w.id = t.lease_holder LEFT JOIN identities i ON i.id = w.identity_id \
         WHERE t.state = 'leased' ORDER BY w.id, t.log_id, t.id LIMIT ? OFFSET ?",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?)
}

/// A public name with the totals of all its machines, flagged and revoked
/// ones too, as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Standing {
    pub identity_id: u64,
    pub name: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    /// Machines not replaced by a later registration of the same machine.
    pub machines: u64,
    /// Results refused because their subtree hash was not the log's.
    pub mismatches: u64,
    pub checks_failed: u64,
    /// A machine of the name was flagged by a check.
    pub flagged: bool,
    /// A machine of the name was revoked by the operator.
    pub revoked: bool,
    /// On the public leaderboard (neither flagged nor revoked).
    #[sqlx(skip)]
    pub public: bool,
}

/// `limit` names from `offset` in the leaderboard's order (most entries
/// first), the flagged and revoked ones among them; with `hidden`, only
/// those the public leaderboard leaves out.
pub async fn standings(
    pool: &MySqlPool,
    limit: u32,
    offset: u32,
    hidden: bool,
) -> Result<Vec<Standing>> {
    let mut rows: Vec<Standing> = sqlx::query_as(&format!(
        "SELECT i.id AS identity_id, i.name, MIN(w.first_seen) AS first_seen, MAX(w.last_seen) AS last_seen, \
         {} AS entries, {} AS matches, {} AS tasks_done, {} AS machines, {} AS mismatches, \
         {} AS checks_failed, MAX(w.flagged) <> 0 AS flagged, MAX(w.revoked) <> 0 AS revoked \
         FROM identities i JOIN workers w ON w.identity_id = i.id \
         GROUP BY i.id, i.name {} ORDER BY entries DESC, i.id LIMIT ? OFFSET ?",
        sum_u64("w.entries"),
        sum_u64("w.matches"),
        sum_u64("w.tasks_done"),
        sum_u64("w.replaced_by IS NULL"),
        sum_u64("w.mismatches"),
        sum_u64("w.checks_failed"),
        if hidden {
            "HAVING MAX(w.flagged) <> 0 OR MAX(w.revoked) <> 0"
        } else {
            ""
        },
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    for r in &mut rows {
        r.public = !r.flagged && !r.revoked;
    }
    Ok(rows)
}
