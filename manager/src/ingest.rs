//! Ingestion: uploaded entries are re-examined with `ct-core` (nothing a
//! worker computed is trusted), checked against the task leased to that
//! worker, and stored idempotently in one transaction per batch. Entries that
//! do not decode are kept in `failed_entries`; entries that decode but do not
//! match are refused.

use std::collections::HashMap;

use ct_core::entry::{Depth, Examined, Examiner};
use ct_core::matcher::{categorize, registered_domain};
use ct_core::protocol::{Rejection, UploadRequest, UploadResponse};
use sqlx::MySqlConnection;

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::{AppState, db};

/// An entry that matched, with everything stored about it.
struct Parsed {
    index: u64,
    examined: Examined,
    leaf_input: Vec<u8>,
    extra_data: Vec<u8>,
}

enum Verdict {
    Store(Box<Parsed>),
    /// Refused; `failed` holds the raw bytes when the entry goes to `failed_entries`.
    Reject {
        index: u64,
        code: &'static str,
        reason: String,
        failed: Option<(Vec<u8>, Vec<u8>)>,
    },
}

/// The subtree an upload's audit paths lead to: `[start, end)` and its hash.
#[derive(Debug, Clone, Copy)]
pub struct PathCheck {
    pub start: u64,
    pub end: u64,
    pub hash: [u8; 32],
}

/// Checks one entry's audit path up to the range's subtree hash.
pub fn check_path(
    c: &PathCheck,
    index: u64,
    leaf_input: &[u8],
    path: &[String],
) -> Result<(), String> {
    if path.len() > 64 {
        return Err("audit_path is longer than 64 hashes".into());
    }
    let mut hashes = Vec::with_capacity(path.len());
    for h in path {
        let bytes =
            hex::decode(h).map_err(|_| "audit_path holds a hash that is not hex".to_string())?;
        hashes.push(
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| "audit_path holds a hash that is not 32 bytes".to_string())?,
        );
    }
    ct_core::merkle::verify_inclusion(
        index - c.start,
        c.end - c.start,
        &ct_core::merkle::leaf_hash(leaf_input),
        &hashes,
        &c.hash,
    )
    .map_err(|e| format!("audit path does not lead to the subtree hash: {e}"))
}

/// Decodes and matches every entry (CPU work, run off the reactor); with
/// `paths`, an entry whose audit path fails is refused before anything else.
fn examine_all(
    matcher: ct_core::matcher::Matcher,
    req: UploadRequest,
    paths: Option<PathCheck>,
) -> Vec<Verdict> {
    let examiner = Examiner::new(matcher);
    req.entries
        .into_iter()
        .map(|e| {
            let leaf = ct_core::b64::decode(&e.leaf_input, "leaf_input");
            let extra = ct_core::b64::decode(&e.extra_data, "extra_data");
            if let (Some(c), Ok(leaf)) = (&paths, &leaf)
                && let Err(reason) = check_path(c, e.index, leaf, &e.audit_path)
            {
                return Verdict::Reject {
                    index: e.index,
                    code: "bad_proof",
                    reason,
                    failed: None,
                };
            }
            let (leaf, extra) = match (leaf, extra) {
                (Ok(l), Ok(x)) => (l, x),
                (Err(err), _) | (_, Err(err)) => {
                    return Verdict::Reject {
                        index: e.index,
                        code: "undecodable",
                        reason: err.to_string(),
                        failed: Some((e.leaf_input.into_bytes(), e.extra_data.into_bytes())),
                    };
                }
            };
            let examined = examiner.examine(&leaf, &extra, Depth::MatchOnly);
            if examined.matched() {
                Verdict::Store(Box::new(Parsed {
                    index: e.index,
                    examined,
                    leaf_input: leaf,
                    extra_data: extra,
                }))
            } else if let Some(err) = examined.error.clone().filter(|_| examined.cert.is_none()) {
                Verdict::Reject {
                    index: e.index,
                    code: "undecodable",
                    reason: err,
                    failed: Some((leaf, extra)),
                }
            } else {
                Verdict::Reject {
                    index: e.index,
                    code: "no_match",
                    reason: format!(
                        "no name ends in {}",
                        examiner.matcher().suffixes().join(", ")
                    ),
                    failed: None,
                }
            }
        })
        .collect()
}

#[derive(Debug, sqlx::FromRow)]
struct UploadTask {
    log_id: u64,
    start_index: u64,
    end_index: u64,
    state: String,
    lease_holder: Option<u64>,
}

/// Handles one upload for `task_id` by `worker_id`.
pub async fn upload(
    state: &AppState,
    worker_id: u64,
    task_id: u64,
    req: UploadRequest,
) -> Result<UploadResponse> {
    inc(&state.metrics.uploads, 1);
    if req.entries.len() > state.config.max_upload_entries {
        return Err(Error::client(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_entries",
            format!(
                "at most {} entries per upload",
                state.config.max_upload_entries
            ),
        ));
    }
    let task: UploadTask = sqlx::query_as(
        "SELECT log_id, start_index, end_index, state, lease_holder FROM tasks WHERE id = ?",
    )
    .bind(task_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| Error::not_found(format!("no task {task_id}")))?;
    if task.lease_holder != Some(worker_id) || task.state == "pending" {
        return Err(Error::forbidden(
            "not_leased",
            format!("task {task_id} is not leased to you"),
        ));
    }
    if let Some(e) = req
        .entries
        .iter()
        .find(|e| e.index < task.start_index || e.index >= task.end_index)
    {
        return Err(Error::forbidden(
            "out_of_lease",
            format!(
                "index {} is outside task {task_id}'s range [{}, {})",
                e.index, task.start_index, task.end_index
            ),
        ));
    }
    let subtree = match req.subtree_hash.as_deref() {
        None => None,
        Some(h) => Some(
            hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| {
                    Error::unprocessable("invalid_hash", "subtree_hash must be 64 hex digits")
                })?,
        ),
    };
    let mut proven = false;
    if let Some(hash) = subtree.filter(|_| !req.entries.is_empty()) {
        // One proof per task: the first upload with a hash proves it against the log.
        if let Some(reason) = crate::integrity::prove_upload(state, task_id, &hash).await? {
            if task.state == "leased" {
                let mut tx = state.pool.begin().await?;
                let still: Option<(u64,)> = sqlx::query_as(
                    "SELECT id FROM tasks WHERE id = ? AND state = 'leased' AND lease_holder = ? FOR UPDATE",
                )
                .bind(task_id)
                .bind(worker_id)
                .fetch_optional(&mut *tx)
                .await?;
                if still.is_some() {
                    crate::integrity::refuse(&mut tx, task_id, worker_id, &reason).await?;
                }
                tx.commit().await?;
                inc(&state.metrics.ranges_mismatched, 1);
            }
            return Err(Error::unprocessable(
                "proof_mismatch",
                format!(
                    "task {task_id}: {reason}; the task returns to the pool and this counts against you"
                ),
            ));
        }
        proven = crate::integrity::proof_state(state, task_id)
            .await?
            .as_deref()
            == Some("verified");
    } else if !req.entries.is_empty() {
        sqlx::query("UPDATE tasks SET unproven_uploads = 1 WHERE id = ? AND unproven_uploads = 0")
            .bind(task_id)
            .execute(&state.pool)
            .await?;
    }
    let paths = subtree.map(|hash| PathCheck {
        start: task.start_index,
        end: task.end_index,
        hash,
    });
    let _slot = state
        .ingest_slots
        .acquire()
        .await
        .map_err(|e| Error::Internal(format!("ingest slots: {e}")))?;
    let matcher = state.config.matcher.clone();
    let verdicts = tokio::task::spawn_blocking(move || examine_all(matcher, req, paths))
        .await
        .map_err(|e| Error::Internal(format!("examine task: {e}")))?;
    let mut attempt = 0;
    let out = loop {
        match store(state, worker_id, task_id, task.log_id, &verdicts, proven).await {
            Err(e) if e.is_retryable() && attempt < 4 => attempt += 1,
            r => break r?,
        }
    };
    inc(&state.metrics.entries_new, out.new);
    inc(&state.metrics.entries_duplicate, out.duplicate);
    inc(&state.metrics.entries_rejected, out.rejected);
    Ok(out)
}

/// Rows per multi-row INSERT (and at most `MAX_STATEMENT_BYTES` of raw entry bytes).
const ROWS_PER_INSERT: usize = 256;
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// Stores one upload's verdicts in one transaction. The decisions are made
/// per entry (against the sightings read first and the entries before it in
/// the batch); the writes are multi-row INSERTs, a handful of statements per
/// batch instead of four per entry.
async fn store(
    state: &AppState,
    worker_id: u64,
    task_id: u64,
    log_id: u64,
    verdicts: &[Verdict],
    proven: bool,
) -> Result<UploadResponse> {
    let now = db::now_ms();
    let mut out = UploadResponse::default();
    let mut tx = state.pool.begin().await?;
    let wanted: Vec<u64> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Store(p) => Some(p.index),
            Verdict::Reject { .. } => None,
        })
        .collect();
    let mut existing: HashMap<u64, Vec<u8>> = HashMap::new();
    if !wanted.is_empty() {
        let sql = format!(
            "SELECT idx, leaf_hash FROM sightings WHERE log_id = ? AND idx IN ({})",
            db::placeholders(wanted.len())
        );
        let mut q = sqlx::query_as::<_, (u64, Vec<u8>)>(&sql).bind(log_id);
        for i in &wanted {
            q = q.bind(i);
        }
        existing.extend(q.fetch_all(&mut *tx).await?);
    }
    // (idx, leaf_hash, proven) rows of task_matches, and the entries to store.
    let mut matches: Vec<(u64, [u8; 32], bool)> = Vec::new();
    let mut fresh: Vec<&Parsed> = Vec::new();
    for v in verdicts {
        match v {
            Verdict::Reject {
                index,
                code,
                reason,
                failed,
            } => {
                if let Some((leaf, extra)) = failed {
                    sqlx::query(
                        "INSERT IGNORE INTO failed_entries (log_id, idx, leaf_input, extra_data, error, worker_id, created_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(log_id)
                    .bind(index)
                    .bind(leaf)
                    .bind(extra)
                    .bind(db::clip(reason, 60_000))
                    .bind(worker_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                out.rejected += 1;
                out.rejections.push(Rejection {
                    index: *index,
                    status: 422,
                    code: (*code).to_owned(),
                    reason: reason.clone(),
                });
            }
            Verdict::Store(p) => {
                let leaf_hash = p.examined.leaf_hash.unwrap_or_default();
                if existing
                    .get(&p.index)
                    .is_none_or(|s| s[..] == leaf_hash[..])
                {
                    matches.push((p.index, leaf_hash, proven));
                }
                let replace = proven
                    && existing
                        .get(&p.index)
                        .is_some_and(|s| s[..] != leaf_hash[..]);
                if replace {
                    // This entry is proven to be the log's; the stored one is not.
                    sqlx::query("DELETE FROM sightings WHERE log_id = ? AND idx = ?")
                        .bind(log_id)
                        .bind(p.index)
                        .execute(&mut *tx)
                        .await?;
                    matches.push((p.index, leaf_hash, true));
                    existing.remove(&p.index);
                    tracing::warn!(
                        log.id = log_id,
                        index = p.index,
                        "a stored entry was replaced by a proven one"
                    );
                }
                if let Some(stored) = existing.get(&p.index) {
                    if stored[..] == leaf_hash[..] {
                        out.duplicate += 1;
                    } else {
                        out.rejected += 1;
                        out.rejections.push(Rejection {
                            index: p.index,
                            status: 409,
                            code: "conflict".into(),
                            reason: "a different entry is already stored at this index".into(),
                        });
                    }
                    continue;
                }
                fresh.push(p);
                existing.insert(p.index, leaf_hash.to_vec());
            }
        }
    }
    for chunk in matches.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT IGNORE INTO task_matches (task_id, worker_id, idx, leaf_hash, proven, created_at) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (idx, hash, proven) in chunk {
            q = q
                .bind(task_id)
                .bind(worker_id)
                .bind(idx)
                .bind(&hash[..])
                .bind(proven)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    let ids = upsert_certificates(&mut tx, &fresh, now).await?;
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT IGNORE INTO sightings (log_id, idx, certificate_id, leaf_hash, timestamp_ms, worker_id, task_id, created_at) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            let fingerprint = p.examined.fingerprint.unwrap_or_default();
            let cert_id = ids.get(&fingerprint).copied().ok_or_else(|| {
                Error::Internal(format!("certificate of index {} not stored", p.index))
            })?;
            q = q
                .bind(log_id)
                .bind(p.index)
                .bind(cert_id)
                .bind(p.examined.leaf_hash.unwrap_or_default().to_vec())
                .bind(p.examined.timestamp.unwrap_or(0).min(i64::MAX as u64))
                .bind(worker_id)
                .bind(task_id)
                .bind(now);
        }
        let inserted = q.execute(&mut *tx).await?.rows_affected();
        // The rest was stored by a concurrent upload meanwhile; the check
        // above catches conflicts next time.
        out.new += inserted;
        out.duplicate += chunk.len() as u64 - inserted.min(chunk.len() as u64);
    }
    tx.commit().await?;
    Ok(out)
}

/// JSON array of strings, dropping items from the end until it fits `max` bytes.
fn json_list(items: &[String], max: usize) -> String {
    let mut n = items.len();
    loop {
        let s = serde_json::to_string(&items[..n]).unwrap_or_else(|_| "[]".into());
        if s.len() <= max || n == 0 {
            return s;
        }
        n /= 2;
    }
}

/// Inserts the certificates of `entries` (existing ones are kept) and their
/// matching names; returns the id of every fingerprint.
async fn upsert_certificates(
    conn: &mut MySqlConnection,
    entries: &[&Parsed],
    now: i64,
) -> Result<HashMap<[u8; 32], u64>> {
    let mut ids = HashMap::new();
    if entries.is_empty() {
        return Ok(ids);
    }
    // One row per fingerprint, in fingerprint order: concurrent batches take
    // the unique key's locks in the same order.
    let mut rows: Vec<&Parsed> = entries.to_vec();
    rows.sort_by_key(|p| p.examined.fingerprint.unwrap_or_default());
    rows.dedup_by_key(|p| p.examined.fingerprint.unwrap_or_default());
    let mut chunks: Vec<&[&Parsed]> = Vec::new();
    let (mut from, mut bytes) = (0, 0);
    for (i, p) in rows.iter().enumerate() {
        let size = p.leaf_input.len() + p.extra_data.len();
        if i > from && (i - from >= ROWS_PER_INSERT || bytes + size > MAX_STATEMENT_BYTES) {
            chunks.push(&rows[from..i]);
            (from, bytes) = (i, 0);
        }
        bytes += size;
    }
    chunks.push(&rows[from..]);
    for chunk in chunks {
        let sql = format!(
            "INSERT INTO certificates (fingerprint, entry_type, serial, subject_dn, subject_cn, subject_o, issuer_dn, \
             issuer_cn, issuer_o, not_before, not_after, dns_names, ip_addresses, key_algorithm, key_bits, \
             signature_algorithm, policies, validation, is_ca, parse_error, leaf_input, extra_data, first_seen) \
             VALUES {} ON DUPLICATE KEY UPDATE id = id",
            vec![format!("({})", db::placeholders(23)); chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            let e = &p.examined;
            let c = e.cert.clone().unwrap_or_default();
            let text = |s: &Option<String>| s.as_deref().map(|s| db::clip(s, 60_000).to_owned());
            let error = match (&e.error, &c.parse_error) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.clone().or_else(|| b.clone()),
            };
            q = q
                .bind(e.fingerprint.unwrap_or_default().to_vec())
                .bind(e.entry_type.map(|t| t.as_str()).unwrap_or("x509"))
                .bind(db::clip(&c.serial, 1024).to_owned())
                .bind(db::clip(&c.subject.dn, 60_000).to_owned())
                .bind(text(&c.subject.cn))
                .bind(text(&c.subject.o))
                .bind(db::clip(&c.issuer.dn, 60_000).to_owned())
                .bind(text(&c.issuer.cn))
                .bind(text(&c.issuer.o))
                .bind(c.not_before)
                .bind(c.not_after)
                .bind(json_list(&c.dns_names, 16_000_000))
                .bind(json_list(&c.ip_addresses, 60_000))
                .bind(
                    c.key_algorithm
                        .as_deref()
                        .map(|s| db::clip(s, 128).to_owned()),
                )
                .bind(c.key_bits)
                .bind(
                    c.signature_algorithm
                        .as_deref()
                        .map(|s| db::clip(s, 128).to_owned()),
                )
                .bind(json_list(&c.policies, 60_000))
                .bind(c.validation.as_str())
                .bind(c.is_ca)
                .bind(error.as_deref().map(|s| db::clip(s, 60_000).to_owned()))
                .bind(p.leaf_input.clone())
                .bind(p.extra_data.clone())
                .bind(now);
        }
        q.execute(&mut *conn).await?;
        let sql = format!(
            "SELECT fingerprint, id FROM certificates WHERE fingerprint IN ({})",
            db::placeholders(chunk.len())
        );
        let mut q = sqlx::query_as::<_, (Vec<u8>, u64)>(&sql);
        for p in chunk {
            q = q.bind(p.examined.fingerprint.unwrap_or_default().to_vec());
        }
        for (fp, id) in q.fetch_all(&mut *conn).await? {
            if let Ok(fp) = <[u8; 32]>::try_from(fp.as_slice()) {
                ids.insert(fp, id);
            }
        }
    }
    let mut names: Vec<(u64, &String)> = Vec::new();
    for p in &rows {
        let Some(&id) = ids.get(&p.examined.fingerprint.unwrap_or_default()) else {
            continue;
        };
        names.extend(
            p.examined
                .matched_names
                .iter()
                .filter(|n| n.len() <= 700)
                .map(|n| (id, n)),
        );
    }
    for chunk in names.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT IGNORE INTO names (certificate_id, name, category, registered_domain) VALUES {}",
            vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (id, n) in chunk {
            q = q
                .bind(id)
                .bind(n)
                .bind(categorize(n).as_str())
                .bind(db::clip(&registered_domain(n), 700).to_owned());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(ids)
}
