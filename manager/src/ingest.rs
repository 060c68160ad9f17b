//! Ingestion. An upload is accepted only while its worker holds the task's
//! current lease, and an entry is stored only when its audit path proves it
//! at its index inside the task's range and the range's subtree hash is
//! proven against a verified signed tree head. Every stored entry is
//! re-examined with `ct-core` (nothing a worker computed is trusted).
//! Proven entries that do not decode go to `failed_entries` (the log's
//! malformed entries); proven entries that decode but do not match are
//! refused. A subtree hash that is not the log's ends the lease.

use std::collections::HashMap;

use ct_core::entry::{Depth, Examined, Examiner};
use ct_core::matcher::{categorize, registered_domain};
use ct_core::protocol::{
    ErrorCode, Hash32, Rejection, RejectionCode, UploadEntry, UploadRequest, UploadResponse,
};
use ct_db::TaskStore;
use ct_db::limits::{ALGORITHM, NAME, SERIAL, TEXT};
use ct_db::store::UploadLease;
use sqlx::MySqlConnection;

use crate::error::{Error, Result};
use crate::metrics::inc;
use crate::{AppState, db, integrity};

/// An entry that matched, with everything stored about it.
pub struct Parsed {
    pub index: u64,
    pub examined: Examined,
    pub found: ct_core::entry::Match,
    pub leaf_input: Vec<u8>,
    pub extra_data: Vec<u8>,
}

/// What becomes of one uploaded entry.
pub enum Verdict {
    Store(Box<Parsed>),
    /// Proven, but it does not decode: the log's malformed entry.
    Failed {
        index: u64,
        reason: String,
        leaf_input: Vec<u8>,
        extra_data: Vec<u8>,
    },
    Reject {
        index: u64,
        code: RejectionCode,
        reason: String,
    },
}

/// The subtree an upload's audit paths lead to: `[start, end)` and its hash.
#[derive(Debug, Clone, Copy)]
pub struct PathCheck {
    pub start: u64,
    pub end: u64,
    pub hash: Hash32,
}

/// Checks one entry's audit path up to the range's subtree hash.
pub fn check_path(
    c: &PathCheck,
    index: u64,
    leaf_input: &[u8],
    path: &[Hash32],
) -> Result<(), String> {
    if path.len() > 64 {
        return Err("audit_path is longer than 64 hashes".into());
    }
    let hashes: Vec<[u8; 32]> = path.iter().map(|h| h.0).collect();
    ct_core::merkle::verify_inclusion(
        index - c.start,
        c.end - c.start,
        &ct_core::merkle::leaf_hash(leaf_input),
        &hashes,
        &c.hash.0,
    )
    .map_err(|e| format!("audit path does not lead to the subtree hash: {e}"))
}

/// Decodes, proves and matches one entry (CPU work).
pub fn examine_one(examiner: &Examiner, paths: &PathCheck, e: UploadEntry) -> Verdict {
    let reject = |code, reason: String| Verdict::Reject {
        index: e.index,
        code,
        reason,
    };
    let (leaf, extra) = match (
        ct_core::b64::decode(&e.leaf_input, "leaf_input"),
        ct_core::b64::decode(&e.extra_data, "extra_data"),
    ) {
        (Ok(l), Ok(x)) => (l, x),
        (Err(err), _) | (_, Err(err)) => {
            return reject(RejectionCode::Undecodable, err.to_string());
        }
    };
    if let Err(reason) = check_path(paths, e.index, &leaf, &e.audit_path) {
        return reject(RejectionCode::BadProof, reason);
    }
    // Proven from here on: these are the log's bytes at this index.
    let examined = examiner.examine(&leaf, &extra, Depth::MatchOnly);
    if let Some(found) = examined.found.clone() {
        return Verdict::Store(Box::new(Parsed {
            index: e.index,
            examined,
            found,
            leaf_input: leaf,
            extra_data: extra,
        }));
    }
    let full = examiner.examine(&leaf, &extra, Depth::Full);
    match full.error.clone().filter(|_| full.cert.is_none()) {
        Some(reason) => Verdict::Failed {
            index: e.index,
            reason,
            leaf_input: leaf,
            extra_data: extra,
        },
        None => reject(
            RejectionCode::NoMatch,
            format!(
                "no name ends in {}",
                examiner.matcher().suffixes().join(", ")
            ),
        ),
    }
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
            ErrorCode::TooManyEntries,
            format!(
                "at most {} entries per upload",
                state.config.max_upload_entries
            ),
        ));
    }
    let task = state
        .store
        .get(task_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no task {task_id}")))?;
    if !task.leased_to(worker_id) {
        return Err(ct_db::Error::not_leased(task_id).into());
    }
    if let Some(e) = req
        .entries
        .iter()
        .find(|e| e.index < task.start_index || e.index >= task.end_index)
    {
        return Err(Error::forbidden(
            ErrorCode::OutOfLease,
            format!(
                "index {} is outside task {task_id}'s range [{}, {})",
                e.index, task.start_index, task.end_index
            ),
        ));
    }
    if req.entries.is_empty() {
        return Ok(UploadResponse::default());
    }
    // One proof per task: the first upload proves the hash against the log.
    integrity::ensure_proven(
        state,
        worker_id,
        &task,
        &req.subtree_hash,
        req.first_leaf_hash.as_ref(),
    )
    .await?;
    let started = std::time::Instant::now();
    let paths = PathCheck {
        start: task.start_index,
        end: task.end_index,
        hash: req.subtree_hash,
    };
    let _slot = state
        .ingest_slots
        .acquire()
        .await
        .map_err(|e| Error::Internal(format!("ingest slots: {e}")))?;
    let matcher = state.config.matcher.clone();
    let verdicts = tokio::task::spawn_blocking(move || {
        let examiner = Examiner::new(matcher);
        req.entries
            .into_iter()
            .map(|e| examine_one(&examiner, &paths, e))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| Error::Internal(format!("examine task: {e}")))?;
    let out = ct_db::error::retrying(|| async {
        let mut lease = state.store.begin_upload(worker_id, &task).await?;
        let out = store(&mut lease, Some(worker_id), &verdicts)
            .await
            .map_err(into_db)?;
        state.store.commit_upload(lease).await?;
        Ok(out)
    })
    .await?;
    state
        .metrics
        .ingest_seconds
        .observe(crate::metrics::since(started));
    inc(&state.metrics.entries_new, out.new);
    inc(&state.metrics.entries_duplicate, out.duplicate);
    inc(&state.metrics.entries_rejected, out.rejected);
    Ok(out)
}

fn into_db(e: Error) -> ct_db::Error {
    match e {
        Error::Db(e) => ct_db::Error::Db(e),
        other => ct_db::Error::Corrupt(other.to_string()),
    }
}

/// Rows per multi-row INSERT (and at most `MAX_STATEMENT_BYTES` of raw entry bytes).
const ROWS_PER_INSERT: usize = 256;
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// Stores one upload's proven verdicts inside the lease's transaction: new
/// certificates, names and sightings; the log's malformed entries; and the
/// matches the lease accounts for. `uploader` is `None` for the manager's
/// own audits.
pub async fn store(
    lease: &mut UploadLease,
    uploader: Option<u64>,
    verdicts: &[Verdict],
) -> Result<UploadResponse> {
    let now = db::now_ms();
    let log_id = lease.task.log_id;
    let task_id = lease.task.id;
    let mut out = UploadResponse::default();
    let wanted: Vec<u64> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Store(p) => Some(p.index),
            _ => None,
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
        existing.extend(q.fetch_all(&mut *lease.tx).await?);
    }
    let mut matches: Vec<(u64, Hash32)> = Vec::new();
    let mut fresh: Vec<&Parsed> = Vec::new();
    for v in verdicts {
        match v {
            Verdict::Reject {
                index,
                code,
                reason,
            } => {
                out.rejected += 1;
                out.rejections.push(Rejection {
                    index: *index,
                    status: 422,
                    code: *code,
                    reason: reason.clone(),
                });
            }
            Verdict::Failed {
                index,
                reason,
                leaf_input,
                extra_data,
            } => {
                let done = sqlx::query(
                    "INSERT IGNORE INTO failed_entries (log_id, idx, leaf_input, extra_data, error, worker_id, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(log_id)
                .bind(index)
                .bind(leaf_input)
                .bind(extra_data)
                .bind(db::clip(reason, TEXT))
                .bind(uploader)
                .bind(now)
                .execute(&mut *lease.tx)
                .await?;
                if done.rows_affected() > 0 {
                    out.failed += 1;
                } else {
                    out.duplicate += 1;
                }
            }
            Verdict::Store(p) => {
                let leaf_hash = p.found.leaf_hash;
                matches.push((p.index, Hash32(leaf_hash)));
                match existing.get(&p.index) {
                    Some(stored) if stored[..] == leaf_hash[..] => {
                        out.duplicate += 1;
                        continue;
                    }
                    Some(_) => {
                        // Proven to be the log's; the stored one (from before
                        // the trust rules) is not.
                        sqlx::query("DELETE FROM sightings WHERE log_id = ? AND idx = ?")
                            .bind(log_id)
                            .bind(p.index)
                            .execute(&mut *lease.tx)
                            .await?;
                        tracing::warn!(
                            log.id = log_id,
                            index = p.index,
                            "a stored entry was replaced by a proven one"
                        );
                    }
                    None => {}
                }
                fresh.push(p);
                existing.insert(p.index, leaf_hash.to_vec());
            }
        }
    }
    if uploader.is_some() {
        TaskStore::accept_matches(lease, &matches).await?;
    }
    let ids = upsert_certificates(&mut lease.tx, &fresh, now).await?;
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT IGNORE INTO sightings (log_id, idx, certificate_id, leaf_hash, timestamp_ms, worker_id, task_id, created_at) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            let cert_id = ids.get(&p.found.fingerprint).copied().ok_or_else(|| {
                Error::Internal(format!("certificate of index {} not stored", p.index))
            })?;
            q = q
                .bind(log_id)
                .bind(p.index)
                .bind(cert_id)
                .bind(p.found.leaf_hash.to_vec())
                .bind(p.examined.timestamp.unwrap_or(0).min(i64::MAX as u64))
                .bind(uploader)
                .bind(task_id)
                .bind(now);
        }
        let inserted = q.execute(&mut *lease.tx).await?.rows_affected();
        out.new += inserted;
        out.duplicate += chunk.len() as u64 - inserted.min(chunk.len() as u64);
    }
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
    rows.sort_by_key(|p| p.found.fingerprint);
    rows.dedup_by_key(|p| p.found.fingerprint);
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
            let text = |s: &Option<String>| s.as_deref().map(|s| db::clip(s, TEXT).to_owned());
            let error = match (&e.error, &c.parse_error) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.clone().or_else(|| b.clone()),
            };
            q = q
                .bind(p.found.fingerprint.to_vec())
                .bind(e.entry_type.map(|t| t.as_str()).unwrap_or("x509"))
                .bind(db::clip(&c.serial, SERIAL).to_owned())
                .bind(db::clip(&c.subject.dn, TEXT).to_owned())
                .bind(text(&c.subject.cn))
                .bind(text(&c.subject.o))
                .bind(db::clip(&c.issuer.dn, TEXT).to_owned())
                .bind(text(&c.issuer.cn))
                .bind(text(&c.issuer.o))
                .bind(c.not_before)
                .bind(c.not_after)
                .bind(json_list(&c.dns_names, 16_000_000))
                .bind(json_list(&c.ip_addresses, 60_000))
                .bind(
                    c.key_algorithm
                        .as_deref()
                        .map(|s| db::clip(s, ALGORITHM).to_owned()),
                )
                .bind(c.key_bits)
                .bind(
                    c.signature_algorithm
                        .as_deref()
                        .map(|s| db::clip(s, ALGORITHM).to_owned()),
                )
                .bind(json_list(&c.policies, 60_000))
                .bind(c.validation.as_str())
                .bind(c.is_ca)
                .bind(error.as_deref().map(|s| db::clip(s, TEXT).to_owned()))
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
            q = q.bind(p.found.fingerprint.to_vec());
        }
        for (fp, id) in q.fetch_all(&mut *conn).await? {
            if let Ok(fp) = <[u8; 32]>::try_from(fp.as_slice()) {
                ids.insert(fp, id);
            }
        }
    }
    let mut names: Vec<(u64, &String)> = Vec::new();
    for p in &rows {
        let Some(&id) = ids.get(&p.found.fingerprint) else {
            continue;
        };
        names.extend(
            p.found
                .names
                .iter()
                .filter(|n| n.len() <= NAME)
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
                .bind(db::clip(&registered_domain(n), NAME).to_owned());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(ids)
}
