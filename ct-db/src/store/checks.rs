//! Hidden-entry checks (the same range by an independent worker), the
//! manager's own audits, and flags. Sets compared are proven sets only, so a
//! difference can only be an omission, and only the side that omitted is
//! flagged.

use std::collections::BTreeSet;

use ct_core::protocol::Hash32;

use crate::error::{Result, retrying};
use crate::limits::now_ms;
use crate::rows::{TASK_COLUMNS, TaskRow};
use crate::states::{AuditState, CheckState, TaskOutcome, TaskState};

use super::lease::release;
use super::{TaskStore, lock_one, lock_tasks};

/// The proven match sets of a done task and its done check.
#[derive(Debug, Clone)]
pub struct CheckSets {
    pub main: TaskRow,
    pub check: TaskRow,
    pub main_set: BTreeSet<(u64, Hash32)>,
    pub check_set: BTreeSet<(u64, Hash32)>,
}

/// Evidence against a worker: `missing` are matches proven by the other
/// side (`other_worker`, `None` for the manager's own audit) that it did
/// not upload.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub task_id: u64,
    pub other_task_id: u64,
    pub other_worker: Option<u64>,
    pub missing: Vec<u64>,
}

impl TaskStore {
    /// The proven matches `worker_id` uploaded for `task_id`.
    pub async fn proven_set(
        &self,
        task_id: u64,
        worker_id: u64,
    ) -> Result<BTreeSet<(u64, Hash32)>> {
        let rows: Vec<(u64, Vec<u8>)> = sqlx::query_as(
            "SELECT idx, leaf_hash FROM task_matches WHERE task_id = ? AND worker_id = ? AND proven = 1",
        )
        .bind(task_id)
        .bind(worker_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(i, h)| Some((i, Hash32::from_slice(&h)?)))
            .collect())
    }

    /// Schedules (or restarts) a check of done main task `main_id`, which
    /// `completer` (registered from `address`) did: the check task repeats
    /// the range and may not go to that worker or that address.
    pub async fn schedule_check(&self, main_id: u64, completer: u64, address: &str) -> Result<()> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let m = lock_one(&mut tx, main_id).await?;
            if m.check_of != 0 || m.state != TaskState::Done {
                return Ok(());
            }
            let existing: Option<TaskRow> = sqlx::query_as(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE log_id = ? AND start_index = ? AND check_of = ? FOR UPDATE"
            ))
            .bind(m.log_id)
            .bind(m.start_index)
            .bind(main_id)
            .fetch_optional(&mut *tx)
            .await?;
            match existing {
                None => {
                    sqlx::query(
                        "INSERT INTO tasks (log_id, start_index, end_index, next_index, enabled, priority, created_at, \
                         check_of, exclude_worker, exclude_address, proof_hash, proof_state, proof_tree_size) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(m.log_id)
                    .bind(m.start_index)
                    .bind(m.end_index)
                    .bind(m.start_index)
                    .bind(m.enabled)
                    .bind(m.priority)
                    .bind(now_ms())
                    .bind(main_id)
                    .bind(completer)
                    .bind(address)
                    .bind(&m.proof_hash)
                    .bind(m.proof_state)
                    .bind(m.proof_tree_size)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(c) => {
                    if c.state == TaskState::Leased {
                        release(
                            &mut tx,
                            &c,
                            "the checked range was redone",
                            None,
                            TaskOutcome::Released,
                        )
                        .await?;
                    }
                    // The range was redone (after a refusal or a flag): check again, from scratch.
                    sqlx::query(
                        "UPDATE tasks SET state = 'pending', next_index = start_index, exclude_worker = ?, \
                         exclude_address = ?, completed_by = NULL, completed_at = NULL WHERE id = ?",
                    )
                    .bind(completer)
                    .bind(address)
                    .bind(c.id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM task_matches WHERE task_id = ?")
                        .bind(c.id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            sqlx::query("UPDATE tasks SET check_state = 'pending' WHERE id = ?")
                .bind(main_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The two proven sets of main task `main_id` and its check `check_id`,
    /// when both are done.
    pub async fn check_sets(&self, main_id: u64, check_id: u64) -> Result<Option<CheckSets>> {
        let mut tx = self.pool.begin().await?;
        let rows = lock_tasks(&mut tx, &[main_id, check_id]).await?;
        tx.commit().await?;
        let find = |id: u64| rows.iter().find(|r| r.id == id).cloned();
        let (Some(main), Some(check)) = (find(main_id), find(check_id)) else {
            return Ok(None);
        };
        let (Some(mw), Some(cw)) = (main.completed_by, check.completed_by) else {
            return Ok(None);
        };
        if main.state != TaskState::Done || check.state != TaskState::Done {
            return Ok(None);
        }
        let main_set = self.proven_set(main_id, mw).await?;
        let check_set = self.proven_set(check_id, cw).await?;
        Ok(Some(CheckSets {
            main,
            check,
            main_set,
            check_set,
        }))
    }

    /// Records the outcome of a check of `main_id`.
    pub async fn record_check(&self, main_id: u64, state: CheckState) -> Result<()> {
        sqlx::query("UPDATE tasks SET check_state = ? WHERE id = ? AND check_of = 0")
            .bind(state)
            .bind(main_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Flags `worker_id` with its evidence: it gets no more tasks, each of
    /// its leases returns to the pool, and every range it completed is
    /// collected again, whole, by others. Its proven sightings stay (each
    /// is the log's). Returns the number of ranges requeued.
    pub async fn flag(&self, worker_id: u64, log_id: u64, e: &Evidence) -> Result<u64> {
        let (start, end): (u64, u64) =
            sqlx::query_as("SELECT start_index, end_index FROM tasks WHERE id = ?")
                .bind(e.task_id)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or((0, 0));
        let list = |v: &[u64]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let requeued = retrying(|| async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO flags (worker_id, task_id, other_task_id, other_worker_id, log_id, start_index, end_index, missing, extra, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, '[]', ?)",
            )
            .bind(worker_id)
            .bind(e.task_id)
            .bind(e.other_task_id)
            .bind(e.other_worker)
            .bind(log_id)
            .bind(start)
            .bind(end)
            .bind(list(&e.missing))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE workers SET flagged = 1, checks_failed = checks_failed + 1 WHERE id = ?")
                .bind(worker_id)
                .execute(&mut *tx)
                .await?;
            let requeued = sqlx::query(
                "UPDATE tasks SET state = 'pending', next_index = start_index, exclude_worker = ?, \
                 completed_by = NULL, completed_at = NULL, check_state = NULL, audit_state = NULL, \
                 last_error = 'worker flagged: collected again' WHERE completed_by = ? AND state = 'done'",
            )
            .bind(worker_id)
            .bind(worker_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM task_matches WHERE worker_id = ?")
                .bind(worker_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(requeued)
        })
        .await?;
        self.release_worker(worker_id, "worker flagged").await?;
        tracing::warn!(
            worker.id = worker_id,
            task.id = e.task_id,
            missing = e.missing.len(),
            tasks_requeued = requeued,
            "worker flagged"
        );
        Ok(requeued)
    }

    /// Marks done task `task_id` for the manager's own audit.
    pub async fn schedule_audit(&self, task_id: u64) -> Result<()> {
        sqlx::query("UPDATE tasks SET audit_state = 'pending' WHERE id = ? AND state = 'done'")
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Done tasks waiting for an audit (and audits that failed to fetch).
    pub async fn audits_due(&self, limit: u32) -> Result<Vec<TaskRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE audit_state IN ('pending', 'error') AND state = 'done' \
             ORDER BY audit_state DESC, id LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records an audit's outcome.
    pub async fn record_audit(&self, task_id: u64, state: AuditState) -> Result<()> {
        sqlx::query("UPDATE tasks SET audit_state = ? WHERE id = ?")
            .bind(state)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
