//! The API contract: an OpenAPI 3.1 document generated at compile time by
//! `utoipa` from the handlers' `#[utoipa::path]` annotations and the
//! request and answer types' `ToSchema` derives, served (public) at
//! `GET /v1/openapi.json`. Every route of [`crate::app`] is in it; the
//! integration test `openapi` holds the two lists together.

use std::sync::LazyLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use ct_core::protocol::ErrorBody;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

use crate::routes::{admin, ops, public, tasks, upload, workers};

/// The security schemes: a worker's token (from `POST /v1/workers/register`)
/// and the admin token (`--admin-token`), both as `Authorization: Bearer`.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (
                "worker_token",
                "A worker's token, as `POST /v1/workers/register` answered it once.",
            ),
            (
                "admin_token",
                "The manager's admin token (`--admin-token` / `CT_ADMIN_TOKEN`).",
            ),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
    }
}

/// Every path answers the methods it does not list with 405
/// `method_not_allowed` (`routes::method_not_allowed`); that answer is
/// documented on each of the path's operations.
struct MethodNotAllowed;

impl Modify for MethodNotAllowed {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let answer = ResponseBuilder::new()
            .description(
                "`method_not_allowed`: this path does not take the request's method \
                 (the answer to every method the path does not list)",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                op.responses
                    .responses
                    .entry("405".to_owned())
                    .or_insert_with(|| answer.clone().into());
            }
        }
    }
}

/// The whole document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ct-manager",
        description = "The JSON API of ctjp's manager: workers register, claim ranges of CT logs, \
            report progress, upload matching entries and complete; admins manage logs, operators \
            and workers; the public reads progress. Every error answers `ErrorBody` \
            (`{\"error\":{\"code\",\"message\"}}`) with a stable `code`. A path that is not listed \
            answers 404 `not_found`, a listed path with another method 405 `method_not_allowed`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        public::healthz,
        public::metrics,
        public::logs,
        public::stats,
        public::workers,
        openapi_json,
        ops::summary,
        ops::outcomes,
        ops::progress,
        ops::leases,
        ops::ranks,
        workers::register,
        workers::me,
        tasks::claim,
        tasks::heartbeat,
        upload::upload,
        tasks::complete,
        tasks::fail,
        admin::logs,
        admin::import,
        admin::update_log,
        admin::poll_log,
        admin::operators,
        admin::set_operator,
        admin::workers,
        admin::revoke,
        admin::expire_leases,
        admin::verify_now,
        admin::flagged,
        ops::admin_leases,
        ops::admin_leaderboard,
        ops::admin_snapshot,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerTokens, &MethodNotAllowed),
    tags(
        (name = "public", description = "Read-only, no token"),
        (name = "worker", description = "Workers' calls (a worker token; registration needs none)"),
        (name = "admin", description = "Admin calls (the admin token)"),
    ),
)]
pub struct ApiDoc;

/// The document as JSON, built once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_default());

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "public",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", body = Object,
            content_type = "application/json"),
    ),
)]
pub async fn openapi_json() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}
