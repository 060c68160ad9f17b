//! `POST /v1/tasks/{id}/entries`.

use axum::extract::State;
use ct_core::protocol::{ErrorBody, UploadRequest, UploadResponse};

use crate::auth::Worker;
use crate::error::Result;
use crate::routes::{Json, Path};
use crate::{AppState, ingest};

/// Uploads a batch of raw entries of a leased task.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/entries",
    operation_id = "upload_entries",
    tag = "worker",
    security(("worker_token" = [])),
    params(("id" = u64, Path, description = "The task's id")),
    request_body = UploadRequest,
    responses(
        (status = 200, description = "What was stored; entries refused one by one are in `rejections`", body = UploadResponse),
        (status = 400, description = "`invalid_path`: the id is not a number; `invalid_json`: the body is not an UploadRequest", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no, an unknown or a revoked worker token", body = ErrorBody),
        (status = 403, description = "`not_leased`: the task is not leased to you; `out_of_lease`: an index outside the task's range", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task", body = ErrorBody),
        (status = 409, description = "`subtree_conflict`: another subtree hash is proven for this range", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit; `too_many_entries`: more entries than one upload takes", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`proof_mismatch`: the subtree hash is not the log's, the lease ends", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
        (status = 503, description = "`proof_unavailable`: the log cannot prove the range now; `unavailable`: the database stayed busy. Retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    w: Worker,
    Path(id): Path<u64>,
    Json(req): Json<UploadRequest>,
) -> Result<Json<UploadResponse>> {
    Ok(Json(ingest::upload(&state, w.id, id, req).await?))
}
