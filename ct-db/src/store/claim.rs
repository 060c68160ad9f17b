//! `claim`: pending tasks become leases, `FOR UPDATE SKIP LOCKED` so that
//! concurrent claims never wait on each other.

use crate::error::{Result, retrying};
use crate::limits::placeholders;
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
}

impl TaskStore {
    /// Leases up to `max` tasks to `who`; every lease starts at the task's
    /// start.
    pub async fn claim(&self, who: &Claimer, max: u32) -> Result<Vec<LeasedTask>> {
        retrying(|| self.claim_once(who, max.max(1))).await
    }

    async fn claim_once(&self, who: &Claimer, max: u32) -> Result<Vec<LeasedTask>> {
        // READ COMMITTED: the locking scan below then takes no gap locks on
        // `tasks_claim`, which under REPEATABLE READ deadlock with the UPDATE
        // that moves the claimed rows in that index (many concurrent claims).
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *conn)
            .await?;
        let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
        let established = who.tasks_done >= who.check_min_tasks;
        let ids: Vec<(u64,)> = sqlx::query_as(
            "SELECT id FROM tasks WHERE state = 'pending' AND enabled = 1 \
             AND (exclude_worker IS NULL OR exclude_worker <> ?) \
             AND (check_of = 0 OR (? AND exclude_address <> ?)) \
             ORDER BY priority DESC, id LIMIT ? FOR UPDATE SKIP LOCKED",
        )
        .bind(who.worker_id)
        .bind(established)
        .bind(&who.address)
        .bind(max)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let list = placeholders(ids.len());
        let sql = format!(
            "UPDATE tasks SET state = 'leased', lease_holder = ?, lease_expires_at = ?, \
             lease_from = start_index, next_index = start_index, attempts = attempts + 1, \
             lease_entries = 0, lease_matches = 0, lease_errors = 0, lease_rate_limited = 0 \
             WHERE state = 'pending' AND id IN ({list})"
        );
        let mut update = sqlx::query(&sql).bind(who.worker_id).bind(self.expiry());
        for (id,) in &ids {
            update = update.bind(id);
        }
        update.execute(&mut *tx).await?;
        let sql = format!(
            "SELECT t.id, t.log_id, l.url, l.kind, l.monitoring_url, t.start_index, t.end_index, \
             l.max_fetchers, t.check_of, t.lease_expires_at FROM tasks t JOIN logs l ON l.id = t.log_id \
             WHERE t.state = 'leased' AND t.lease_holder = ? AND t.id IN ({list}) ORDER BY t.priority DESC, t.id"
        );
        let mut select = sqlx::query_as::<_, LeasedTask>(&sql).bind(who.worker_id);
        for (id,) in &ids {
            select = select.bind(id);
        }
        let rows = select.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }
}
