//! `POST /v1/workers/register`.

use axum::extract::State;
use ct_core::protocol::{RegisterRequest, RegisterResponse};
use rand::Rng;

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::routes::Json;
use crate::{AppState, auth, db};

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name.len() <= 64 * 4
        && name.trim() == name
        && !name.chars().any(char::is_control)
}

/// Registers a worker and returns its token (shown once).
pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> Result<Json<RegisterResponse>> {
    let name = match req.name {
        Some(n) if valid_name(&n) => n,
        Some(_) => {
            return Err(Error::unprocessable(
                "invalid_name",
                "name must be 1 to 64 characters, no control characters or outer spaces",
            ));
        }
        None => format!("worker-{:06x}", rand::rng().random::<u32>() & 0xff_ffff),
    };
    let version = req.version.as_deref().map(|v| db::clip(v, 64).to_owned());
    let token = auth::new_token();
    let now = db::now_ms();
    let res = sqlx::query(
        "INSERT IGNORE INTO workers (name, token_hash, version, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&name)
    .bind(auth::token_hash(&token))
    .bind(version)
    .bind(now)
    .bind(now)
    .execute(&state.pool)
    .await?;
    if res.rows_affected() == 0 {
        return Err(Error::conflict(
            "name_taken",
            format!("the name {name:?} is taken"),
        ));
    }
    inc(&state.metrics.registrations, 1);
    tracing::info!(worker.id = res.last_insert_id(), worker.name = %name, "worker registered");
    Ok(Json(RegisterResponse {
        worker_id: res.last_insert_id(),
        name,
        token,
    }))
}
