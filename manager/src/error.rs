//! The one error type of the API: every failure becomes a JSON body
//! `{"error":{"code","message"}}` with a 4xx status, 503 `unavailable` when
//! the database does not answer or stays deadlocked, or a generic 500;
//! 5xx causes are logged once, here.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ct_core::protocol::{ErrorBody, ErrorCode, ErrorDetail};
use ct_db::Refusal;

/// Errors of the manager library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client error with its status and a stable code.
    #[error("{code}: {message}")]
    Client {
        status: StatusCode,
        code: ErrorCode,
        message: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row holds a value no version of ctjp writes.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Anything else that is our fault.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<ct_db::Error> for Error {
    fn from(e: ct_db::Error) -> Self {
        match e {
            ct_db::Error::Refused {
                refusal,
                code,
                message,
            } => {
                let status = match refusal {
                    Refusal::BadRequest => StatusCode::BAD_REQUEST,
                    Refusal::NotFound => StatusCode::NOT_FOUND,
                    Refusal::Forbidden => StatusCode::FORBIDDEN,
                    Refusal::Conflict => StatusCode::CONFLICT,
                    Refusal::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
                    Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                };
                Error::Client {
                    status,
                    code,
                    message,
                }
            }
            ct_db::Error::Db(e) => Error::Db(e),
            ct_db::Error::Migrate(e) => Error::Migrate(e),
            ct_db::Error::Corrupt(e) => Error::Corrupt(e),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn client(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Client {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, code, message)
    }
    pub fn unprocessable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    /// The log cannot prove a range right now: the worker retries later.
    pub fn unavailable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::client(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Client { status, .. } => *status,
            e if e.is_unavailable() || e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether a transaction failing with this error should be retried
    /// (deadlock or lock wait timeout).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Db(e) if ct_db::error::is_deadlock(e))
    }

    /// Whether the database did not answer (no connection in time, refused,
    /// reset): the call answers 503 `unavailable` at once instead of 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Db(e) if ct_db::error::is_unavailable(e))
    }
}

/// The JSON body of an error.
pub fn body(code: ErrorCode, message: &str) -> axum::Json<ErrorBody> {
    axum::Json(ErrorBody {
        error: ErrorDetail {
            code,
            message: message.to_owned(),
        },
    })
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Client {
                status,
                code,
                message,
            } => {
                let mut resp = (status, body(code, &message)).into_response();
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    resp.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from_static("5"),
                    );
                }
                resp
            }
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "request failed: the database does not answer");
                let mut resp = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    body(
                        ErrorCode::Unavailable,
                        "the database does not answer; retry",
                    ),
                )
                    .into_response();
                resp.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("5"),
                );
                resp
            }
            other if other.is_retryable() => {
                tracing::warn!(error = %other, "request gave up on a deadlock after retries");
                let mut resp = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    body(ErrorCode::Unavailable, "the database is busy; retry"),
                )
                    .into_response();
                resp.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
                resp
            }
            other => {
                tracing::error!(error = %other, "request failed with an internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    body(ErrorCode::Internal, "internal error; it has been logged"),
                )
                    .into_response()
            }
        }
    }
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Error::client(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "request body is over the limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ),
            _ => Error::client(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidJson,
                r.body_text(),
            ),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(r: PathRejection) -> Self {
        Error::client(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPath,
            r.body_text(),
        )
    }
}
