//! Read-only queries: each returns plain row structs. Every query is an
//! aggregate over an index or a bounded range, never a scan per page.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{FromRow, MySqlPool};

use crate::error::Result;

/// Totals shown on the home page.
#[derive(Debug, Clone, Default, Serialize, FromRow)]
pub struct Totals {
    pub entries_scanned: i64,
    pub matches_reported: i64,
    pub certificates: i64,
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

/// A volunteer worker and its totals.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct WorkerRow {
    pub id: i64,
    pub name: String,
    pub version: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub entries: i64,
    pub matches: i64,
    pub tasks_done: i64,
    #[sqlx(skip)]
    pub active: bool,
    #[sqlx(skip)]
    pub rank: usize,
}

/// A matching certificate, without its raw bytes.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct CertRow {
    pub id: i64,
    pub fingerprint: String,
    pub subject_cn: Option<String>,
    pub subject_dn: Option<String>,
    pub issuer_cn: Option<String>,
    pub issuer_o: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    #[serde(skip)]
    pub dns_names_json: String,
    pub validation: String,
    pub first_seen: i64,
    #[sqlx(skip)]
    pub names: Vec<String>,
    #[sqlx(skip)]
    pub more_names: usize,
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

const CERT_COLUMNS: &str = "CAST(c.id AS SIGNED) AS id, HEX(c.fingerprint) AS fingerprint, c.subject_cn, c.subject_dn, \
    c.issuer_cn, c.issuer_o, c.not_before, c.not_after, LEFT(c.dns_names, 4000) AS dns_names_json, \
    c.validation, c.first_seen";

/// How many names a certificate row carries into the pages.
const NAMES_SHOWN: usize = 12;

fn fill_names(rows: &mut [CertRow]) {
    for r in rows {
        let all = parse_names(&r.dns_names_json);
        r.more_names = all.len().saturating_sub(NAMES_SHOWN);
        r.names = all.into_iter().take(NAMES_SHOWN).collect();
    }
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

/// Connects with a small pool and a short timeout.
pub async fn connect(url: &str) -> Result<MySqlPool> {
    Ok(sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(url)
        .await?)
}

pub async fn totals(pool: &MySqlPool, active_since: i64) -> Result<Totals> {
    let t = sqlx::query_as::<_, Totals>(
        "SELECT \
           (SELECT CAST(COALESCE(SUM(entries), 0) AS SIGNED) FROM workers) AS entries_scanned, \
           (SELECT CAST(COALESCE(SUM(matches), 0) AS SIGNED) FROM workers) AS matches_reported, \
           (SELECT COUNT(*) FROM certificates) AS certificates, \
           (SELECT COUNT(DISTINCT name) FROM names) AS unique_names, \
           (SELECT COUNT(DISTINCT registered_domain) FROM names) AS registered_domains, \
           (SELECT COUNT(*) FROM workers WHERE last_seen >= ? AND revoked = 0) AS workers_active, \
           (SELECT COUNT(*) FROM workers) AS workers_ever, \
           (SELECT COUNT(*) FROM logs) AS logs, \
           (SELECT COUNT(*) FROM failed_entries) AS failed_entries",
    )
    .bind(active_since)
    .fetch_one(pool)
    .await?;
    Ok(t)
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

pub async fn workers(pool: &MySqlPool, active_since: i64) -> Result<Vec<WorkerRow>> {
    let mut rows = sqlx::query_as::<_, WorkerRow>(
        "SELECT CAST(id AS SIGNED) AS id, name, version, first_seen, last_seen, \
           CAST(entries AS SIGNED) AS entries, CAST(matches AS SIGNED) AS matches, \
           CAST(tasks_done AS SIGNED) AS tasks_done \
         FROM workers WHERE revoked = 0 ORDER BY entries DESC, matches DESC, id",
    )
    .fetch_all(pool)
    .await?;
    for (i, w) in rows.iter_mut().enumerate() {
        w.active = w.last_seen >= active_since;
        w.rank = i + 1;
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

/// New certificates per local day since `since_ms`.
pub async fn new_certificates(
    pool: &MySqlPool,
    since_ms: i64,
    offset_s: i64,
) -> Result<Vec<Count>> {
    let rows = sqlx::query_as::<_, (i64, i64)>(
        "SELECT CAST((FLOOR((first_seen DIV 1000 + ?) / 86400) * 86400 - ?) * 1000 AS SIGNED) AS at, \
           COUNT(*) FROM certificates WHERE first_seen >= ? GROUP BY 1 ORDER BY 1",
    )
    .bind(offset_s)
    .bind(offset_s)
    .bind(since_ms)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, n)| Count {
            key: at.to_string(),
            n,
        })
        .collect())
}

pub async fn latest_certificates(pool: &MySqlPool, limit: i64) -> Result<Vec<CertRow>> {
    let mut rows = sqlx::query_as::<_, CertRow>(&format!(
        "SELECT {CERT_COLUMNS} FROM certificates c ORDER BY c.id DESC LIMIT ?"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    fill_names(&mut rows);
    Ok(rows)
}

/// Certificates whose `not_after` falls in `[now, until)`, soonest first, and how many there are.
pub async fn expiring(
    pool: &MySqlPool,
    now_ms: i64,
    until_ms: i64,
    limit: i64,
) -> Result<(Vec<CertRow>, i64)> {
    let mut rows = sqlx::query_as::<_, CertRow>(&format!(
        "SELECT {CERT_COLUMNS} FROM certificates c WHERE c.not_after >= ? AND c.not_after < ? \
         ORDER BY c.not_after, c.id LIMIT ?"
    ))
    .bind(now_ms)
    .bind(until_ms)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    fill_names(&mut rows);
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM certificates WHERE not_after >= ? AND not_after < ?")
            .bind(now_ms)
            .bind(until_ms)
            .fetch_one(pool)
            .await?;
    Ok((rows, n))
}

/// Certificates per validation level (covering index scan).
pub async fn validation_levels(pool: &MySqlPool) -> Result<Vec<Count>> {
    Ok(sqlx::query_as::<_, Count>(
        "SELECT validation AS `key`, COUNT(*) AS n FROM certificates GROUP BY validation ORDER BY n DESC",
    )
    .fetch_all(pool)
    .await?)
}

/// The issuers (organisation, else CN) with most certificates among the
/// latest `sample` certificates (a primary-key range: the whole table would
/// be a full scan of the raw certificates).
pub async fn top_issuers(pool: &MySqlPool, sample: i64, limit: i64) -> Result<Vec<Count>> {
    Ok(sqlx::query_as::<_, Count>(
        "SELECT COALESCE(NULLIF(issuer_o, ''), NULLIF(issuer_cn, ''), '(none)') AS `key`, COUNT(*) AS n \
         FROM certificates WHERE id > (SELECT COALESCE(MAX(id), 0) FROM certificates) - ? \
         GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?",
    )
    .bind(sample)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Distinct names and certificates per name category (two index scans).
pub async fn categories(pool: &MySqlPool) -> Result<Vec<(String, i64, i64)>> {
    let names: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT category, COUNT(DISTINCT name) FROM names GROUP BY category",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let certs = sqlx::query_as::<_, (String, i64)>(
        "SELECT category, COUNT(DISTINCT certificate_id) AS n FROM names GROUP BY category ORDER BY n DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(certs
        .into_iter()
        .map(|(c, n)| {
            let names = names.get(&c).copied().unwrap_or(0);
            (c, names, n)
        })
        .collect())
}

/// Every registered domain with its number of certificates, largest first.
pub async fn domains(pool: &MySqlPool) -> Result<Vec<Count>> {
    Ok(sqlx::query_as::<_, Count>(
        "SELECT registered_domain AS `key`, COUNT(DISTINCT certificate_id) AS n FROM names \
         GROUP BY registered_domain ORDER BY n DESC, registered_domain",
    )
    .fetch_all(pool)
    .await?)
}

/// The latest certificates naming something under `domain`.
pub async fn domain_certificates(
    pool: &MySqlPool,
    domain: &str,
    limit: i64,
) -> Result<Vec<CertRow>> {
    let mut rows = sqlx::query_as::<_, CertRow>(&format!(
        "SELECT {CERT_COLUMNS} FROM certificates c WHERE c.id IN \
           (SELECT certificate_id FROM names WHERE registered_domain = ?) \
         ORDER BY c.id DESC LIMIT ?"
    ))
    .bind(domain)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    fill_names(&mut rows);
    Ok(rows)
}
