//! `claim`: pending tasks become leases. A worker gets tasks of several
//! logs at once: the logs the fleet is thinnest on first (an admin's
//! priority above all), a log's newest entries (`tip`) ahead of its
//! backlog, at most `tasks_per_log` tasks of one log per worker, none of a
//! log the worker is cooling down on. `FOR UPDATE SKIP LOCKED`, so that
//! concurrent claims never wait on each other.

use crate::error::{Result, retrying};
use crate::limits::{now_ms, placeholders};
use crate::rows::LeasedTask;

use super::TaskStore;

/// Who claims, with what the claim rules look at.
#[derive(Debug, Clone)]
pub struct Claimer {
    pub worker_id: u64,
    /// The address the worker registered from: a check task never goes to
    /// the address of the worker it checks.
    pub address: String,
    /// Tasks the worker completed so far: check tasks go only to workers
    /// with at least `check_min_tasks` (an established history).
    pub tasks_done: u64,
    pub check_min_tasks: u64,
    /// Tasks of one log one worker may hold at once, counted in full-size
    /// tasks of `task_entries` entries (small tip tasks count for their size).
    pub tasks_per_log: u32,
    pub task_entries: u64,
}

/// What a claim gave, and why nothing when it gave nothing.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub tasks: Vec<LeasedTask>,
    /// Why no task: no pending work, every log at this worker's share, or
    /// cooling down.
    pub idle: Option<Idle>,
}

/// Why a claim gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// No pending task this worker may take.
    NoWork,
    /// Pending tasks exist, but on logs where this worker holds its share.
    AtShare,
    /// Pending tasks exist only on logs this worker is cooling down on.
    CoolingDown,
}

#[derive(Debug, sqlx::FromRow)]
struct Candidate {
    id: u64,
    operator: String,
    priority: i32,
    fleet: i64,
    /// Entries of this log the worker holds.
    mine: i64,
    tip: bool,
    cooling: bool,
}

impl TaskStore {
    /// Leases up to `max` tasks to `who`; every lease starts at the task's
    /// start.
    pub async fn claim(&self, who: &Claimer, max: u32) -> Result<Claimed> {
        retrying(|| self.claim_once(who, max.max(1))).await
    }

    async fn claim_once(&self, who: &Claimer, max: u32) -> Result<Claimed> {
        // READ COMMITTED: the locking scans below then take no gap locks on
        // the task indexes, which under REPEATABLE READ deadlock with the
        // UPDATE that moves the claimed rows (many concurrent claims).
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *conn)
            .await?;
        let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
        let now = now_ms();
        let mut logs: Vec<Candidate> = sqlx::query_as(
            "SELECT l.id, l.operator, l.priority, \
               (SELECT COUNT(*) FROM tasks t WHERE t.log_id = l.id AND t.state = 'leased') AS fleet, \
               CAST((SELECT COALESCE(SUM(t.end_index - t.start_index), 0) FROM tasks t WHERE t.log_id = l.id AND t.state = 'leased' AND t.lease_holder = ?) AS SIGNED) AS mine, \
               EXISTS (SELECT 1 FROM tasks t WHERE t.state = 'pending' AND t.tip = 1 AND t.log_id = l.id) AS tip, \
               EXISTS (SELECT 1 FROM worker_cooldowns c WHERE c.worker_id = ? AND c.log_id = l.id AND c.until_ms > ?) AS cooling \
             FROM logs l WHERE l.enabled = 1 \
               AND EXISTS (SELECT 1 FROM tasks t WHERE t.log_id = l.id AND t.state = 'pending' AND t.enabled = 1)",
        )
        .bind(who.worker_id)
        .bind(who.worker_id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        if logs.is_empty() {
            tx.commit().await?;
            return Ok(Claimed {
                tasks: Vec::new(),
                idle: Some(Idle::NoWork),
            });
        }
        // Thinnest first, by log and then by operator.
        let mut per_operator = std::collections::HashMap::<String, i64>::new();
        for l in &logs {
            *per_operator.entry(l.operator.clone()).or_default() += l.fleet;
        }
        logs.sort_by_key(|l| {
            (
                std::cmp::Reverse(l.priority),
                std::cmp::Reverse(l.tip),
                l.fleet,
                per_operator.get(&l.operator).copied().unwrap_or(0),
                l.id,
            )
        });
        let established = who.tasks_done >= who.check_min_tasks;
        let mut ids: Vec<u64> = Vec::new();
        let (mut at_share, mut cooling) = (false, false);
        let share = i64::try_from(u64::from(who.tasks_per_log.max(1)) * who.task_entries.max(1))
            .unwrap_or(i64::MAX);
        for l in &logs {
            if ids.len() as u32 >= max {
                break;
            }
            if l.cooling {
                cooling = true;
                continue;
            }
            let room = share - l.mine;
            if room <= 0 {
                at_share = true;
                continue;
            }
            // The log's newest entries first, but its backlog moves too: up
            // to half of this share from the tip, the rest from the backlog
            // (and the tip again if the backlog has nothing).
            let slots = (max - ids.len() as u32).min(who.tasks_per_log.max(1) * 8);
            let mut left = room;
            let mut taken = 0u32;
            for tip in [true, false, true] {
                if taken >= slots || left <= 0 {
                    break;
                }
                let cap = if tip && taken == 0 {
                    (room / 2).max(1)
                } else {
                    left
                };
                let found: Vec<(u64, u64)> = sqlx::query_as(
                    "SELECT id, end_index - start_index FROM tasks WHERE log_id = ? AND state = 'pending' AND enabled = 1 \
                     AND tip = ? AND (exclude_worker IS NULL OR exclude_worker <> ?) \
                     AND (check_of = 0 OR (? AND exclude_address <> ?)) \
                     ORDER BY priority DESC, id LIMIT ? FOR UPDATE SKIP LOCKED",
                )
                .bind(l.id)
                .bind(tip)
                .bind(who.worker_id)
                .bind(established)
                .bind(&who.address)
                .bind(slots - taken)
                .fetch_all(&mut *tx)
                .await?;
                let mut used = 0i64;
                for (id, span) in found {
                    let span = i64::try_from(span).unwrap_or(i64::MAX);
                    // Always at least one task; then only what fits the share.
                    if taken > 0 && (used + span > cap || span > left) {
                        break;
                    }
                    ids.push(id);
                    taken += 1;
                    used += span;
                    left -= span;
                    if taken >= slots {
                        break;
                    }
                }
            }
        }
        if ids.is_empty() {
            tx.commit().await?;
            let idle = if at_share {
                Idle::AtShare
            } else if cooling {
                Idle::CoolingDown
            } else {
                Idle::NoWork
            };
            return Ok(Claimed {
                tasks: Vec::new(),
                idle: Some(idle),
            });
        }
        let list = placeholders(ids.len());
        let sql = format!(
            "UPDATE tasks SET state = 'leased', lease_holder = ?, lease_expires_at = ?, leased_at = ?, \
             lease_from = start_index, next_index = start_index, attempts = attempts + 1, \
             lease_entries = 0, lease_matches = 0, lease_errors = 0, lease_rate_limited = 0 \
             WHERE state = 'pending' AND id IN ({list})"
        );
        let mut update = sqlx::query(&sql)
            .bind(who.worker_id)
            .bind(self.expiry())
            .bind(now);
        for id in &ids {
            update = update.bind(id);
        }
        update.execute(&mut *tx).await?;
        let sql = format!(
            "SELECT t.id, t.log_id, l.url, l.kind, l.monitoring_url, t.start_index, t.end_index, \
             l.max_fetchers, t.check_of, t.lease_expires_at, l.operator, \
             COALESCE(l.requests_per_sec, o.requests_per_sec) AS requests_per_sec, \
             COALESCE(l.entries_per_request, o.entries_per_request) AS entries_per_request, \
             o.fetchers AS operator_fetchers, o.operator_requests_per_sec \
             FROM tasks t JOIN logs l ON l.id = t.log_id LEFT JOIN operators o ON o.name = l.operator \
             WHERE t.state = 'leased' AND t.lease_holder = ? AND t.id IN ({list}) ORDER BY t.tip DESC, t.priority DESC, t.id"
        );
        let mut select = sqlx::query_as::<_, LeasedTask>(&sql).bind(who.worker_id);
        for id in &ids {
            select = select.bind(id);
        }
        let rows = select.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(Claimed {
            tasks: rows,
            idle: None,
        })
    }
}
