//! The pool and the migrations of the workspace's `migrations/` folder.

use sqlx::MySqlPool;
use sqlx::mysql::MySqlPoolOptions;

use crate::error::Result;

/// The migrations in the workspace's `migrations/` folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens a pool.
pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool> {
    Ok(MySqlPoolOptions::new()
        .max_connections(max_connections)
        .connect(url)
        .await?)
}

/// Opens a pool whose callers wait at most `acquire_timeout` for a
/// connection (then fail with `PoolTimedOut`: the database does not answer
/// or every connection is busy).
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> Result<MySqlPool> {
    Ok(MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect(url)
        .await?)
}

/// Creates the database named in `url` when it does not exist yet (the
/// server must let this user create it); true when it was created.
pub async fn create_if_missing(url: &str) -> Result<bool> {
    use sqlx::migrate::MigrateDatabase;
    if sqlx::MySql::database_exists(url).await? {
        return Ok(false);
    }
    sqlx::MySql::create_database(url).await?;
    Ok(true)
}

/// Applies every pending migration.
pub async fn migrate(pool: &MySqlPool) -> Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
