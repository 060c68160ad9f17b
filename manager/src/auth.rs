//! Bearer tokens: workers' tokens are random, stored as SHA-256 hex (and so
//! are volunteers' secrets); the admin token comes from the configuration.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ct_db::workers::TokenState;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::{AppState, db};

/// A new random token (64 hex characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the database stores of a token, or of a volunteer's secret.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How stale `workers.last_seen` may get (ms) before a call refreshes it.
pub const LAST_SEEN_MS: i64 = 5_000;

fn bearer(parts: &Parts) -> Result<&str, Error> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| Error::unauthorized("missing Authorization: Bearer token"))?
        .to_str()
        .map_err(|_| Error::unauthorized("malformed Authorization header"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::unauthorized("expected Authorization: Bearer <token>"))?;
    Ok(token)
}

/// An authenticated, not revoked worker.
#[derive(Debug, Clone, Copy)]
pub struct Worker {
    pub id: u64,
}

impl FromRequestParts<AppState> for Worker {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let hash = token_hash(bearer(parts)?);
        match ct_db::workers::by_token(&state.pool, &hash).await? {
            None => Err(Error::unauthorized("unknown token")),
            Some(TokenState::Revoked) => Err(Error::unauthorized("this worker has been revoked")),
            Some(TokenState::Replaced) => Err(Error::unauthorized(
                "this registration was replaced by a newer one of the same machine; \
                 its token no longer works",
            )),
            Some(TokenState::Active {
                worker_id: id,
                last_seen,
            }) => {
                // At most one write per worker every LAST_SEEN_MS: a busy worker's
                // calls would otherwise each cost a committed UPDATE.
                let now = db::now_ms();
                if now - last_seen >= LAST_SEEN_MS {
                    sqlx::query("UPDATE workers SET last_seen = ? WHERE id = ?")
                        .bind(now)
                        .bind(id)
                        .execute(&state.pool)
                        .await?;
                }
                Ok(Worker { id })
            }
        }
    }
}

/// The caller holds the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let given = bearer(parts)?;
        let Some(want) = state.config.admin_token.as_deref() else {
            return Err(Error::unauthorized(
                "admin calls are disabled (no admin token configured)",
            ));
        };
        // Compare hashes so the comparison time does not depend on a common prefix.
        if Sha256::digest(given.as_bytes()) == Sha256::digest(want.as_bytes()) {
            Ok(Admin)
        } else {
            Err(Error::unauthorized("wrong admin token"))
        }
    }
}
