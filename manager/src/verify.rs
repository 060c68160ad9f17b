//! Range proofs: a task's subtree hash is checked against a verified signed
//! tree head of its log.
//!
//! A task `[start, end)` is either a complete aligned subtree (a node of the
//! log's tree) or, at the right edge, the incomplete right-most subtree
//! `[start, N)` of the tree of size `N = end`. Either way the hashes above it
//! (its audit path without the part inside) rebuild the root:
//! - RFC 6962 logs: `get-entry-and-proof?leaf_index=start&tree_size=N` (or
//!   `get-proof-by-hash` with the first leaf hash); the log's full path is
//!   first checked for the log's own leaf, so a failure afterwards is the
//!   worker's fault, never the log's.
//! - static-ct-api logs: the hashes are computed from hash tiles (one tile per
//!   level in the usual case), and the range's own hash too; the tiles are
//!   trusted only when they rebuild the checkpoint's root.
//!
//! One verification costs one HTTP request on RFC 6962 logs and a handful of
//! tile requests on static ones. Logs that cannot prove leave the range
//! `unproven`; transient failures too (a later `verify now` retries them).

use std::collections::HashMap;

use ct_core::merkle::{Hash, leaf_hash, node_hash, split_point, verify_inclusion};
use ct_core::rfc6962::{GetEntryAndProof, GetProofByHash, decode_hashes};
use ct_core::tiles::{TILE_WIDTH, TileId, TileKind, decode_hash_tile, tile_width};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::AppState;
use crate::error::Result;

/// Largest proof or tile answer read.
const MAX_PROOF_BYTES: usize = 1 << 20;

/// The outcome of checking one range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proof {
    /// The subtree hash is part of the tree head of this size.
    Verified { tree_size: u64 },
    /// Cannot tell (no proof API, no suitable head, log error); the reason.
    Unproven(String),
    /// The subtree hash is not the log's.
    Mismatch { tree_size: u64, reason: String },
}

impl Proof {
    pub fn state(&self) -> &'static str {
        match self {
            Proof::Verified { .. } => "verified",
            Proof::Unproven(_) => "unproven",
            Proof::Mismatch { .. } => "mismatch",
        }
    }

    pub fn tree_size(&self) -> Option<u64> {
        match self {
            Proof::Verified { tree_size } | Proof::Mismatch { tree_size, .. } => Some(*tree_size),
            Proof::Unproven(_) => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Proof::Verified { .. } => None,
            Proof::Unproven(r) => Some(r),
            Proof::Mismatch { reason, .. } => Some(reason),
        }
    }
}

pub use ct_core::merkle::subtree_level;

/// Verifies that `hash` is MTH(D[start:end]) in the tree of `tree_size`
/// leaves with `root`, given the audit path above the subtree (bottom
/// first); see [`ct_core::merkle::verify_range_inclusion`].
pub fn verify_range(
    start: u64,
    end: u64,
    tree_size: u64,
    hash: &Hash,
    upper_path: &[Hash],
    root: &Hash,
) -> std::result::Result<(), String> {
    ct_core::merkle::verify_range_inclusion(start, end, tree_size, hash, upper_path, root)
        .map_err(|e| e.to_string())
}

/// The ranges whose hashes form the audit path of subtree `[start, end)` in
/// the tree of `tree_size` leaves, bottom first.
pub fn upper_path_ranges(start: u64, end: u64, tree_size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0, tree_size);
    let mut out = Vec::new();
    while hi - lo > end - start && hi - lo > 1 {
        let k = split_point(hi - lo);
        if start - lo < k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// What a verification needs to know about a log and a task.
#[derive(Debug, Clone, FromRow)]
pub struct Target {
    pub log_id: u64,
    pub url: String,
    pub kind: ct_db::LogKind,
    pub monitoring_url: Option<String>,
    pub start_index: u64,
    pub end_index: u64,
}

impl Target {
    pub async fn load(state: &AppState, task_id: u64) -> Result<Option<Target>> {
        Ok(sqlx::query_as(
            "SELECT t.log_id, l.url, l.kind, l.monitoring_url, t.start_index, t.end_index \
             FROM tasks t JOIN logs l ON l.id = t.log_id WHERE t.id = ?",
        )
        .bind(task_id)
        .fetch_optional(&state.pool)
        .await?)
    }
}

/// The verified head to check `[start, end)` against: the largest for a
/// complete subtree, the one of size `end` for a right-edge range.
async fn head_for(state: &AppState, t: &Target) -> Result<Option<(u64, Hash)>> {
    let (start, end) = (t.start_index, t.end_index);
    let n = end - start;
    let complete = n.is_power_of_two() && start % n == 0;
    let row: Option<(u64, Vec<u8>)> = if complete {
        sqlx::query_as(
            "SELECT tree_size, root_hash FROM sths WHERE log_id = ? AND verified = 1 \
             AND tree_size >= ? ORDER BY tree_size DESC, id DESC LIMIT 1",
        )
        .bind(t.log_id)
        .bind(end)
        .fetch_optional(&state.pool)
        .await?
    } else {
        sqlx::query_as(
            "SELECT tree_size, root_hash FROM sths WHERE log_id = ? AND verified = 1 \
             AND tree_size = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(t.log_id)
        .bind(end)
        .fetch_optional(&state.pool)
        .await?
    };
    Ok(row.and_then(|(size, root)| Some((size, root.try_into().ok()?))))
}

/// Checks `hash` as the subtree hash of task range `t` (network: the log).
/// `first_leaf` enables the `get-proof-by-hash` fallback.
pub async fn prove(
    state: &AppState,
    t: &Target,
    hash: &Hash,
    first_leaf: Option<&Hash>,
) -> Result<Proof> {
    let (start, end) = (t.start_index, t.end_index);
    if start >= end {
        return Ok(Proof::Unproven("empty range".into()));
    }
    let Some((tree_size, root)) = head_for(state, t).await? else {
        return Ok(Proof::Unproven(format!(
            "no verified tree head fits [{start}, {end})"
        )));
    };
    let Some(level) = subtree_level(start, end, tree_size) else {
        return Ok(Proof::Unproven(format!(
            "[{start}, {end}) is not an aligned subtree (start_index not aligned?)"
        )));
    };
    let started = std::time::Instant::now();
    let upper = match t.kind {
        ct_db::LogKind::Static => {
            let base = t.monitoring_url.as_deref().unwrap_or(&t.url);
            let mut tiles = Tiles::new(state, base, tree_size);
            match tiles.proof(start, end, &root).await {
                Ok((upper, own)) => {
                    // Each tile request was counted by `get_bytes`.
                    if &own != hash {
                        return Ok(Proof::Mismatch {
                            tree_size,
                            reason: format!(
                                "subtree hash {} is not the log's {} (tiles at size {tree_size})",
                                hex::encode(hash),
                                hex::encode(own)
                            ),
                        });
                    }
                    upper
                }
                Err(e) => return Ok(Proof::Unproven(e)),
            }
        }
        ct_db::LogKind::Rfc6962 => {
            match rfc_upper_path(state, &t.url, start, level, tree_size, &root, first_leaf).await {
                Ok(upper) => upper,
                Err(e) => return Ok(Proof::Unproven(e)),
            }
        }
    };
    let outcome = match verify_range(start, end, tree_size, hash, &upper, &root) {
        Ok(()) => Proof::Verified { tree_size },
        Err(e) => Proof::Mismatch {
            tree_size,
            reason: format!(
                "subtree hash {} does not lead to the root of size {tree_size}: {e}",
                hex::encode(hash)
            ),
        },
    };
    state
        .metrics
        .proof_seconds
        .observe(crate::metrics::since(started));
    tracing::debug!(
        log.id = t.log_id,
        start,
        end,
        proof = outcome.state(),
        duration_ms = started.elapsed().as_millis() as u64,
        "range proof"
    );
    Ok(outcome)
}

async fn get_bytes(state: &AppState, url: &str) -> std::result::Result<Vec<u8>, (u16, String)> {
    crate::metrics::inc(&state.metrics.proof_requests, 1);
    crate::fetch::get_bounded(&state.http, url, MAX_PROOF_BYTES).await
}

/// The audit path above `[start, start + 2^level)` (or the right edge) from
/// the log's proof for leaf `start`, after checking that proof for the log's
/// own leaf.
async fn rfc_upper_path(
    state: &AppState,
    url: &str,
    start: u64,
    level: u32,
    tree_size: u64,
    root: &Hash,
    first_leaf: Option<&Hash>,
) -> std::result::Result<Vec<Hash>, String> {
    let by_index =
        format!("{url}ct/v1/get-entry-and-proof?leaf_index={start}&tree_size={tree_size}");
    let (leaf, path) = match get_bytes(state, &by_index).await {
        Ok(body) => {
            let p: GetEntryAndProof =
                serde_json::from_slice(&body).map_err(|e| format!("get-entry-and-proof: {e}"))?;
            let leaf_input = ct_core::b64::decode(&p.leaf_input, "leaf_input")
                .map_err(|e| format!("get-entry-and-proof: {e}"))?;
            let path = decode_hashes(&p.audit_path, "audit_path")
                .map_err(|e| format!("get-entry-and-proof: {e}"))?;
            (leaf_hash(&leaf_input), path)
        }
        Err((status, e)) if (400..500).contains(&status) && status != 429 => {
            let Some(first) = first_leaf else {
                return Err(format!(
                    "log offers no get-entry-and-proof ({e}) and no first_leaf_hash was reported"
                ));
            };
            let by_hash = format!(
                "{url}ct/v1/get-proof-by-hash?hash={}&tree_size={tree_size}",
                urlencode(&ct_core::b64::encode(first))
            );
            let body = get_bytes(state, &by_hash).await.map_err(|(_, e)| e)?;
            let p: GetProofByHash =
                serde_json::from_slice(&body).map_err(|e| format!("get-proof-by-hash: {e}"))?;
            if p.leaf_index != start {
                return Err(format!(
                    "get-proof-by-hash: the first leaf hash is at {} in the log, not {start}",
                    p.leaf_index
                ));
            }
            let path = decode_hashes(&p.audit_path, "audit_path")
                .map_err(|e| format!("get-proof-by-hash: {e}"))?;
            (*first, path)
        }
        Err((_, e)) => return Err(e),
    };
    verify_inclusion(start, tree_size, &leaf, &path, root)
        .map_err(|e| format!("the log's own proof for leaf {start} fails: {e}"))?;
    let inner = level as usize;
    if path.len() < inner {
        return Err("the log's audit path is shorter than the subtree".into());
    }
    Ok(path[inner..].to_vec())
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// Hash tiles of one static log at one tree size, fetched on demand.
struct Tiles<'a> {
    state: &'a AppState,
    base: &'a str,
    tree_size: u64,
    cache: HashMap<(u8, u64), Vec<Hash>>,
}

impl<'a> Tiles<'a> {
    fn new(state: &'a AppState, base: &'a str, tree_size: u64) -> Self {
        Tiles {
            state,
            base,
            tree_size,
            cache: HashMap::new(),
        }
    }

    /// The hash of the complete aligned subtree `[index << bits, (index + 1) << bits)`.
    async fn node(&mut self, bits: u32, index: u64) -> std::result::Result<Hash, String> {
        let level = (bits / 8).min(5);
        let rest = bits - 8 * level;
        if rest >= 8 {
            return Err(format!("subtree of 2^{bits} leaves is beyond tile level 5"));
        }
        let count = 1u64 << rest;
        let first = index << rest;
        let n = first / TILE_WIDTH;
        let offset = (first % TILE_WIDTH) as usize;
        let width = tile_width(level as u8, n, self.tree_size);
        if (offset as u64) + count > width {
            return Err(format!(
                "subtree 2^{bits} #{index} is not in a tree of {}",
                self.tree_size
            ));
        }
        let key = (level as u8, n);
        if !self.cache.contains_key(&key) {
            let id = TileId {
                kind: TileKind::Hash(level as u8),
                index: n,
                width,
            };
            let url = format!("{}{}", self.base, id.path());
            let body = get_bytes(self.state, &url).await.map_err(|(_, e)| e)?;
            let hashes = decode_hash_tile(&body).map_err(|e| format!("{url}: {e}"))?;
            if (hashes.len() as u64) < width {
                return Err(format!("{url}: {} hashes, want {width}", hashes.len()));
            }
            self.cache.insert(key, hashes);
        }
        let hashes = self.cache.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let slice = hashes
            .get(offset..offset + count as usize)
            .ok_or_else(|| "tile too short".to_string())?;
        Ok(ct_core::merkle::root_of(slice))
    }

    /// MTH(D[a:b]) for a range starting on a boundary of its largest part.
    async fn range(&mut self, a: u64, b: u64) -> std::result::Result<Hash, String> {
        let mut parts = Vec::new();
        let mut pos = a;
        let mut n = b - a;
        while n > 0 {
            let bits = 63 - n.leading_zeros();
            let size = 1u64 << bits;
            if pos % size != 0 {
                return Err(format!("[{a}, {b}) is not decomposable"));
            }
            parts.push(self.node(bits, pos >> bits).await?);
            pos += size;
            n -= size;
        }
        let mut acc = parts.pop().ok_or_else(|| "empty range".to_string())?;
        while let Some(left) = parts.pop() {
            acc = node_hash(&left, &acc);
        }
        Ok(acc)
    }

    /// The audit path above `[start, end)` and the range's own hash, both
    /// from tiles, checked against `root`.
    async fn proof(
        &mut self,
        start: u64,
        end: u64,
        root: &Hash,
    ) -> std::result::Result<(Vec<Hash>, Hash), String> {
        let own = self.range(start, end).await?;
        let mut upper = Vec::new();
        for (a, b) in upper_path_ranges(start, end, self.tree_size) {
            upper.push(self.range(a, b).await?);
        }
        verify_range(start, end, self.tree_size, &own, &upper, root)
            .map_err(|e| format!("the log's tiles do not rebuild its checkpoint: {e}"))?;
        Ok((upper, own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_core::merkle::MerkleTree;

    fn tree(n: u64) -> MerkleTree {
        MerkleTree::from_leaf_hashes((0..n).map(|i| leaf_hash(&i.to_be_bytes())))
    }

    #[test]
    fn levels() {
        assert_eq!(subtree_level(0, 4, 10), Some(2));
        assert_eq!(subtree_level(8, 10, 10), Some(1));
        assert_eq!(subtree_level(8, 11, 11), Some(2));
        assert_eq!(subtree_level(8, 11, 12), None);
        assert_eq!(subtree_level(5, 8, 8), None);
        assert_eq!(subtree_level(4, 5, 5), Some(0));
    }

    /// Complete and right-edge subtrees verify with the upper part of the
    /// first leaf's path and with hashes of [`upper_path_ranges`]; a wrong
    /// hash does not.
    #[test]
    fn ranges_verify_in_every_shape() {
        let t = tree(70);
        for size in 1..=70u64 {
            let root = t.root(size).unwrap_or_default();
            for bits in 0..7u32 {
                let w = 1u64 << bits;
                let mut start = 0;
                while start < size {
                    let end = (start + w).min(size);
                    let level = subtree_level(start, end, size).unwrap_or(99);
                    assert!(level <= bits, "{start} {end} {size}");
                    let hash = t.range_hash(start, end).unwrap_or_default();
                    let full = t.inclusion_proof(start, size).unwrap_or_default();
                    let upper = &full[level as usize..];
                    assert_eq!(
                        verify_range(start, end, size, &hash, upper, &root),
                        Ok(()),
                        "[{start}, {end}) in {size}"
                    );
                    let from_ranges: Vec<Hash> = upper_path_ranges(start, end, size)
                        .into_iter()
                        .map(|(a, b)| t.range_hash(a, b).unwrap_or_default())
                        .collect();
                    assert_eq!(from_ranges, upper, "[{start}, {end}) in {size}");
                    let wrong = leaf_hash(b"wrong");
                    assert!(verify_range(start, end, size, &wrong, upper, &root).is_err());
                    start = end;
                }
            }
        }
    }
}
