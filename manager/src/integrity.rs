//! Range and entry integrity in the database: the proof state of each task,
//! refusal of a subtree hash that is not the log's, hidden-entry check tasks
//! and their comparison, flagged workers, the "verify now" retry of unproven
//! ranges, and progress that tells verified, unproven and missing apart.
//!
//! Rules (see the README): a refused task returns to the pool from its start
//! for another worker, the refused worker's sightings of that task are
//! deleted and its `mismatches` counter grows. A check task repeats a done
//! range for a different worker; every match either worker uploaded is
//! re-examined (and proven when it came with an audit path), so the union is
//! trusted and a worker whose set lacks part of it is flagged: its ranges go
//! back to the pool and it gets no more tasks.

use std::collections::BTreeSet;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, MySqlConnection, MySqlPool};

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::verify::{self, Proof, Target};
use crate::{AppState, db, tasks};

type Hash = [u8; 32];

/// The stored proof state of a task.
pub async fn proof_state(state: &AppState, task_id: u64) -> Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT proof_state FROM tasks WHERE id = ?")
            .bind(task_id)
            .fetch_optional(&state.pool)
            .await?;
    Ok(row.and_then(|(s,)| s))
}

#[derive(Debug, FromRow)]
struct ProofRow {
    proof_state: Option<String>,
    proof_hash: Option<Vec<u8>>,
    proof_tree_size: Option<u64>,
}

async fn proof_row(pool: &MySqlPool, task_id: u64) -> Result<ProofRow> {
    sqlx::query_as("SELECT proof_state, proof_hash, proof_tree_size FROM tasks WHERE id = ?")
        .bind(task_id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::not_found(format!("no task {task_id}")))
}

/// Checks the subtree hash a complete call reports: against the hash the
/// uploads were checked against, then (unless already proven) against the log.
pub async fn prove_completion(
    state: &AppState,
    task_id: u64,
    subtree: Option<Hash>,
    first_leaf: Option<Hash>,
) -> Result<Proof> {
    let Some(hash) = subtree else {
        return Ok(Proof::Unproven("no subtree_hash reported".into()));
    };
    let row = proof_row(&state.pool, task_id).await?;
    if let Some(stored) = row.proof_hash.as_deref() {
        if stored != hash {
            return Ok(Proof::Mismatch {
                tree_size: row.proof_tree_size.unwrap_or(0),
                reason: format!(
                    "subtree hash {} differs from {} that this task's uploads were checked against",
                    hex::encode(hash),
                    hex::encode(stored)
                ),
            });
        }
        if row.proof_state.as_deref() == Some("verified") {
            return Ok(Proof::Verified {
                tree_size: row.proof_tree_size.unwrap_or(0),
            });
        }
    }
    let target = Target::load(state, task_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no task {task_id}")))?;
    verify::prove(state, &target, &hash, first_leaf.as_ref()).await
}

/// Checks the subtree hash an upload carries. `Ok(None)` when the hash is
/// acceptable (proven or unprovable for now), `Ok(Some(reason))` when it is
/// refused (the caller refuses the task), `Err` for a 409 conflict.
pub async fn prove_upload(state: &AppState, task_id: u64, hash: &Hash) -> Result<Option<String>> {
    let row = proof_row(&state.pool, task_id).await?;
    if let Some(stored) = row.proof_hash.as_deref() {
        if stored == hash {
            return Ok(None);
        }
        if row.proof_state.as_deref() == Some("verified") {
            return Ok(Some(format!(
                "subtree hash {} is not {} that the log proved for this range",
                hex::encode(hash),
                hex::encode(stored)
            )));
        }
        return Err(Error::conflict(
            "subtree_conflict",
            format!(
                "task {task_id}: earlier uploads were checked against subtree hash {}, not {}",
                hex::encode(stored),
                hex::encode(hash)
            ),
        ));
    }
    let target = Target::load(state, task_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no task {task_id}")))?;
    let proof = verify::prove(state, &target, hash, None).await?;
    if let Proof::Mismatch { reason, .. } = proof {
        return Ok(Some(reason));
    }
    sqlx::query(
        "UPDATE tasks SET proof_hash = ?, proof_state = ?, proof_tree_size = ?, proof_error = ?, \
         proof_checked_at = ? WHERE id = ? AND proof_hash IS NULL",
    )
    .bind(&hash[..])
    .bind(proof.state())
    .bind(proof.tree_size())
    .bind(proof.reason().map(|r| db::clip(r, 1000).to_owned()))
    .bind(db::now_ms())
    .bind(task_id)
    .execute(&state.pool)
    .await?;
    // A concurrent upload may have stored another hash first: compare again.
    let row = proof_row(&state.pool, task_id).await?;
    if row.proof_hash.as_deref() != Some(&hash[..]) {
        return Err(Error::conflict(
            "subtree_conflict",
            format!("task {task_id}: another subtree hash was recorded concurrently"),
        ));
    }
    Ok(None)
}

/// Records the proof of a completing task; returns the state shown
/// (`verified`, or `unproven` also when some uploads lacked audit paths).
pub async fn record_proof(
    conn: &mut MySqlConnection,
    task_id: u64,
    subtree: Option<Hash>,
    proof: &Proof,
) -> Result<&'static str> {
    let (unproven_uploads,): (bool,) =
        sqlx::query_as("SELECT unproven_uploads FROM tasks WHERE id = ?")
            .bind(task_id)
            .fetch_one(&mut *conn)
            .await?;
    let (shown, reason) = match proof {
        Proof::Verified { .. } if unproven_uploads => (
            "unproven",
            Some("the range is proven, but some uploads came without audit paths"),
        ),
        p => (p.state(), p.reason()),
    };
    sqlx::query(
        "UPDATE tasks SET proof_hash = COALESCE(?, proof_hash), proof_state = ?, proof_tree_size = ?, \
         proof_error = ?, proof_checked_at = ? WHERE id = ?",
    )
    .bind(subtree.map(|h| h.to_vec()))
    .bind(shown)
    .bind(proof.tree_size())
    .bind(reason.map(|r| db::clip(r, 1000).to_owned()))
    .bind(db::now_ms())
    .bind(task_id)
    .execute(&mut *conn)
    .await?;
    Ok(shown)
}

/// Deletes what `worker_id` stored for `task_id`: its sightings (and
/// certificates no other sighting refers to) and its recorded matches.
async fn delete_worker_data(
    conn: &mut MySqlConnection,
    task_id: u64,
    worker_id: u64,
) -> Result<u64> {
    let certs: Vec<(u64,)> = sqlx::query_as(
        "SELECT DISTINCT certificate_id FROM sightings WHERE task_id = ? AND worker_id = ?",
    )
    .bind(task_id)
    .bind(worker_id)
    .fetch_all(&mut *conn)
    .await?;
    let deleted = sqlx::query("DELETE FROM sightings WHERE task_id = ? AND worker_id = ?")
        .bind(task_id)
        .bind(worker_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    for chunk in certs.chunks(500) {
        let list = db::placeholders(chunk.len());
        for table in ["names", "certificates"] {
            let col = if table == "names" {
                "certificate_id"
            } else {
                "id"
            };
            let sql = format!(
                "DELETE FROM {table} WHERE {col} IN ({list}) AND NOT EXISTS \
                 (SELECT 1 FROM sightings s WHERE s.certificate_id = {table}.{col})"
            );
            let mut q = sqlx::query(&sql);
            for (id,) in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *conn).await?;
        }
    }
    sqlx::query("DELETE FROM task_matches WHERE task_id = ? AND worker_id = ?")
        .bind(task_id)
        .bind(worker_id)
        .execute(&mut *conn)
        .await?;
    Ok(deleted)
}

/// Refuses `worker_id`'s result for `task_id` (leased or done): the task
/// returns to the pool from its start for another worker, the worker's
/// sightings of it are deleted, and it counts against the worker.
pub async fn refuse(
    conn: &mut MySqlConnection,
    task_id: u64,
    worker_id: u64,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE tasks SET state = 'pending', next_index = start_index, \
         lease_entries = 0, lease_matches = 0, lease_errors = 0, lease_rate_limited = 0, \
         lease_holder = NULL, lease_expires_at = NULL, lease_from = NULL, \
         exclude_worker = ?, completed_by = NULL, completed_at = NULL, \
         proof_hash = IF(proof_state = 'verified', proof_hash, NULL), \
         proof_tree_size = IF(proof_state = 'verified', proof_tree_size, NULL), \
         proof_state = IF(proof_state = 'verified', proof_state, NULL), \
         proof_error = ?, last_error = ?, unproven_uploads = 0, mismatches = mismatches + 1 \
         WHERE id = ?",
    )
    .bind(worker_id)
    .bind(db::clip(reason, 1000))
    .bind(format!("refused the result of worker {worker_id}"))
    .bind(task_id)
    .execute(&mut *conn)
    .await?;
    let deleted = delete_worker_data(conn, task_id, worker_id).await?;
    sqlx::query("UPDATE workers SET mismatches = mismatches + 1 WHERE id = ?")
        .bind(worker_id)
        .execute(&mut *conn)
        .await?;
    tracing::warn!(task.id = task_id, worker.id = worker_id, sightings_deleted = deleted, reason = %reason, "result refused; task back in the pool");
    Ok(())
}

#[derive(Debug, FromRow)]
struct DoneRow {
    log_id: u64,
    start_index: u64,
    end_index: u64,
    check_of: u64,
    enabled: bool,
    priority: i32,
}

/// After a completion: schedule a hidden-entry check of a main task, or
/// compare a finished check with the task it checks.
pub async fn after_complete(state: &AppState, task_id: u64, worker_id: u64) -> Result<()> {
    let Some(t): Option<DoneRow> = sqlx::query_as(
        "SELECT log_id, start_index, end_index, check_of, enabled, priority FROM tasks WHERE id = ?",
    )
    .bind(task_id)
    .fetch_optional(&state.pool)
    .await?
    else {
        return Ok(());
    };
    if t.check_of != 0 {
        return compare(state, t.check_of, task_id).await;
    }
    let (done,): (u64,) = sqlx::query_as("SELECT tasks_done FROM workers WHERE id = ?")
        .bind(worker_id)
        .fetch_optional(&state.pool)
        .await?
        .unwrap_or((0,));
    let wanted = done <= u64::from(state.config.check_first)
        || rand::rng().random::<f64>() < state.config.check_share;
    if !wanted {
        return Ok(());
    }
    let mut tx = state.pool.begin().await?;
    let existing: Option<(u64, String)> = sqlx::query_as(
        "SELECT id, state FROM tasks WHERE log_id = ? AND start_index = ? AND check_of = ? FOR UPDATE",
    )
    .bind(t.log_id)
    .bind(t.start_index)
    .bind(task_id)
    .fetch_optional(&mut *tx)
    .await?;
    match existing {
        None => {
            sqlx::query(
                "INSERT INTO tasks (log_id, start_index, end_index, next_index, enabled, priority, created_at, check_of, exclude_worker) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(t.log_id)
            .bind(t.start_index)
            .bind(t.end_index)
            .bind(t.start_index)
            .bind(t.enabled)
            .bind(t.priority)
            .bind(db::now_ms())
            .bind(task_id)
            .bind(worker_id)
            .execute(&mut *tx)
            .await?;
        }
        Some((id, s)) if s != "leased" => {
            // The range was redone (after a refusal or a flag): check again, from scratch.
            sqlx::query(
                "UPDATE tasks SET state = 'pending', next_index = start_index, end_index = ?, exclude_worker = ?, \
                 completed_by = NULL, completed_at = NULL, proof_state = NULL, proof_hash = NULL, \
                 proof_tree_size = NULL, proof_error = NULL, unproven_uploads = 0 WHERE id = ?",
            )
            .bind(t.end_index)
            .bind(worker_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM task_matches WHERE task_id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        Some(_) => {}
    }
    sqlx::query("UPDATE tasks SET check_state = 'pending' WHERE id = ?")
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn match_set(conn: &mut MySqlConnection, task_id: u64) -> Result<BTreeSet<(u64, Vec<u8>)>> {
    let rows: Vec<(u64, Vec<u8>)> =
        sqlx::query_as("SELECT idx, leaf_hash FROM task_matches WHERE task_id = ?")
            .bind(task_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Compares the matches of main task `main` and its check `check`, flagging
/// the worker(s) whose set lacks matches the other proved.
async fn compare(state: &AppState, main: u64, check: u64) -> Result<()> {
    let mut tx = state.pool.begin().await?;
    let rows: Vec<(u64, String, Option<u64>, u64, u64, u64)> = sqlx::query_as(
        "SELECT id, state, completed_by, log_id, start_index, end_index FROM tasks WHERE id IN (?, ?) ORDER BY id FOR UPDATE",
    )
    .bind(main)
    .bind(check)
    .fetch_all(&mut *tx)
    .await?;
    let find = |id: u64| rows.iter().find(|r| r.0 == id).cloned();
    let (Some(m), Some(c)) = (find(main), find(check)) else {
        return Ok(());
    };
    if m.1 != "done" || c.1 != "done" {
        // The main range is being redone; a later completion schedules a new check.
        tx.commit().await?;
        return Ok(());
    }
    let main_set = match_set(&mut tx, main).await?;
    let check_set = match_set(&mut tx, check).await?;
    let main_lacks: Vec<u64> = check_set.difference(&main_set).map(|(i, _)| *i).collect();
    let check_lacks: Vec<u64> = main_set.difference(&check_set).map(|(i, _)| *i).collect();
    if main_lacks.is_empty() && check_lacks.is_empty() {
        sqlx::query("UPDATE tasks SET check_state = 'passed' WHERE id = ?")
            .bind(main)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(());
    }
    sqlx::query("UPDATE tasks SET check_state = 'failed' WHERE id = ?")
        .bind(main)
        .execute(&mut *tx)
        .await?;
    let mut flagged = Vec::new();
    if !main_lacks.is_empty()
        && let Some(w) = m.2
    {
        flag(
            &mut tx,
            w,
            (main, check, c.2),
            (m.3, m.4, m.5),
            &main_lacks,
            &check_lacks,
        )
        .await?;
        flagged.push(w);
    }
    if !check_lacks.is_empty()
        && let Some(w) = c.2
    {
        flag(
            &mut tx,
            w,
            (check, main, m.2),
            (m.3, m.4, m.5),
            &check_lacks,
            &main_lacks,
        )
        .await?;
        flagged.push(w);
    }
    tx.commit().await?;
    inc(&state.metrics.workers_flagged, flagged.len() as u64);
    tracing::warn!(task.id = main, check.id = check, workers = ?flagged, "hidden-entry check failed");
    Ok(())
}

/// Flags `worker` with its evidence and returns all its ranges to the pool.
async fn flag(
    conn: &mut MySqlConnection,
    worker: u64,
    (task, other_task, other_worker): (u64, u64, Option<u64>),
    (log_id, start, end): (u64, u64, u64),
    missing: &[u64],
    extra: &[u64],
) -> Result<()> {
    let list = |v: &[u64]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO flags (worker_id, task_id, other_task_id, other_worker_id, log_id, start_index, end_index, missing, extra, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(worker)
    .bind(task)
    .bind(other_task)
    .bind(other_worker)
    .bind(log_id)
    .bind(start)
    .bind(end)
    .bind(list(missing))
    .bind(list(extra))
    .bind(db::now_ms())
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE workers SET flagged = 1, checks_failed = checks_failed + 1 WHERE id = ?")
        .bind(worker)
        .execute(&mut *conn)
        .await?;
    let requeued = sqlx::query(
        "UPDATE tasks SET state = 'pending', next_index = start_index, exclude_worker = ?, \
         completed_by = NULL, completed_at = NULL, check_state = NULL, \
         proof_hash = IF(proof_state = 'verified', proof_hash, NULL), \
         proof_tree_size = IF(proof_state = 'verified', proof_tree_size, NULL), \
         proof_state = IF(proof_state = 'verified', proof_state, NULL), \
         proof_error = NULL, unproven_uploads = 0, last_error = 'worker flagged by a hidden-entry check' \
         WHERE completed_by = ? AND state = 'done'",
    )
    .bind(worker)
    .bind(worker)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // The proof state of a requeued task describes the range only while it is
    // not done; progress counts done tasks alone.
    sqlx::query(&format!(
        "UPDATE tasks SET last_error = 'worker flagged', exclude_worker = ?, {} WHERE state = 'leased' AND lease_holder = ?",
        tasks::FOLD
    ))
    .bind(worker)
    .bind(worker)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM task_matches WHERE worker_id = ?")
        .bind(worker)
        .execute(&mut *conn)
        .await?;
    tracing::warn!(
        worker.id = worker,
        task.id = task,
        missing = missing.len(),
        extra = extra.len(),
        tasks_requeued = requeued,
        "worker flagged"
    );
    Ok(())
}

/// What a "verify now" round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySummary {
    pub checked: u64,
    pub verified: u64,
    pub unproven: u64,
    pub mismatched: u64,
}

/// Retries the proof of done ranges left `unproven` with a reported hash
/// (log errors, heads that arrived later); a hash that turns out wrong is
/// refused like at completion.
pub async fn verify_pending(state: &AppState, log_id: Option<u64>) -> Result<VerifySummary> {
    let ids: Vec<(u64, Option<u64>, Vec<u8>)> = sqlx::query_as(
        "SELECT id, completed_by, proof_hash FROM tasks WHERE state = 'done' AND proof_state = 'unproven' \
         AND proof_hash IS NOT NULL AND unproven_uploads = 0 AND (? IS NULL OR log_id = ?) ORDER BY id LIMIT 1000",
    )
    .bind(log_id)
    .bind(log_id)
    .fetch_all(&state.pool)
    .await?;
    let mut out = VerifySummary::default();
    for (id, by, hash) in ids {
        let (Some(target), Ok(hash)) = (
            Target::load(state, id).await?,
            Hash::try_from(hash.as_slice()),
        ) else {
            continue;
        };
        out.checked += 1;
        let proof = verify::prove(state, &target, &hash, None).await?;
        let mut tx = state.pool.begin().await?;
        match &proof {
            Proof::Mismatch { reason, .. } => {
                out.mismatched += 1;
                inc(&state.metrics.ranges_mismatched, 1);
                match by {
                    Some(w) => refuse(&mut tx, id, w, reason).await?,
                    None => {
                        record_proof(&mut tx, id, None, &proof).await?;
                    }
                }
            }
            p => {
                if record_proof(&mut tx, id, None, p).await? == "verified" {
                    out.verified += 1;
                    inc(&state.metrics.ranges_verified, 1);
                } else {
                    out.unproven += 1;
                }
            }
        }
        tx.commit().await?;
    }
    Ok(out)
}

/// A half-open range of log indices.
pub type Range = (u64, u64);

/// What is known about a log's collection, range by range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// `[start_index, verified_until)` is done and proven against a signed tree head.
    pub verified_until: u64,
    /// Entries in done and proven ranges (also beyond the prefix).
    pub entries_verified: u64,
    /// Done ranges whose subtree hash is not proven (merged; at most 50 listed).
    pub unproven: Vec<Range>,
    pub entries_unproven: u64,
    /// Ranges not done yet, up to the largest verified tree size (merged; at most 50 listed).
    pub gaps: Vec<Range>,
    pub entries_missing: u64,
    /// Hidden-entry checks waiting for another worker.
    pub checks_pending: u64,
    /// Checks whose two sets of matches differed.
    pub checks_failed: u64,
}

const LISTED: usize = 50;

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

/// Builds the progress of one log from its main tasks, in range order.
pub fn progress_of(
    start_index: u64,
    tree_size: Option<u64>,
    tasks: &[(u64, u64, String, Option<String>)],
) -> Progress {
    let mut p = Progress {
        verified_until: start_index,
        ..Progress::default()
    };
    let mut prefix_open = true;
    let mut covered = start_index;
    for (s, e, state, proof) in tasks {
        let (s, e) = (*s, *e);
        if s > covered {
            push_merged(&mut p.gaps, (covered, s));
            p.entries_missing += s - covered;
            prefix_open = false;
        }
        covered = covered.max(e);
        let done = state == "done";
        let verified = done && proof.as_deref() == Some("verified");
        if verified {
            p.entries_verified += e - s;
            if prefix_open && s == p.verified_until {
                p.verified_until = e;
            }
        } else {
            prefix_open = false;
            if done {
                push_merged(&mut p.unproven, (s, e));
                p.entries_unproven += e - s;
            } else {
                push_merged(&mut p.gaps, (s, e));
                p.entries_missing += e - s;
            }
        }
    }
    if let Some(size) = tree_size
        && size > covered
    {
        push_merged(&mut p.gaps, (covered, size));
        p.entries_missing += size - covered;
    }
    p
}

/// Progress of every log, by log id.
pub async fn progress(
    pool: &MySqlPool,
    logs: &[(u64, u64, Option<u64>)],
) -> Result<std::collections::HashMap<u64, Progress>> {
    let rows: Vec<(u64, u64, u64, String, Option<String>)> = sqlx::query_as(
        "SELECT log_id, start_index, end_index, state, proof_state FROM tasks WHERE check_of = 0 \
         ORDER BY log_id, start_index",
    )
    .fetch_all(pool)
    .await?;
    let checks: Vec<(u64, i64, i64)> = sqlx::query_as(
        "SELECT log_id, CAST(COALESCE(SUM(check_of <> 0 AND state <> 'done'), 0) AS SIGNED), \
         CAST(COALESCE(SUM(check_of = 0 AND COALESCE(check_state, '') = 'failed'), 0) AS SIGNED) \
         FROM tasks GROUP BY log_id",
    )
    .fetch_all(pool)
    .await?;
    let mut out = std::collections::HashMap::new();
    for (id, start, size) in logs {
        let tasks: Vec<(u64, u64, String, Option<String>)> = rows
            .iter()
            .filter(|r| r.0 == *id)
            .map(|r| (r.1, r.2, r.3.clone(), r.4.clone()))
            .collect();
        let first = tasks.first().map_or(*start, |t| t.0.min(*start));
        let mut p = progress_of(first, *size, &tasks);
        if let Some((_, pending, failed)) = checks.iter().find(|c| c.0 == *id) {
            p.checks_pending = u64::try_from(*pending).unwrap_or(0);
            p.checks_failed = u64::try_from(*failed).unwrap_or(0);
        }
        out.insert(*id, p);
    }
    Ok(out)
}

/// One piece of evidence against a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub task_id: u64,
    /// The task of the same range by the other worker.
    pub other_task_id: u64,
    pub other_worker_id: Option<u64>,
    pub log_id: u64,
    pub start: u64,
    pub end: u64,
    /// Matches the other worker proved that this one did not report.
    pub missing: Vec<u64>,
    /// Matches this one reported that the other did not.
    pub extra: Vec<u64>,
    pub created_at: i64,
}

/// A flagged worker with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlaggedWorker {
    pub worker_id: u64,
    pub name: String,
    pub mismatches: u32,
    pub checks_failed: u32,
    pub flags: Vec<Flag>,
}

/// Every flagged worker (and every worker with refused results).
pub async fn flagged(pool: &MySqlPool) -> Result<Vec<FlaggedWorker>> {
    let workers: Vec<(u64, String, u32, u32)> = sqlx::query_as(
        "SELECT id, name, mismatches, checks_failed FROM workers WHERE flagged = 1 OR mismatches > 0 ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    type FlagRow = (
        u64,
        u64,
        u64,
        Option<u64>,
        u64,
        u64,
        u64,
        String,
        String,
        i64,
    );
    let rows: Vec<FlagRow> = sqlx::query_as(
        "SELECT worker_id, task_id, other_task_id, other_worker_id, log_id, start_index, end_index, missing, extra, created_at \
         FROM flags ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let parse = |s: &str| serde_json::from_str::<Vec<u64>>(s).unwrap_or_default();
    Ok(workers
        .into_iter()
        .map(|(id, name, mismatches, checks_failed)| FlaggedWorker {
            worker_id: id,
            name,
            mismatches,
            checks_failed,
            flags: rows
                .iter()
                .filter(|r| r.0 == id)
                .map(|r| Flag {
                    task_id: r.1,
                    other_task_id: r.2,
                    other_worker_id: r.3,
                    log_id: r.4,
                    start: r.5,
                    end: r.6,
                    missing: parse(&r.7),
                    extra: parse(&r.8),
                    created_at: r.9,
                })
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_tells_verified_unproven_and_gaps_apart() {
        let t =
            |s: u64, e: u64, st: &str, p: Option<&str>| (s, e, st.to_owned(), p.map(str::to_owned));
        let tasks = vec![
            t(0, 4, "done", Some("verified")),
            t(4, 8, "done", Some("verified")),
            t(8, 12, "done", Some("unproven")),
            t(12, 16, "pending", None),
            t(16, 20, "done", Some("verified")),
            t(20, 22, "leased", None),
        ];
        let p = progress_of(0, Some(30), &tasks);
        assert_eq!(p.verified_until, 8);
        assert_eq!(p.entries_verified, 12);
        assert_eq!(p.unproven, vec![(8, 12)]);
        assert_eq!(p.gaps, vec![(12, 16), (20, 30)]);
        assert_eq!(p.entries_missing, 14);
    }
}
