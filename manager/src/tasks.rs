//! Leases: claim (atomic, `FOR UPDATE SKIP LOCKED`), heartbeat, complete,
//! fail, and the return of expired leases to the pool from the last reported
//! index.
//!
//! Counts a worker reports are cumulative for its lease; the stored
//! `lease_*` columns keep the largest values seen, so replays change nothing.
//! When a lease ends without completion its progress is folded into the
//! task's totals (`entries` grows by `next_index - lease_from`).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use ct_core::protocol::{
    CompleteRequest, FailRequest, HeartbeatRequest, HeartbeatResponse, LogFetchers, LogKind,
    TaskAck, TaskLease, TaskState, TaskStatus,
};
use sqlx::{FromRow, MySqlConnection};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::{AppState, db, scaling};

/// Fold of an ending lease into the task's totals; `lease_from` must be cleared last
/// (MariaDB assigns left to right).
pub const FOLD: &str = "state = 'pending', \
    entries = entries + (next_index - COALESCE(lease_from, next_index)), \
    matches = matches + lease_matches, errors = errors + lease_errors, \
    rate_limited = rate_limited + lease_rate_limited, \
    lease_entries = 0, lease_matches = 0, lease_errors = 0, lease_rate_limited = 0, \
    lease_holder = NULL, lease_expires_at = NULL, lease_from = NULL";

#[derive(Debug, FromRow)]
struct TaskRow {
    id: u64,
    log_id: u64,
    start_index: u64,
    end_index: u64,
    state: String,
    next_index: u64,
    lease_holder: Option<u64>,
    lease_from: Option<u64>,
    lease_entries: u64,
    lease_matches: u64,
    lease_errors: u64,
    lease_rate_limited: u64,
}

const TASK_COLUMNS: &str = "id, log_id, start_index, end_index, state, next_index, lease_holder, \
    lease_from, lease_entries, lease_matches, lease_errors, lease_rate_limited";

fn lease_ms(state: &AppState) -> i64 {
    i64::try_from(state.config.lease.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Returns expired leases (all leases when `force`) to the pool; the number returned.
pub async fn reap(state: &AppState, force: bool) -> Result<u64> {
    let bound = if force { i64::MAX } else { db::now_ms() };
    // A plain read first: idle workers' claims call this often, and the
    // UPDATE's range locks on `tasks_lease` would contend with every lease.
    let any: Option<(u64,)> = sqlx::query_as(
        "SELECT id FROM tasks WHERE state = 'leased' AND lease_expires_at < ? LIMIT 1",
    )
    .bind(bound)
    .fetch_optional(&state.pool)
    .await?;
    if any.is_none() {
        return Ok(0);
    }
    let done = sqlx::query(&format!(
        "UPDATE tasks SET last_error = 'lease expired', {FOLD} \
         WHERE state = 'leased' AND lease_expires_at < ?"
    ))
    .bind(bound)
    .execute(&state.pool)
    .await?
    .rows_affected();
    if done > 0 {
        inc(&state.metrics.leases_expired, done);
        tracing::info!(tasks = done, "expired leases returned to the pool");
    }
    Ok(done)
}

/// Runs [`reap`] every `every` until stopped.
pub async fn reap_loop(state: AppState, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if crate::sleep_or_stop(every, &mut stop).await {
            return;
        }
        if let Err(e) = reap(&state, false).await {
            tracing::warn!(error = %e, "lease reaper failed");
        }
    }
}

#[derive(Debug, FromRow)]
struct LeaseRow {
    id: u64,
    log_id: u64,
    url: String,
    kind: String,
    monitoring_url: Option<String>,
    start_index: u64,
    end_index: u64,
    next_index: u64,
    max_fetchers: u32,
    check_of: u64,
}

/// Leases up to `max` tasks to a worker.
pub async fn claim(state: &AppState, worker_id: u64, max: u32) -> Result<Vec<TaskLease>> {
    let max = max.clamp(1, state.config.max_claim.max(1));
    let flagged: Option<(bool,)> = sqlx::query_as("SELECT flagged FROM workers WHERE id = ?")
        .bind(worker_id)
        .fetch_optional(&state.pool)
        .await?;
    if flagged.is_some_and(|(f,)| f) {
        return Err(Error::forbidden(
            "flagged",
            "this worker was flagged by a hidden-entry check; it gets no more tasks",
        ));
    }
    inc(&state.metrics.claims, 1);
    let mut attempt = 0;
    let rows = loop {
        match claim_once(state, worker_id, max).await {
            Ok(rows) if rows.is_empty() && attempt == 0 => {
                // Nothing pending: take over expired leases, then look again.
                if reap(state, false).await? == 0 {
                    break rows;
                }
            }
            Ok(rows) => break rows,
            Err(e) if e.is_retryable() && attempt < 4 => {}
            Err(e) => return Err(e),
        }
        attempt += 1;
    };
    let expires = db::now_ms() + lease_ms(state);
    let mut conn = state.pool.acquire().await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let advice = scaling::current(
            &mut conn,
            worker_id,
            r.log_id,
            r.max_fetchers,
            state.config.initial_fetchers,
        )
        .await?;
        out.push(TaskLease {
            task_id: r.id,
            log_id: r.log_id,
            log_url: r.url,
            kind: LogKind::parse(&r.kind).unwrap_or(LogKind::Rfc6962),
            monitoring_url: r.monitoring_url,
            start: r.start_index,
            end: r.end_index,
            next_index: r.next_index,
            lease_expires_at: u64::try_from(expires).unwrap_or(0),
            fetchers: advice.fetchers,
            check_of: (r.check_of != 0).then_some(r.check_of),
        });
    }
    inc(&state.metrics.tasks_leased, out.len() as u64);
    Ok(out)
}

async fn claim_once(state: &AppState, worker_id: u64, max: u32) -> Result<Vec<LeaseRow>> {
    let now = db::now_ms();
    // READ COMMITTED: the locking scan below then takes no gap locks on
    // `tasks_claim`, which under REPEATABLE READ deadlock with the UPDATE
    // that moves the claimed rows in that index (many concurrent claims).
    let mut conn = state.pool.acquire().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .execute(&mut *conn)
        .await?;
    let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
    let ids: Vec<(u64,)> = sqlx::query_as(
        "SELECT id FROM tasks WHERE state = 'pending' AND enabled = 1 \
         AND (exclude_worker IS NULL OR exclude_worker <> ?) \
         ORDER BY priority DESC, id LIMIT ? FOR UPDATE SKIP LOCKED",
    )
    .bind(worker_id)
    .bind(max)
    .fetch_all(&mut *tx)
    .await?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let list = db::placeholders(ids.len());
    let sql = format!(
        "UPDATE tasks SET state = 'leased', lease_holder = ?, lease_expires_at = ?, \
         lease_from = next_index, attempts = attempts + 1, lease_entries = 0, lease_matches = 0, \
         lease_errors = 0, lease_rate_limited = 0 WHERE id IN ({list})"
    );
    let mut update = sqlx::query(&sql)
        .bind(worker_id)
        .bind(now + lease_ms(state));
    for (id,) in &ids {
        update = update.bind(id);
    }
    update.execute(&mut *tx).await?;
    let sql = format!(
        "SELECT t.id, t.log_id, l.url, l.kind, l.monitoring_url, t.start_index, t.end_index, \
         t.next_index, l.max_fetchers, t.check_of FROM tasks t JOIN logs l ON l.id = t.log_id \
         WHERE t.id IN ({list}) ORDER BY t.priority DESC, t.id"
    );
    let mut select = sqlx::query_as::<_, LeaseRow>(&sql);
    for (id,) in &ids {
        select = select.bind(id);
    }
    let rows = select.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

async fn lock_tasks(conn: &mut MySqlConnection, ids: &[u64]) -> Result<Vec<TaskRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({}) ORDER BY id FOR UPDATE",
        db::placeholders(ids.len())
    );
    let mut q = sqlx::query_as::<_, TaskRow>(&sql);
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.fetch_all(conn).await?)
}

/// Per-log deltas of one report.
#[derive(Debug, Default, Clone, Copy)]
struct Delta {
    entries: u64,
    matches: u64,
    errors: u64,
    rate_limited: u64,
}

async fn record_stats(
    conn: &mut MySqlConnection,
    worker_id: u64,
    deltas: &BTreeMap<u64, Delta>,
) -> Result<()> {
    let minute = db::now_ms() / 60_000 * 60;
    let (mut entries, mut matches) = (0u64, 0u64);
    for (log_id, d) in deltas {
        if d.entries + d.matches + d.errors + d.rate_limited == 0 {
            continue;
        }
        entries += d.entries;
        matches += d.matches;
        sqlx::query(
            "INSERT INTO stats_minute (minute, worker_id, log_id, entries, matches, errors, rate_limit_hits) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE entries = entries + VALUES(entries), \
             matches = matches + VALUES(matches), errors = errors + VALUES(errors), \
             rate_limit_hits = rate_limit_hits + VALUES(rate_limit_hits)",
        )
        .bind(minute)
        .bind(worker_id)
        .bind(log_id)
        .bind(d.entries)
        .bind(d.matches)
        .bind(d.errors)
        .bind(d.rate_limited)
        .execute(&mut *conn)
        .await?;
    }
    if entries + matches > 0 {
        sqlx::query("UPDATE workers SET entries = entries + ?, matches = matches + ? WHERE id = ?")
            .bind(entries)
            .bind(matches)
            .bind(worker_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn check_counts(task_id: u64, entries: u64, matches: u64, errors: u64, span: u64) -> Result<()> {
    if entries > span || matches > entries || errors > entries {
        return Err(Error::unprocessable(
            "invalid_counts",
            format!(
                "task {task_id}: counts must satisfy matches, errors <= entries <= {span} (the lease's range)"
            ),
        ));
    }
    Ok(())
}

/// Records progress, extends leases and answers the scaling advice.
pub async fn heartbeat(
    state: &AppState,
    worker_id: u64,
    req: &HeartbeatRequest,
) -> Result<HeartbeatResponse> {
    inc(&state.metrics.heartbeats, 1);
    if req.tasks.len() > 1024 {
        return Err(Error::unprocessable(
            "too_many_tasks",
            "at most 1024 tasks per heartbeat",
        ));
    }
    let mut seen = HashSet::new();
    for p in &req.tasks {
        if !seen.insert(p.task_id) {
            return Err(Error::bad_request(format!(
                "task {} is listed twice",
                p.task_id
            )));
        }
    }
    let ids: Vec<u64> = seen.into_iter().collect();
    let now = db::now_ms();
    let expires = now + lease_ms(state);
    let mut tx = state.pool.begin().await?;
    let rows = lock_tasks(&mut tx, &ids).await?;
    let by_id: BTreeMap<u64, &TaskRow> = rows.iter().map(|r| (r.id, r)).collect();
    let mut answers = Vec::with_capacity(req.tasks.len());
    let mut deltas: BTreeMap<u64, Delta> = BTreeMap::new();
    for p in &req.tasks {
        let Some(t) = by_id
            .get(&p.task_id)
            .filter(|t| t.lease_holder == Some(worker_id))
        else {
            answers.push(TaskState {
                task_id: p.task_id,
                status: TaskStatus::Lost,
                lease_expires_at: None,
            });
            continue;
        };
        match t.state.as_str() {
            "done" => {
                answers.push(TaskState {
                    task_id: t.id,
                    status: TaskStatus::Done,
                    lease_expires_at: None,
                });
                continue;
            }
            "leased" => {}
            _ => {
                answers.push(TaskState {
                    task_id: t.id,
                    status: TaskStatus::Lost,
                    lease_expires_at: None,
                });
                continue;
            }
        }
        let from = t.lease_from.unwrap_or(t.start_index);
        if p.next_index < from || p.next_index > t.end_index {
            return Err(Error::unprocessable(
                "invalid_index",
                format!(
                    "task {}: next_index {} is outside [{from}, {}]",
                    t.id, p.next_index, t.end_index
                ),
            ));
        }
        check_counts(t.id, p.entries, p.matches, p.errors, t.end_index - from)?;
        let next = p.next_index.max(t.next_index);
        let d = Delta {
            entries: p.entries.saturating_sub(t.lease_entries),
            matches: p.matches.saturating_sub(t.lease_matches),
            errors: p.errors.saturating_sub(t.lease_errors),
            rate_limited: p.rate_limited.saturating_sub(t.lease_rate_limited),
        };
        sqlx::query(
            "UPDATE tasks SET next_index = ?, lease_entries = GREATEST(lease_entries, ?), \
             lease_matches = GREATEST(lease_matches, ?), lease_errors = GREATEST(lease_errors, ?), \
             lease_rate_limited = GREATEST(lease_rate_limited, ?), lease_expires_at = ? WHERE id = ?",
        )
        .bind(next)
        .bind(p.entries)
        .bind(p.matches)
        .bind(p.errors)
        .bind(p.rate_limited)
        .bind(expires)
        .bind(t.id)
        .execute(&mut *tx)
        .await?;
        let e = deltas.entry(t.log_id).or_default();
        e.entries += d.entries;
        e.matches += d.matches;
        e.errors += d.errors;
        e.rate_limited += d.rate_limited;
        answers.push(TaskState {
            task_id: t.id,
            status: TaskStatus::Active,
            lease_expires_at: u64::try_from(expires).ok(),
        });
    }
    record_stats(&mut tx, worker_id, &deltas).await?;
    let mut fetchers = Vec::with_capacity(deltas.len());
    for (log_id, d) in &deltas {
        let (url, cap): (String, u32) =
            sqlx::query_as("SELECT url, max_fetchers FROM logs WHERE id = ?")
                .bind(log_id)
                .fetch_one(&mut *tx)
                .await?;
        let cur = scaling::current(
            &mut tx,
            worker_id,
            *log_id,
            cap,
            state.config.initial_fetchers,
        )
        .await?;
        let next = scaling::step(cur.fetchers, cap, d.entries, d.rate_limited);
        scaling::store(&mut tx, worker_id, *log_id, &next).await?;
        fetchers.push(LogFetchers {
            log_id: *log_id,
            log_url: url,
            fetchers: next.fetchers,
            reason: next.reason,
        });
    }
    tx.commit().await?;
    Ok(HeartbeatResponse {
        tasks: answers,
        fetchers,
    })
}

async fn lock_one(conn: &mut MySqlConnection, task_id: u64, worker_id: u64) -> Result<TaskRow> {
    let t = lock_tasks(conn, &[task_id])
        .await?
        .pop()
        .ok_or_else(|| Error::not_found(format!("no task {task_id}")))?;
    if t.lease_holder != Some(worker_id) {
        return Err(Error::forbidden(
            "not_leased",
            format!("task {task_id} is not leased to you"),
        ));
    }
    Ok(t)
}

fn parse_hash(h: Option<&str>, field: &'static str) -> Result<Option<[u8; 32]>> {
    match h {
        None => Ok(None),
        Some(h) => hex::decode(h)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .map(Some)
            .ok_or_else(|| {
                Error::unprocessable("invalid_hash", format!("{field} must be 64 hex digits"))
            }),
    }
}

/// The checks of a complete call that depend on the locked row.
fn check_complete(t: &TaskRow, task_id: u64, req: &CompleteRequest) -> Result<u64> {
    if t.state != "leased" {
        return Err(Error::forbidden(
            "not_leased",
            format!("task {task_id} is not leased to you"),
        ));
    }
    let from = t.lease_from.unwrap_or(t.start_index);
    let span = t.end_index - from;
    if req.next_index != t.end_index || req.entries != span {
        return Err(Error::conflict(
            "incomplete",
            format!(
                "task {task_id} covers [{from}, {}) in this lease: need next_index = {} and entries = {span}, got {} and {}",
                t.end_index, t.end_index, req.next_index, req.entries
            ),
        ));
    }
    check_counts(task_id, req.entries, req.matches, req.errors, span)?;
    Ok(span)
}

/// Completes a task when the totals account for every index of the lease,
/// after checking its subtree hash against the log (see [`crate::verify`]).
/// A hash that is not the log's returns the task to the pool from its start
/// and answers 422 `proof_mismatch`.
pub async fn complete(
    state: &AppState,
    worker_id: u64,
    task_id: u64,
    req: &CompleteRequest,
) -> Result<TaskAck> {
    let subtree = parse_hash(req.subtree_hash.as_deref(), "subtree_hash")?;
    let first_leaf = parse_hash(req.first_leaf_hash.as_deref(), "first_leaf_hash")?;
    // Validate first (no change), prove outside any transaction, then apply.
    {
        let mut tx = state.pool.begin().await?;
        let t = lock_one(&mut tx, task_id, worker_id).await?;
        if t.state == "done" {
            tx.commit().await?;
            let proof = crate::integrity::proof_state(state, task_id).await?;
            return Ok(TaskAck {
                task_id,
                state: "done".into(),
                next_index: t.end_index,
                proof,
            });
        }
        check_complete(&t, task_id, req)?;
        tx.commit().await?;
    }
    let proof = crate::integrity::prove_completion(state, task_id, subtree, first_leaf).await?;
    let mut tx = state.pool.begin().await?;
    let t = lock_one(&mut tx, task_id, worker_id).await?;
    let span = check_complete(&t, task_id, req)?;
    if let crate::verify::Proof::Mismatch { reason, .. } = &proof {
        crate::integrity::refuse(&mut tx, task_id, worker_id, reason).await?;
        tx.commit().await?;
        inc(&state.metrics.ranges_mismatched, 1);
        tracing::warn!(task.id = task_id, worker.id = worker_id, reason = %reason, "subtree hash refused");
        return Err(Error::unprocessable(
            "proof_mismatch",
            format!(
                "task {task_id}: {reason}; the task returns to the pool and this counts against you"
            ),
        ));
    }
    let matches = req.matches.max(t.lease_matches);
    let errors = req.errors.max(t.lease_errors);
    let rate_limited = req.rate_limited.max(t.lease_rate_limited);
    sqlx::query(
        "UPDATE tasks SET state = 'done', next_index = end_index, \
         entries = entries + (end_index - COALESCE(lease_from, start_index)), \
         matches = matches + ?, errors = errors + ?, rate_limited = rate_limited + ?, \
         lease_entries = 0, lease_matches = 0, lease_errors = 0, lease_rate_limited = 0, \
         lease_expires_at = NULL, subtree_hash = ?, completed_at = ?, completed_by = ? WHERE id = ?",
    )
    .bind(matches)
    .bind(errors)
    .bind(rate_limited)
    .bind(subtree.map(|h| h.to_vec()))
    .bind(db::now_ms())
    .bind(worker_id)
    .bind(task_id)
    .execute(&mut *tx)
    .await?;
    let proof_state = crate::integrity::record_proof(&mut tx, task_id, subtree, &proof).await?;
    let mut deltas = BTreeMap::new();
    deltas.insert(
        t.log_id,
        Delta {
            entries: span.saturating_sub(t.lease_entries),
            matches: matches - t.lease_matches,
            errors: errors - t.lease_errors,
            rate_limited: rate_limited - t.lease_rate_limited,
        },
    );
    record_stats(&mut tx, worker_id, &deltas).await?;
    sqlx::query("UPDATE workers SET tasks_done = tasks_done + 1 WHERE id = ?")
        .bind(worker_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    inc(&state.metrics.tasks_completed, 1);
    if proof_state == "verified" {
        inc(&state.metrics.ranges_verified, 1);
    } else {
        inc(&state.metrics.ranges_unproven, 1);
    }
    crate::integrity::after_complete(state, task_id, worker_id).await?;
    Ok(TaskAck {
        task_id,
        state: "done".into(),
        next_index: t.end_index,
        proof: Some(proof_state.to_owned()),
    })
}

/// Gives a task back to the pool from `req.index`.
pub async fn fail(
    state: &AppState,
    worker_id: u64,
    task_id: u64,
    req: &FailRequest,
) -> Result<TaskAck> {
    let mut tx = state.pool.begin().await?;
    let t = lock_one(&mut tx, task_id, worker_id).await?;
    if t.state != "leased" {
        return Err(Error::forbidden(
            "not_leased",
            format!("task {task_id} is not leased to you"),
        ));
    }
    let from = t.lease_from.unwrap_or(t.start_index);
    if req.index < from || req.index > t.end_index {
        return Err(Error::unprocessable(
            "invalid_index",
            format!("index {} is outside [{from}, {}]", req.index, t.end_index),
        ));
    }
    sqlx::query(&format!(
        "UPDATE tasks SET next_index = ?, last_error = ?, {FOLD} WHERE id = ?"
    ))
    .bind(req.index)
    .bind(db::clip(&req.error, 1000))
    .bind(task_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    inc(&state.metrics.tasks_failed, 1);
    tracing::info!(task.id = task_id, worker.id = worker_id, index = req.index, error = %db::clip(&req.error, 200), "task given back");
    Ok(TaskAck {
        task_id,
        state: "pending".into(),
        next_index: req.index,
        proof: None,
    })
}
