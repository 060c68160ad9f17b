//! Leases while they live and when they end without `complete`:
//! heartbeat, fail, expiry, revocation. An ending lease returns its task
//! whole (`next_index = start_index`) and forgets the matches that lease
//! recorded for checks; stored sightings stay, since each was proven.

use std::collections::{BTreeMap, HashSet};

use ct_core::protocol::{ErrorCode, TaskProgress};
use sqlx::MySqlConnection;

use crate::error::{Error, Refusal, Result, retrying};
use crate::limits::{ERROR_TEXT, clip, now_ms};
use crate::ops::record_outcome;
use crate::rows::TaskRow;
use crate::states::{TaskOutcome, TaskState};

use super::{Delta, TaskStore, fold_totals, lock_one, lock_tasks, rate_limit_cap, record_stats};

/// Failures in a row on one log before a worker cools down there.
pub const COOLDOWN_AFTER: u32 = 3;
/// The first cool-down, doubled for every further failure.
pub const COOLDOWN_MS: i64 = 60_000;
pub const COOLDOWN_MAX_MS: i64 = 15 * 60_000;

/// Most tasks one heartbeat may name.
pub const MAX_HEARTBEAT_TASKS: usize = 1024;

/// What became of one task named in a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportState {
    /// Still leased to the worker, until `expires` (Unix ms).
    Active {
        expires: i64,
    },
    Done,
    Lost,
}

/// The outcome of a heartbeat: one state per reported task, in order, and
/// the per-log deltas (for scaling).
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub states: Vec<(u64, ReportState)>,
    pub deltas: BTreeMap<u64, Delta>,
}

/// Checks that a worker's counts fit its range: matches and errors at most
/// entries, entries at most the range, rate-limit answers at most
/// [`rate_limit_cap`].
pub fn check_counts(
    task_id: u64,
    span: u64,
    entries: u64,
    matches: u64,
    errors: u64,
    rate_limited: u64,
) -> Result<()> {
    if entries > span
        || matches > entries
        || errors > entries
        || rate_limited > rate_limit_cap(span)
    {
        return Err(Error::refused(
            Refusal::Unprocessable,
            ErrorCode::InvalidCounts,
            format!(
                "task {task_id}: counts must satisfy matches, errors <= entries <= {span} (the range) \
                 and rate_limited <= {}",
                rate_limit_cap(span)
            ),
        ));
    }
    Ok(())
}

impl TaskStore {
    /// Records progress of the tasks `worker_id` holds and extends their
    /// leases. Counts are cumulative for the lease; the largest seen is kept.
    pub async fn heartbeat(&self, worker_id: u64, reports: &[TaskProgress]) -> Result<Heartbeat> {
        if reports.len() > MAX_HEARTBEAT_TASKS {
            return Err(Error::refused(
                Refusal::Unprocessable,
                ErrorCode::TooManyTasks,
                format!("at most {MAX_HEARTBEAT_TASKS} tasks per heartbeat"),
            ));
        }
        let mut seen = HashSet::new();
        for p in reports {
            if !seen.insert(p.task_id) {
                return Err(Error::refused(
                    Refusal::BadRequest,
                    ErrorCode::BadRequest,
                    format!("task {} is listed twice", p.task_id),
                ));
            }
        }
        let ids: Vec<u64> = seen.into_iter().collect();
        retrying(|| self.heartbeat_once(worker_id, reports, &ids)).await
    }

    async fn heartbeat_once(
        &self,
        worker_id: u64,
        reports: &[TaskProgress],
        ids: &[u64],
    ) -> Result<Heartbeat> {
        let expires = self.expiry();
        let mut tx = self.pool.begin().await?;
        let rows = lock_tasks(&mut tx, ids).await?;
        let by_id: BTreeMap<u64, &TaskRow> = rows.iter().map(|r| (r.id, r)).collect();
        let mut out = Heartbeat::default();
        // Validate everything first: a refused heartbeat changes nothing.
        for p in reports {
            if let Some(t) = by_id.get(&p.task_id).filter(|t| t.leased_to(worker_id)) {
                if p.next_index < t.start_index || p.next_index > t.end_index {
                    return Err(Error::refused(
                        Refusal::Unprocessable,
                        ErrorCode::InvalidIndex,
                        format!(
                            "task {}: next_index {} is outside [{}, {}]",
                            t.id, p.next_index, t.start_index, t.end_index
                        ),
                    ));
                }
                check_counts(
                    t.id,
                    t.span(),
                    p.entries,
                    p.matches,
                    p.errors,
                    p.rate_limited,
                )?;
            }
        }
        for p in reports {
            let Some(t) = by_id
                .get(&p.task_id)
                .filter(|t| t.lease_holder == Some(worker_id))
            else {
                out.states.push((p.task_id, ReportState::Lost));
                continue;
            };
            match t.state {
                TaskState::Done => {
                    out.states.push((t.id, ReportState::Done));
                    continue;
                }
                TaskState::Leased => {}
                TaskState::Pending | TaskState::LogFault => {
                    out.states.push((t.id, ReportState::Lost));
                    continue;
                }
            }
            let d = Delta {
                entries: p.entries.saturating_sub(t.lease_entries),
                matches: p.matches.saturating_sub(t.lease_matches),
                errors: p.errors.saturating_sub(t.lease_errors),
                rate_limited: p.rate_limited.saturating_sub(t.lease_rate_limited),
            };
            // next_index is shown as progress only: a new lease starts at start_index.
            sqlx::query(
                "UPDATE tasks SET next_index = GREATEST(next_index, ?), lease_entries = GREATEST(lease_entries, ?), \
                 lease_matches = GREATEST(lease_matches, ?), lease_errors = GREATEST(lease_errors, ?), \
                 lease_rate_limited = GREATEST(lease_rate_limited, ?), lease_expires_at = ? WHERE id = ?",
            )
            .bind(p.next_index)
            .bind(p.entries)
            .bind(p.matches)
            .bind(p.errors)
            .bind(p.rate_limited)
            .bind(expires)
            .bind(t.id)
            .execute(&mut *tx)
            .await?;
            out.deltas.entry(t.log_id).or_default().add(&d);
            out.states.push((t.id, ReportState::Active { expires }));
        }
        record_stats(&mut tx, worker_id, &out.deltas).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// `worker_id` gives `task_id` back: it returns to the pool whole. After
    /// [`COOLDOWN_AFTER`] failures in a row on one log the worker is kept off
    /// that log for a while (doubling, at most [`COOLDOWN_MAX_MS`]).
    pub async fn fail(&self, worker_id: u64, task_id: u64, reason: &str) -> Result<TaskRow> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let t = lock_one(&mut tx, task_id).await?;
            if !t.leased_to(worker_id) {
                return Err(Error::not_leased(task_id));
            }
            release(&mut tx, &t, reason, None, TaskOutcome::Failed).await?;
            sqlx::query(
                "INSERT INTO worker_cooldowns (worker_id, log_id, failures, until_ms, reason) VALUES (?, ?, 1, 0, ?) \
                 ON DUPLICATE KEY UPDATE failures = failures + 1, reason = VALUES(reason)",
            )
            .bind(worker_id)
            .bind(t.log_id)
            .bind(clip(reason, 255))
            .execute(&mut *tx)
            .await?;
            let (failures,): (u32,) = sqlx::query_as(
                "SELECT failures FROM worker_cooldowns WHERE worker_id = ? AND log_id = ?",
            )
            .bind(worker_id)
            .bind(t.log_id)
            .fetch_one(&mut *tx)
            .await?;
            if failures >= COOLDOWN_AFTER {
                let ms = (COOLDOWN_MS << (failures - COOLDOWN_AFTER).min(8)).min(COOLDOWN_MAX_MS);
                sqlx::query(
                    "UPDATE worker_cooldowns SET until_ms = ?, reason = ? WHERE worker_id = ? AND log_id = ?",
                )
                .bind(now_ms().saturating_add(ms))
                .bind(clip(
                    &format!("{failures} failures in a row here, off for {} s: {reason}", ms / 1000),
                    255,
                ))
                .bind(worker_id)
                .bind(t.log_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(t)
        })
        .await
    }

    /// The logs `worker_id` is kept off now: (log id, until Unix ms, why).
    pub async fn cooldowns_of(&self, worker_id: u64) -> Result<Vec<(u64, i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT log_id, until_ms, reason FROM worker_cooldowns WHERE worker_id = ? AND until_ms > ?",
        )
        .bind(worker_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Returns leases past their expiry (every lease when `force`) to the
    /// pool, one row at a time so that one bad row cannot stop the others;
    /// the number returned.
    pub async fn expire_due(&self, force: bool) -> Result<u64> {
        let bound = if force { i64::MAX } else { now_ms() };
        let ids: Vec<(u64,)> = sqlx::query_as(
            "SELECT id FROM tasks WHERE state = 'leased' AND lease_expires_at < ? ORDER BY id LIMIT 1000",
        )
        .bind(bound)
        .fetch_all(&self.pool)
        .await?;
        let mut done = 0;
        for (id,) in ids {
            match self.expire_one(id, bound).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(task.id = id, error = %e, "could not return an expired lease")
                }
            }
        }
        Ok(done)
    }

    async fn expire_one(&self, task_id: u64, bound: i64) -> Result<bool> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let t = lock_one(&mut tx, task_id).await?;
            if t.state != TaskState::Leased || t.lease_expires_at.is_none_or(|e| e >= bound) {
                return Ok(false);
            }
            release(&mut tx, &t, "lease expired", None, TaskOutcome::Expired).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Revokes a worker: its token stops working and each of its leases
    /// returns to the pool. `None` when there is no such worker.
    pub async fn revoke(&self, worker_id: u64) -> Result<Option<u64>> {
        let found = sqlx::query("UPDATE workers SET revoked = 1 WHERE id = ?")
            .bind(worker_id)
            .execute(&self.pool)
            .await?;
        let exists: Option<(u64,)> = sqlx::query_as("SELECT id FROM workers WHERE id = ?")
            .bind(worker_id)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let _ = found;
        self.release_worker(worker_id, "worker revoked")
            .await
            .map(Some)
    }

    /// Returns every lease `worker_id` holds to the pool, one at a time.
    pub async fn release_worker(&self, worker_id: u64, reason: &str) -> Result<u64> {
        let ids: Vec<(u64,)> =
            sqlx::query_as("SELECT id FROM tasks WHERE state = 'leased' AND lease_holder = ?")
                .bind(worker_id)
                .fetch_all(&self.pool)
                .await?;
        let mut released = 0;
        for (id,) in ids {
            let r = retrying(|| async {
                let mut tx = self.pool.begin().await?;
                let t = lock_one(&mut tx, id).await?;
                if !t.leased_to(worker_id) {
                    return Ok(false);
                }
                release(&mut tx, &t, reason, None, TaskOutcome::Released).await?;
                tx.commit().await?;
                Ok(true)
            })
            .await?;
            released += u64::from(r);
        }
        Ok(released)
    }
}

/// Ends the lease of locked row `t` without completion: the task returns to
/// the pool whole, the lease's counts are added to the task's totals, the
/// matches this lease recorded for checks are forgotten, and the lease's
/// end is counted as `outcome`. With `exclude`, that worker may not claim
/// the task again.
pub(super) async fn release(
    conn: &mut MySqlConnection,
    t: &TaskRow,
    reason: &str,
    exclude: Option<u64>,
    outcome: TaskOutcome,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE tasks SET state = 'pending', next_index = start_index, {}, \
         lease_entries = 0, lease_matches = 0, lease_errors = 0, lease_rate_limited = 0, \
         lease_holder = NULL, lease_expires_at = NULL, lease_from = NULL, leased_at = NULL, \
         exclude_worker = COALESCE(?, exclude_worker), last_error = ? WHERE id = ?",
        fold_totals([
            "lease_entries",
            "lease_matches",
            "lease_errors",
            "lease_rate_limited"
        ]),
    ))
    .bind(exclude)
    .bind(clip(reason, ERROR_TEXT))
    .bind(t.id)
    .execute(&mut *conn)
    .await?;
    if let Some(holder) = t.lease_holder {
        sqlx::query("DELETE FROM task_matches WHERE task_id = ? AND worker_id = ?")
            .bind(t.id)
            .bind(holder)
            .execute(&mut *conn)
            .await?;
    }
    record_outcome(conn, t, outcome, now_ms()).await
}
