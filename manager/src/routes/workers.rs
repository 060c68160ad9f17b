//! `POST /v1/workers/register`: anonymous, closed with
//! `--registration-secret` when the deployment wants it. A name registered
//! with a volunteer's secret takes any number of machines (each its own
//! token) that know the secret; without one, a name has one machine.
//!
//! Limits (`--registrations-per-hour`): new names per client address, so
//! that names cost something; and new machines per name, whatever their
//! address, so that a volunteer's machines behind one address (a NAT, a
//! cluster's egress) or a container restarted without its state directory
//! are not refused as if each were a new name. A name with a flagged or
//! revoked machine takes no new machines: registering again does not shed
//! a flag or a revocation.
//!
//! `GET /v1/workers/me` (a worker token): the caller's name with its
//! lifetime totals and rank, and how the logs it names stand. Workers ask
//! about once a minute; it costs two queries for the name and three index
//! ranges per log named, at most [`STANDING_MAX_LOGS`] logs.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use ct_core::protocol::{
    ErrorBody, ErrorCode, LogOutlook, RegisterRequest, RegisterResponse, SECRET_BYTES,
    STANDING_MAX_LOGS, TOKEN_MAX_BYTES, WorkerStanding,
};
use ct_db::limits::{SHORT_TEXT, WORKER_NAME_CHARS};
use ct_db::workers::{self, Bar, Outcome, Refused, Registration};
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::routes::{ClientAddr, Json, Query};
use crate::{AppState, auth, db};

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= WORKER_NAME_CHARS
        && name.len() <= WORKER_NAME_CHARS * 4
        && name.trim() == name
        && !name.chars().any(char::is_control)
}

/// Registers a worker (one machine) and returns its token (shown once).
#[utoipa::path(
    post,
    path = "/v1/workers/register",
    operation_id = "register_worker",
    tag = "worker",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered; the token is shown only now", body = RegisterResponse),
        (status = 400, description = "`invalid_json`: the body is not a RegisterRequest; `invalid_secret`: the secret is not 16 to 256 bytes, or comes without a name; `bad_request`: `replaces` is over 128 bytes", body = ErrorBody),
        (status = 403, description = "`registration_secret`: this manager registers only with its secret; `flagged` or `revoked`: a machine of this name was flagged or revoked, the name takes no new machines", body = ErrorBody),
        (status = 409, description = "`name_taken`: the name is another volunteer's (registered without a secret, or with another secret)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_name`: the name is empty, too long, has control characters or outer spaces", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many new names from this address, or new machines of this name, in the last hour", body = ErrorBody),
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
    let secret_hash = match &req.secret {
        None => None,
        Some(s) if !s.is_valid_secret() => {
            return Err(Error::client(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidSecret,
                format!(
                    "a secret must be {} to {} bytes long (e.g. `openssl rand -hex 16`)",
                    SECRET_BYTES.start(),
                    SECRET_BYTES.end()
                ),
            ));
        }
        Some(_) if req.name.is_none() => {
            return Err(Error::client(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidSecret,
                "a secret is the secret of a name: give the name too (--name / WORKER_NAME)",
            ));
        }
        Some(s) => Some(auth::token_hash(s.expose())),
    };
    let replaces_hash = match &req.replaces {
        Some(t) if t.expose().len() > TOKEN_MAX_BYTES => {
            return Err(Error::bad_request(format!(
                "replaces is a token of at most {TOKEN_MAX_BYTES} bytes"
            )));
        }
        Some(t) => Some(auth::token_hash(t.expose())),
        None => None,
    };
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
    let version = req
        .version
        .as_deref()
        .map(|v| db::clip(v, SHORT_TEXT).to_owned());
    let token = auth::new_token();
    let token_hash = auth::token_hash(&token);
    let outcome = workers::register(
        &state.pool,
        &Registration {
            name: &name,
            secret_hash: secret_hash.as_deref(),
            token_hash: &token_hash,
            replaces_hash: replaces_hash.as_deref(),
            version: version.as_deref(),
            address: &address,
            per_hour: state.config.registrations_per_hour,
        },
    )
    .await?;
    let machine = match outcome {
        Outcome::Registered(m) => m,
        Outcome::Refused(why) => {
            inc(&state.metrics.registrations_refused, 1);
            return Err(refusal(&name, why));
        }
    };
    inc(&state.metrics.registrations, 1);
    tracing::info!(
        worker.id = machine.worker_id,
        worker.name = %machine.name,
        worker.address = %address,
        identity.id = machine.identity_id,
        joined = ?machine.joined,
        replaced = ?machine.replaced,
        "worker registered"
    );
    if let Some(old) = machine.replaced {
        // Its token stopped working with the commit; its leases go back now
        // (if this fails they expire as any lease does).
        match state
            .store
            .release_worker(old, "its machine registered again")
            .await
        {
            Ok(n) => tracing::info!(
                worker.id = old,
                tasks_released = n,
                "replaced registration released"
            ),
            Err(e) => {
                tracing::warn!(worker.id = old, error = %e, "could not release a replaced registration's leases");
            }
        }
    }
    Ok(Json(RegisterResponse {
        worker_id: machine.worker_id,
        name: machine.name,
        token,
        replaced: machine.replaced,
    }))
}

/// The answer to a refused registration of `name`: what happened and what to do.
fn refusal(name: &str, why: Refused) -> Error {
    match why {
        Refused::NameTaken { secret: true } => Error::conflict(
            ErrorCode::NameTaken,
            format!(
                "the name {name:?} is taken by another volunteer: use its secret \
                 (--secret / WORKER_SECRET) or choose another name"
            ),
        ),
        Refused::NameTaken { secret: false } => Error::conflict(
            ErrorCode::NameTaken,
            format!(
                "the name {name:?} is taken (registered without a secret, by one machine): \
                 choose another name, or run that machine with its state directory"
            ),
        ),
        Refused::Barred(Bar::Flagged) => Error::forbidden(
            ErrorCode::Flagged,
            format!(
                "a machine of {name:?} was flagged by a check; the name takes no new machines \
                 (ask the manager's operator)"
            ),
        ),
        Refused::Barred(Bar::Revoked) => Error::forbidden(
            ErrorCode::Revoked,
            format!(
                "a machine of {name:?} was revoked; the name takes no new machines \
                 (ask the manager's operator)"
            ),
        ),
        Refused::TooManyNames { limit } => Error::client(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!(
                "at most {limit} new names per hour from one address; keep your state directory \
                 (it holds your token), or give all your machines one name and one secret"
            ),
        ),
        Refused::TooManyMachines { limit } => Error::client(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!(
                "at most {limit} new machines of {name:?} per hour; keep the state directory \
                 so that a restart reuses its registration"
            ),
        ),
    }
}

/// The query of `GET /v1/workers/me`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StandingQuery {
    /// Log ids, comma-separated (at most 64): the logs to tell how they
    /// stand. Unknown ids are left out of the answer.
    #[serde(default)]
    #[param(max_length = 1400)]
    pub logs: Option<String>,
}

/// Bytes of `?logs=` at most: 64 of the longest ids with their commas.
const LOGS_MAX_BYTES: usize = 1400;

/// The ids of `?logs=`: numbers, comma-separated, at most [`STANDING_MAX_LOGS`].
fn log_ids(list: Option<&str>) -> Result<Vec<u64>> {
    let list = list.unwrap_or("");
    if list.len() > LOGS_MAX_BYTES {
        return Err(Error::bad_request(format!(
            "logs is at most {LOGS_MAX_BYTES} bytes"
        )));
    }
    let mut ids = BTreeSet::new();
    for part in list.split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let id = part.parse::<u64>().map_err(|_| {
            Error::bad_request(format!(
                "logs is a comma-separated list of log ids; {:?} is not one",
                db::clip(part, 32)
            ))
        })?;
        ids.insert(id);
        if ids.len() > STANDING_MAX_LOGS {
            return Err(Error::bad_request(format!(
                "at most {STANDING_MAX_LOGS} logs at once"
            )));
        }
    }
    Ok(ids.into_iter().collect())
}

/// Minutes of per-minute statistics a log's fleet rate is taken over.
const RATE_MINUTES: i64 = 10;

/// The fleet's entries per second over the window from `since_s` to
/// `now_s`: from the first minute with a report, one minute at least.
fn fleet_rate(o: &workers::Outlook, since_s: i64, now_s: i64) -> f64 {
    let from = o.first_minute.map_or(since_s, |m| m.max(since_s));
    let secs = (now_s - from).max(60);
    o.recent_entries as f64 / secs as f64
}

/// The caller's name with its lifetime totals and rank (its machines summed,
/// as the leaderboard shows them), and how the logs it names stand.
#[utoipa::path(
    get,
    path = "/v1/workers/me",
    operation_id = "my_standing",
    tag = "worker",
    security(("worker_token" = [])),
    params(StandingQuery),
    responses(
        (status = 200, description = "The caller's name, lifetime totals, rank (and its place in the latest daily snapshot before today) and the logs asked about", body = WorkerStanding),
        (status = 400, description = "`bad_request`: `logs` is not a comma-separated list of at most 64 log ids", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no, an unknown, a replaced or a revoked worker token", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn me(
    State(state): State<AppState>,
    worker: auth::Worker,
    Query(q): Query<StandingQuery>,
) -> Result<Json<WorkerStanding>> {
    let ids = log_ids(q.logs.as_deref())?;
    let Some(s) = workers::standing(&state.pool, worker.id).await? else {
        return Err(Error::unauthorized("unknown worker"));
    };
    let now_ms = db::now_ms();
    let rank_yesterday = ct_db::ops::place_before(&state.pool, &s.name, ct_db::ops::day_of(now_ms))
        .await?
        .map(u64::from);
    let now_s = now_ms / 1000;
    let since_s = (now_s / 60 - RATE_MINUTES) * 60;
    let logs = workers::outlook(&state.pool, &ids, since_s)
        .await?
        .iter()
        .map(|o| LogOutlook {
            log_id: o.log_id,
            tree_size: o.tree_size,
            remaining: o.remaining(),
            entries_per_sec: fleet_rate(o, since_s, now_s),
        })
        .collect();
    Ok(Json(WorkerStanding {
        worker_id: worker.id,
        name: s.name,
        machines: s.machines,
        entries: s.entries,
        matches: s.matches,
        tasks_done: s.tasks_done,
        rank: s.rank,
        rank_yesterday,
        of: s.ranked,
        page_path: format!("workers/{}.html", worker.id),
        logs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_are_numbers_deduplicated_and_bounded() {
        assert_eq!(log_ids(None).ok(), Some(vec![]));
        assert_eq!(log_ids(Some("")).ok(), Some(vec![]));
        assert_eq!(log_ids(Some("3, 1,3,,2")).ok(), Some(vec![1, 2, 3]));
        assert!(log_ids(Some("1,x")).is_err());
        assert!(log_ids(Some("-1")).is_err());
        assert!(log_ids(Some("18446744073709551616")).is_err());
        let many: Vec<String> = (0..=STANDING_MAX_LOGS).map(|i| i.to_string()).collect();
        assert!(log_ids(Some(&many.join(","))).is_err());
        assert!(log_ids(Some(&many[1..].join(","))).is_ok());
        assert!(log_ids(Some(&",".repeat(LOGS_MAX_BYTES + 1))).is_err());
    }

    #[test]
    fn the_fleet_rate_counts_from_the_first_report_and_a_minute_at_least() {
        let o = |entries, first| workers::Outlook {
            log_id: 1,
            tree_size: 0,
            outstanding: 0,
            planned_from: 0,
            recent_entries: entries,
            first_minute: first,
        };
        let (since, now) = (6_000, 6_630);
        assert_eq!(fleet_rate(&o(0, None), since, now), 0.0);
        assert!((fleet_rate(&o(6_300, Some(6_000)), since, now) - 10.0).abs() < 1e-9);
        assert!((fleet_rate(&o(1_200, Some(6_600)), since, now) - 20.0).abs() < 1e-9);
        assert!((fleet_rate(&o(630, Some(5_000)), since, now) - 1.0).abs() < 1e-9);
    }
}
