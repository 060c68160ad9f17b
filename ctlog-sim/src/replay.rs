//! Replayed logs: entries read from a directory of get-entries JSON answers
//! (files sorted by name, entries laid end to end), decoded once and kept.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ct_core::leaf::{decode_extra_data, decode_leaf, encode_leaf_index_extension};
use ct_core::rfc6962::GetEntries;

use crate::error::{Error, Result};
use crate::store::{Chain, Parts};

/// Reads every `*.json` file of `dir`. With `leaf_index`, each entry's
/// extensions are replaced by the `leaf_index` extension of its new index.
pub fn load(dir: &Path, leaf_index: bool) -> Result<Vec<Parts>> {
    let io = |source, context: String| Error::Io { context, source };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(e, format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut chains: HashMap<Vec<Vec<u8>>, Arc<Chain>> = HashMap::new();
    let mut out = Vec::new();
    for path in files {
        let bad = |message: String| Error::Replay {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| io(e, format!("reading {}", path.display())))?;
        let answer: GetEntries<'_> = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        for (k, e) in answer.entries.iter().enumerate() {
            let leaf = ct_core::b64::decode(&e.leaf_input, "leaf_input")?;
            let extra = ct_core::b64::decode(&e.extra_data, "extra_data")?;
            let entry = decode_leaf(&leaf).map_err(|err| bad(format!("entry {k}: {err}")))?;
            let decoded = decode_extra_data(entry.entry_type, &extra)
                .map_err(|err| bad(format!("entry {k}: {err}")))?;
            let certs: Vec<Vec<u8>> = decoded.chain.iter().map(|c| c.to_vec()).collect();
            let chain = chains
                .entry(certs.clone())
                .or_insert_with(|| Arc::new(Chain::new(certs)))
                .clone();
            let index = out.len() as u64;
            out.push(Parts {
                timestamp: entry.timestamp,
                entry_type: entry.entry_type,
                issuer_key_hash: entry.issuer_key_hash,
                signed: entry.signed.to_vec(),
                extensions: if leaf_index {
                    encode_leaf_index_extension(index)
                } else {
                    entry.extensions.to_vec()
                },
                pre_certificate: decoded.pre_certificate.map(<[u8]>::to_vec),
                chain,
            });
        }
    }
    if out.is_empty() {
        return Err(Error::Replay {
            path: dir.display().to_string(),
            message: "no entries".into(),
        });
    }
    Ok(out)
}
