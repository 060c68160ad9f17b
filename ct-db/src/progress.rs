//! The one definition of a log's progress, read by the manager's API and by
//! sitegen so that both always show the same numbers. Only main tasks
//! (not check tasks) count, and only done ranges are collected: a done
//! range is always proven against a verified signed tree head.
//!
//! [`progress_of`] defines it over a log's tasks in range order and
//! [`progress_scan`] applies it to every task; [`progress_all`] and
//! [`ProgressReader`] compute the same from the counters the database keeps
//! ([`crate::counters`]) and a few index seeks per log, so that reading
//! costs the same with ten or ten million tasks.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{MySqlConnection, MySqlPool};

use crate::counters::LogCounters;
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
    tasks_pending: u64,
    tasks_leased: u64,
    tasks_done: u64,
    tasks_fault: u64,
    checks_pending: u64,
    checks_failed: u64,
    errors: u64,
    rate_limited: u64,
    matches: u64,
}

/// Progress of every log, by log id: the counters the database keeps and a
/// few index seeks per log (see [`ProgressReader`]), never a scan of the
/// tasks. The same numbers as [`progress_scan`].
pub async fn progress_all(pool: &MySqlPool) -> Result<HashMap<u64, Progress>> {
    let mut tx = pool.begin().await?;
    let reading = ProgressReader::default().read(&mut tx).await?;
    tx.commit().await?;
    Ok(reading.progress)
}

/// Progress of one log.
pub async fn progress_of_log(pool: &MySqlPool, log_id: u64) -> Result<Option<Progress>> {
    Ok(progress_all(pool).await?.remove(&log_id))
}

/// Progress of every log from a scan of every task: the definition the
/// counters and seeks of [`progress_all`] must agree with (tests compare
/// them). Slow on large tables; nothing serves it.
pub async fn progress_scan(pool: &MySqlPool) -> Result<HashMap<u64, Progress>> {
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
    let sum = |expr: &str, name: &str| {
        format!("CAST(LEAST(18446744073709551615, COALESCE(SUM({expr}), 0)) AS UNSIGNED) AS {name}")
    };
    let counts: Vec<Counts> = sqlx::query_as(&format!(
        "SELECT log_id, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM tasks GROUP BY log_id",
        sum("check_of = 0 AND state = 'pending'", "tasks_pending"),
        sum("check_of = 0 AND state = 'leased'", "tasks_leased"),
        sum("check_of = 0 AND state = 'done'", "tasks_done"),
        sum("check_of = 0 AND state = 'log_fault'", "tasks_fault"),
        sum("check_of <> 0 AND state <> 'done'", "checks_pending"),
        sum(
            "check_of = 0 AND COALESCE(check_state, '') = 'failed'",
            "checks_failed"
        ),
        sum(
            "IF(check_of = 0, CAST(errors AS DECIMAL(38, 0)) + lease_errors, 0)",
            "errors"
        ),
        sum(
            "IF(check_of = 0, CAST(rate_limited AS DECIMAL(38, 0)) + lease_rate_limited, 0)",
            "rate_limited"
        ),
        sum("IF(check_of = 0, matches, 0)", "matches"),
    ))
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
    let mut out = HashMap::new();
    for (id, start, size) in logs {
        let tasks = by_log.remove(&id).unwrap_or_default();
        let first = tasks.first().map_or(start, |t| t.start.min(start));
        let mut p = progress_of(first, size.unwrap_or(0), &tasks);
        p.log_id = id;
        if let Some(c) = counts.iter().find(|c| c.log_id == id) {
            p.tasks_pending = c.tasks_pending;
            p.tasks_leased = c.tasks_leased;
            p.tasks_done = c.tasks_done;
            p.tasks_fault = c.tasks_fault;
            p.checks_pending = c.checks_pending;
            p.checks_failed = c.checks_failed;
            p.errors = c.errors;
            p.rate_limited = c.rate_limited;
            p.matches = c.matches;
        }
        p.failed_entries = failed
            .get(&id)
            .copied()
            .map_or(0, |v| u64::try_from(v).unwrap_or(0));
        out.insert(id, p);
    }
    Ok(out)
}

/// What [`ProgressReader::read`] read: each log's progress and counters.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub progress: HashMap<u64, Progress>,
    pub counters: HashMap<u64, LogCounters>,
}

/// Reads every log's progress from the counters and a few index seeks, and
/// keeps each log's listed gaps and faults while its layout (the
/// [`LogCounters::layout`] counter, the log's start and its tree size)
/// stays the same, so that a reader kept between calls seeks only in the
/// logs whose tasks moved.
///
/// A log's main tasks tile `[first start, last end)` without holes or
/// overlaps (the planner cuts them so); its verified prefix ends at its first
/// task that is not collected, and each gap (fault) is a run of tasks of
/// that class, found with one seek for its start and one for its end, at
/// most 50 of each. A log whose tasks do leave holes (an admin moved its
/// start past planned tasks) or overlap (rows written by hand) is read by a
/// scan of its main tasks instead, again only when its layout changed.
#[derive(Debug, Default)]
pub struct ProgressReader {
    layouts: HashMap<u64, Layout>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LayoutKey {
    layout: u64,
    start_index: u64,
    tree_size: u64,
}

#[derive(Debug, Clone)]
enum Lists {
    /// Gap and fault runs within `[first start, last end)`, from seeks.
    Seeks {
        gaps: Vec<Range>,
        faults: Vec<Range>,
    },
    /// The whole layout part of the progress, from a scan.
    Scan(Progress),
}

#[derive(Debug, Clone)]
struct Layout {
    key: LayoutKey,
    lists: Lists,
}

/// Where one log's main tasks are, from index seeks.
#[derive(sqlx::FromRow)]
struct Bounds {
    log_id: u64,
    start_index: u64,
    tree_size: Option<u64>,
    first_start: Option<u64>,
    last_end: Option<u64>,
    first_missing: Option<u64>,
    first_fault: Option<u64>,
}

/// One row per log; every subquery reads one index entry or a few.
const BOUNDS: &str = "SELECT l.id AS log_id, l.start_index, \
    (SELECT s.tree_size FROM sths s FORCE INDEX (sths_verified) WHERE s.log_id = l.id AND s.verified = 1 \
       ORDER BY s.tree_size DESC LIMIT 1) AS tree_size, \
    (SELECT t.start_index FROM tasks t FORCE INDEX (tasks_range_check) WHERE t.log_id = l.id AND t.check_of = 0 \
       ORDER BY t.start_index LIMIT 1) AS first_start, \
    (SELECT t.end_index FROM tasks t FORCE INDEX (tasks_range_check) WHERE t.log_id = l.id AND t.check_of = 0 \
       ORDER BY t.start_index DESC LIMIT 1) AS last_end, \
    (SELECT t.start_index FROM tasks t FORCE INDEX (tasks_progress) WHERE t.log_id = l.id AND t.progress_class = 0 \
       ORDER BY t.start_index LIMIT 1) AS first_missing, \
    (SELECT t.start_index FROM tasks t FORCE INDEX (tasks_progress) WHERE t.log_id = l.id AND t.progress_class = 2 \
       ORDER BY t.start_index LIMIT 1) AS first_fault \
    FROM logs l ORDER BY l.id";

/// The progress classes of main tasks (the generated column `progress_class`).
const MISSING: u8 = 0;
const COLLECTED: u8 = 1;
const FAULTY: u8 = 2;

impl ProgressReader {
    /// Reads every log. Run it inside a transaction, so that the counters
    /// and the seeks see one snapshot.
    pub async fn read(&mut self, conn: &mut MySqlConnection) -> Result<Reading> {
        let counters = crate::counters::by_log(conn).await?;
        let bounds: Vec<Bounds> = sqlx::query_as(BOUNDS).fetch_all(&mut *conn).await?;
        let mut progress = HashMap::with_capacity(bounds.len());
        for b in &bounds {
            let c = counters.get(&b.log_id).cloned().unwrap_or_default();
            let p = self.log(conn, b, &c).await?;
            progress.insert(b.log_id, p);
        }
        self.layouts.retain(|id, _| progress.contains_key(id));
        Ok(Reading { progress, counters })
    }

    async fn log(
        &mut self,
        conn: &mut MySqlConnection,
        b: &Bounds,
        c: &LogCounters,
    ) -> Result<Progress> {
        let tree_size = b.tree_size.unwrap_or(0);
        let mut p = match (b.first_start, b.last_end) {
            (Some(ft), Some(me)) => {
                let key = LayoutKey {
                    layout: c.layout,
                    start_index: b.start_index,
                    tree_size,
                };
                let lists = match self.layouts.get(&b.log_id) {
                    Some(l) if l.key == key => l.lists.clone(),
                    _ => {
                        let lists = lists(conn, b, c, ft, me, tree_size).await?;
                        self.layouts.insert(
                            b.log_id,
                            Layout {
                                key,
                                lists: lists.clone(),
                            },
                        );
                        lists
                    }
                };
                match lists {
                    Lists::Seeks { gaps, faults } => {
                        assemble(b, c, (ft, me), tree_size, &gaps, &faults)
                    }
                    Lists::Scan(p) => p,
                }
            }
            _ => progress_of(b.start_index, tree_size, &[]),
        };
        p.log_id = b.log_id;
        p.tree_size = tree_size;
        p.tasks_pending = c.pending;
        p.tasks_leased = c.leased;
        p.tasks_done = c.done;
        p.tasks_fault = c.log_fault;
        p.checks_pending = c.check_tasks.saturating_sub(c.check_done);
        p.checks_failed = c.checks_failed;
        p.errors = c.errors;
        p.rate_limited = c.rate_limited;
        p.matches = c.matches;
        p.failed_entries = c.failed_entries;
        Ok(p)
    }
}

/// The gap and fault runs of a log whose main tasks span `[ft, me)`, or its
/// scan when they do not tile it.
async fn lists(
    conn: &mut MySqlConnection,
    b: &Bounds,
    c: &LogCounters,
    ft: u64,
    me: u64,
    tree_size: u64,
) -> Result<Lists> {
    if me.checked_sub(ft) != Some(c.span) {
        return Ok(Lists::Scan(
            scan_log(conn, b.log_id, b.start_index, tree_size).await?,
        ));
    }
    let gaps = match b.first_missing {
        Some(from) => gap_runs(conn, b.log_id, from, me).await?,
        None => Vec::new(),
    };
    let faults = match b.first_fault {
        Some(from) => runs(conn, b.log_id, FAULTY, [MISSING, COLLECTED], from, me).await?,
        None => Vec::new(),
    };
    Ok(Lists::Seeks { gaps, faults })
}

/// Main tasks read at once in range order when listing gaps.
const WINDOW: u32 = 256;

/// The first task of progress class `class` starting at `from` or later.
async fn next_of(
    conn: &mut MySqlConnection,
    log_id: u64,
    class: u8,
    from: u64,
) -> Result<Option<u64>> {
    let row: Option<(u64,)> = sqlx::query_as(
        "SELECT start_index FROM tasks FORCE INDEX (tasks_progress) \
         WHERE log_id = ? AND progress_class = ? AND start_index >= ? ORDER BY start_index LIMIT 1",
    )
    .bind(log_id)
    .bind(class)
    .bind(from)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Where a run of tasks starting at `start` ends: at the next task of one
/// of the classes `others`, else at `end`.
async fn run_end(
    conn: &mut MySqlConnection,
    log_id: u64,
    others: [u8; 2],
    start: u64,
    end: u64,
) -> Result<u64> {
    let next = "(SELECT start_index FROM tasks FORCE INDEX (tasks_progress) \
         WHERE log_id = ? AND progress_class = ? AND start_index > ? ORDER BY start_index LIMIT 1)";
    let (a, b): (Option<u64>, Option<u64>) = sqlx::query_as(&format!("SELECT {next}, {next}"))
        .bind(log_id)
        .bind(others[0])
        .bind(start)
        .bind(log_id)
        .bind(others[1])
        .bind(start)
        .fetch_one(&mut *conn)
        .await?;
    Ok(a.into_iter().chain(b).min().unwrap_or(end).min(end))
}

/// Up to [`LISTED`] gaps (maximal runs of tasks neither collected nor the
/// log's fault) from the first such task, at `from`, in a log whose main
/// tasks tile `[.., end)`. Tasks are read [`WINDOW`] at a time in range
/// order, so that many short gaps cost one query; a gap that goes on past a
/// window, and the collected ranges after one, are skipped with a seek.
async fn gap_runs(
    conn: &mut MySqlConnection,
    log_id: u64,
    from: u64,
    end: u64,
) -> Result<Vec<Range>> {
    let mut out = Vec::new();
    let mut pos = from;
    while out.len() < LISTED && pos < end {
        let rows: Vec<(u64, u64, Option<i8>)> = sqlx::query_as(
            "SELECT start_index, end_index, progress_class FROM tasks FORCE INDEX (tasks_range_check) \
             WHERE log_id = ? AND start_index >= ? AND check_of = 0 ORDER BY start_index LIMIT ?",
        )
        .bind(log_id)
        .bind(pos)
        .bind(WINDOW)
        .fetch_all(&mut *conn)
        .await?;
        let Some(&(last_start, last_end, _)) = rows.last() else {
            break;
        };
        let mut open = None;
        for &(s, _, class) in &rows {
            if class == Some(MISSING as i8) {
                open.get_or_insert(s);
            } else if let Some(o) = open.take() {
                out.push((o, s));
                if out.len() == LISTED {
                    return Ok(out);
                }
            }
        }
        match open {
            Some(o) => {
                let e = run_end(conn, log_id, [COLLECTED, FAULTY], last_start, end).await?;
                out.push((o, e));
                pos = e;
            }
            None => match next_of(conn, log_id, MISSING, last_end).await? {
                Some(s) => pos = s,
                None => break,
            },
        }
    }
    Ok(out)
}

/// Up to [`LISTED`] maximal runs of main tasks of progress class `class`
/// from the first one, at `from`, in a log whose main tasks tile
/// `[.., end)`: each run starts at a task of the class and ends where the
/// next task of another class starts; two seeks a run.
async fn runs(
    conn: &mut MySqlConnection,
    log_id: u64,
    class: u8,
    others: [u8; 2],
    from: u64,
    end: u64,
) -> Result<Vec<Range>> {
    let mut out = Vec::new();
    let mut next = Some(from);
    while let Some(s) = next.filter(|s| out.len() < LISTED && *s < end) {
        let e = run_end(conn, log_id, others, s, end).await?;
        out.push((s, e));
        next = next_of(conn, log_id, class, e).await?;
    }
    Ok(out)
}

/// The progress of a log whose main tasks span `(ft, me)` without holes.
fn assemble(
    b: &Bounds,
    c: &LogCounters,
    (ft, me): (u64, u64),
    tree_size: u64,
    gaps: &[Range],
    faults: &[Range],
) -> Progress {
    let first = b.start_index.min(ft);
    let mut p = Progress {
        tree_size,
        verified_until: first,
        planned_end: me,
        entries_verified: c.span_verified,
        entries_faulty: c.span_fault,
        ..Progress::default()
    };
    if first < ft {
        push_merged(&mut p.gaps, (first, ft));
    } else {
        p.verified_until = b
            .first_missing
            .into_iter()
            .chain(b.first_fault)
            .min()
            .unwrap_or(me);
    }
    for g in gaps {
        push_merged(&mut p.gaps, *g);
    }
    if tree_size > me {
        push_merged(&mut p.gaps, (me, tree_size));
    }
    for f in faults {
        push_merged(&mut p.faults, *f);
    }
    p.entries_missing = (ft - first)
        .saturating_add(
            c.span
                .saturating_sub(c.span_verified)
                .saturating_sub(c.span_fault),
        )
        .saturating_add(tree_size.saturating_sub(me));
    p
}

/// The layout part of one log's progress from its main tasks in order.
async fn scan_log(
    conn: &mut MySqlConnection,
    log_id: u64,
    start_index: u64,
    tree_size: u64,
) -> Result<Progress> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT log_id, start_index, end_index, state, proof_state FROM tasks \
         WHERE log_id = ? AND check_of = 0 ORDER BY start_index",
    )
    .bind(log_id)
    .fetch_all(&mut *conn)
    .await?;
    let tasks: Vec<TaskSpan> = rows
        .into_iter()
        .map(|r| TaskSpan {
            start: r.start_index,
            end: r.end_index,
            state: r.state,
            proof: r.proof_state,
        })
        .collect();
    let first = tasks
        .first()
        .map_or(start_index, |t| t.start.min(start_index));
    Ok(progress_of(first, tree_size, &tasks))
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
