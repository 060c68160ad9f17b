//! The manager's own audits: it re-fetches a small share of completed
//! ranges from the log itself (`--audit-share`), hashes and matches every
//! entry, and compares with the completer's proven set, so that a ring of
//! identities checking each other cannot vouch for itself. The same fetch
//! gives the second opinion when two workers report the same wrong hash.

use std::collections::BTreeSet;
use std::time::Duration;

use ct_core::entry::{Depth, Examiner};
use ct_core::merkle::MerkleTree;
use ct_core::protocol::Hash32;
use ct_core::rfc6962::GetEntries;
use ct_core::tiles::{TILE_WIDTH, TileId, TileKind, decode_data_tile, maybe_gunzip};
use ct_db::AuditState;
use ct_db::store::Evidence;
use tokio::sync::watch;

use crate::AppState;
use crate::error::Result;
use crate::integrity::VerifySummary;
use crate::metrics::inc;
use crate::verify::Target;

/// Largest answer read (a get-entries page or a data tile).
const MAX_ANSWER_BYTES: usize = 32 << 20;
/// Entries asked per get-entries request.
const BATCH: u64 = 256;

/// A range as the manager fetched it.
#[derive(Debug, Clone)]
pub struct FetchedRange {
    /// The range's subtree hash over the bytes served.
    pub hash: Hash32,
    /// The matching entries: index and leaf hash.
    pub matches: BTreeSet<(u64, Hash32)>,
}

async fn get(state: &AppState, url: &str) -> std::result::Result<Vec<u8>, String> {
    inc(&state.metrics.audit_requests, 1);
    crate::fetch::get_bounded(&state.http, url, MAX_ANSWER_BYTES)
        .await
        .map_err(|(_, e)| e)
}

/// Fetches `[start, end)` of the task's log, hashes every entry and keeps
/// the matches. The tree size of the task's proof bounds partial tiles.
pub async fn fetch_range(
    state: &AppState,
    t: &Target,
) -> std::result::Result<FetchedRange, String> {
    let (start, end) = (t.start_index, t.end_index);
    let mut examiner = Examiner::new(state.config.matcher.clone());
    let mut leaves = Vec::with_capacity((end - start) as usize);
    let mut matches = BTreeSet::new();
    match t.kind {
        ct_db::LogKind::Rfc6962 => {
            let mut next = start;
            let mut empty = 0;
            while next < end {
                let last = (next + BATCH).min(end) - 1;
                let url = format!("{}ct/v1/get-entries?start={next}&end={last}", t.url);
                let body = get(state, &url).await?;
                let page: GetEntries<'_> =
                    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
                if page.entries.is_empty() {
                    empty += 1;
                    if empty > 5 {
                        return Err(format!("{url}: empty answers below the tree size"));
                    }
                    continue;
                }
                for e in page.entries.iter().take((end - next) as usize) {
                    let x = examiner.examine_b64(&e.leaf_input, &e.extra_data, Depth::MatchOnly);
                    let leaf = x
                        .leaf_hash
                        .ok_or_else(|| format!("entry {next}: leaf_input is not base64"))?;
                    leaves.push(leaf);
                    if let Some(m) = x.found {
                        matches.insert((next, Hash32(m.leaf_hash)));
                    }
                    next += 1;
                }
            }
        }
        ct_db::LogKind::Static => {
            let base = t.monitoring_url.as_deref().unwrap_or(&t.url);
            let tree_size = proof_tree_size(state, t).await.unwrap_or(end);
            let mut n = start / TILE_WIDTH;
            while n * TILE_WIDTH < end {
                let width = (tree_size.saturating_sub(n * TILE_WIDTH)).min(TILE_WIDTH);
                let full = TileId {
                    kind: TileKind::Data,
                    index: n,
                    width: TILE_WIDTH,
                };
                let body = match get(state, &format!("{base}{}", full.path())).await {
                    Ok(b) => b,
                    Err(_) if width < TILE_WIDTH => {
                        let partial = TileId { width, ..full };
                        get(state, &format!("{base}{}", partial.path())).await?
                    }
                    Err(e) => return Err(e),
                };
                let raw = maybe_gunzip(&body).map_err(|e| format!("data tile {n}: {e}"))?;
                let tile = decode_data_tile(&raw).map_err(|e| format!("data tile {n}: {e}"))?;
                for (i, leaf) in tile.iter().enumerate() {
                    let index = n * TILE_WIDTH + i as u64;
                    if index < start || index >= end {
                        continue;
                    }
                    let x = examiner.examine_tile_leaf(leaf, Depth::MatchOnly);
                    leaves.push(leaf.leaf_hash());
                    if let Some(m) = x.found {
                        matches.insert((index, Hash32(m.leaf_hash)));
                    }
                }
                n += 1;
            }
        }
    }
    if leaves.len() as u64 != end - start {
        return Err(format!(
            "[{start}, {end}): the log served {} entries",
            leaves.len()
        ));
    }
    let tree = MerkleTree::from_leaf_hashes(leaves);
    let hash = tree
        .root(end - start)
        .map_err(|e| format!("subtree hash: {e}"))?;
    Ok(FetchedRange {
        hash: Hash32(hash),
        matches,
    })
}

async fn proof_tree_size(state: &AppState, t: &Target) -> Option<u64> {
    let row: Option<(Option<u64>,)> =
        sqlx::query_as("SELECT MAX(tree_size) FROM sths WHERE log_id = ? AND verified = 1")
            .bind(t.log_id)
            .fetch_optional(&state.pool)
            .await
            .ok()?;
    row.and_then(|(s,)| s)
}

/// Audits up to `limit` due ranges now.
pub async fn run_due(state: &AppState, limit: u32) -> Result<VerifySummary> {
    let mut out = VerifySummary::default();
    for due in state.store.audits_due(limit).await? {
        // A flag earlier in this round may have requeued it: audit only what
        // is still done by the same completer with its audit due.
        let Some(task) = state.store.get(due.id).await? else {
            continue;
        };
        let still_due = task.state == ct_db::TaskState::Done
            && task.completed_by == due.completed_by
            && matches!(
                task.audit_state,
                Some(AuditState::Pending | AuditState::Error)
            );
        let (true, Some(completer)) = (still_due, task.completed_by) else {
            continue;
        };
        let Some(target) = Target::load(state, task.id).await? else {
            continue;
        };
        out.checked += 1;
        let fetched = match fetch_range(state, &target).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(task.id = task.id, error = %e, "audit fetch failed; tried again later");
                state.store.record_audit(task.id, AuditState::Error).await?;
                out.unproven += 1;
                continue;
            }
        };
        if task.proven_hash() != Some(fetched.hash) {
            tracing::warn!(task.id = task.id, ours = %fetched.hash, "audit: the log served other bytes than it proved; tried again later");
            state.store.record_audit(task.id, AuditState::Error).await?;
            out.unproven += 1;
            continue;
        }
        let theirs = state.store.proven_set(task.id, completer).await?;
        let missing: Vec<u64> = fetched
            .matches
            .difference(&theirs)
            .map(|(i, _)| *i)
            .collect();
        if missing.is_empty() {
            state
                .store
                .record_audit(task.id, AuditState::Passed)
                .await?;
            inc(&state.metrics.audits_passed, 1);
            out.verified += 1;
        } else {
            state
                .store
                .record_audit(task.id, AuditState::Failed)
                .await?;
            let e = Evidence {
                task_id: task.id,
                other_task_id: task.id,
                other_worker: None,
                missing,
            };
            state.store.flag(completer, task.log_id, &e).await?;
            inc(&state.metrics.audits_failed, 1);
            inc(&state.metrics.workers_flagged, 1);
            out.mismatched += 1;
        }
    }
    Ok(out)
}

/// Runs [`run_due`] every `every` until stopped.
pub async fn audit_loop(state: AppState, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if crate::sleep_or_stop(every, &mut stop).await {
            return;
        }
        if let Err(e) = run_due(&state, 8).await {
            tracing::warn!(error = %e, "audit round failed");
        }
    }
}
