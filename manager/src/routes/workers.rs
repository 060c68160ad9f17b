//! `POST /v1/workers/register`: anonymous, rate-limited per client address,
//! and closed with `--registration-secret` when the deployment wants it.

use axum::extract::State;
use ct_core::protocol::{ErrorBody, ErrorCode, RegisterRequest, RegisterResponse};
use ct_db::limits::{SHORT_TEXT, WORKER_NAME_CHARS};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::routes::{ClientAddr, Json};
use crate::{AppState, auth, db};

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= WORKER_NAME_CHARS
        && name.len() <= WORKER_NAME_CHARS * 4
        && name.trim() == name
        && !name.chars().any(char::is_control)
}

/// Registers a worker and returns its token (shown once).
#[utoipa::path(
    post,
    path = "/v1/workers/register",
    operation_id = "register_worker",
    tag = "worker",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered; the token is shown only now", body = RegisterResponse),
        (status = 400, description = "`invalid_json`: the body is not a RegisterRequest", body = ErrorBody),
        (status = 403, description = "`registration_secret`: this manager registers only with its secret", body = ErrorBody),
        (status = 409, description = "`name_taken`: another worker has this name", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_name`: the name is empty, too long, has control characters or outer spaces", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many registrations from this address in the last hour", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Json(req): Json<RegisterRequest>,
) -> Result<Json<RegisterResponse>> {
    if let Some(want) = state.config.registration_secret.as_deref() {
        let given = req.registration_secret.as_deref().unwrap_or("");
        if Sha256::digest(given.as_bytes()) != Sha256::digest(want.as_bytes()) {
            inc(&state.metrics.registrations_refused, 1);
            return Err(Error::forbidden(
                ErrorCode::RegistrationSecret,
                "this manager registers workers only with its registration secret \
                 (--registration-secret / CT_REGISTRATION_SECRET on the worker); ask its operator",
            ));
        }
    }
    let name = match req.name {
        Some(n) if valid_name(&n) => n,
        Some(_) => {
            return Err(Error::unprocessable(
                ErrorCode::InvalidName,
                "name must be 1 to 64 characters, no control characters or outer spaces",
            ));
        }
        None => format!("worker-{:06x}", rand::rng().random::<u32>() & 0xff_ffff),
    };
    let address = db::clip(&address, SHORT_TEXT).to_owned();
    let now = db::now_ms();
    let limit = state.config.registrations_per_hour;
    if limit > 0 && !address.is_empty() {
        let (recent,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM workers WHERE address = ? AND first_seen > ?")
                .bind(&address)
                .bind(now - 3_600_000)
                .fetch_one(&state.pool)
                .await?;
        if u64::try_from(recent).unwrap_or(0) >= u64::from(limit) {
            inc(&state.metrics.registrations_refused, 1);
            return Err(Error::client(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!(
                    "at most {limit} registrations per hour from one address; keep your token and reuse it"
                ),
            ));
        }
    }
    let version = req
        .version
        .as_deref()
        .map(|v| db::clip(v, SHORT_TEXT).to_owned());
    let token = auth::new_token();
    let res = sqlx::query(
        "INSERT IGNORE INTO workers (name, token_hash, version, first_seen, last_seen, address) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&name)
    .bind(auth::token_hash(&token))
    .bind(version)
    .bind(now)
    .bind(now)
    .bind(&address)
    .execute(&state.pool)
    .await?;
    if res.rows_affected() == 0 {
        return Err(Error::conflict(
            ErrorCode::NameTaken,
            format!("the name {name:?} is taken"),
        ));
    }
    inc(&state.metrics.registrations, 1);
    tracing::info!(worker.id = res.last_insert_id(), worker.name = %name, worker.address = %address, "worker registered");
    Ok(Json(RegisterResponse {
        worker_id: res.last_insert_id(),
        name,
        token,
    }))
}
