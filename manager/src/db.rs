//! The connection pool, migrations, and small SQL helpers.

use std::time::{SystemTime, UNIX_EPOCH};

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

/// Creates the database named in `url` when it does not exist yet (the
/// server must let this user create it).
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

/// Now as Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Cuts a string to at most `max` bytes on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `"?, ?, ?"` with `n` placeholders.
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}
