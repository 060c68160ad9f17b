//! The HTTP surface: `/v1` worker and admin calls, public read-only
//! endpoints, `/healthz` and `/metrics`. Extractors here turn every
//! rejection into our JSON error shape.

pub mod admin;
pub mod ops;
pub mod public;
pub mod tasks;
pub mod upload;
pub mod workers;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post, put};
use axum::{Router, extract::DefaultBodyLimit};
use serde::de::DeserializeOwned;
use tower_http::catch_panic::CatchPanicLayer;

use ct_core::protocol::ErrorCode;

use crate::AppState;
use crate::error::{Error, body};

/// `axum::Json` whose rejections answer with our error shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(v))
    }
}

/// `axum::extract::Path` whose rejections answer with our error shape.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let axum::extract::Path(v) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(v))
    }
}

/// `axum::extract::Query` whose rejections answer with our error shape.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|r| Error::bad_request(r.body_text()))?;
        Ok(Query(v))
    }
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        body(ErrorCode::NotFound, "no such endpoint"),
    )
}

async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        body(ErrorCode::MethodNotAllowed, "method not allowed here"),
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        body(ErrorCode::Internal, "internal error; it has been logged"),
    )
        .into_response()
}

/// The caller's address: the peer of the connection, or, behind a reverse
/// proxy configured with `--client-address-header`, that header's first
/// address. Empty when neither is known (an in-process test).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if let Some(h) = state.config.client_address_header.as_deref() {
            let v = parts
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| v.parse::<std::net::IpAddr>().is_ok());
            if let Some(v) = v {
                return Ok(ClientAddr(v.to_owned()));
            }
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        Ok(ClientAddr(peer))
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(public::healthz))
        .route("/metrics", get(public::metrics))
        .route("/v1/logs", get(public::logs))
        .route("/v1/stats", get(public::stats))
        .route("/v1/workers", get(public::workers))
        .route("/v1/openapi.json", get(crate::openapi::openapi_json))
        .route("/v1/ops/summary", get(ops::summary))
        .route("/v1/ops/outcomes", get(ops::outcomes))
        .route("/v1/ops/progress", get(ops::progress))
        .route("/v1/ops/leases", get(ops::leases))
        .route("/v1/ops/ranks", get(ops::ranks))
        .route("/v1/workers/register", post(workers::register))
        .route("/v1/workers/me", get(workers::me))
        .route("/v1/tasks/claim", post(tasks::claim))
        .route("/v1/heartbeat", post(tasks::heartbeat))
        .route("/v1/tasks/{id}/entries", post(upload::upload))
        .route("/v1/tasks/{id}/complete", post(tasks::complete))
        .route("/v1/tasks/{id}/fail", post(tasks::fail))
        .route("/v1/admin/logs", get(admin::logs).post(admin::import))
        .route("/v1/admin/logs/{id}", patch(admin::update_log))
        .route("/v1/admin/logs/{id}/poll", post(admin::poll_log))
        .route("/v1/admin/operators", get(admin::operators))
        .route("/v1/admin/operators/{name}", put(admin::set_operator))
        .route("/v1/admin/workers", get(admin::workers))
        .route("/v1/admin/workers/{id}/revoke", post(admin::revoke))
        .route("/v1/admin/leases/expire", post(admin::expire_leases))
        .route("/v1/admin/verify", post(admin::verify_now))
        .route("/v1/admin/flagged", get(admin::flagged))
        .route("/v1/admin/ops/leases", get(ops::admin_leases))
        .route("/v1/admin/ops/leaderboard", get(ops::admin_leaderboard))
        .route("/v1/admin/ops/snapshot", post(ops::admin_snapshot))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        // Every request in a span (method, route, status, latency); errors
        // are logged once, by `Error::into_response`, inside it.
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("unmatched", |p| p.as_str());
                    tracing::info_span!("request", http.method = %req.method(), http.route = %route)
                })
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                )
                .on_failure(()),
        )
        .with_state(state)
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}
