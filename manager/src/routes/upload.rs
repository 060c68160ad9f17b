//! `POST /v1/tasks/{id}/entries`.

use axum::extract::State;
use ct_core::protocol::{UploadRequest, UploadResponse};

use crate::auth::Worker;
use crate::error::Result;
use crate::routes::{Json, Path};
use crate::{AppState, ingest};

/// Uploads a batch of raw entries of a leased task.
pub async fn upload(
    State(state): State<AppState>,
    w: Worker,
    Path(id): Path<u64>,
    Json(req): Json<UploadRequest>,
) -> Result<Json<UploadResponse>> {
    Ok(Json(ingest::upload(&state, w.id, id, req).await?))
}
