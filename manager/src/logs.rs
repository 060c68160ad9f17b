//! The logs the manager knows: import from a v3 log list (re-import updates,
//! never duplicates), admin settings, and listings.

use std::collections::HashMap;

use ct_core::loglist::LogList;
use ct_core::protocol::{ErrorCode, LogKind};
use ct_db::TaskStore;
use ct_db::counters::LogCounters;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, MySqlPool};
use utoipa::ToSchema;

use crate::db;
use crate::error::{Error, Result};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportSummary {
    pub inserted: u64,
    pub updated: u64,
    /// Logs left out, with the reason.
    pub skipped: Vec<String>,
}

/// Normalizes a log URL: `https://host/path/` with one trailing slash.
pub fn normalize_url(url: &str) -> Option<String> {
    let url = url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 500 {
        return None;
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(format!("{}/", url.trim_end_matches('/')))
}

/// Imports (inserts or updates) every log of a list.
pub async fn import(pool: &MySqlPool, list: &LogList) -> Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    let now = db::now_ms();
    let mut tx = pool.begin().await?;
    for op in &list.operators {
        let all = op
            .logs
            .iter()
            .map(|l| (LogKind::Rfc6962, l))
            .chain(op.tiled_logs.iter().map(|l| (LogKind::Static, l)));
        for (kind, log) in all {
            let (url, monitoring) = match kind {
                LogKind::Rfc6962 => (log.url.as_deref(), None),
                LogKind::Static => (log.submission_url.as_deref(), log.monitoring_url.as_deref()),
            };
            let Some(url) = url.and_then(normalize_url) else {
                summary
                    .skipped
                    .push(format!("{}: missing or invalid URL", log.description));
                continue;
            };
            let monitoring = match (kind, monitoring.map(normalize_url)) {
                (LogKind::Static, None | Some(None)) => {
                    summary
                        .skipped
                        .push(format!("{url}: missing or invalid monitoring_url"));
                    continue;
                }
                (_, m) => m.flatten(),
            };
            let Ok(key) = ct_core::b64::decode(&log.key, "key") else {
                summary.skipped.push(format!("{url}: key is not base64"));
                continue;
            };
            if key.len() > 2048 || ct_core::sth::LogKey::from_spki_der(&key).is_err() {
                summary
                    .skipped
                    .push(format!("{url}: unsupported or invalid key"));
                continue;
            }
            let log_id = ct_core::sth::log_id(&key);
            if ct_core::b64::decode(&log.log_id, "log_id").ok().as_deref() != Some(&log_id[..]) {
                summary
                    .skipped
                    .push(format!("{url}: log_id is not the SHA-256 of its key"));
                continue;
            }
            let state = log.state_name().unwrap_or("");
            // Retired and read-only logs are collected to their final tree
            // head; only rejected ones (never trusted) are left off.
            let enabled = state != "rejected";
            let final_size = log.final_tree_head().map(|h| h.tree_size);
            let interval = log.temporal_interval.as_ref();
            let rps = log
                .certspotter_qps
                .filter(|q| q.is_finite() && *q > 0.0 && *q <= 10_000.0);
            let batch = log
                .certspotter_download_size
                .filter(|n| (1..=10_000).contains(n))
                .and_then(|n| u32::try_from(n).ok());
            let jobs = log
                .certspotter_download_jobs
                .filter(|j| (1..=1024).contains(j));
            // Locked, so that concurrent imports count inserted and updated right.
            let existing: Option<(u64,)> =
                sqlx::query_as("SELECT id FROM logs WHERE url = ? FOR UPDATE")
                    .bind(&url)
                    .fetch_optional(&mut *tx)
                    .await?;
            // One statement for both cases; a re-import keeps the admin's
            // enabled flag and the creation time.
            sqlx::query(
                "INSERT INTO logs (url, kind, monitoring_url, public_key, log_id, description, operator, \
                 state, mmd, enabled, created_at, updated_at, final_tree_size, temporal_start, temporal_end, \
                 requests_per_sec, entries_per_request, max_fetchers) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?, 4)) \
                 ON DUPLICATE KEY UPDATE kind = VALUES(kind), monitoring_url = VALUES(monitoring_url), \
                 public_key = VALUES(public_key), log_id = VALUES(log_id), description = VALUES(description), \
                 operator = VALUES(operator), state = VALUES(state), mmd = VALUES(mmd), \
                 updated_at = VALUES(updated_at), final_tree_size = VALUES(final_tree_size), \
                 temporal_start = VALUES(temporal_start), temporal_end = VALUES(temporal_end), \
                 requests_per_sec = COALESCE(requests_per_sec, VALUES(requests_per_sec)), \
                 entries_per_request = COALESCE(entries_per_request, VALUES(entries_per_request))",
            )
            .bind(&url)
            .bind(kind.as_str())
            .bind(&monitoring)
            .bind(&key)
            .bind(&log_id[..])
            .bind(db::clip(&log.description, 512))
            .bind(db::clip(&op.name, 255))
            .bind(db::clip(state, 32))
            .bind(log.mmd)
            .bind(enabled)
            .bind(now)
            .bind(now)
            .bind(final_size)
            .bind(interval.map(|i| db::clip(&i.start_inclusive, 32).to_owned()))
            .bind(interval.map(|i| db::clip(&i.end_exclusive, 32).to_owned()))
            .bind(rps)
            .bind(batch)
            .bind(jobs)
            .execute(&mut *tx)
            .await?;
            if existing.is_some() {
                summary.updated += 1;
            } else {
                summary.inserted += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(summary)
}

/// One log as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow, ToSchema)]
pub struct LogInfo {
    pub id: u64,
    pub url: String,
    #[schema(value_type = ct_core::protocol::LogKind)]
    pub kind: ct_db::LogKind,
    pub monitoring_url: Option<String>,
    pub description: String,
    pub operator: String,
    pub state: String,
    pub enabled: bool,
    pub priority: i32,
    pub start_index: u64,
    pub max_fetchers: u32,
    /// The log's own fetch budget per client address (else its operator's or the default).
    pub requests_per_sec: Option<f64>,
    pub entries_per_request: Option<u32>,
    /// A read-only log's final tree size (from the log list).
    pub final_tree_size: Option<u64>,
    pub temporal_start: Option<String>,
    pub temporal_end: Option<String>,
    pub planned_end: u64,
    /// Largest verified tree size.
    pub tree_size: Option<u64>,
    #[sqlx(default)]
    pub tasks: i64,
    #[sqlx(default)]
    pub tasks_done: i64,
    /// Entries accounted for by finished and interrupted leases.
    #[sqlx(default)]
    pub entries_done: u64,
    #[sqlx(default)]
    pub certificates: i64,
    pub last_polled_at: Option<i64>,
    pub last_poll_error: Option<String>,
    /// Verified prefix, gaps and the log's faults (tasks of checks
    /// excluded): [`ct_db::progress`], the numbers sitegen shows too.
    #[sqlx(skip)]
    pub progress: ct_db::progress::Progress,
}

/// Every log with its progress.
pub async fn list(pool: &MySqlPool) -> Result<Vec<LogInfo>> {
    let mut tx = pool.begin().await?;
    let (logs, _) = read(&mut tx, &mut ct_db::progress::ProgressReader::default()).await?;
    tx.commit().await?;
    Ok(logs)
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Every log with its progress, and the counters they were read from: the
/// logs' rows, the counters the database keeps and a few index seeks per
/// log ([`ct_db::progress::ProgressReader`]), never a scan of tasks or
/// sightings. Run it inside a transaction, so that all of it is one
/// snapshot.
pub async fn read(
    conn: &mut sqlx::MySqlConnection,
    reader: &mut ct_db::progress::ProgressReader,
) -> Result<(Vec<LogInfo>, HashMap<u64, LogCounters>)> {
    let mut logs: Vec<LogInfo> = sqlx::query_as(
        "SELECT l.id, l.url, l.kind, l.monitoring_url, l.description, l.operator, l.state, l.enabled, \
         l.priority, l.start_index, l.max_fetchers, l.requests_per_sec, l.entries_per_request, \
         l.final_tree_size, l.temporal_start, l.temporal_end, l.planned_end, \
         (SELECT s.tree_size FROM sths s FORCE INDEX (sths_verified) WHERE s.log_id = l.id AND s.verified = 1 \
            ORDER BY s.tree_size DESC LIMIT 1) AS tree_size, \
         l.last_polled_at, l.last_poll_error FROM logs l ORDER BY l.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut reading = reader.read(conn).await?;
    for l in &mut logs {
        let c = reading.counters.get(&l.id).cloned().unwrap_or_default();
        l.tasks = count(c.tasks);
        l.tasks_done = count(c.done);
        l.entries_done = c.entries;
        l.certificates = count(c.sightings);
        l.progress = reading.progress.remove(&l.id).unwrap_or_default();
    }
    Ok((logs, reading.counters))
}

/// Changes an admin can make to a log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogUpdate {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub start_index: Option<u64>,
    #[serde(default)]
    pub max_fetchers: Option<u32>,
    /// Fetch budget per client address: requests per second (0 < r <= 10,000).
    #[serde(default)]
    pub requests_per_sec: Option<f64>,
    /// Entries per get-entries request (1..=10,000).
    #[serde(default)]
    pub entries_per_request: Option<u32>,
}

fn check_budget(rps: Option<f64>, batch: Option<u32>) -> Result<()> {
    if rps.is_some_and(|r| !(r.is_finite() && r > 0.0 && r <= 10_000.0)) {
        return Err(Error::unprocessable(
            ErrorCode::InvalidCap,
            "requests_per_sec must be in (0, 10000]",
        ));
    }
    if batch.is_some_and(|b| !(1..=10_000).contains(&b)) {
        return Err(Error::unprocessable(
            ErrorCode::InvalidCap,
            "entries_per_request must be in 1..=10000",
        ));
    }
    Ok(())
}

/// An operator's budget: defaults for its logs and its limit across them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, FromRow, ToSchema)]
pub struct OperatorBudget {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub requests_per_sec: Option<f64>,
    #[serde(default)]
    pub entries_per_request: Option<u32>,
    #[serde(default)]
    pub fetchers: Option<u32>,
    /// Requests per second per client address to all its logs together.
    #[serde(default)]
    pub operator_requests_per_sec: Option<f64>,
}

/// Every operator with a budget.
pub async fn operators(pool: &MySqlPool) -> Result<Vec<OperatorBudget>> {
    Ok(sqlx::query_as(
        "SELECT name, requests_per_sec, entries_per_request, fetchers, operator_requests_per_sec \
         FROM operators ORDER BY name",
    )
    .fetch_all(pool)
    .await?)
}

/// Sets (replaces) the budget of operator `name`.
pub async fn set_operator(pool: &MySqlPool, name: &str, b: &OperatorBudget) -> Result<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::unprocessable(
            ErrorCode::InvalidName,
            "an operator name is 1 to 255 bytes",
        ));
    }
    check_budget(b.requests_per_sec, b.entries_per_request)?;
    check_budget(b.operator_requests_per_sec, None)?;
    if b.fetchers.is_some_and(|f| !(1..=1024).contains(&f)) {
        return Err(Error::unprocessable(
            ErrorCode::InvalidCap,
            "fetchers must be in 1..=1024",
        ));
    }
    sqlx::query(
        "INSERT INTO operators (name, requests_per_sec, entries_per_request, fetchers, operator_requests_per_sec, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE requests_per_sec = VALUES(requests_per_sec), \
         entries_per_request = VALUES(entries_per_request), fetchers = VALUES(fetchers), \
         operator_requests_per_sec = VALUES(operator_requests_per_sec), updated_at = VALUES(updated_at)",
    )
    .bind(name)
    .bind(b.requests_per_sec)
    .bind(b.entries_per_request)
    .bind(b.fetchers)
    .bind(b.operator_requests_per_sec)
    .bind(db::now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// Applies a [`LogUpdate`]; tasks take the log's enabled flag and priority.
pub async fn update(pool: &MySqlPool, id: u64, u: &LogUpdate) -> Result<()> {
    if let Some(cap) = u.max_fetchers
        && !(1..=1024).contains(&cap)
    {
        return Err(Error::unprocessable(
            ErrorCode::InvalidCap,
            "max_fetchers must be in 1..=1024",
        ));
    }
    check_budget(u.requests_per_sec, u.entries_per_request)?;
    if u.start_index.is_some_and(|s| s > i64::MAX as u64) {
        return Err(Error::unprocessable(
            ErrorCode::InvalidIndex,
            "start_index is too large",
        ));
    }
    let mut tx = pool.begin().await?;
    let found: Option<(u64,)> = sqlx::query_as("SELECT id FROM logs WHERE id = ? FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Err(Error::not_found(format!("no log {id}")));
    }
    sqlx::query(
        "UPDATE logs SET enabled = COALESCE(?, enabled), priority = COALESCE(?, priority), \
         start_index = COALESCE(?, start_index), max_fetchers = COALESCE(?, max_fetchers), \
         requests_per_sec = COALESCE(?, requests_per_sec), entries_per_request = COALESCE(?, entries_per_request), \
         updated_at = ? WHERE id = ?",
    )
    .bind(u.enabled)
    .bind(u.priority)
    .bind(u.start_index)
    .bind(u.max_fetchers)
    .bind(u.requests_per_sec)
    .bind(u.entries_per_request)
    .bind(db::now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if let Some(cap) = u.max_fetchers {
        sqlx::query("UPDATE worker_logs SET fetchers = LEAST(fetchers, ?) WHERE log_id = ?")
            .bind(cap)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if u.enabled.is_some() || u.priority.is_some() {
        TaskStore::new(pool.clone(), 0)
            .sync_log_flags(Some(id))
            .await?;
    }
    Ok(())
}
