//! Errors of the store: the database's, and refusals of a transition whose
//! precondition does not hold (the caller answers them as 4xx).

use ct_core::protocol::ErrorCode;

/// What kind of refusal: the caller maps it to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    NotFound,
    Forbidden,
    Conflict,
    Unprocessable,
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transition whose precondition does not hold.
    #[error("{code}: {message}")]
    Refused {
        refusal: Refusal,
        code: ErrorCode,
        message: String,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row holds a value no version of ctjp writes.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn refused(refusal: Refusal, code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Refused {
            refusal,
            code,
            message: message.into(),
        }
    }

    pub fn not_leased(task_id: u64) -> Self {
        Self::refused(
            Refusal::Forbidden,
            ErrorCode::NotLeased,
            format!("task {task_id} is not leased to you"),
        )
    }

    pub fn no_task(task_id: u64) -> Self {
        Self::refused(
            Refusal::NotFound,
            ErrorCode::NotFound,
            format!("no task {task_id}"),
        )
    }

    /// A deadlock or a lock wait timeout: the transaction may be retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Db(e) if is_deadlock(e))
    }

    /// The database did not answer (see [`is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Db(e) if is_unavailable(e))
    }
}

/// Whether MySQL/MariaDB gave up on a lock: deadlock (1213) or lock wait
/// timeout (1205).
pub fn is_deadlock(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|e| matches!(e.number(), 1213 | 1205)),
        _ => false,
    }
}

/// Runs `f` again (up to 5 times in all) while it fails with a deadlock or a
/// lock wait timeout.
pub async fn retrying<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.is_retryable() && attempt < 4 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
            }
            r => return r,
        }
    }
}

/// Whether the database did not answer: no connection within the pool's
/// acquire timeout, a connection refused, reset or closed, or a server
/// shutting down or out of connections. The caller answers 503 and the
/// client retries.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Too many connections, server shutdown, connection killed, and the
        // client-side "cannot connect" and "server gone" codes.
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|e| matches!(e.number(), 1040 | 1053 | 1927 | 2002 | 2003 | 2006 | 2013)),
        _ => false,
    }
}
