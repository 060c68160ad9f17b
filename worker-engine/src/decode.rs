//! Turning a fetched body into leaf hashes, matches and recorded errors. This
//! is CPU work: callers run it on the blocking pool, off the reactor.

use ct_core::entry::{Depth, Examined, Examiner};
use ct_core::leaf::EntryType;
use ct_core::merkle::Hash;
use ct_core::rfc6962::GetEntries;
use ct_core::tiles::{TILE_WIDTH, decode_data_tile, maybe_gunzip};

/// The decoded part of one answer: entries `start..start + hashes.len()`.
#[derive(Debug, Default)]
pub struct Decoded {
    pub start: u64,
    /// Leaf hash per entry; `None` where the entry could not even be hashed.
    pub hashes: Vec<Option<Hash>>,
    pub matches: Vec<PendingMatch>,
    /// Entries that failed to decode: index and reason.
    pub errors: Vec<(u64, String)>,
}

/// How to rebuild a match's `extra_data`.
#[derive(Debug, Clone)]
pub enum Extra {
    /// RFC 6962: the log's own base64 `extra_data`.
    Base64(String),
    /// static-ct-api: the precertificate and the chain's fingerprints; the
    /// issuers are fetched (and cached) before upload.
    Tile {
        pre_certificate: Option<Vec<u8>>,
        chain: Vec<Hash>,
    },
}

/// A matching entry before its `extra_data` is complete.
#[derive(Debug, Clone)]
pub struct PendingMatch {
    pub index: u64,
    pub leaf_hash: Hash,
    /// Base64 `leaf_input`.
    pub leaf_input: String,
    pub extra: Extra,
    pub names: Vec<String>,
    pub fingerprint: Option<Hash>,
    pub timestamp: u64,
    pub entry_type: EntryType,
    /// Set for an entry that does not decode: it is uploaded too (with its
    /// audit path), so that the manager records the log's malformed entry.
    pub malformed: Option<String>,
}

/// Records one examined entry; a match also gets its raw bytes, which are
/// only built for matches.
fn record(out: &mut Decoded, index: u64, e: Examined, raw: impl FnOnce() -> (String, Extra)) {
    out.hashes.push(e.leaf_hash);
    if let Some(err) = &e.error {
        out.errors.push((index, err.clone()));
    }
    if let Some(m) = e.found {
        let (leaf_input, extra) = raw();
        out.matches.push(PendingMatch {
            index,
            leaf_hash: m.leaf_hash,
            leaf_input,
            extra,
            names: m.names,
            fingerprint: Some(m.fingerprint),
            timestamp: e.timestamp.unwrap_or(0),
            entry_type: e.entry_type.unwrap_or(EntryType::X509),
            malformed: None,
        });
    } else if let (Some(h), Some(err), None) = (e.leaf_hash, &e.error, &e.cert) {
        // Undecodable: the manager records it once its audit path proves it.
        let (leaf_input, extra) = raw();
        out.matches.push(PendingMatch {
            index,
            leaf_hash: h,
            leaf_input,
            extra,
            names: Vec::new(),
            fingerprint: e.fingerprint,
            timestamp: e.timestamp.unwrap_or(0),
            entry_type: e.entry_type.unwrap_or(EntryType::X509),
            malformed: Some(err.clone()),
        });
    }
}

/// Decodes a get-entries answer for entries from `start`, keeping at most `max`.
pub fn decode_entries(
    examiner: &mut Examiner,
    start: u64,
    body: &[u8],
    max: u64,
) -> Result<Decoded, String> {
    let answer: GetEntries<'_> =
        serde_json::from_slice(body).map_err(|e| format!("get-entries JSON: {e}"))?;
    if answer.entries.is_empty() {
        return Err("empty get-entries answer below the tree size".into());
    }
    let mut out = Decoded {
        start,
        ..Decoded::default()
    };
    for (i, entry) in answer.entries.iter().take(max as usize).enumerate() {
        let index = start + i as u64;
        let e = examiner.examine_b64(&entry.leaf_input, &entry.extra_data, Depth::MatchOnly);
        record(&mut out, index, e, || {
            (
                entry.leaf_input.clone().into_owned(),
                Extra::Base64(entry.extra_data.clone().into_owned()),
            )
        });
    }
    Ok(out)
}

/// Decodes data tile `n`, keeping the entries with index in `[from, to)`.
pub fn decode_tile(
    examiner: &mut Examiner,
    n: u64,
    body: &[u8],
    from: u64,
    to: u64,
) -> Result<Decoded, String> {
    let raw = maybe_gunzip(body).map_err(|e| format!("data tile {n}: {e}"))?;
    let leaves = decode_data_tile(&raw).map_err(|e| format!("data tile {n}: {e}"))?;
    let first = n * TILE_WIDTH;
    let skip = from.saturating_sub(first);
    if leaves.len() as u64 <= skip {
        return Err(format!(
            "data tile {n} holds {} entries, need more than {skip}",
            leaves.len()
        ));
    }
    let mut out = Decoded {
        start: first + skip,
        ..Decoded::default()
    };
    for (i, leaf) in leaves.iter().enumerate().skip(skip as usize) {
        let index = first + i as u64;
        if index >= to {
            break;
        }
        let e = examiner.examine_tile_leaf(leaf, Depth::MatchOnly);
        record(&mut out, index, e, || {
            (
                ct_core::b64::encode(&leaf.leaf_input()),
                Extra::Tile {
                    pre_certificate: leaf.pre_certificate.map(<[u8]>::to_vec),
                    chain: leaf.chain.clone(),
                },
            )
        });
    }
    Ok(out)
}
