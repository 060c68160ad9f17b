//! Live operations (`/v1/ops/*` public, `/v1/admin/ops/*` admin): the
//! overall progress with an ETA, how leases ended hour by hour and how long
//! they lasted, progress over time per log, the current leases, ranks and
//! their change since the day before; for the admin every lease in detail,
//! the leaderboard with its flagged and revoked names, and a snapshot now.
//!
//! The public reads are of the small operations tables (`task_outcomes`,
//! `log_progress_history`, `rank_snapshots`) and of the leased tasks alone;
//! every number a client sends is bounded and answered 400 when it is not.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use ct_core::protocol::ErrorBody;
use ct_db::ops::{
    LeaseDetail, LeaseGroup, MAX_HOURS, Outcomes, ProgressHistory, Ranks, Snapshot, Standing,
    Summary, since_hours,
};

use crate::auth::Admin;
use crate::error::{Error, Result};
use crate::routes::{Json, Query};
use crate::{AppState, db, snapshots};

/// The hours a window looks back by default.
const DEFAULT_HOURS: u32 = 24;

/// A window of hours, of one log or of every log.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// The current hour and the `hours - 1` before it (default 24, at most
    /// 744: 31 days).
    #[serde(default)]
    #[param(minimum = 1, maximum = 744)]
    pub hours: Option<u32>,
    /// Only this log (default: every log).
    #[serde(default)]
    pub log_id: Option<u64>,
}

impl Window {
    /// The start of the first hour (Unix ms), and the log.
    async fn check(&self, state: &AppState, now: i64) -> Result<(i64, Option<u64>)> {
        let hours = self.hours.unwrap_or(DEFAULT_HOURS);
        if !(1..=MAX_HOURS).contains(&hours) {
            return Err(Error::bad_request(format!(
                "hours must be 1 to {MAX_HOURS}, not {hours}"
            )));
        }
        if let Some(id) = self.log_id {
            let found: Option<(u64,)> = sqlx::query_as("SELECT id FROM logs WHERE id = ?")
                .bind(id)
                .fetch_optional(&state.pool)
                .await?;
            if found.is_none() {
                return Err(Error::not_found(format!("no log {id}")));
            }
        }
        Ok((since_hours(now, hours), self.log_id))
    }
}

/// Paging of `GET /v1/ops/ranks`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Rows per page (default 100, 1 to 1,000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Rows to skip (at most 1,000,000).
    #[serde(default)]
    #[param(maximum = 1_000_000)]
    pub offset: Option<u32>,
}

const MAX_OFFSET: u32 = 1_000_000;

fn paging(limit: Option<u32>, offset: Option<u32>, default: u32, max: u32) -> Result<(u32, u32)> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(Error::bad_request(format!(
            "limit must be 1 to {max}, not {limit}"
        )));
    }
    let offset = offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(Error::bad_request(format!(
            "offset must be at most {MAX_OFFSET}, not {offset}"
        )));
    }
    Ok((limit, offset))
}

/// `GET /v1/ops/summary`: the whole collection now.
#[utoipa::path(
    get,
    path = "/v1/ops/summary",
    operation_id = "ops_summary",
    tag = "public",
    responses(
        (status = 200, description = "Progress of the enabled logs as of their latest snapshots, the rate since the start \
            of the previous hour, the ETA at that rate, how leases ended in the last 24 hours, and each log's figures", body = Summary),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn summary(State(state): State<AppState>) -> Result<Json<Summary>> {
    Ok(Json(ct_db::ops::summary(&state.pool, db::now_ms()).await?))
}

/// `GET /v1/ops/outcomes?hours=&log_id=`: how leases ended, per hour.
#[utoipa::path(
    get,
    path = "/v1/ops/outcomes",
    operation_id = "ops_outcomes",
    tag = "public",
    params(Window),
    responses(
        (status = 200, description = "Leases that ended per hour, outcome and kind (main tasks and checks apart, each \
            lease once), with the entries of their ranges and their durations from claim to end", body = Outcomes),
        (status = 400, description = "`bad_request`: a query parameter is not a number in range", body = ErrorBody),
        (status = 404, description = "`not_found`: no such log", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn outcomes(
    State(state): State<AppState>,
    Query(w): Query<Window>,
) -> Result<Json<Outcomes>> {
    let (since, log_id) = w.check(&state, db::now_ms()).await?;
    Ok(Json(
        ct_db::ops::outcomes(&state.pool, since, log_id).await?,
    ))
}

/// `GET /v1/ops/progress?hours=&log_id=`: each log's progress per hour.
#[utoipa::path(
    get,
    path = "/v1/ops/progress",
    operation_id = "ops_progress",
    tag = "public",
    params(Window),
    responses(
        (status = 200, description = "The last progress snapshot of each hour (tree size, collected, verified prefix, \
            faulty, missing), by log and hour", body = ProgressHistory),
        (status = 400, description = "`bad_request`: a query parameter is not a number in range", body = ErrorBody),
        (status = 404, description = "`not_found`: no such log", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn progress(
    State(state): State<AppState>,
    Query(w): Query<Window>,
) -> Result<Json<ProgressHistory>> {
    let (since, log_id) = w.check(&state, db::now_ms()).await?;
    Ok(Json(
        ct_db::ops::progress_history(&state.pool, since, log_id).await?,
    ))
}

/// `GET /v1/ops/leases`: the current leases per public name and log.
#[utoipa::path(
    get,
    path = "/v1/ops/leases",
    operation_id = "ops_leases",
    tag = "public",
    responses(
        (status = 200, description = "Leases now, per public name and log (names the leaderboard leaves out are left \
            out here too), by name and log; at most 10,000 rows", body = Vec<LeaseGroup>),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn leases(State(state): State<AppState>) -> Result<Json<Vec<LeaseGroup>>> {
    Ok(Json(ct_db::ops::leases_by_name(&state.pool).await?))
}

/// `GET /v1/ops/ranks?limit=&offset=`: the latest rank snapshot.
#[utoipa::path(
    get,
    path = "/v1/ops/ranks",
    operation_id = "ops_ranks",
    tag = "public",
    params(Page),
    responses(
        (status = 200, description = "One page of the latest daily snapshot of the leaderboard, each name with its \
            place in the snapshot of the day before and the places gained", body = Ranks),
        (status = 400, description = "`bad_request`: a query parameter is not a number in range", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn ranks(State(state): State<AppState>, Query(p): Query<Page>) -> Result<Json<Ranks>> {
    let (limit, offset) = paging(p.limit, p.offset, 100, 1000)?;
    Ok(Json(ct_db::ops::ranks(&state.pool, limit, offset).await?))
}

/// Paging of `GET /v1/admin/ops/leases`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeasePage {
    /// Leases per page (default 1,000, 1 to 10,000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// Leases to skip (at most 1,000,000).
    #[serde(default)]
    #[param(maximum = 1_000_000)]
    pub offset: Option<u32>,
}

/// `GET /v1/admin/ops/leases?limit=&offset=`: every current lease.
#[utoipa::path(
    get,
    path = "/v1/admin/ops/leases",
    operation_id = "admin_ops_leases",
    tag = "admin",
    security(("admin_token" = [])),
    params(LeasePage),
    responses(
        (status = 200, description = "One page of the current leases with their workers, ranges and what the workers \
            reported, by worker, log and task", body = Vec<LeaseDetail>),
        (status = 400, description = "`bad_request`: a query parameter is not a number in range", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn admin_leases(
    State(state): State<AppState>,
    _: Admin,
    Query(p): Query<LeasePage>,
) -> Result<Json<Vec<LeaseDetail>>> {
    let (limit, offset) = paging(p.limit, p.offset, 1000, 10_000)?;
    Ok(Json(
        ct_db::ops::lease_details(&state.pool, limit, offset).await?,
    ))
}

/// Paging and filter of `GET /v1/admin/ops/leaderboard`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StandingPage {
    /// Names per page (default 100, 1 to 1,000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Names to skip (at most 1,000,000).
    #[serde(default)]
    #[param(maximum = 1_000_000)]
    pub offset: Option<u32>,
    /// Only the names the public leaderboard leaves out (flagged or revoked).
    #[serde(default)]
    pub hidden: Option<bool>,
}

/// `GET /v1/admin/ops/leaderboard?limit=&offset=&hidden=`: every name.
#[utoipa::path(
    get,
    path = "/v1/admin/ops/leaderboard",
    operation_id = "admin_ops_leaderboard",
    tag = "admin",
    security(("admin_token" = [])),
    params(StandingPage),
    responses(
        (status = 200, description = "One page of the leaderboard with the flagged and revoked names in it (marked, and \
            `public` false), most entries first", body = Vec<Standing>),
        (status = 400, description = "`bad_request`: a query parameter is not a number in range or not a boolean", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn admin_leaderboard(
    State(state): State<AppState>,
    _: Admin,
    Query(p): Query<StandingPage>,
) -> Result<Json<Vec<Standing>>> {
    let (limit, offset) = paging(p.limit, p.offset, 100, 1000)?;
    Ok(Json(
        ct_db::ops::standings(&state.pool, limit, offset, p.hidden.unwrap_or(false)).await?,
    ))
}

/// `POST /v1/admin/ops/snapshot`: record progress and ranks now.
#[utoipa::path(
    post,
    path = "/v1/admin/ops/snapshot",
    operation_id = "admin_ops_snapshot",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "What the snapshot wrote (it replaces the earlier snapshots of this hour and day)", body = Snapshot),
        (status = 401, description = "`unauthorized`: no or a wrong admin token, or admin calls are disabled", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database stayed busy (deadlocks); retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 500, description = "The database failed (the cause is logged)", body = ErrorBody),
    ),
)]
pub async fn admin_snapshot(State(state): State<AppState>, _: Admin) -> Result<Json<Snapshot>> {
    Ok(Json(snapshots::take(&state).await?))
}
