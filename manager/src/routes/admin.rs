//! Admin calls (admin bearer token): import logs, change a log, poll a log
//! now, list and revoke workers, expire leases now.

use axum::extract::State;
use ct_core::loglist::LogList;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::auth::Admin;
use crate::error::{Error, Result};
use crate::logs::{self, ImportSummary, LogInfo, LogUpdate};
use crate::poller::{self, PollOutcome};
use crate::routes::{Json, Path};
use crate::{AppState, tasks};

/// `POST /v1/admin/logs`: import a v3 log list.
pub async fn import(
    State(state): State<AppState>,
    _: Admin,
    Json(list): Json<LogList>,
) -> Result<Json<ImportSummary>> {
    Ok(Json(logs::import(&state.pool, &list).await?))
}

/// `GET /v1/admin/logs`.
pub async fn logs(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<LogInfo>>> {
    Ok(Json(logs::list(&state.pool).await?))
}

/// `PATCH /v1/admin/logs/{id}`: `enabled`, `priority`, `start_index`, `max_fetchers`.
pub async fn update_log(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
    Json(u): Json<LogUpdate>,
) -> Result<Json<LogInfo>> {
    logs::update(&state.pool, id, &u).await?;
    logs::list(&state.pool)
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .map(Json)
        .ok_or_else(|| Error::not_found(format!("no log {id}")))
}

/// `POST /v1/admin/logs/{id}/poll`: fetch and verify the tree head now, then plan.
pub async fn poll_log(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<PollOutcome>> {
    Ok(Json(poller::poll_log(&state, id).await?))
}

/// A worker as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize, FromRow)]
pub struct AdminWorker {
    pub id: u64,
    pub name: String,
    pub version: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub revoked: bool,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    pub tasks_held: i64,
    /// Results refused because their subtree hash was not the log's.
    pub mismatches: u32,
    /// Flagged by a hidden-entry check: gets no more tasks.
    pub flagged: bool,
}

/// `GET /v1/admin/operators`: operators with a fetch budget.
pub async fn operators(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<logs::OperatorBudget>>> {
    Ok(Json(logs::operators(&state.pool).await?))
}

/// `PUT /v1/admin/operators/{name}`: sets an operator's fetch budget.
pub async fn set_operator(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    Json(b): Json<logs::OperatorBudget>,
) -> Result<Json<logs::OperatorBudget>> {
    logs::set_operator(&state.pool, &name, &b).await?;
    Ok(Json(logs::OperatorBudget { name, ..b }))
}

/// `GET /v1/admin/workers`.
pub async fn workers(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<AdminWorker>>> {
    Ok(Json(
        sqlx::query_as(
            "SELECT w.id, w.name, w.version, w.first_seen, w.last_seen, w.revoked, w.entries, w.matches, w.tasks_done, \
             (SELECT COUNT(*) FROM tasks t WHERE t.lease_holder = w.id AND t.state = 'leased') AS tasks_held, \
             w.mismatches, w.flagged \
             FROM workers w ORDER BY w.id",
        )
        .fetch_all(&state.pool)
        .await?,
    ))
}

/// Answer of a revoke.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    pub worker_id: u64,
    /// Leases returned to the pool.
    pub tasks_released: u64,
}

/// `POST /v1/admin/workers/{id}/revoke`: the token stops working and the leases return to the pool.
pub async fn revoke(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<Revoked>> {
    let released = state
        .store
        .revoke(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no worker {id}")))?;
    tracing::info!(worker.id = id, tasks = released, "worker revoked");
    Ok(Json(Revoked {
        worker_id: id,
        tasks_released: released,
    }))
}

/// Body of `POST /v1/admin/leases/expire`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExpireRequest {
    /// Expire every lease now, not only those past their expiry.
    #[serde(default)]
    pub all: bool,
}

/// Answer of an expiry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Expired {
    pub expired: u64,
}

/// `POST /v1/admin/leases/expire`: return expired (or all) leases to the pool now.
pub async fn expire_leases(
    State(state): State<AppState>,
    _: Admin,
    Json(req): Json<ExpireRequest>,
) -> Result<Json<Expired>> {
    Ok(Json(Expired {
        expired: tasks::reap(&state, req.all).await?,
    }))
}

/// Body of `POST /v1/admin/verify`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyRequest {
    /// Only this log (default: all).
    #[serde(default)]
    pub log_id: Option<u64>,
}

/// `POST /v1/admin/verify`: run the manager's due audits of completed ranges now.
pub async fn verify_now(
    State(state): State<AppState>,
    _: Admin,
    Json(req): Json<VerifyRequest>,
) -> Result<Json<crate::integrity::VerifySummary>> {
    let _ = req.log_id;
    Ok(Json(crate::audit::run_due(&state, 1000).await?))
}

/// `GET /v1/admin/flagged`: flagged workers (and workers with refused results) with the evidence.
pub async fn flagged(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<crate::integrity::FlaggedWorker>>> {
    Ok(Json(crate::integrity::flagged(&state.pool).await?))
}
