//! Uploads: accepted only while the uploader holds the current lease, and
//! only with the range's subtree hash proven against a verified tree head.

use ct_core::protocol::{ErrorCode, Hash32};
use sqlx::{MySql, Transaction};

use crate::error::{Error, Refusal, Result};
use crate::limits::{now_ms, placeholders};
use crate::rows::{TASK_COLUMNS, TaskRow};

use super::TaskStore;

/// Rows per multi-row INSERT of `task_matches`.
const ROWS_PER_INSERT: usize = 256;

/// An open upload: the transaction holds a shared lock on the task row, so
/// the lease cannot end (expire, fail, be refused) until it commits.
pub struct UploadLease {
    pub tx: Transaction<'static, MySql>,
    pub task: TaskRow,
}

impl TaskStore {
    /// Opens an upload of `worker_id` for `task_id`; refused unless the
    /// worker holds the current lease.
    pub async fn begin_upload(&self, worker_id: u64, task_id: u64) -> Result<UploadLease> {
        let mut tx = self.pool.begin().await?;
        let task: TaskRow = sqlx::query_as(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ? LOCK IN SHARE MODE"
        ))
        .bind(task_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::no_task(task_id))?;
        if !task.leased_to(worker_id) {
            return Err(Error::not_leased(task_id));
        }
        Ok(UploadLease { tx, task })
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
    pub async fn accept_matches(
        lease: &mut UploadLease,
        worker_id: u64,
        matches: &[(u64, Hash32)],
    ) -> Result<()> {
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

    /// Which of `indices` the current lease of `worker_id` already recorded.
    pub async fn accepted_among(
        lease: &mut UploadLease,
        worker_id: u64,
        indices: &[u64],
    ) -> Result<Vec<u64>> {
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT idx FROM task_matches WHERE task_id = ? AND worker_id = ? AND idx IN ({})",
            placeholders(indices.len())
        );
        let mut q = sqlx::query_as::<_, (u64,)>(&sql)
            .bind(lease.task.id)
            .bind(worker_id);
        for i in indices {
            q = q.bind(i);
        }
        Ok(q.fetch_all(&mut *lease.tx)
            .await?
            .into_iter()
            .map(|(i,)| i)
            .collect())
    }
}
