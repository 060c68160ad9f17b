//! RFC 6962 read endpoints under `<prefix>/ct/v1/`: get-sth, get-entries,
//! get-sth-consistency, get-proof-by-hash, get-entry-and-proof, get-roots.
//! Bad parameters get a 400 with a plain-text reason. get-entries answers
//! are gzip-encoded for clients that accept it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ct_core::b64;
use ct_core::leaf::{TimestampedEntry, encode_leaf};
use ct_core::rfc6962::{
    GetConsistency, GetEntries, GetEntryAndProof, GetProofByHash, GetRoots, GetSth, LeafEntry,
    encode_hashes,
};
use rand::Rng;

use crate::log::{Log, Malformed};

type Params = Query<HashMap<String, String>>;

/// The routes, relative to the log's prefix.
pub fn routes() -> Router<Arc<Log>> {
    Router::new()
        .route("/ct/v1/get-sth", get(get_sth))
        .route("/ct/v1/get-entries", get(get_entries))
        .route("/ct/v1/get-sth-consistency", get(get_consistency))
        .route("/ct/v1/get-proof-by-hash", get(get_proof_by_hash))
        .route("/ct/v1/get-entry-and-proof", get(get_entry_and_proof))
        .route("/ct/v1/get-roots", get(get_roots))
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, format!("{}\n", msg.into())).into_response()
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A 400 answer's reason.
struct BadParam(String);

impl IntoResponse for BadParam {
    fn into_response(self) -> Response {
        bad(self.0)
    }
}

fn param(p: &HashMap<String, String>, name: &str) -> Result<u64, BadParam> {
    let v = p
        .get(name)
        .ok_or_else(|| BadParam(format!("missing parameter {name}")))?;
    v.parse().map_err(|_| {
        BadParam(format!(
            "parameter {name} is not a non-negative integer: {v:?}"
        ))
    })
}

async fn get_sth(State(log): State<Arc<Log>>) -> Response {
    let head = log.head();
    json(&GetSth {
        tree_size: head.tree_size,
        timestamp: head.timestamp,
        sha256_root_hash: b64::encode(&head.root),
        tree_head_signature: b64::encode(&head.signature.encode()),
    })
}

/// The get-entries view of an entry, spoiled when it is listed as malformed.
fn served_entry(log: &Log, index: u64, leaf: Vec<u8>, extra: &[u8]) -> (String, String) {
    let extra = b64::encode(extra);
    match log.malformed.get(&index) {
        None => (b64::encode(&leaf), extra),
        Some(Malformed::BadBase64) => ("%%not*base64%%".to_owned(), extra),
        Some(Malformed::TruncatedLeaf) => (b64::encode(&leaf[..leaf.len() / 2]), extra),
        Some(Malformed::GarbageDer) => {
            let parts = log.entry(index);
            let Some(p) = parts else {
                return (b64::encode(&leaf), extra);
            };
            let garbage = vec![0xffu8; p.signed.len()];
            let leaf = encode_leaf(&TimestampedEntry {
                signed: &garbage,
                ..p.timestamped_entry()
            });
            (b64::encode(&leaf), extra)
        }
    }
}

async fn get_entries(
    State(log): State<Arc<Log>>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    let (start, end) = match (param(&p, "start"), param(&p, "end")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    if start > end {
        return bad(format!("start {start} > end {end}"));
    }
    let items: Vec<(u64, Vec<u8>, Vec<u8>)> = {
        let state = log.read_state();
        let size = state.head.tree_size;
        if start >= size {
            return bad(format!("start {start} >= tree size {size}"));
        }
        let last = end.min(size - 1);
        let mut count = (last - start + 1).min(log.config.batch_cap);
        if count > 1 && log.faults.short() {
            count = rand::rng().random_range(1..count);
        }
        (start..start + count)
            .filter_map(|i| {
                let parts = state.parts(i)?;
                Some((i, parts.leaf_input(), parts.extra_data()))
            })
            .collect()
    };
    let entries: Vec<(String, String)> = items
        .into_iter()
        .map(|(i, leaf, extra)| served_entry(&log, i, leaf, &extra))
        .collect();
    let answer = GetEntries {
        entries: entries
            .iter()
            .map(|(l, e)| LeafEntry {
                leaf_input: l.as_str().into(),
                extra_data: e.as_str().into(),
            })
            .collect(),
    };
    match serde_json::to_vec(&answer) {
        Ok(body) => crate::gzip::json_answer(log.config.gzip, &headers, body).await,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn get_consistency(State(log): State<Arc<Log>>, Query(p): Params) -> Response {
    let (first, second) = match (param(&p, "first"), param(&p, "second")) {
        (Ok(f), Ok(s)) => (f, s),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    let state = log.read_state();
    if first > second || second > state.head.tree_size {
        return bad(format!(
            "bad sizes first {first}, second {second}, tree size {}",
            state.head.tree_size
        ));
    }
    match state.tree.consistency_proof(first, second) {
        Ok(proof) => json(&GetConsistency {
            consistency: encode_hashes(&proof),
        }),
        Err(e) => bad(e.to_string()),
    }
}

async fn get_proof_by_hash(State(log): State<Arc<Log>>, Query(p): Params) -> Response {
    let size = match param(&p, "tree_size") {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let Some(hash) = p.get("hash") else {
        return bad("missing parameter hash");
    };
    let Ok(hash) = b64::decode_hash(hash, "hash") else {
        return bad("hash is not a base64 SHA-256 hash");
    };
    let state = log.read_state();
    if size == 0 || size > state.head.tree_size {
        return bad(format!(
            "tree_size {size} outside 1..={}",
            state.head.tree_size
        ));
    }
    let Some(index) = (0..size).find(|&i| state.tree.leaf(i) == Some(hash)) else {
        return (StatusCode::NOT_FOUND, "hash not found\n").into_response();
    };
    match state.tree.inclusion_proof(index, size) {
        Ok(proof) => json(&GetProofByHash {
            leaf_index: index,
            audit_path: encode_hashes(&proof),
        }),
        Err(e) => bad(e.to_string()),
    }
}

async fn get_entry_and_proof(State(log): State<Arc<Log>>, Query(p): Params) -> Response {
    let (index, size) = match (param(&p, "leaf_index"), param(&p, "tree_size")) {
        (Ok(i), Ok(s)) => (i, s),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    let state = log.read_state();
    if index >= size || size > state.head.tree_size {
        return bad(format!(
            "leaf_index {index}, tree_size {size}, current size {}",
            state.head.tree_size
        ));
    }
    let (Some(parts), Ok(proof)) = (state.parts(index), state.tree.inclusion_proof(index, size))
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    json(&GetEntryAndProof {
        leaf_input: b64::encode(&parts.leaf_input()),
        extra_data: b64::encode(&parts.extra_data()),
        audit_path: encode_hashes(&proof),
    })
}

async fn get_roots(State(log): State<Arc<Log>>) -> Response {
    json(&GetRoots {
        certificates: log.roots.iter().map(|c| b64::encode(c)).collect(),
    })
}
