//! JSON answers of the RFC 6962 read API (`<log>/ct/v1/...`).
//!
//! Base64 fields stay strings here; [`crate::b64`] decodes them. Entries borrow
//! from the JSON text so that a large get-entries answer is not copied.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::Result;
use crate::merkle::Hash;
use crate::sth::DigitallySigned;

/// `get-sth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSth {
    pub tree_size: u64,
    pub timestamp: u64,
    pub sha256_root_hash: String,
    pub tree_head_signature: String,
}

impl GetSth {
    pub fn root_hash(&self) -> Result<Hash> {
        b64::decode_hash(&self.sha256_root_hash, "sha256_root_hash")
    }

    pub fn signature(&self) -> Result<DigitallySigned> {
        DigitallySigned::decode(&b64::decode(
            &self.tree_head_signature,
            "tree_head_signature",
        )?)
    }
}

/// One entry of `get-entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafEntry<'a> {
    #[serde(borrow)]
    pub leaf_input: Cow<'a, str>,
    #[serde(borrow)]
    pub extra_data: Cow<'a, str>,
}

/// `get-entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetEntries<'a> {
    #[serde(borrow)]
    pub entries: Vec<LeafEntry<'a>>,
}

/// `get-sth-consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetConsistency {
    pub consistency: Vec<String>,
}

/// `get-proof-by-hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetProofByHash {
    pub leaf_index: u64,
    pub audit_path: Vec<String>,
}

/// `get-entry-and-proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetEntryAndProof {
    pub leaf_input: String,
    pub extra_data: String,
    pub audit_path: Vec<String>,
}

/// `get-roots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRoots {
    pub certificates: Vec<String>,
}

/// Decodes a list of base64 hashes (audit paths, consistency proofs).
pub fn decode_hashes(list: &[String], what: &'static str) -> Result<Vec<Hash>> {
    list.iter().map(|h| b64::decode_hash(h, what)).collect()
}

/// Encodes hashes as base64 strings.
pub fn encode_hashes(list: &[Hash]) -> Vec<String> {
    list.iter().map(|h| b64::encode(h)).collect()
}
