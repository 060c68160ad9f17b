//! Leases as the API sees them: claim, heartbeat, complete and fail, and the
//! lease reaper. Every change of a task is a [`ct_db::TaskStore`] transition;
//! this module adds what needs the network (proofs) and the scaling advice.

use std::time::Duration;

use ct_core::protocol::{
    CompleteRequest, Cooldown, ErrorCode, FailRequest, FetchBudget, HeartbeatRequest,
    HeartbeatResponse, LogFetchers, ProofState, TaskAck, TaskLease, TaskPhase, TaskState,
    TaskStatus,
};
use ct_db::limits::ERROR_TEXT;
use ct_db::store::{Claimer, Idle, ReportState};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::{AppState, db, integrity, scaling};

/// Returns expired leases (all leases when `force`) to the pool; the number returned.
pub async fn reap(state: &AppState, force: bool) -> Result<u64> {
    let done = state.store.expire_due(force).await?;
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

/// A log's fetch budget per client address: the log's own values, else its
/// operator's, else the manager's defaults; fetchers at most the log's cap.
pub fn budget_of(
    config: &crate::Config,
    requests_per_sec: Option<f64>,
    entries_per_request: Option<u32>,
    max_fetchers: u32,
    operator_fetchers: Option<u32>,
    operator_requests_per_sec: Option<f64>,
) -> FetchBudget {
    FetchBudget {
        requests_per_sec: requests_per_sec
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(config.default_requests_per_sec),
        entries_per_request: entries_per_request
            .map(u64::from)
            .filter(|n| *n > 0)
            .unwrap_or(config.default_entries_per_request),
        fetchers: operator_fetchers
            .map_or(max_fetchers, |f| f.min(max_fetchers))
            .max(1),
        operator_requests_per_sec: operator_requests_per_sec.filter(|r| r.is_finite() && *r > 0.0),
    }
}

/// The budget of one log, read from the database.
async fn log_budget(
    conn: &mut sqlx::MySqlConnection,
    config: &crate::Config,
    log_id: u64,
) -> Result<(String, u32, FetchBudget)> {
    type Row = (
        String,
        u32,
        Option<f64>,
        Option<u32>,
        Option<u32>,
        Option<f64>,
    );
    let (url, cap, rps, batch, op_fetchers, op_rps): Row = sqlx::query_as(
        "SELECT l.url, l.max_fetchers, COALESCE(l.requests_per_sec, o.requests_per_sec), \
         COALESCE(l.entries_per_request, o.entries_per_request), o.fetchers, o.operator_requests_per_sec \
         FROM logs l LEFT JOIN operators o ON o.name = l.operator WHERE l.id = ?",
    )
    .bind(log_id)
    .fetch_one(&mut *conn)
    .await?;
    let b = budget_of(config, rps, batch, cap, op_fetchers, op_rps);
    Ok((url, b.fetchers, b))
}

/// What a claim answers.
pub struct ClaimAnswer {
    pub tasks: Vec<TaskLease>,
    pub retry_after_ms: Option<u64>,
    pub reason: Option<String>,
}

/// Leases up to `max` tasks to a worker, spread over logs.
pub async fn claim(state: &AppState, worker_id: u64, max: u32) -> Result<ClaimAnswer> {
    let max = max.clamp(1, state.config.max_claim.max(1));
    let w: Option<(bool, String, u64)> =
        sqlx::query_as("SELECT flagged, address, tasks_done FROM workers WHERE id = ?")
            .bind(worker_id)
            .fetch_optional(&state.pool)
            .await?;
    let Some((flagged, address, tasks_done)) = w else {
        return Err(Error::unauthorized("unknown worker"));
    };
    if flagged {
        return Err(Error::forbidden(
            ErrorCode::Flagged,
            "this worker was flagged by a check; it gets no more tasks",
        ));
    }
    inc(&state.metrics.claims, 1);
    let started = std::time::Instant::now();
    let who = Claimer {
        worker_id,
        address,
        tasks_done,
        check_min_tasks: state.config.check_min_tasks,
        tasks_per_log: state.config.tasks_per_log,
        task_entries: 1u64 << state.config.task_size_log2.min(40),
    };
    let mut claimed = state.store.claim(&who, max).await?;
    if claimed.tasks.is_empty() && reap(state, false).await? > 0 {
        // Nothing pending: expired leases went back to the pool; look again.
        claimed = state.store.claim(&who, max).await?;
    }
    let rows = claimed.tasks;
    state
        .metrics
        .claim_seconds
        .observe(crate::metrics::since(started));
    let mut conn = state.pool.acquire().await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let budget = budget_of(
            &state.config,
            r.requests_per_sec,
            r.entries_per_request,
            r.max_fetchers,
            r.operator_fetchers,
            r.operator_requests_per_sec,
        );
        let advice = scaling::current(
            &mut conn,
            worker_id,
            r.log_id,
            budget.fetchers,
            state.config.initial_fetchers,
        )
        .await?;
        out.push(TaskLease {
            task_id: r.id,
            log_id: r.log_id,
            log_url: r.url,
            kind: r.kind.into(),
            monitoring_url: r.monitoring_url,
            start: r.start_index,
            end: r.end_index,
            next_index: r.start_index,
            lease_expires_at: r
                .lease_expires_at
                .and_then(|e| u64::try_from(e).ok())
                .unwrap_or(0),
            fetchers: advice.fetchers,
            check_of: (r.check_of != 0).then_some(r.check_of),
            operator: r.operator,
            budget: Some(budget),
        });
    }
    inc(&state.metrics.tasks_leased, out.len() as u64);
    // An idle worker waits before its next claim: long when there is no
    // work, short when work waits on logs it holds its share of.
    let idle = state.config.idle_claim.as_millis() as u64;
    let (retry_after_ms, reason) = match claimed.idle {
        None => (None, None),
        Some(Idle::NoWork) => (Some(jitter(idle)), Some("no pending task".to_owned())),
        // It holds its share; it claims again as soon as a task ends.
        Some(Idle::AtShare) => (
            Some(jitter(1000)),
            Some("you hold your share of every log with pending tasks".to_owned()),
        ),
        Some(Idle::CoolingDown) => (
            Some(jitter((idle / 2).max(1000))),
            Some("pending tasks only on logs you are cooling down on".to_owned()),
        ),
    };
    Ok(ClaimAnswer {
        tasks: out,
        retry_after_ms,
        reason,
    })
}

/// `ms` give or take a fifth, so that idle workers do not claim in step.
fn jitter(ms: u64) -> u64 {
    use rand::Rng;
    let spread = ms / 5;
    ms - spread + rand::rng().random_range(0..=spread * 2)
}

/// Records progress, extends leases and answers the scaling advice.
pub async fn heartbeat(
    state: &AppState,
    worker_id: u64,
    req: &HeartbeatRequest,
) -> Result<HeartbeatResponse> {
    inc(&state.metrics.heartbeats, 1);
    let hb = state.store.heartbeat(worker_id, &req.tasks).await?;
    let tasks = hb
        .states
        .iter()
        .map(|(task_id, s)| match s {
            ReportState::Active { expires } => TaskState {
                task_id: *task_id,
                status: TaskStatus::Active,
                lease_expires_at: u64::try_from(*expires).ok(),
            },
            ReportState::Done => TaskState {
                task_id: *task_id,
                status: TaskStatus::Done,
                lease_expires_at: None,
            },
            ReportState::Lost => TaskState {
                task_id: *task_id,
                status: TaskStatus::Lost,
                lease_expires_at: None,
            },
        })
        .collect();
    let mut fetchers = Vec::with_capacity(hb.deltas.len());
    if !hb.deltas.is_empty() {
        let mut tx = state.pool.begin().await?;
        for (log_id, d) in &hb.deltas {
            inc(
                &state
                    .metrics
                    .rate_limited
                    .get_or_create(&crate::metrics::LogLabels { log_id: *log_id }),
                d.rate_limited,
            );
            let (url, cap, budget) = log_budget(&mut tx, &state.config, *log_id).await?;
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
                budget: Some(budget),
            });
        }
        tx.commit().await?;
    }
    let cooldowns = state
        .store
        .cooldowns_of(worker_id)
        .await?
        .into_iter()
        .map(|(log_id, until, reason)| Cooldown {
            log_id,
            until: u64::try_from(until).unwrap_or(0),
            reason,
        })
        .collect();
    Ok(HeartbeatResponse {
        tasks,
        fetchers,
        cooldowns,
    })
}

/// Completes a task: its subtree hash is proven against a verified signed
/// tree head (a hash that is not the log's ends the lease with 422
/// `proof_mismatch`; a log that cannot prove now is a 503 to retry), and
/// the worker's accepted, proven uploads must be the matches it reports.
pub async fn complete(
    state: &AppState,
    worker_id: u64,
    task_id: u64,
    req: &CompleteRequest,
) -> Result<TaskAck> {
    let t = state
        .store
        .get(task_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no task {task_id}")))?;
    let done = |t: &ct_db::rows::TaskRow| TaskAck {
        task_id,
        state: TaskPhase::Done,
        next_index: t.end_index,
        proof: Some(ProofState::Verified),
    };
    if t.state == ct_db::TaskState::Done && t.completed_by == Some(worker_id) {
        return Ok(done(&t));
    }
    if !t.leased_to(worker_id) {
        return Err(ct_db::Error::not_leased(task_id).into());
    }
    if req.next_index != t.end_index || req.entries != t.span() {
        return Err(Error::conflict(
            ErrorCode::Incomplete,
            format!(
                "task {task_id} covers [{}, {}): need next_index = {} and entries = {}, got {} and {}",
                t.start_index,
                t.end_index,
                t.end_index,
                t.span(),
                req.next_index,
                req.entries
            ),
        ));
    }
    let verified = integrity::ensure_proven(
        state,
        worker_id,
        &t,
        &req.subtree_hash,
        req.first_leaf_hash.as_ref(),
    )
    .await?;
    state
        .store
        .complete(worker_id, task_id, req, verified)
        .await?;
    inc(&state.metrics.tasks_completed, 1);
    if let Err(e) = integrity::after_complete(state, task_id, worker_id).await {
        tracing::warn!(task.id = task_id, error = %e, "scheduling the check of a completed task failed");
    }
    Ok(done(&t))
}

/// Gives a task back to the pool, whole.
pub async fn fail(
    state: &AppState,
    worker_id: u64,
    task_id: u64,
    req: &FailRequest,
) -> Result<TaskAck> {
    let reason = db::clip(&req.error, ERROR_TEXT);
    let t = state.store.fail(worker_id, task_id, reason).await?;
    inc(&state.metrics.tasks_failed, 1);
    tracing::info!(task.id = task_id, worker.id = worker_id, reported_index = req.index, error = %db::clip(&req.error, 200), "task given back whole");
    Ok(TaskAck {
        task_id,
        state: TaskPhase::Pending,
        next_index: t.start_index,
        proof: None,
    })
}
