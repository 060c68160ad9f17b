//! Planning: cut each log's `[start, tree_size)` into tasks, using only
//! verified tree heads. Every task is a complete aligned subtree (`2^k`
//! entries starting at a multiple of `2^k`, at most the configured task
//! size), so each range can be proven against any verified head at least as
//! large as its end, also while the log grows. A task's range never changes
//! once planned; planning is idempotent.

use ct_db::TaskStore;
use sqlx::MySqlPool;

use crate::error::Result;

/// The complete aligned subtrees that cover `[from, to)`, each at most
/// `size` entries (rounded down to a power of two): full aligned tasks
/// where they fit, halving at the edges.
pub fn ranges(from: u64, to: u64, size: u64) -> Vec<(u64, u64)> {
    let size = if size <= 1 {
        1
    } else {
        1u64 << (63 - size.leading_zeros())
    };
    let mut out = Vec::new();
    let mut s = from;
    while s < to {
        let mut w = size;
        while w > 1 && (s % w != 0 || s.saturating_add(w) > to) {
            w /= 2;
        }
        out.push((s, s + w));
        s += w;
    }
    out
}

/// Marks the log's newest entries: every range planned as a live log grew
/// (it was planned before) goes ahead of any backlog.
pub fn with_tip(ranges: Vec<(u64, u64)>, growing: bool) -> Vec<(u64, u64, bool)> {
    ranges.into_iter().map(|(s, e)| (s, e, growing)).collect()
}

/// Plans one log; returns how many tasks were added.
pub async fn plan_log(
    pool: &MySqlPool,
    store: &TaskStore,
    log_id: u64,
    task_size_log2: u32,
) -> Result<u64> {
    let size = 1u64 << task_size_log2.min(40);
    let Some((start, planned, final_size)): Option<(u64, u64, Option<u64>)> =
        sqlx::query_as("SELECT start_index, planned_end, final_tree_size FROM logs WHERE id = ?")
            .bind(log_id)
            .fetch_optional(pool)
            .await?
    else {
        return Ok(0);
    };
    let (tree_size,): (Option<u64>,) =
        sqlx::query_as("SELECT MAX(tree_size) FROM sths WHERE log_id = ? AND verified = 1")
            .bind(log_id)
            .fetch_one(pool)
            .await?;
    let Some(tree_size) = tree_size else {
        return Ok(0);
    };
    // A read-only or retired log is collected to its final tree head.
    let tree_size = final_size.map_or(tree_size, |f| tree_size.min(f));
    let from = planned.max(start);
    if tree_size <= from {
        return Ok(0);
    }
    let planned_ranges = with_tip(ranges(from, tree_size, size), planned > 0);
    let added = store
        .plan(log_id, planned, &planned_ranges, tree_size)
        .await?;
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
    use ct_core::merkle::subtree_level;

    #[test]
    fn aligned_ranges() {
        assert_eq!(ranges(0, 10, 4), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(ranges(5, 13, 4), vec![(5, 6), (6, 8), (8, 12), (12, 13)]);
        assert_eq!(ranges(8, 8, 4), vec![]);
        assert_eq!(ranges(0, 4, 4), vec![(0, 4)]);
        assert_eq!(ranges(0, 7, 6), vec![(0, 4), (4, 6), (6, 7)]);
    }

    /// A log that grows poll by poll: every planned range is a complete
    /// subtree, so it is provable against every later head.
    #[test]
    fn every_range_of_a_growing_log_is_a_complete_subtree() {
        let mut planned = 0;
        for size in [5000u64, 5013, 5500, 8191, 8192, 12_000, 17_700] {
            for (s, e) in ranges(planned, size, 4096) {
                let w = e - s;
                assert!(w.is_power_of_two() && s % w == 0, "[{s}, {e})");
                for later in [e, size, size + 1, size * 2] {
                    assert!(
                        subtree_level(s, e, later).is_some(),
                        "[{s}, {e}) in {later}"
                    );
                }
            }
            planned = size;
        }
    }
}
