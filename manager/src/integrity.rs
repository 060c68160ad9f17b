//! Range and entry integrity: proving a task's subtree hash against the
//! log before anything of it is stored, refusing hashes that are not the
//! log's (and telling the log's faults apart from a worker's), hidden-entry
//! checks by independent workers, and the evidence against flagged workers.
//! Every state change goes through [`ct_db::TaskStore`].

use ct_core::protocol::{ErrorCode, Hash32};
use ct_db::CheckState;
use ct_db::rows::TaskRow;
use ct_db::store::{Evidence, Refused, VerifiedHash};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::verify::{self, Proof, Target};
use crate::{AppState, audit};

/// Proves `hash` as the subtree hash of task `task_id`'s range (network).
pub async fn prove(
    state: &AppState,
    task_id: u64,
    hash: &Hash32,
    first_leaf: Option<&Hash32>,
) -> Result<Proof> {
    let target = Target::load(state, task_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no task {task_id}")))?;
    verify::prove(state, &target, &hash.0, first_leaf.map(|h| &h.0)).await
}

/// The address `worker_id` registered from.
pub async fn worker_address(pool: &MySqlPool, worker_id: u64) -> Result<String> {
    let row: Option<(String,)> = sqlx::query_as("SELECT address FROM workers WHERE id = ?")
        .bind(worker_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(a,)| a).unwrap_or_default())
}

/// Makes sure `hash` is the task's proven subtree hash: compares it with the
/// one proven before, or proves it against the log now and records it. A
/// hash that is not the log's ends the lease (the answer is 422
/// `proof_mismatch`); a log that cannot prove now is a 503 to retry.
pub async fn ensure_proven(
    state: &AppState,
    worker_id: u64,
    task: &TaskRow,
    hash: &Hash32,
    first_leaf: Option<&Hash32>,
) -> Result<VerifiedHash> {
    if let Some(proven) = task.proven_hash() {
        if proven == *hash {
            return Ok(VerifiedHash {
                hash: proven,
                tree_size: task.proof_tree_size.unwrap_or(0),
            });
        }
        let reason =
            format!("subtree hash {hash} is not {proven} that the log proved for this range");
        return Err(refuse(state, worker_id, task, hash, &reason).await);
    }
    match prove(state, task.id, hash, first_leaf).await? {
        Proof::Verified { tree_size } => {
            state.store.record_proof(task.id, hash, tree_size).await?;
            inc(&state.metrics.ranges_verified, 1);
            Ok(VerifiedHash {
                hash: *hash,
                tree_size,
            })
        }
        Proof::Mismatch { reason, .. } => Err(refuse(state, worker_id, task, hash, &reason).await),
        Proof::Unproven(reason) => {
            inc(&state.metrics.ranges_unproven, 1);
            Err(Error::unavailable(
                ErrorCode::ProofUnavailable,
                format!(
                    "task {}: the log cannot prove the range now ({reason}); retry later",
                    task.id
                ),
            ))
        }
    }
}

/// Refuses `worker_id`'s result for `task` and returns the error to answer
/// with. When an earlier, independent worker reported the same wrong hash,
/// the manager fetches the range itself: the same bytes again make it the
/// log's fault; the log's true bytes make both workers dishonest.
pub async fn refuse(
    state: &AppState,
    worker_id: u64,
    task: &TaskRow,
    hash: &Hash32,
    reason: &str,
) -> Error {
    inc(&state.metrics.ranges_mismatched, 1);
    tracing::warn!(task.id = task.id, worker.id = worker_id, reason = %reason, "subtree hash refused");
    let answer = Error::unprocessable(
        ErrorCode::ProofMismatch,
        format!(
            "task {}: {reason}; the task returns to the pool and this counts against you",
            task.id
        ),
    );
    let outcome = async {
        let address = worker_address(&state.pool, worker_id).await?;
        let refused = state
            .store
            .refuse(worker_id, task.id, hash, reason, &address)
            .await?;
        if let Refused::Agrees { first_worker } = refused {
            second_opinion(state, task, hash, (first_worker, worker_id)).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    match outcome {
        Ok(()) => answer,
        // The lease ended meanwhile (expired, refused by a concurrent call).
        Err(Error::Client { .. }) => answer,
        Err(e) => e,
    }
}

/// Two independent workers reported `served` for `task`'s range, which is
/// not the log's: the manager's own fetch decides whose fault it is.
async fn second_opinion(
    state: &AppState,
    task: &TaskRow,
    served: &Hash32,
    workers: (u64, u64),
) -> Result<()> {
    let target = Target::load(state, task.id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no task {}", task.id)))?;
    let fetched = match audit::fetch_range(state, &target).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(task.id = task.id, error = %e, "could not fetch the range for a second opinion");
            return Ok(());
        }
    };
    match prove(state, task.id, &fetched.hash, None).await? {
        Proof::Verified { tree_size } => {
            // The log serves its own tree to us: both workers reported the same lie.
            state
                .store
                .record_proof(task.id, &fetched.hash, tree_size)
                .await?;
            for (w, other) in [(workers.0, workers.1), (workers.1, workers.0)] {
                let e = Evidence {
                    task_id: task.id,
                    other_task_id: task.id,
                    other_worker: Some(other),
                    missing: Vec::new(),
                };
                state.store.flag(w, task.log_id, &e).await?;
                inc(&state.metrics.workers_flagged, 1);
            }
            tracing::warn!(task.id = task.id, workers = ?workers, "two workers reported the same wrong subtree hash; both flagged");
        }
        Proof::Mismatch { .. } => {
            state
                .store
                .record_log_fault(task.id, served, None, workers)
                .await?;
            tracing::warn!(task.id = task.id, served = %served, ours = %fetched.hash, "the log serves bytes that are not in its tree");
        }
        Proof::Unproven(reason) => {
            tracing::warn!(task.id = task.id, reason = %reason, "no second opinion: the log cannot prove now");
        }
    }
    Ok(())
}

/// After a completion: schedule a hidden-entry check and maybe an audit of
/// a main task, or compare a finished check with the task it checks.
pub async fn after_complete(state: &AppState, task_id: u64, worker_id: u64) -> Result<()> {
    let Some(t) = state.store.get(task_id).await? else {
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
    let (check, audit) = {
        let mut rng = rand::rng();
        (
            done <= u64::from(state.config.check_first)
                || rng.random::<f64>() < state.config.check_share,
            rng.random::<f64>() < state.config.audit_share,
        )
    };
    if check {
        let address = worker_address(&state.pool, worker_id).await?;
        state
            .store
            .schedule_check(task_id, worker_id, &address)
            .await?;
    }
    if audit {
        state.store.schedule_audit(task_id).await?;
    }
    Ok(())
}

/// Compares the proven matches of main task `main` and its check `check`;
/// only the side whose set lacks matches the other proved is flagged.
async fn compare(state: &AppState, main: u64, check: u64) -> Result<()> {
    let Some(s) = state.store.check_sets(main, check).await? else {
        // The main range is being redone; a later completion schedules a new check.
        return Ok(());
    };
    let main_lacks: Vec<u64> = s
        .check_set
        .difference(&s.main_set)
        .map(|(i, _)| *i)
        .collect();
    let check_lacks: Vec<u64> = s
        .main_set
        .difference(&s.check_set)
        .map(|(i, _)| *i)
        .collect();
    if main_lacks.is_empty() && check_lacks.is_empty() {
        state.store.record_check(main, CheckState::Passed).await?;
        return Ok(());
    }
    state.store.record_check(main, CheckState::Failed).await?;
    let mut flagged = Vec::new();
    for (row, other, lacks) in [
        (&s.main, &s.check, &main_lacks),
        (&s.check, &s.main, &check_lacks),
    ] {
        if lacks.is_empty() {
            continue;
        }
        if let Some(w) = row.completed_by {
            let e = Evidence {
                task_id: row.id,
                other_task_id: other.id,
                other_worker: other.completed_by,
                missing: lacks.clone(),
            };
            state.store.flag(w, row.log_id, &e).await?;
            flagged.push(w);
        }
    }
    inc(&state.metrics.workers_flagged, flagged.len() as u64);
    tracing::warn!(task.id = main, check.id = check, workers = ?flagged, "hidden-entry check failed");
    Ok(())
}

/// What an audit round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifySummary {
    /// Ranges the manager fetched and compared itself.
    pub checked: u64,
    /// Their sets equal the completers'.
    pub verified: u64,
    /// Could not be fetched now (tried again later).
    pub unproven: u64,
    /// A completer's set lacked matches: it was flagged.
    pub mismatched: u64,
}

/// One piece of evidence against a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
