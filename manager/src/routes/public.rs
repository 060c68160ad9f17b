//! Read-only public endpoints: `/healthz`, `/metrics`, `/v1/logs`,
//! `/v1/stats`, `/v1/workers`. No secrets, no raw entries. All but
//! `/healthz` answer from the public reads' snapshot ([`crate::reads`]),
//! never from the workers' pool; `/healthz` pings the workers' pool and
//! answers within 1.5 s whatever the database does.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};

use ct_core::protocol::{ErrorBody, ErrorCode};

use crate::AppState;
use crate::error::{Error, Result};
use crate::logs::LogInfo;
use crate::routes::{Json, Query};

/// How long `/healthz` waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(1500);

/// Answer of `/healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// `GET /healthz`: checks the database too (a `SELECT 1` on the workers'
/// pool), and answers within 1.5 s even when the database does not.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "public",
    responses(
        (status = 200, description = "The manager and its database answer", body = Health),
        (status = 503, description = "`unavailable`: the database did not answer within 1.5 s; the message says why", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>> {
    let ping =
        tokio::time::timeout(HEALTH_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool)).await;
    let why = match ping {
        Ok(Ok(_)) => {
            return Ok(Json(Health {
                status: "ok".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            }));
        }
        Ok(Err(e)) => format!("the database does not answer: {e}"),
        Err(_) => format!(
            "the database did not answer within {} ms",
            HEALTH_TIMEOUT.as_millis()
        ),
    };
    tracing::warn!(reason = %why, "health check failed");
    Err(Error::unavailable(ErrorCode::Unavailable, why))
}

/// `GET /metrics`: OpenMetrics text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "public",
    responses(
        (status = 200, description = "Prometheus metrics in the OpenMetrics text format", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 500, description = "Internal error (the cause is logged)", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let snapshot = state.reads.get().await?;
    let text = state.metrics.render(&snapshot, &state.pool)?;
    Ok((
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

/// `GET /v1/logs`: every known log with its progress.
#[utoipa::path(
    get,
    path = "/v1/logs",
    operation_id = "list_logs",
    tag = "public",
    responses(
        (status = 200, description = "Every log, by id", body = Vec<LogInfo>),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn logs(State(state): State<AppState>) -> Result<Json<Vec<LogInfo>>> {
    Ok(Json(state.reads.get().await?.logs.clone()))
}

/// The 503 of the endpoints that answer from the public reads' snapshot.
const UNAVAILABLE: &str = "`unavailable`: the database does not answer (the snapshot these numbers come \
    from could not be read); retry after `Retry-After` seconds";

/// Answer of `/v1/stats`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub logs: i64,
    pub logs_enabled: i64,
    /// Registered machines (not revoked, not replaced).
    pub workers: i64,
    pub tasks_pending: i64,
    pub tasks_leased: i64,
    pub tasks_done: i64,
    pub certificates: i64,
    pub sightings: i64,
    pub names: i64,
    pub failed_entries: i64,
    /// Entries accounted for by finished and interrupted leases.
    pub entries_processed: u64,
    /// Entries, matches, errors and rate-limit hits reported in the last hour.
    pub last_hour: Minute,
}

/// Sums over per-minute statistics.
#[derive(Debug, Clone, Default, Serialize, Deserialize, FromRow, ToSchema)]
pub struct Minute {
    pub entries: u64,
    pub matches: u64,
    pub errors: u64,
    pub rate_limit_hits: u64,
}

/// `GET /v1/stats`: totals of the whole collection.
#[utoipa::path(
    get,
    path = "/v1/stats",
    operation_id = "stats",
    tag = "public",
    responses(
        (status = 200, description = "Totals", body = Stats),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn stats(State(state): State<AppState>) -> Result<Json<Stats>> {
    Ok(Json(state.reads.get().await?.stats.clone()))
}

/// A public name as the public sees it: the totals of all its machines.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicWorker {
    pub name: String,
    /// The first machine's registration (Unix ms).
    pub first_seen: i64,
    /// The last call of any of its machines (Unix ms, refreshed every few seconds).
    pub last_seen: i64,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    /// Machines registered under the name (with its secret) and not
    /// replaced by a later registration of the same machine.
    pub machines: u64,
}

impl From<ct_db::workers::NameTotals> for PublicWorker {
    fn from(t: ct_db::workers::NameTotals) -> Self {
        PublicWorker {
            name: t.name,
            first_seen: t.first_seen,
            last_seen: t.last_seen,
            entries: t.entries,
            matches: t.matches,
            tasks_done: t.tasks_done,
            machines: t.machines,
        }
    }
}

/// Paging of `GET /v1/workers`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Workers per page (default 100, at most 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Workers to skip (at most 1,000,000).
    #[serde(default)]
    pub offset: Option<u32>,
}

/// `GET /v1/workers?limit=&offset=`: the leaderboard, one row per public
/// name with its machines' totals summed, names with a flagged or revoked
/// machine left out, one page at a time.
#[utoipa::path(
    get,
    path = "/v1/workers",
    operation_id = "leaderboard",
    tag = "public",
    params(Page),
    responses(
        (status = 200, description = "One page of the leaderboard (one row per public name), most entries first", body = Vec<PublicWorker>),
        (status = 400, description = "`bad_request`: a query parameter is not a number in range", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
)]
pub async fn workers(
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<PublicWorker>>> {
    let limit = page.limit.unwrap_or(100).clamp(1, 1000) as usize;
    let offset = page.offset.unwrap_or(0).min(1_000_000) as usize;
    let snapshot = state.reads.get().await?;
    Ok(Json(
        snapshot
            .leaderboard
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect(),
    ))
}
