//! The entries of one log, kept compactly and built into bytes on demand:
//! [`Parts`] is one entry, [`Chain`] an issuer chain shared by many entries,
//! [`Store`] either a generated log (a pool of templates plus one template
//! number per entry) or a replayed one (the decoded entries themselves).

use std::sync::Arc;

use ct_core::leaf::{EntryType, TimestampedEntry, encode_extra_data, encode_leaf};
use ct_core::merkle::Hash;
use ct_core::tiles::encode_tile_leaf;
use sha2::{Digest, Sha256};

use crate::generate::Generated;

/// An issuer chain, the leaf's issuer first, with each certificate's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub certs: Vec<Vec<u8>>,
    pub fingerprints: Vec<Hash>,
}

impl Chain {
    pub fn new(certs: Vec<Vec<u8>>) -> Self {
        let fingerprints = certs.iter().map(|c| Sha256::digest(c).into()).collect();
        Chain {
            certs,
            fingerprints,
        }
    }
}

/// One entry, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub timestamp: u64,
    pub entry_type: EntryType,
    pub issuer_key_hash: Option<Hash>,
    /// DER certificate (x509) or TBSCertificate without poison (precert).
    pub signed: Vec<u8>,
    pub extensions: Vec<u8>,
    /// The precertificate with its poison (precert entries only).
    pub pre_certificate: Option<Vec<u8>>,
    pub chain: Arc<Chain>,
}

impl Parts {
    pub fn timestamped_entry(&self) -> TimestampedEntry<'_> {
        TimestampedEntry {
            timestamp: self.timestamp,
            entry_type: self.entry_type,
            issuer_key_hash: self.issuer_key_hash,
            signed: &self.signed,
            extensions: &self.extensions,
        }
    }

    /// The RFC 6962 `leaf_input` (MerkleTreeLeaf).
    pub fn leaf_input(&self) -> Vec<u8> {
        encode_leaf(&self.timestamped_entry())
    }

    /// The RFC 6962 `extra_data`.
    pub fn extra_data(&self) -> Vec<u8> {
        let chain: Vec<&[u8]> = self.chain.certs.iter().map(Vec::as_slice).collect();
        encode_extra_data(self.pre_certificate.as_deref(), &chain)
    }

    /// Appends the static-ct-api TileLeaf.
    pub fn write_tile_leaf(&self, out: &mut Vec<u8>) {
        encode_tile_leaf(
            out,
            &self.timestamped_entry(),
            self.pre_certificate.as_deref(),
            &self.chain.fingerprints,
        );
    }
}

/// The certificate of a garbage entry: a SEQUENCE whose content is not
/// DER (a BOOLEAN of length 2), so no X.509 parser accepts it.
pub const GARBAGE_DER: [u8; 5] = [0x30, 0x03, 0x01, 0x02, 0x03];

impl Parts {
    /// The same entry (timestamp, extensions, chain) as an X.509 entry whose
    /// certificate is [`GARBAGE_DER`].
    pub fn garbage(self) -> Parts {
        Parts {
            entry_type: EntryType::X509,
            issuer_key_hash: None,
            signed: GARBAGE_DER.to_vec(),
            pre_certificate: None,
            ..self
        }
    }
}

/// All entries of a log.
#[derive(Debug)]
pub enum Store {
    Generated(Box<Generated>),
    Replay(Vec<Parts>),
}

impl Store {
    pub fn len(&self) -> u64 {
        match self {
            Store::Generated(g) => g.len(),
            Store::Replay(v) => v.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `index`, built.
    pub fn parts(&self, index: u64) -> Option<Parts> {
        match self {
            Store::Generated(g) => g.parts(index),
            Store::Replay(v) => v.get(usize::try_from(index).ok()?).cloned(),
        }
    }
}
