//! The one definition of a log's progress, read by the manager's API and by
//! sitegen so that both always show the same numbers. Only main tasks
//! (not check tasks) count, and only done ranges are collected: a done
//! range is always proven against a verified signed tree head.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::error::Result;
use crate::states::{ProofState, TaskState};

/// A half-open range of log indices.
pub type Range = (u64, u64);

/// What is known about one log's collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    pub log_id: u64,
    /// Size of the largest verified signed tree head (0 before the first).
    pub tree_size: u64,
    /// `[start_index, verified_until)` is collected and proven.
    pub verified_until: u64,
    /// Entries in collected, proven ranges (also beyond the prefix).
    pub entries_verified: u64,
    /// Entries up to `tree_size` not collected yet (planned or not).
    pub entries_missing: u64,
    /// Those ranges, merged; at most 50 listed.
    #[cfg_attr(feature = "openapi", schema(schema_with = range_list))]
    pub gaps: Vec<Range>,
    /// Entries the log serves with bytes that are not in its tree.
    pub entries_faulty: u64,
    #[cfg_attr(feature = "openapi", schema(schema_with = range_list))]
    pub faults: Vec<Range>,
    /// End of the planned tasks.
    pub planned_end: u64,
    pub tasks_pending: u64,
    pub tasks_leased: u64,
    pub tasks_done: u64,
    pub tasks_fault: u64,
    /// Hidden-entry checks waiting for an independent worker.
    pub checks_pending: u64,
    /// Checks whose two sets differed.
    pub checks_failed: u64,
    /// Counts the workers reported over all leases.
    pub errors: u64,
    pub rate_limited: u64,
    pub matches: u64,
    /// Proven entries of this log that do not decode.
    pub failed_entries: u64,
}

const LISTED: usize = 50;

/// The OpenAPI schema of a list of [`Range`]s: `[[start, end], ...]`.
#[cfg(feature = "openapi")]
fn range_list() -> utoipa::openapi::schema::Array {
    use utoipa::PartialSchema;
    use utoipa::openapi::schema::{ArrayBuilder, ArrayItems};
    let index = || match u64::schema() {
        utoipa::openapi::RefOr::T(s) => s,
        utoipa::openapi::RefOr::Ref(_) => utoipa::openapi::schema::Schema::default(),
    };
    let pair = ArrayBuilder::new()
        .prefix_items([index(), index()])
        .items(ArrayItems::False)
        .min_items(Some(2))
        .max_items(Some(2))
        .description(Some("A half-open range [start, end)."));
    ArrayBuilder::new()
        .items(pair)
        .max_items(Some(LISTED))
        .build()
}

fn push_merged(list: &mut Vec<Range>, r: Range) {
    if let Some(last) = list.last_mut()
        && last.1 == r.0
    {
        last.1 = r.1;
        return;
    }
    if list.len() < LISTED {
        list.push(r);
    }
}

/// One main task as progress sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSpan {
    pub start: u64,
    pub end: u64,
    pub state: TaskState,
    pub proof: Option<ProofState>,
}

/// Progress of one log from its main tasks in range order.
pub fn progress_of(start_index: u64, tree_size: u64, tasks: &[TaskSpan]) -> Progress {
    let mut p = Progress {
        tree_size,
        verified_until: start_index,
        ..Progress::default()
    };
    let mut prefix_open = true;
    let mut covered = start_index;
    for t in tasks {
        let (s, e) = (t.start.max(covered), t.end);
        if e <= s {
            continue;
        }
        if s > covered {
            push_merged(&mut p.gaps, (covered, s));
            p.entries_missing += s - covered;
            prefix_open = false;
        }
        covered = e;
        p.planned_end = p.planned_end.max(e);
        match t.state {
            TaskState::Done if t.proof == Some(ProofState::Verified) => {
                p.entries_verified += e - s;
                if prefix_open && s == p.verified_until {
                    p.verified_until = e;
                }
            }
            TaskState::LogFault => {
                prefix_open = false;
                push_merged(&mut p.faults, (s, e));
                p.entries_faulty += e - s;
            }
            _ => {
                prefix_open = false;
                push_merged(&mut p.gaps, (s, e));
                p.entries_missing += e - s;
            }
        }
    }
    if tree_size > covered {
        push_merged(&mut p.gaps, (covered, tree_size));
        p.entries_missing += tree_size - covered;
    }
    p
}

#[derive(sqlx::FromRow)]
struct Row {
    log_id: u64,
    start_index: u64,
    end_index: u64,
    state: TaskState,
    proof_state: Option<ProofState>,
}

#[derive(sqlx::FromRow)]
struct Counts {
    log_id: u64,
    tasks_pending: i64,
    tasks_leased: i64,
    tasks_done: i64,
    tasks_fault: i64,
    checks_pending: i64,
    checks_failed: i64,
    errors: i64,
    rate_limited: i64,
    matches: i64,
}

/// Progress of every log, by log id.
pub async fn progress_all(pool: &MySqlPool) -> Result<HashMap<u64, Progress>> {
    let logs: Vec<(u64, u64, Option<u64>)> = sqlx::query_as(
        "SELECT l.id, l.start_index, (SELECT MAX(tree_size) FROM sths s WHERE s.log_id = l.id AND s.verified = 1) \
         FROM logs l ORDER BY l.id",
    )
    .fetch_all(pool)
    .await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT log_id, start_index, end_index, state, proof_state FROM tasks WHERE check_of = 0 \
         ORDER BY log_id, start_index",
    )
    .fetch_all(pool)
    .await?;
    let counts: Vec<Counts> = sqlx::query_as(
        "SELECT log_id, \
           CAST(SUM(check_of = 0 AND state = 'pending') AS SIGNED) AS tasks_pending, \
           CAST(SUM(check_of = 0 AND state = 'leased') AS SIGNED) AS tasks_leased, \
           CAST(SUM(check_of = 0 AND state = 'done') AS SIGNED) AS tasks_done, \
           CAST(SUM(check_of = 0 AND state = 'log_fault') AS SIGNED) AS tasks_fault, \
           CAST(SUM(check_of <> 0 AND state <> 'done') AS SIGNED) AS checks_pending, \
           CAST(SUM(check_of = 0 AND COALESCE(check_state, '') = 'failed') AS SIGNED) AS checks_failed, \
           CAST(SUM(IF(check_of = 0, errors + lease_errors, 0)) AS SIGNED) AS errors, \
           CAST(SUM(IF(check_of = 0, rate_limited + lease_rate_limited, 0)) AS SIGNED) AS rate_limited, \
           CAST(SUM(IF(check_of = 0, matches, 0)) AS SIGNED) AS matches \
         FROM tasks GROUP BY log_id",
    )
    .fetch_all(pool)
    .await?;
    let failed: HashMap<u64, i64> = sqlx::query_as::<_, (u64, i64)>(
        "SELECT log_id, COUNT(*) FROM failed_entries GROUP BY log_id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let mut by_log: HashMap<u64, Vec<TaskSpan>> = HashMap::new();
    for r in rows {
        by_log.entry(r.log_id).or_default().push(TaskSpan {
            start: r.start_index,
            end: r.end_index,
            state: r.state,
            proof: r.proof_state,
        });
    }
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut out = HashMap::new();
    for (id, start, size) in logs {
        let tasks = by_log.remove(&id).unwrap_or_default();
        let first = tasks.first().map_or(start, |t| t.start.min(start));
        let mut p = progress_of(first, size.unwrap_or(0), &tasks);
        p.log_id = id;
        if let Some(c) = counts.iter().find(|c| c.log_id == id) {
            p.tasks_pending = n(c.tasks_pending);
            p.tasks_leased = n(c.tasks_leased);
            p.tasks_done = n(c.tasks_done);
            p.tasks_fault = n(c.tasks_fault);
            p.checks_pending = n(c.checks_pending);
            p.checks_failed = n(c.checks_failed);
            p.errors = n(c.errors);
            p.rate_limited = n(c.rate_limited);
            p.matches = n(c.matches);
        }
        p.failed_entries = failed.get(&id).copied().map_or(0, n);
        out.insert(id, p);
    }
    Ok(out)
}

/// Progress of one log.
pub async fn progress_of_log(pool: &MySqlPool, log_id: u64) -> Result<Option<Progress>> {
    Ok(progress_all(pool).await?.remove(&log_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: u64, end: u64, state: TaskState, proof: Option<ProofState>) -> TaskSpan {
        TaskSpan {
            start,
            end,
            state,
            proof,
        }
    }

    #[test]
    fn progress_tells_verified_faulty_and_gaps_apart() {
        use ProofState::Verified;
        use TaskState::*;
        let tasks = vec![
            t(0, 4, Done, Some(Verified)),
            t(4, 8, Done, Some(Verified)),
            t(8, 12, LogFault, None),
            t(12, 16, Pending, None),
            t(16, 20, Done, Some(Verified)),
            t(20, 22, Leased, None),
        ];
        let p = progress_of(0, 30, &tasks);
        assert_eq!(p.verified_until, 8);
        assert_eq!(p.entries_verified, 12);
        assert_eq!(p.faults, vec![(8, 12)]);
        assert_eq!(p.gaps, vec![(12, 16), (20, 30)]);
        assert_eq!(p.entries_missing, 14);
        assert_eq!(p.planned_end, 22);
    }
}
