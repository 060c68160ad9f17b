//! `ct-manager export`: every stored matching entry as one JSON object per line.

use std::io::Write;

use serde::Serialize;
use sqlx::{FromRow, MySqlPool};

use crate::error::{Error, Result};

#[derive(Debug, FromRow)]
struct Row {
    id: u64,
    log_url: String,
    idx: u64,
    leaf_hash: Vec<u8>,
    timestamp_ms: u64,
    fingerprint: Vec<u8>,
    entry_type: String,
    dns_names: String,
    subject_cn: Option<String>,
    issuer_cn: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    created_at: i64,
}

/// One exported line.
#[derive(Debug, Serialize)]
pub struct ExportLine {
    pub log_url: String,
    pub index: u64,
    pub leaf_hash: String,
    pub fingerprint: String,
    pub entry_type: String,
    pub dns_names: Vec<String>,
    /// Log timestamp, Unix ms.
    pub timestamp: u64,
    pub subject_cn: Option<String>,
    pub issuer_cn: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// When the manager stored it, Unix ms.
    pub stored_at: i64,
}

/// Writes every sighting stored at or after `since_ms`; returns the number of lines.
pub async fn export(pool: &MySqlPool, since_ms: i64, out: &mut impl Write) -> Result<u64> {
    let mut last = 0u64;
    let mut n = 0;
    loop {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT s.id, l.url AS log_url, s.idx, s.leaf_hash, s.timestamp_ms, c.fingerprint, c.entry_type, \
             c.dns_names, c.subject_cn, c.issuer_cn, c.not_before, c.not_after, s.created_at \
             FROM sightings s JOIN logs l ON l.id = s.log_id JOIN certificates c ON c.id = s.certificate_id \
             WHERE s.id > ? AND s.created_at >= ? ORDER BY s.id LIMIT 1000",
        )
        .bind(last)
        .bind(since_ms)
        .fetch_all(pool)
        .await?;
        let Some(end) = rows.last().map(|r| r.id) else {
            return Ok(n);
        };
        for r in rows {
            let line = ExportLine {
                log_url: r.log_url,
                index: r.idx,
                leaf_hash: hex::encode(r.leaf_hash),
                fingerprint: hex::encode(r.fingerprint),
                entry_type: r.entry_type,
                dns_names: serde_json::from_str(&r.dns_names).unwrap_or_default(),
                timestamp: r.timestamp_ms,
                subject_cn: r.subject_cn,
                issuer_cn: r.issuer_cn,
                not_before: r.not_before,
                not_after: r.not_after,
                stored_at: r.created_at,
            };
            let json = serde_json::to_string(&line).map_err(|e| Error::Internal(e.to_string()))?;
            writeln!(out, "{json}").map_err(|e| Error::Internal(format!("write: {e}")))?;
            n += 1;
        }
        last = end;
    }
}
