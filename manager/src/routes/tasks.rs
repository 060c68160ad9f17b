//! Claim, heartbeat, complete and fail.

use axum::extract::State;
use ct_core::protocol::{
    ClaimRequest, ClaimResponse, CompleteRequest, FailRequest, HeartbeatRequest, HeartbeatResponse,
    TaskAck,
};

use crate::auth::Worker;
use crate::error::Result;
use crate::routes::{Json, Path};
use crate::{AppState, tasks};

/// `POST /v1/tasks/claim`.
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

/// `POST /v1/heartbeat`.
pub async fn heartbeat(
    State(state): State<AppState>,
    w: Worker,
    Json(req): Json<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>> {
    Ok(Json(tasks::heartbeat(&state, w.id, &req).await?))
}

/// `POST /v1/tasks/{id}/complete`.
pub async fn complete(
    State(state): State<AppState>,
    w: Worker,
    Path(id): Path<u64>,
    Json(req): Json<CompleteRequest>,
) -> Result<Json<TaskAck>> {
    Ok(Json(tasks::complete(&state, w.id, id, &req).await?))
}

/// `POST /v1/tasks/{id}/fail`.
pub async fn fail(
    State(state): State<AppState>,
    w: Worker,
    Path(id): Path<u64>,
    Json(req): Json<FailRequest>,
) -> Result<Json<TaskAck>> {
    Ok(Json(tasks::fail(&state, w.id, id, &req).await?))
}
