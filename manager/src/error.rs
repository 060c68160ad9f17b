//! The one error type of the API: every failure becomes a JSON body
//! `{"error":{"code","message"}}` with a 4xx status, or a generic 5xx whose
//! cause is logged once, here.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ct_core::protocol::{ErrorBody, ErrorDetail};

/// Errors of the manager library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client error with its status and a stable code.
    #[error("{code}: {message}")]
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything else that is our fault.
    #[error("internal: {0}")]
    Internal(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Error::Client {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Client { status, .. } => *status,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether a transaction failing with this error should be retried
    /// (deadlock or lock wait timeout).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Db(sqlx::Error::Database(db)) => db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| matches!(e.number(), 1213 | 1205)),
            _ => false,
        }
    }
}

/// The JSON body of an error.
pub fn body(code: &str, message: &str) -> axum::Json<ErrorBody> {
    axum::Json(ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
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
            } => (status, body(code, &message)).into_response(),
            other => {
                tracing::error!(error = %other, "request failed with an internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    body("internal", "internal error; it has been logged"),
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
                "payload_too_large",
                "request body is over the limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            _ => Error::client(StatusCode::BAD_REQUEST, "invalid_json", r.body_text()),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(r: PathRejection) -> Self {
        Error::client(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
    }
}
