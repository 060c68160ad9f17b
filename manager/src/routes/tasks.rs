//! Claim, heartbeat, complete and fail.

use axum::extract::State;
use ct_core::protocol::{
    ClaimRequest, ClaimResponse, CompleteRequest, ErrorBody, FailRequest, HeartbeatRequest,
    HeartbeatResponse, TaskAck,
};

use crate::auth::Worker;
use crate::error::Result;
use crate::routes::{Json, Path};
use crate::{AppState, tasks};

/// `POST /v1/tasks/claim`: lease up to `max_tasks` tasks (possibly none).
#[utoipa::path(
    post,
    path = "/v1/tasks/claim",
    operation_id = "claim_tasks",
    tag = "worker",
    security(("worker_token" = [])),
    request_body = ClaimRequest,
    responses(
        (status = 200, description = "The leased tasks; none, with `retry_after_ms` and `reason`, when there is no work for you", body = ClaimResponse),
        (status = 400, description = "`invalid_json`: the body is not a ClaimRequest", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no, an unknown or a revoked worker token", body = ErrorBody),
        (status = 403, description = "`flagged`: this worker was flagged by a check and gets no tasks", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn claim(
    State(state): State<AppState>,
    w: Worker,
    Json(req): Json<ClaimRequest>,
) -> Result<Json<ClaimResponse>> {
    let a = tasks::claim(&state, w.id, req.max_tasks.unwrap_or(1)).await?;
    Ok(Json(ClaimResponse {
        tasks: a.tasks,
        retry_after_ms: a.retry_after_ms,
        reason: a.reason,
    }))
}

/// `POST /v1/heartbeat`: report progress, extend leases, get scaling advice.
#[utoipa::path(
    post,
    path = "/v1/heartbeat",
    operation_id = "heartbeat",
    tag = "worker",
    security(("worker_token" = [])),
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "What became of each task, and the fetchers to use per log", body = HeartbeatResponse),
        (status = 400, description = "`invalid_json`: the body is not a HeartbeatRequest; `bad_request`: a task is listed twice", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no, an unknown or a revoked worker token", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`too_many_tasks`, `invalid_index` or `invalid_counts`: nothing was recorded", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    w: Worker,
    Json(req): Json<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>> {
    Ok(Json(tasks::heartbeat(&state, w.id, &req).await?))
}

/// `POST /v1/tasks/{id}/complete`: finish a task; its subtree hash is proven first.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/complete",
    operation_id = "complete_task",
    tag = "worker",
    security(("worker_token" = [])),
    params(("id" = u64, Path, description = "The task's id")),
    request_body = CompleteRequest,
    responses(
        (status = 200, description = "Done (also when it was already done by you)", body = TaskAck),
        (status = 400, description = "`invalid_path`: the id is not a number; `invalid_json`: the body is not a CompleteRequest", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no, an unknown or a revoked worker token", body = ErrorBody),
        (status = 403, description = "`not_leased`: the task is not leased to you (any more)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task", body = ErrorBody),
        (status = 409, description = "`incomplete`, `unaccounted_matches` or `subtree_conflict`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_counts`; `proof_mismatch`: the subtree hash is not the log's, the lease ends", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
        (status = 503, description = "`proof_unavailable`: the log cannot prove the range now; `unavailable`: the database stayed busy. Retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn complete(
    State(state): State<AppState>,
    w: Worker,
    Path(id): Path<u64>,
    Json(req): Json<CompleteRequest>,
) -> Result<Json<TaskAck>> {
    Ok(Json(tasks::complete(&state, w.id, id, &req).await?))
}

/// `POST /v1/tasks/{id}/fail`: give a task back, whole.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/fail",
    operation_id = "fail_task",
    tag = "worker",
    security(("worker_token" = [])),
    params(("id" = u64, Path, description = "The task's id")),
    request_body = FailRequest,
    responses(
        (status = 200, description = "The task is back in the pool", body = TaskAck),
        (status = 400, description = "`invalid_path`: the id is not a number; `invalid_json`: the body is not a FailRequest", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no, an unknown or a revoked worker token", body = ErrorBody),
        (status = 403, description = "`not_leased`: the task is not leased to you (any more)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn fail(
    State(state): State<AppState>,
    w: Worker,
    Path(id): Path<u64>,
    Json(req): Json<FailRequest>,
) -> Result<Json<TaskAck>> {
    Ok(Json(tasks::fail(&state, w.id, id, &req).await?))
}
