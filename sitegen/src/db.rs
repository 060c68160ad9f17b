//! Read-only queries: each returns plain row structs. Every query is an
//! aggregate over an index or a bounded range, never a scan per page; the
//! analysis layer's rollups and bounded reads are in [`pki`].

use serde::Serialize;
use sqlx::{FromRow, MySqlPool};

use crate::error::{Error, Result};

pub mod pki;

/// Totals shown on the home page. Each counts one thing under its own name:
/// entries (of logs), certificates (stored rows: a precertificate and its
/// final certificate are two), issuances (the two as one), sightings (a
/// certificate's appearances in logs, one per log entry).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Entries fetched by workers, check tasks and repeated ranges included.
    pub entries_fetched: i64,
    /// Matches workers uploaded, check tasks included (a checked range
    /// uploads its matches twice).
    pub matches_uploaded: i64,
    /// Entries of every log collected and proven (each once).
    pub entries_collected: i64,
    pub certificates: i64,
    /// Certificates the analysis has read (the heat map's total).
    pub certificates_analysed: i64,
    pub issuances: i64,
    pub sightings: i64,
    /// Sightings and certificates the manager stored in the last 24 hours.
    pub sightings_24h: i64,
    pub certificates_24h: i64,
    pub unique_names: i64,
    pub registered_domains: i64,
    pub workers_active: i64,
    pub workers_ever: i64,
    pub logs: i64,
    pub failed_entries: i64,
}

/// One log with its latest verified tree head and task progress.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct LogRow {
    pub id: i64,
    pub url: String,
    pub kind: String,
    pub description: String,
    pub operator: String,
    pub state: String,
    pub enabled: bool,
    pub start_index: i64,
    pub last_polled_at: Option<i64>,
    pub last_poll_error: Option<String>,
    /// Latest verified signed tree size (0 when none yet).
    #[sqlx(default)]
    pub tree_size: i64,
    #[sqlx(default)]
    pub sth_timestamp: Option<i64>,
    #[sqlx(skip)]
    pub progress: Progress,
}

/// Progress of one log: [`ct_db::progress`], the numbers the manager's
/// API shows too.
pub use ct_db::progress::Progress;

/// A signed tree head as fetched.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct SthRow {
    pub log_id: i64,
    pub tree_size: i64,
    pub timestamp_ms: i64,
    pub root_hash: String,
    pub verified: bool,
    pub error: Option<String>,
    pub fetched_at: i64,
}

/// One machine: a worker registration of a public name (an identity),
/// with its own totals.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct MachineRow {
    pub id: i64,
    /// Its identity's public name.
    pub name: String,
    pub version: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    /// A later registration of the same machine took its place.
    pub replaced: bool,
    #[sqlx(skip)]
    pub active: bool,
}

/// A label and a count (issuers, validation levels, categories, domains).
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Count {
    pub key: String,
    pub n: i64,
}

/// A time bucket (start in ms) with counts.
#[derive(Debug, Clone, Copy, Serialize, FromRow)]
pub struct Bucket {
    pub at: i64,
    pub entries: i64,
    pub matches: i64,
}

/// Per-key (worker or log), per-day counts from `stats_minute`.
#[derive(Debug, Clone, Copy, FromRow)]
pub struct KeyBucket {
    pub key_id: i64,
    pub at: i64,
    pub entries: i64,
    pub matches: i64,
}

/// Per-key, per-log totals over the stats window.
#[derive(Debug, Clone, FromRow)]
pub struct WindowTotals {
    pub key_id: i64,
    pub log_id: i64,
    pub entries: i64,
    pub matches: i64,
    pub errors: i64,
    pub rate_limit_hits: i64,
}

/// Parses a JSON list of names that may have been cut short by `LEFT()`.
pub fn parse_names(json: &str) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(json) {
        return v;
    }
    // Truncated: keep the complete strings before the cut.
    let mut cut = json;
    while let Some(pos) = cut.rfind("\",") {
        cut = &cut[..pos + 1];
        if let Ok(v) = serde_json::from_str::<Vec<String>>(&format!("{cut}]")) {
            return v;
        }
    }
    Vec::new()
}

/// Connects with a small pool. One direct connection first, so that an
/// unreachable database fails within seconds; then queries may wait for a
/// connection as long as a big count takes (a build queues more queries than
/// the pool has connections).
pub async fn connect(url: &str) -> Result<MySqlPool> {
    use sqlx::Connection;
    let opts: sqlx::mysql::MySqlConnectOptions = url.parse()?;
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sqlx::MySqlConnection::connect_with(&opts),
    )
    .await
    .map_err(|_| Error::Unreachable("no answer within 10 s".into()))??;
    probe.close().await?;
    Ok(sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(std::time::Duration::from_secs(600))
        .connect_with(opts)
        .await?)
}

/// One `SELECT COUNT(*)`-like figure.
async fn figure(pool: &MySqlPool, sql: &str, bind: Option<i64>) -> Result<i64> {
    let mut q = sqlx::query_as::<_, (Option<i64>,)>(sql);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    Ok(q.fetch_one(pool).await?.0.unwrap_or(0))
}

/// The totals (`entries_collected` is left 0: it comes from the logs'
/// progress). The two big counts run side by side.
pub async fn totals(pool: &MySqlPool, now_ms: i64, active_since: i64) -> Result<Totals> {
    let since = now_ms - 86_400_000;
    let (certificates, sightings, unique_names, registered_domains) = tokio::try_join!(
        figure(pool, "SELECT COUNT(*) FROM certificates", None),
        figure(pool, "SELECT COUNT(*) FROM sightings", None),
        figure(
            pool,
            "SELECT COUNT(*) FROM rollup_names WHERE issuances > 0",
            None
        ),
        figure(
            pool,
            "SELECT COUNT(*) FROM rollup_domains WHERE issuances > 0",
            None
        ),
    )?;
    let w = sqlx::query_as::<_, (i64, i64, i64, i64)>(
        "SELECT CAST(COALESCE(SUM(entries), 0) AS SIGNED), CAST(COALESCE(SUM(matches), 0) AS SIGNED), \
           CAST(COALESCE(SUM(last_seen >= ? AND revoked = 0), 0) AS SIGNED), COUNT(*) FROM workers",
    )
    .bind(active_since)
    .fetch_one(pool)
    .await?;
    Ok(Totals {
        entries_fetched: w.0,
        matches_uploaded: w.1,
        entries_collected: 0,
        certificates,
        certificates_analysed: figure(
            pool,
            "SELECT CAST(SUM(certificates) AS SIGNED) FROM rollup_jst",
            None,
        )
        .await?,
        issuances: figure(
            pool,
            "SELECT CAST(SUM(issuances) AS SIGNED) FROM rollup_issuances",
            None,
        )
        .await?,
        sightings,
        sightings_24h: figure(
            pool,
            "SELECT COUNT(*) FROM sightings WHERE created_at >= ?",
            Some(since),
        )
        .await?,
        certificates_24h: figure(
            pool,
            "SELECT COUNT(*) FROM certificates WHERE first_seen >= ?",
            Some(since),
        )
        .await?,
        unique_names,
        registered_domains,
        workers_active: w.2,
        workers_ever: w.3,
        logs: figure(pool, "SELECT COUNT(*) FROM logs", None).await?,
        failed_entries: figure(pool, "SELECT COUNT(*) FROM failed_entries", None).await?,
    })
}

pub async fn logs(pool: &MySqlPool) -> Result<Vec<LogRow>> {
    let mut rows = sqlx::query_as::<_, LogRow>(
        "SELECT CAST(l.id AS SIGNED) AS id, l.url, l.kind, l.description, l.operator, l.state, l.enabled <> 0 AS enabled, \
           CAST(l.start_index AS SIGNED) AS start_index, l.last_polled_at, l.last_poll_error, \
           CAST(COALESCE(h.tree_size, 0) AS SIGNED) AS tree_size, \
           (SELECT CAST(MAX(s2.timestamp_ms) AS SIGNED) FROM sths s2 \
              WHERE s2.log_id = l.id AND s2.verified = 1 AND s2.tree_size = h.tree_size) AS sth_timestamp \
         FROM logs l LEFT JOIN (SELECT log_id, MAX(tree_size) AS tree_size FROM sths \
           WHERE verified = 1 GROUP BY log_id) h ON h.log_id = l.id \
         ORDER BY l.id",
    )
    .fetch_all(pool)
    .await?;
    let mut by_log = ct_db::progress::progress_all(pool).await?;
    for r in &mut rows {
        let id = u64::try_from(r.id).unwrap_or(0);
        r.progress = by_log.remove(&id).unwrap_or_default();
    }
    Ok(rows)
}

/// The latest `per_log` tree heads of every log.
pub async fn sths(pool: &MySqlPool, per_log: i64) -> Result<Vec<SthRow>> {
    Ok(sqlx::query_as::<_, SthRow>(
        "SELECT log_id, tree_size, timestamp_ms, root_hash, verified, error, fetched_at FROM ( \
           SELECT CAST(log_id AS SIGNED) AS log_id, CAST(tree_size AS SIGNED) AS tree_size, \
             CAST(timestamp_ms AS SIGNED) AS timestamp_ms, LOWER(HEX(root_hash)) AS root_hash, \
             verified <> 0 AS verified, error, fetched_at, \
             ROW_NUMBER() OVER (PARTITION BY log_id ORDER BY timestamp_ms DESC, id DESC) AS rn \
           FROM sths) t WHERE rn <= ? ORDER BY log_id, timestamp_ms DESC",
    )
    .bind(per_log)
    .fetch_all(pool)
    .await?)
}

/// Every machine with an identity, by identity and id, flagged and revoked
/// ones left out. The leaderboard itself is [`ct_db::workers::by_name`]
/// (which leaves out the whole name of such a machine); these are the rows
/// its names sum.
pub async fn machines(pool: &MySqlPool, active_since: i64) -> Result<Vec<MachineRow>> {
    let mut rows = sqlx::query_as::<_, MachineRow>(
        "SELECT CAST(w.id AS SIGNED) AS id, i.name, w.version, w.first_seen, w.last_seen, \
           w.entries, w.matches, w.tasks_done, w.replaced_by IS NOT NULL AS replaced \
         FROM workers w JOIN identities i ON i.id = w.identity_id \
         WHERE w.revoked = 0 AND w.flagged = 0 ORDER BY w.identity_id, w.id",
    )
    .fetch_all(pool)
    .await?;
    for m in &mut rows {
        m.active = !m.replaced && m.last_seen >= active_since;
    }
    Ok(rows)
}

/// Entries and matches per `bucket_s`-second bucket since `since_s` (Unix seconds),
/// shifted by `offset_s` so that buckets start at local midnight.
pub async fn throughput(
    pool: &MySqlPool,
    since_s: i64,
    bucket_s: i64,
    offset_s: i64,
) -> Result<Vec<Bucket>> {
    Ok(sqlx::query_as::<_, Bucket>(
        "SELECT CAST((FLOOR((minute + ?) / ?) * ? - ?) * 1000 AS SIGNED) AS at, \
           CAST(SUM(entries) AS SIGNED) AS entries, CAST(SUM(matches) AS SIGNED) AS matches \
         FROM stats_minute WHERE minute >= ? GROUP BY 1 ORDER BY 1",
    )
    .bind(offset_s)
    .bind(bucket_s)
    .bind(bucket_s)
    .bind(offset_s)
    .bind(since_s)
    .fetch_all(pool)
    .await?)
}

/// Daily buckets per `key` column (`worker_id` or `log_id`, a constant) since `since_s`.
pub async fn key_days(
    pool: &MySqlPool,
    key: &'static str,
    since_s: i64,
    offset_s: i64,
) -> Result<Vec<KeyBucket>> {
    Ok(sqlx::query_as::<_, KeyBucket>(&format!(
        "SELECT CAST({key} AS SIGNED) AS key_id, \
           CAST((FLOOR((minute + ?) / 86400) * 86400 - ?) * 1000 AS SIGNED) AS at, \
           CAST(SUM(entries) AS SIGNED) AS entries, CAST(SUM(matches) AS SIGNED) AS matches \
         FROM stats_minute WHERE minute >= ? GROUP BY 1, 2 ORDER BY 1, 2"
    ))
    .bind(offset_s)
    .bind(offset_s)
    .bind(since_s)
    .fetch_all(pool)
    .await?)
}

/// Totals per (`key`, log) since `since_s`; `key` is `worker_id` or `0` (per log only).
pub async fn window_totals(
    pool: &MySqlPool,
    key: &'static str,
    since_s: i64,
) -> Result<Vec<WindowTotals>> {
    Ok(sqlx::query_as::<_, WindowTotals>(&format!(
        "SELECT CAST({key} AS SIGNED) AS key_id, CAST(log_id AS SIGNED) AS log_id, \
           CAST(SUM(entries) AS SIGNED) AS entries, CAST(SUM(matches) AS SIGNED) AS matches, \
           CAST(SUM(errors) AS SIGNED) AS errors, CAST(SUM(rate_limit_hits) AS SIGNED) AS rate_limit_hits \
         FROM stats_minute WHERE minute >= ? GROUP BY 1, 2 ORDER BY 1, 3 DESC"
    ))
    .bind(since_s)
    .fetch_all(pool)
    .await?)
}
