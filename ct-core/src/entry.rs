//! From log bytes to facts: examine one entry (RFC 6962 `leaf_input` +
//! `extra_data`, or a static-ct-api TileLeaf), decide whether it matches, and
//! describe it. Malformed entries are data: every failure becomes an
//! [`Examined`] with `error` set, never a panic or a dropped entry.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::b64;
use crate::cert::{self, CertInfo};
use crate::leaf::{self, EntryType, TimestampedEntry};
use crate::matcher::Matcher;
use crate::merkle::{Hash, leaf_hash};
use crate::tiles::TileLeaf;

/// How much to extract from each entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Decide matching; parse fully only the entries the byte scan cannot rule out.
    MatchOnly,
    /// Parse every certificate.
    Full,
}

/// What examining one entry found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Examined {
    /// Absent only when `leaf_input` is not valid base64.
    pub leaf_hash: Option<Hash>,
    pub entry_type: Option<EntryType>,
    pub timestamp: Option<u64>,
    /// SHA-256 of the certificate, or of the precertificate from extra_data
    /// (of the TBSCertificate when extra_data lacks it). Set when parsed.
    pub fingerprint: Option<Hash>,
    /// Set for `Depth::Full`, and for candidates with `Depth::MatchOnly`.
    pub cert: Option<CertInfo>,
    /// Set exactly when the entry matched; it cannot be half-filled.
    pub found: Option<Match>,
    /// Why the entry could not be decoded (the fields above may be partial).
    pub error: Option<String>,
}

/// A matched entry: its leaf hash, its certificate's fingerprint and the
/// matching names (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub leaf_hash: Hash,
    pub fingerprint: Hash,
    /// The matching names, normalized, sorted, at least one.
    pub names: Vec<String>,
}

impl Examined {
    pub fn matched(&self) -> bool {
        self.found.is_some()
    }

    /// The matching names (empty when the entry did not match).
    pub fn matched_names(&self) -> &[String] {
        self.found.as_ref().map_or(&[], |m| m.names.as_slice())
    }

    fn failed(leaf_hash: Option<Hash>, error: String) -> Self {
        Examined {
            leaf_hash,
            error: Some(error),
            ..Examined::default()
        }
    }
}

/// Examines entries with one matcher; holds a reusable decode buffer.
#[derive(Debug, Clone, Default)]
pub struct Examiner {
    matcher: Matcher,
    leaf_buf: Vec<u8>,
}

impl Examiner {
    pub fn new(matcher: Matcher) -> Self {
        Examiner {
            matcher,
            leaf_buf: Vec::with_capacity(4096),
        }
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Examines a get-entries entry given as base64 text. `extra_data` is only
    /// decoded when needed (a full parse or a candidate precert).
    pub fn examine_b64(&mut self, leaf_input: &str, extra_data: &str, depth: Depth) -> Examined {
        let mut buf = std::mem::take(&mut self.leaf_buf);
        let out = match b64::decode_into(leaf_input, &mut buf, "leaf_input") {
            Ok(()) => {
                let hash = leaf_hash(&buf);
                match leaf::decode_leaf(&buf) {
                    Ok(entry) => self.examine_entry(hash, &entry, depth, || {
                        let extra =
                            b64::decode(extra_data, "extra_data").map_err(|e| e.to_string())?;
                        pre_certificate_of(entry.entry_type, &extra)
                    }),
                    Err(e) => Examined::failed(Some(hash), format!("leaf_input: {e}")),
                }
            }
            Err(e) => Examined::failed(None, e.to_string()),
        };
        self.leaf_buf = buf;
        out
    }

    /// Examines decoded `leaf_input` and `extra_data` bytes.
    pub fn examine(&self, leaf_input: &[u8], extra_data: &[u8], depth: Depth) -> Examined {
        let hash = leaf_hash(leaf_input);
        match leaf::decode_leaf(leaf_input) {
            Ok(entry) => self.examine_entry(hash, &entry, depth, || {
                pre_certificate_of(entry.entry_type, extra_data)
            }),
            Err(e) => Examined::failed(Some(hash), format!("leaf_input: {e}")),
        }
    }

    /// Examines one entry of a data tile.
    pub fn examine_tile_leaf(&self, tile_leaf: &TileLeaf<'_>, depth: Depth) -> Examined {
        self.examine_entry(tile_leaf.leaf_hash(), &tile_leaf.entry, depth, || {
            Ok(tile_leaf.pre_certificate.map(<[u8]>::to_vec))
        })
    }

    /// The common part: `pre_certificate` is asked for only when needed.
    pub fn examine_entry(
        &self,
        hash: Hash,
        entry: &TimestampedEntry<'_>,
        depth: Depth,
        pre_certificate: impl FnOnce() -> Result<Option<Vec<u8>>, String>,
    ) -> Examined {
        let mut out = Examined {
            leaf_hash: Some(hash),
            entry_type: Some(entry.entry_type),
            timestamp: Some(entry.timestamp),
            ..Examined::default()
        };
        if depth == Depth::MatchOnly && !self.matcher.may_match(entry.signed) {
            return out;
        }
        let tbs_only = entry.entry_type == EntryType::Precert;
        let mut matched = Vec::new();
        match cert::extract(entry.signed, tbs_only) {
            Ok(info) => {
                let mut names: Vec<String> = info
                    .candidate_names()
                    .into_iter()
                    .filter(|n| self.matcher.matches_normalized(n))
                    .collect();
                names.sort();
                names.dedup();
                matched = names;
                out.cert = Some(info);
            }
            Err(e) => out.error = Some(format!("certificate: {e}")),
        }
        let fingerprint: Hash = match entry.entry_type {
            EntryType::X509 => Sha256::digest(entry.signed).into(),
            EntryType::Precert => match pre_certificate() {
                Ok(Some(pre)) => Sha256::digest(&pre).into(),
                Ok(None) => Sha256::digest(entry.signed).into(),
                Err(e) => {
                    out.error.get_or_insert(format!("extra_data: {e}"));
                    Sha256::digest(entry.signed).into()
                }
            },
        };
        out.fingerprint = Some(fingerprint);
        if !matched.is_empty() {
            out.found = Some(Match {
                leaf_hash: hash,
                fingerprint,
                names: matched,
            });
        }
        out
    }
}

fn pre_certificate_of(entry_type: EntryType, extra: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if entry_type == EntryType::X509 {
        return Ok(None);
    }
    leaf::decode_extra_data(entry_type, extra)
        .map(|e| e.pre_certificate.map(<[u8]>::to_vec))
        .map_err(|e| e.to_string())
}

/// One entry as `ct-worker inspect` prints it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub index: Option<u64>,
    pub leaf_hash: Option<String>,
    pub entry_type: Option<EntryType>,
    pub timestamp: Option<u64>,
    pub fingerprint: Option<String>,
    pub serial: Option<String>,
    pub subject_cn: Option<String>,
    pub issuer_cn: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub key_algorithm: Option<String>,
    pub key_bits: Option<u32>,
    pub signature_algorithm: Option<String>,
    pub validation: Option<String>,
    pub is_ca: Option<bool>,
    pub matched: bool,
    pub matched_names: Vec<String>,
    /// Why the entry could not be decoded; null when every field was read.
    pub error: Option<String>,
    /// Why x509-parser rejected the certificate when the lenient parse then
    /// recovered the fields.
    pub x509_error: Option<String>,
}

impl EntryRecord {
    pub fn new(index: Option<u64>, e: &Examined) -> Self {
        let c = e.cert.as_ref();
        EntryRecord {
            index,
            leaf_hash: e.leaf_hash.map(hex::encode),
            entry_type: e.entry_type,
            timestamp: e.timestamp,
            fingerprint: e.fingerprint.map(hex::encode),
            serial: c.map(|c| c.serial.clone()),
            subject_cn: c.and_then(|c| c.subject.cn.clone()),
            issuer_cn: c.and_then(|c| c.issuer.cn.clone()),
            subject: c.map(|c| c.subject.dn.clone()),
            issuer: c.map(|c| c.issuer.dn.clone()),
            not_before: c.and_then(|c| c.not_before),
            not_after: c.and_then(|c| c.not_after),
            dns_names: c.map(|c| c.dns_names.clone()).unwrap_or_default(),
            ip_addresses: c.map(|c| c.ip_addresses.clone()).unwrap_or_default(),
            key_algorithm: c.and_then(|c| c.key_algorithm.clone()),
            key_bits: c.and_then(|c| c.key_bits),
            signature_algorithm: c.and_then(|c| c.signature_algorithm.clone()),
            validation: c.map(|c| c.validation.as_str().to_owned()),
            is_ca: c.map(|c| c.is_ca),
            matched: e.matched(),
            matched_names: e.matched_names().to_vec(),
            error: e.error.clone(),
            x509_error: c.and_then(|c| c.parse_error.clone()),
        }
    }
}
