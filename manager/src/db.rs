//! The connection pool, migrations and SQL helpers, from `ct-db` (the one
//! owner of the schema).

pub use ct_db::{MIGRATOR, clip, now_ms, placeholders};

use sqlx::MySqlPool;

use crate::error::Result;

/// Opens a pool.
pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool> {
    Ok(ct_db::connect(url, max_connections).await?)
}

/// Opens a pool whose callers wait at most `acquire_timeout` for a connection.
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> Result<MySqlPool> {
    Ok(ct_db::migrate::connect_with(url, max_connections, acquire_timeout).await?)
}

/// Creates the database named in `url` when it does not exist yet.
pub async fn create_if_missing(url: &str) -> Result<bool> {
    Ok(ct_db::create_if_missing(url).await?)
}

/// Applies every pending migration.
pub async fn migrate(pool: &MySqlPool) -> Result<()> {
    Ok(ct_db::migrate(pool).await?)
}
