//! Admin calls (admin bearer token): import logs, change a log, poll a log
//! now, list and revoke workers, expire leases now.

use axum::extract::State;
use ct_core::loglist::LogList;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use ct_core::protocol::ErrorBody;

use crate::auth::Admin;
use crate::error::{Error, Result};
use crate::logs::{self, ImportSummary, LogInfo, LogUpdate};
use crate::poller::{self, PollOutcome};
use crate::routes::{Json, Path};
use crate::{AppState, tasks};

/// `POST /v1/admin/logs`: import a v3 log list.
#[utoipa::path(
    post,
    path = "/v1/admin/logs",
    operation_id = "admin_import_logs",
    tag = "admin",
    security(("admin_token" = [])),
    request_body = LogList,
    responses(
        (status = 200, description = "What the import did; logs left out are listed with the reason", body = ImportSummary),
        (status = 400, description = "`invalid_json`: the body is not a v3 log list", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn import(
    State(state): State<AppState>,
    _: Admin,
    Json(list): Json<LogList>,
) -> Result<Json<ImportSummary>> {
    Ok(Json(logs::import(&state.pool, &list).await?))
}

/// `GET /v1/admin/logs`: every log with its settings and progress.
#[utoipa::path(
    get,
    path = "/v1/admin/logs",
    operation_id = "admin_list_logs",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every log, by id", body = Vec<LogInfo>),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn logs(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<LogInfo>>> {
    Ok(Json(logs::list(&state.pool).await?))
}

/// `PATCH /v1/admin/logs/{id}`: `enabled`, `priority`, `start_index`, `max_fetchers`.
#[utoipa::path(
    patch,
    path = "/v1/admin/logs/{id}",
    operation_id = "admin_update_log",
    tag = "admin",
    security(("admin_token" = [])),
    params(("id" = u64, Path, description = "The log's id")),
    request_body = LogUpdate,
    responses(
        (status = 200, description = "The log as it is now", body = LogInfo),
        (status = 400, description = "`invalid_path`: the id is not a number; `invalid_json`: the body is not a LogUpdate", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 404, description = "`not_found`: no such log", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_cap` or `invalid_index`: a value out of range", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
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
#[utoipa::path(
    post,
    path = "/v1/admin/logs/{id}/poll",
    operation_id = "admin_poll_log",
    tag = "admin",
    security(("admin_token" = [])),
    params(("id" = u64, Path, description = "The log's id")),
    responses(
        (status = 200, description = "What the poll found (a failed fetch or verification is in `error`)", body = PollOutcome),
        (status = 400, description = "`invalid_path`: the id is not a number", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 404, description = "`not_found`: no such log", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn poll_log(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<PollOutcome>> {
    Ok(Json(poller::poll_log(&state, id).await?))
}

/// A worker as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize, FromRow, ToSchema)]
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
    /// The public name's identity: machines of one volunteer share it.
    pub identity_id: Option<u64>,
    /// The registration that replaced this one (its token no longer works).
    pub replaced_by: Option<u64>,
}

/// `GET /v1/admin/operators`: operators with a fetch budget.
#[utoipa::path(
    get,
    path = "/v1/admin/operators",
    operation_id = "admin_list_operators",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every operator with a budget, by name", body = Vec<logs::OperatorBudget>),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn operators(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<logs::OperatorBudget>>> {
    Ok(Json(logs::operators(&state.pool).await?))
}

/// `PUT /v1/admin/operators/{name}`: sets an operator's fetch budget.
#[utoipa::path(
    put,
    path = "/v1/admin/operators/{name}",
    operation_id = "admin_set_operator",
    tag = "admin",
    security(("admin_token" = [])),
    params(("name" = String, Path, description = "The operator's name as in the log list (1 to 255 bytes)")),
    request_body = logs::OperatorBudget,
    responses(
        (status = 200, description = "The budget as stored (`name` is the path's)", body = logs::OperatorBudget),
        (status = 400, description = "`invalid_path`: the name is not valid UTF-8; `invalid_json`: the body is not an OperatorBudget", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_name`: the name is empty or too long; `invalid_cap`: a value out of range", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn set_operator(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    Json(b): Json<logs::OperatorBudget>,
) -> Result<Json<logs::OperatorBudget>> {
    logs::set_operator(&state.pool, &name, &b).await?;
    Ok(Json(logs::OperatorBudget { name, ..b }))
}

/// `GET /v1/admin/workers`: every worker, revoked and flagged ones too.
#[utoipa::path(
    get,
    path = "/v1/admin/workers",
    operation_id = "admin_list_workers",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every worker, by id", body = Vec<AdminWorker>),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn workers(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<AdminWorker>>> {
    Ok(Json(
        sqlx::query_as(
            "SELECT w.id, w.name, w.version, w.first_seen, w.last_seen, w.revoked, w.entries, w.matches, w.tasks_done, \
             (SELECT COUNT(*) FROM tasks t WHERE t.lease_holder = w.id AND t.state = 'leased') AS tasks_held, \
             w.mismatches, w.flagged, w.identity_id, w.replaced_by \
             FROM workers w ORDER BY w.id",
        )
        .fetch_all(&state.pool)
        .await?,
    ))
}

/// Answer of a revoke.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    pub worker_id: u64,
    /// Leases returned to the pool.
    pub tasks_released: u64,
}

/// `POST /v1/admin/workers/{id}/revoke`: the token stops working and the leases return to the pool.
#[utoipa::path(
    post,
    path = "/v1/admin/workers/{id}/revoke",
    operation_id = "admin_revoke_worker",
    tag = "admin",
    security(("admin_token" = [])),
    params(("id" = u64, Path, description = "The worker's id")),
    responses(
        (status = 200, description = "Revoked (again, if it already was)", body = Revoked),
        (status = 400, description = "`invalid_path`: the id is not a number", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 404, description = "`not_found`: no such worker", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ExpireRequest {
    /// Expire every lease now, not only those past their expiry.
    #[serde(default)]
    pub all: bool,
}

/// Answer of an expiry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Expired {
    pub expired: u64,
}

/// `POST /v1/admin/leases/expire`: return expired (or all) leases to the pool now.
#[utoipa::path(
    post,
    path = "/v1/admin/leases/expire",
    operation_id = "admin_expire_leases",
    tag = "admin",
    security(("admin_token" = [])),
    request_body = ExpireRequest,
    responses(
        (status = 200, description = "How many leases ended", body = Expired),
        (status = 400, description = "`invalid_json`: the body is not an ExpireRequest", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// Only this log (default: all).
    #[serde(default)]
    pub log_id: Option<u64>,
}

/// `POST /v1/admin/verify`: run the manager's due audits of completed ranges now.
#[utoipa::path(
    post,
    path = "/v1/admin/verify",
    operation_id = "admin_verify",
    tag = "admin",
    security(("admin_token" = [])),
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "What the audit round did", body = crate::integrity::VerifySummary),
        (status = 400, description = "`invalid_json`: the body is not a VerifyRequest", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn verify_now(
    State(state): State<AppState>,
    _: Admin,
    Json(req): Json<VerifyRequest>,
) -> Result<Json<crate::integrity::VerifySummary>> {
    let _ = req.log_id;
    Ok(Json(crate::audit::run_due(&state, 1000).await?))
}

/// `GET /v1/admin/flagged`: flagged workers (and workers with refused results) with the evidence.
#[utoipa::path(
    get,
    path = "/v1/admin/flagged",
    operation_id = "admin_flagged",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every flagged worker or worker with refused results, by id", body = Vec<crate::integrity::FlaggedWorker>),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn flagged(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<crate::integrity::FlaggedWorker>>> {
    Ok(Json(crate::integrity::flagged(&state.pool).await?))
}
