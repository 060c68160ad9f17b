//! Planning: cut each log's `[start, tree_size)` into tasks aligned on
//! `2^k` entries (the last one shorter), using only verified tree heads. As
//! the tree grows, a still pending short last task is extended and new tasks
//! are added; planning is idempotent (`UNIQUE (log_id, start_index)`).

use sqlx::MySqlPool;

use crate::db;
use crate::error::Result;

/// The ranges that cover `[from, to)`, each ending on a multiple of `size`
/// or at `to`.
pub fn ranges(from: u64, to: u64, size: u64) -> Vec<(u64, u64)> {
    let size = size.max(1);
    let mut out = Vec::new();
    let mut s = from;
    while s < to {
        let e = (s / size).saturating_add(1).saturating_mul(size).min(to);
        out.push((s, e));
        s = e;
    }
    out
}

/// Plans one log; returns how many tasks were added.
pub async fn plan_log(pool: &MySqlPool, log_id: u64, task_size_log2: u32) -> Result<u64> {
    let size = 1u64 << task_size_log2.min(40);
    let mut tx = pool.begin().await?;
    let Some((start, planned, enabled, priority)): Option<(u64, u64, bool, i32)> = sqlx::query_as(
        "SELECT start_index, planned_end, enabled, priority FROM logs WHERE id = ? FOR UPDATE",
    )
    .bind(log_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(0);
    };
    let (tree_size,): (Option<u64>,) =
        sqlx::query_as("SELECT MAX(tree_size) FROM sths WHERE log_id = ? AND verified = 1")
            .bind(log_id)
            .fetch_one(&mut *tx)
            .await?;
    let Some(tree_size) = tree_size else {
        return Ok(0);
    };
    let mut from = planned.max(start);
    if tree_size <= from {
        tx.commit().await?;
        return Ok(0);
    }
    // Extend a short, still pending last task up to its block's end.
    let last: Option<(u64, u64, u64, String)> = sqlx::query_as(
        "SELECT id, start_index, end_index, state FROM tasks WHERE log_id = ? AND check_of = 0 \
         ORDER BY start_index DESC LIMIT 1 FOR UPDATE",
    )
    .bind(log_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((id, s, e, state)) = last
        && e == from
        && state == "pending"
        && e % size != 0
    {
        let block_end = (s / size + 1) * size;
        let new_end = block_end.min(tree_size);
        sqlx::query("UPDATE tasks SET end_index = ? WHERE id = ?")
            .bind(new_end)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        from = new_end;
    }
    let now = db::now_ms();
    let mut added = 0;
    for chunk in ranges(from, tree_size, size).chunks(500) {
        let sql = format!(
            "INSERT IGNORE INTO tasks (log_id, start_index, end_index, next_index, enabled, priority, created_at) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (s, e) in chunk {
            q = q
                .bind(log_id)
                .bind(s)
                .bind(e)
                .bind(s)
                .bind(enabled)
                .bind(priority)
                .bind(now);
        }
        added += q.execute(&mut *tx).await?.rows_affected();
    }
    sqlx::query("UPDATE logs SET planned_end = ? WHERE id = ?")
        .bind(tree_size)
        .bind(log_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if added > 0 {
        tracing::info!(
            log.id = log_id,
            tasks = added,
            tree_size,
            "planned new tasks"
        );
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_ranges() {
        assert_eq!(ranges(0, 10, 4), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(ranges(5, 13, 4), vec![(5, 8), (8, 12), (12, 13)]);
        assert_eq!(ranges(8, 8, 4), vec![]);
        assert_eq!(ranges(0, 4, 4), vec![(0, 4)]);
    }
}
