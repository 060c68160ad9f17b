//! The end of a lease by its worker's word: `complete` (the range is whole,
//! proven and every reported match uploaded), `refuse` (the subtree hash is
//! not the log's) and the log's fault (two independent workers and the
//! manager itself saw the same bytes that do not hash into the tree).

use std::collections::BTreeMap;

use ct_core::protocol::{CompleteRequest, ErrorCode, Hash32};

use crate::error::{Error, Refusal, Result, retrying};
use crate::limits::{ERROR_TEXT, clip, now_ms};
use crate::ops::record_outcome;
use crate::rows::TaskRow;
use crate::states::{TaskOutcome, TaskState};

use super::lease::{check_counts, release};
use super::{Delta, TaskStore, fold_totals, lock_one, record_stats};

/// A subtree hash proven against the verified head of `tree_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedHash {
    pub hash: Hash32,
    pub tree_size: u64,
}

/// The outcome of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The worker's result was refused; the task is back in the pool whole.
    Worker,
    /// As `Worker`, and an earlier, independent worker reported the same
    /// wrong hash: the log may be serving bytes that are not in its tree.
    /// The caller checks with its own fetch, then calls
    /// [`TaskStore::record_log_fault`] or flags both.
    Agrees { first_worker: u64 },
}

impl TaskStore {
    /// Completes `task_id` for `worker_id`. Preconditions: the worker holds
    /// the lease; it reports the whole range; the reported subtree hash is
    /// the one proven (`verified`); its accepted, proven uploads of this
    /// lease are exactly the matches it reports. A second call after
    /// success answers with the done row.
    pub async fn complete(
        &self,
        worker_id: u64,
        task_id: u64,
        req: &CompleteRequest,
        verified: VerifiedHash,
    ) -> Result<TaskRow> {
        retrying(|| self.complete_once(worker_id, task_id, req, verified)).await
    }

    async fn complete_once(
        &self,
        worker_id: u64,
        task_id: u64,
        req: &CompleteRequest,
        verified: VerifiedHash,
    ) -> Result<TaskRow> {
        let mut tx = self.pool.begin().await?;
        let t = lock_one(&mut tx, task_id).await?;
        if t.state == TaskState::Done && t.completed_by == Some(worker_id) {
            return Ok(t);
        }
        if !t.leased_to(worker_id) {
            return Err(Error::not_leased(task_id));
        }
        let span = t.span();
        if req.next_index != t.end_index || req.entries != span {
            return Err(Error::refused(
                Refusal::Conflict,
                ErrorCode::Incomplete,
                format!(
                    "task {task_id} covers [{}, {}): need next_index = {} and entries = {span}, got {} and {}",
                    t.start_index, t.end_index, t.end_index, req.next_index, req.entries
                ),
            ));
        }
        check_counts(
            task_id,
            span,
            req.entries,
            req.matches,
            req.errors,
            req.rate_limited,
        )?;
        if req.subtree_hash != verified.hash || t.proven_hash().is_some_and(|h| h != verified.hash)
        {
            return Err(Error::refused(
                Refusal::Conflict,
                ErrorCode::SubtreeConflict,
                format!("task {task_id}: the subtree hash is not the one proven for this range"),
            ));
        }
        let (accepted,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM task_matches WHERE task_id = ? AND worker_id = ? AND proven = 1",
        )
        .bind(task_id)
        .bind(worker_id)
        .fetch_one(&mut *tx)
        .await?;
        let accepted = u64::try_from(accepted).unwrap_or(0);
        if accepted != req.matches {
            return Err(Error::refused(
                Refusal::Conflict,
                ErrorCode::UnaccountedMatches,
                format!(
                    "task {task_id}: you report {} matches but {accepted} were uploaded and proven in this lease; \
                     upload every match (with its audit path) before completing",
                    req.matches
                ),
            ));
        }
        let now = now_ms();
        sqlx::query(&format!(
            "UPDATE tasks SET state = 'done', next_index = end_index, \
             {}, \
             lease_entries = 0, lease_matches = 0, lease_errors = 0, lease_rate_limited = 0, \
             lease_expires_at = NULL, leased_at = NULL, subtree_hash = ?, completed_at = ?, completed_by = ?, \
             proof_hash = ?, proof_state = 'verified', proof_tree_size = ?, proof_error = NULL, \
             proof_checked_at = ?, unproven_uploads = 0, fault_hash = NULL, fault_worker = NULL, \
             fault_address = NULL, last_error = NULL WHERE id = ?",
            fold_totals(["?", "?", "?", "?"]),
        ))
        .bind(span)
        .bind(req.matches)
        .bind(req.errors)
        .bind(req.rate_limited)
        .bind(verified.hash.as_ref())
        .bind(now)
        .bind(worker_id)
        .bind(verified.hash.as_ref())
        .bind(verified.tree_size)
        .bind(now)
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        let mut deltas = BTreeMap::new();
        deltas.insert(
            t.log_id,
            Delta {
                entries: span.saturating_sub(t.lease_entries),
                matches: req.matches.saturating_sub(t.lease_matches),
                errors: req.errors.saturating_sub(t.lease_errors),
                rate_limited: req.rate_limited.saturating_sub(t.lease_rate_limited),
            },
        );
        record_stats(&mut tx, worker_id, &deltas).await?;
        sqlx::query("UPDATE workers SET tasks_done = tasks_done + 1 WHERE id = ?")
            .bind(worker_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE worker_cooldowns SET failures = 0, until_ms = 0 WHERE worker_id = ? AND log_id = ? AND failures > 0",
        )
        .bind(worker_id)
        .bind(t.log_id)
        .execute(&mut *tx)
        .await?;
        record_outcome(&mut tx, &t, TaskOutcome::Completed, now).await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Refuses the result of `worker_id` (registered from `address`) for
    /// `task_id`: `hash` is not the log's. The task returns to the pool
    /// whole, the worker may not claim it again, and it counts against the
    /// worker.
    pub async fn refuse(
        &self,
        worker_id: u64,
        task_id: u64,
        hash: &Hash32,
        reason: &str,
        address: &str,
    ) -> Result<Refused> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let t = lock_one(&mut tx, task_id).await?;
            if !t.leased_to(worker_id) {
                return Err(Error::not_leased(task_id));
            }
            let agrees = t.fault_hash.as_deref() == Some(hash.as_ref())
                && t.fault_worker.is_some_and(|w| w != worker_id)
                && t.fault_address.as_deref().is_some_and(|a| a != address);
            let first = t.fault_worker;
            release(
                &mut tx,
                &t,
                &format!("refused the result of worker {worker_id}"),
                Some(worker_id),
                TaskOutcome::Refused,
            )
            .await?;
            sqlx::query(
                "UPDATE tasks SET fault_hash = ?, fault_worker = ?, fault_address = ?, proof_error = ?, \
                 mismatches = mismatches + 1 WHERE id = ?",
            )
            .bind(hash.as_ref())
            .bind(worker_id)
            .bind(address)
            .bind(clip(reason, ERROR_TEXT))
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE workers SET mismatches = mismatches + 1 WHERE id = ?")
                .bind(worker_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(match (agrees, first) {
                (true, Some(first_worker)) => Refused::Agrees { first_worker },
                _ => Refused::Worker,
            })
        })
        .await
    }

    /// Records that the log serves `served` for the range of `task_id`
    /// while its tree holds `log_hash`: the task leaves the pool as a
    /// `log_fault` and the refusals of the two workers no longer count
    /// against them.
    pub async fn record_log_fault(
        &self,
        task_id: u64,
        served: &Hash32,
        log: Option<VerifiedHash>,
        workers: (u64, u64),
    ) -> Result<()> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let t = lock_one(&mut tx, task_id).await?;
            if t.state == TaskState::Done || t.state == TaskState::LogFault {
                return Ok(());
            }
            if t.state == TaskState::Leased {
                release(&mut tx, &t, "the log's fault", None, TaskOutcome::Released).await?;
            }
            sqlx::query(
                "UPDATE tasks SET state = 'log_fault', last_error = 'the log serves bytes that are not in its tree' \
                 WHERE id = ?",
            )
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT IGNORE INTO log_faults (log_id, task_id, start_index, end_index, served_hash, log_hash, \
                 tree_size, first_worker, second_worker, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(t.log_id)
            .bind(task_id)
            .bind(t.start_index)
            .bind(t.end_index)
            .bind(served.as_ref())
            .bind(log.map(|l| l.hash.as_ref().to_vec()))
            .bind(log.map(|l| l.tree_size))
            .bind(workers.0)
            .bind(workers.1)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE workers SET mismatches = GREATEST(mismatches, 1) - 1 WHERE id IN (?, ?)",
            )
            .bind(workers.0)
            .bind(workers.1)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
