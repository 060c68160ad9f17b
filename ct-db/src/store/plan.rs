//! New tasks from the planner, and the copies of a log's `enabled` and
//! `priority` that claims read.

use crate::error::{Result, retrying};
use crate::limits::now_ms;

use super::TaskStore;

impl TaskStore {
    /// Inserts `ranges` (start, end, tip) as new pending tasks of `log_id`
    /// (`tip`: the log's newest entries, handed out ahead of its backlog)
    /// and moves its
    /// `planned_end` to `planned_end`, when it still is `from` (planning is
    /// idempotent and concurrent planners cannot plan twice). Returns the
    /// number of tasks added.
    pub async fn plan(
        &self,
        log_id: u64,
        from: u64,
        ranges: &[(u64, u64, bool)],
        planned_end: u64,
    ) -> Result<u64> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let Some((current, enabled, priority)): Option<(u64, bool, i32)> = sqlx::query_as(
                "SELECT planned_end, enabled, priority FROM logs WHERE id = ? FOR UPDATE",
            )
            .bind(log_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(0);
            };
            if current != from {
                return Ok(0);
            }
            let now = now_ms();
            let mut added = 0;
            for chunk in ranges.chunks(500) {
                let sql = format!(
                    "INSERT IGNORE INTO tasks (log_id, start_index, end_index, next_index, enabled, priority, created_at, tip) VALUES {}",
                    vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
                );
                let mut q = sqlx::query(&sql);
                for (s, e, tip) in chunk {
                    q = q
                        .bind(log_id)
                        .bind(s)
                        .bind(e)
                        .bind(s)
                        .bind(enabled)
                        .bind(priority)
                        .bind(now)
                        .bind(tip);
                }
                added += q.execute(&mut *tx).await?.rows_affected();
            }
            sqlx::query("UPDATE logs SET planned_end = ? WHERE id = ?")
                .bind(planned_end)
                .bind(log_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(added)
        })
        .await
    }

    /// Copies `enabled` and `priority` of one log (or all) into its tasks.
    pub async fn sync_log_flags(&self, log_id: Option<u64>) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE tasks t JOIN logs l ON l.id = t.log_id SET t.enabled = l.enabled, t.priority = l.priority \
             WHERE (? IS NULL OR l.id = ?) AND (t.enabled <> l.enabled OR t.priority <> l.priority)",
        )
        .bind(log_id)
        .bind(log_id)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
