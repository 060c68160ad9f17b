//! Uploads: accepted only while the uploader holds the current lease, and
//! only with the range's subtree hash proven against a verified tree head.

use ct_core::protocol::{ErrorCode, Hash32};
use sqlx::{MySql, Transaction};

use crate::error::{Error, Refusal, Result};
use crate::limits::now_ms;
use crate::rows::{TASK_COLUMNS, TaskRow};

use super::TaskStore;

/// Rows per multi-row INSERT of `task_matches`.
const ROWS_PER_INSERT: usize = 256;

/// An open upload of `worker_id`: its writes go into `tx`, and
/// [`TaskStore::commit_upload`] commits them only while the worker still
/// holds the lease (checked under a shared lock on the task row at the end,
/// so that heartbeats of the task wait only for the commit, not the inserts).
pub struct UploadLease {
    pub tx: Transaction<'static, MySql>,
    pub task: TaskRow,
    pub worker_id: u64,
}

impl TaskStore {
    /// Opens an upload of `worker_id` for `task`, as the caller read it;
    /// refused unless the worker held the lease then. [`Self::commit_upload`]
    /// checks the lease again, under a lock.
    pub async fn begin_upload(&self, worker_id: u64, task: &TaskRow) -> Result<UploadLease> {
        if !task.leased_to(worker_id) {
            return Err(Error::not_leased(task.id));
        }
        let tx = self.pool.begin().await?;
        Ok(UploadLease {
            tx,
            task: task.clone(),
            worker_id,
        })
    }

    /// Commits an upload when its worker still holds the same lease; rolls
    /// it back (403 `not_leased`) when the lease ended meanwhile.
    pub async fn commit_upload(&self, mut lease: UploadLease) -> Result<()> {
        let now: Option<TaskRow> = sqlx::query_as(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ? LOCK IN SHARE MODE"
        ))
        .bind(lease.task.id)
        .fetch_optional(&mut *lease.tx)
        .await?;
        if !now.is_some_and(|t| t.leased_to(lease.worker_id)) {
            lease.tx.rollback().await?;
            return Err(Error::not_leased(lease.task.id));
        }
        lease.tx.commit().await?;
        Ok(())
    }

    /// Records `hash` as the task's subtree hash, proven against the
    /// verified head of `tree_size`. A different hash proven before is a
    /// conflict (the log would have two trees).
    pub async fn record_proof(&self, task_id: u64, hash: &Hash32, tree_size: u64) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET proof_hash = ?, proof_state = 'verified', proof_tree_size = ?, \
             proof_error = NULL, proof_checked_at = ? \
             WHERE id = ? AND (proof_hash IS NULL OR proof_state IS NULL OR proof_state <> 'verified')",
        )
        .bind(hash.as_ref())
        .bind(tree_size)
        .bind(now_ms())
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        let t = self
            .get(task_id)
            .await?
            .ok_or_else(|| Error::no_task(task_id))?;
        if t.proven_hash() != Some(*hash) {
            return Err(Error::refused(
                Refusal::Conflict,
                ErrorCode::SubtreeConflict,
                format!("task {task_id}: another subtree hash is proven for this range"),
            ));
        }
        Ok(())
    }

    /// Records the proven matches an upload of the current lease carried
    /// (duplicates of stored sightings too): the set that `complete`
    /// accounts for and that checks compare.
    pub async fn accept_matches(lease: &mut UploadLease, matches: &[(u64, Hash32)]) -> Result<()> {
        let worker_id = lease.worker_id;
        let now = now_ms();
        for chunk in matches.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT IGNORE INTO task_matches (task_id, worker_id, idx, leaf_hash, proven, created_at) VALUES {}",
                vec!["(?, ?, ?, ?, 1, ?)"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (idx, hash) in chunk {
                q = q
                    .bind(lease.task.id)
                    .bind(worker_id)
                    .bind(idx)
                    .bind(hash.as_ref().to_vec())
                    .bind(now);
            }
            q.execute(&mut *lease.tx).await?;
        }
        Ok(())
    }
}
