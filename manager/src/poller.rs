//! The tree-head poller: fetch each enabled log's signed tree head (`get-sth`,
//! or the static `checkpoint` under the monitoring URL), verify it with the
//! log's key, record it (verified or not, with the error), then plan. An
//! unverified head is never used for planning.

use std::time::Duration;

use ct_core::checkpoint::Checkpoint;
use ct_core::rfc6962::GetSth;
use ct_core::sth::LogKey;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::{AppState, db, planner};

/// Largest tree-head answer read.
const MAX_STH_BYTES: usize = 64 * 1024;

#[derive(Debug, FromRow)]
struct PollRow {
    url: String,
    kind: ct_db::LogKind,
    monitoring_url: Option<String>,
    public_key: Vec<u8>,
}

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PollOutcome {
    pub log_id: u64,
    pub tree_size: Option<u64>,
    pub verified: bool,
    pub error: Option<String>,
    pub tasks_added: u64,
}

/// A fetched head before verification.
struct Head {
    tree_size: u64,
    timestamp: u64,
    root: [u8; 32],
    signature: Vec<u8>,
    verdict: std::result::Result<(), String>,
}

async fn fetch_text(state: &AppState, url: &str) -> std::result::Result<String, String> {
    let bytes = crate::fetch::get_bounded(&state.http, url, MAX_STH_BYTES)
        .await
        .map_err(|(_, e)| e)?;
    String::from_utf8(bytes).map_err(|_| format!("GET {url}: answer is not UTF-8"))
}

/// The origin line a static log's checkpoint must carry: the submission URL
/// without scheme and trailing slash.
pub fn origin_of(url: &str) -> &str {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
}

async fn fetch_head(
    state: &AppState,
    log: &PollRow,
    key: &LogKey,
) -> std::result::Result<Head, String> {
    match log.kind {
        ct_db::LogKind::Static => {
            let base = log.monitoring_url.as_deref().unwrap_or(&log.url);
            let text = fetch_text(state, &format!("{base}checkpoint")).await?;
            let cp = Checkpoint::parse(&text).map_err(|e| format!("checkpoint: {e}"))?;
            let origin = origin_of(&log.url);
            let checked = if cp.origin != origin {
                Err(format!(
                    "checkpoint origin {:?} is not {origin:?}",
                    cp.origin
                ))
            } else {
                cp.verify(origin, key).map_err(|e| e.to_string())
            };
            let timestamp = checked.as_ref().copied().unwrap_or(0);
            let verdict = checked.map(|_| ());
            let signature = cp
                .signatures
                .first()
                .map(|s| s.signature.clone())
                .unwrap_or_default();
            Ok(Head {
                tree_size: cp.tree_size,
                timestamp,
                root: cp.root_hash,
                signature,
                verdict,
            })
        }
        ct_db::LogKind::Rfc6962 => {
            let text = fetch_text(state, &format!("{}ct/v1/get-sth", log.url)).await?;
            let sth: GetSth = serde_json::from_str(&text).map_err(|e| format!("get-sth: {e}"))?;
            let root = sth.root_hash();
            let sig = sth.signature();
            let signature =
                ct_core::b64::decode(&sth.tree_head_signature, "sig").unwrap_or_default();
            let verdict = match (&root, &sig) {
                (Ok(root), Ok(sig)) => key
                    .verify_tree_head(sth.timestamp, sth.tree_size, root, sig)
                    .map_err(|e| e.to_string()),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            };
            Ok(Head {
                tree_size: sth.tree_size,
                timestamp: sth.timestamp,
                root: root.unwrap_or([0; 32]),
                signature,
                verdict,
            })
        }
    }
}

/// Polls one log now, records the head, and plans.
pub async fn poll_log(state: &AppState, log_id: u64) -> Result<PollOutcome> {
    let log: PollRow =
        sqlx::query_as("SELECT url, kind, monitoring_url, public_key FROM logs WHERE id = ?")
            .bind(log_id)
            .fetch_optional(&state.pool)
            .await?
            .ok_or_else(|| Error::not_found(format!("no log {log_id}")))?;
    let now = db::now_ms();
    let head = match LogKey::from_spki_der(&log.public_key) {
        Err(e) => Err(format!("log key: {e}")),
        Ok(key) => fetch_head(state, &log, &key).await,
    };
    let mut outcome = PollOutcome {
        log_id,
        tree_size: None,
        verified: false,
        error: None,
        tasks_added: 0,
    };
    match head {
        Err(e) => {
            inc(&state.metrics.sth_fetch_errors, 1);
            tracing::warn!(log.id = log_id, log.url = %log.url, error = %e, "tree head fetch failed");
            outcome.error = Some(e);
        }
        Ok(h) => {
            let verified = h.verdict.is_ok();
            let error = h.verdict.err();
            if verified {
                inc(&state.metrics.sth_verified, 1);
            } else {
                inc(&state.metrics.sth_unverified, 1);
                tracing::warn!(log.id = log_id, log.url = %log.url, error = ?error, "tree head does not verify");
            }
            sqlx::query(
                "INSERT IGNORE INTO sths (log_id, tree_size, timestamp_ms, root_hash, signature, verified, error, fetched_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(log_id)
            .bind(h.tree_size.min(i64::MAX as u64))
            .bind(h.timestamp.min(i64::MAX as u64))
            .bind(&h.root[..])
            .bind(&h.signature[..h.signature.len().min(2048)])
            .bind(verified)
            .bind(error.as_deref().map(|e| db::clip(e, 1000)))
            .bind(now)
            .execute(&state.pool)
            .await?;
            outcome.tree_size = Some(h.tree_size);
            outcome.verified = verified;
            outcome.error = error;
        }
    }
    sqlx::query("UPDATE logs SET last_polled_at = ?, last_poll_error = ? WHERE id = ?")
        .bind(now)
        .bind(outcome.error.as_deref().map(|e| db::clip(e, 1000)))
        .bind(log_id)
        .execute(&state.pool)
        .await?;
    outcome.tasks_added = planner::plan_log(
        &state.pool,
        &state.store,
        log_id,
        state.config.task_size_log2,
    )
    .await?;
    Ok(outcome)
}

/// Polls every enabled log.
pub async fn poll_all(state: &AppState) -> Result<Vec<PollOutcome>> {
    let ids: Vec<(u64,)> =
        sqlx::query_as("SELECT id FROM logs WHERE enabled = 1 ORDER BY priority DESC, id")
            .fetch_all(&state.pool)
            .await?;
    let mut out = Vec::with_capacity(ids.len());
    for (id,) in ids {
        out.push(poll_log(state, id).await?);
    }
    Ok(out)
}

/// Polls every `every` until stopped (first poll at once).
pub async fn run(state: AppState, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let poll = poll_all(&state);
        tokio::select! {
            r = poll => if let Err(e) = r { tracing::warn!(error = %e, "tree head poll round failed") },
            _ = stop.changed() => return,
        }
        if crate::sleep_or_stop(every, &mut stop).await {
            return;
        }
    }
}
