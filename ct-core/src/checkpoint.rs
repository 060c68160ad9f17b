//! static-ct-api checkpoints: C2SP signed notes whose signatures are RFC 6962
//! tree head signatures (note signature type 0x05).

use sha2::{Digest, Sha256};

use crate::b64;
use crate::codec::{Reader, put_uint};
use crate::error::{Error, Result};
use crate::merkle::Hash;
use crate::sth::{DigitallySigned, LogKey};

/// The em dash that starts a signature line.
const SIG_PREFIX: &str = "\u{2014} ";
/// At most this many signature lines are read.
const MAX_SIGNATURES: usize = 16;
/// Signature type byte of RFC 6962 note signatures.
const SIG_TYPE_RFC6962: u8 = 0x05;

/// A parsed checkpoint (signatures not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    /// Extension lines after the root hash.
    pub extensions: Vec<String>,
    /// The note text that was signed (everything before the blank line, with its newline).
    pub body: String,
    pub signatures: Vec<NoteSignature>,
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    pub signature: Vec<u8>,
}

/// The 4-byte key ID of an RFC 6962 note key: SHA-256(name || 0x0A || 0x05 || log ID).
pub fn rfc6962_key_id(name: &str, log_id: &Hash) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, SIG_TYPE_RFC6962]);
    h.update(log_id);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

impl Checkpoint {
    /// Parses the text of a checkpoint.
    pub fn parse(text: &str) -> Result<Self> {
        let (body, sigs) = text
            .split_once("\n\n")
            .ok_or_else(|| Error::invalid("checkpoint", "no blank line before signatures"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| Error::invalid("checkpoint", "missing origin"))?;
        let size_line = lines
            .next()
            .ok_or_else(|| Error::invalid("checkpoint", "missing tree size"))?;
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(Error::invalid("checkpoint tree size", size_line));
        }
        let tree_size = size_line
            .parse()
            .map_err(|_| Error::invalid("checkpoint tree size", size_line))?;
        let root_line = lines
            .next()
            .ok_or_else(|| Error::invalid("checkpoint", "missing root hash"))?;
        let root_hash = b64::decode_hash(root_line, "checkpoint root hash")?;
        let extensions = lines.map(str::to_owned).collect();
        if !sigs.ends_with('\n') {
            return Err(Error::invalid(
                "checkpoint",
                "signatures must end with a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(Error::invalid("checkpoint", "more than 16 signatures"));
            }
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| Error::invalid("checkpoint signature line", line))?;
            let (name, sig) = rest
                .split_once(' ')
                .ok_or_else(|| Error::invalid("checkpoint signature line", line))?;
            let bytes = b64::decode(sig, "checkpoint signature")?;
            if bytes.len() < 5 || name.is_empty() {
                return Err(Error::invalid("checkpoint signature line", line));
            }
            let mut key_id = [0u8; 4];
            key_id.copy_from_slice(&bytes[..4]);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id,
                signature: bytes[4..].to_vec(),
            });
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            tree_size,
            root_hash,
            extensions,
            body: format!("{body}\n"),
            signatures,
        })
    }

    /// Verifies the signature made by `key` under `key_name` (normally the
    /// origin) and returns the signed timestamp. Signatures by other names or
    /// key IDs are ignored.
    pub fn verify(&self, key_name: &str, key: &LogKey) -> Result<u64> {
        let key_id = rfc6962_key_id(key_name, &key.log_id());
        let sig = self
            .signatures
            .iter()
            .find(|s| s.name == key_name && s.key_id == key_id)
            .ok_or_else(|| Error::Signature(format!("no signature by {key_name}")))?;
        let mut r = Reader::new(&sig.signature);
        let timestamp = r.u64("checkpoint timestamp")?;
        let ds = DigitallySigned::read(&mut r)?;
        r.finish("checkpoint signature")?;
        key.verify_tree_head(timestamp, self.tree_size, &self.root_hash, &ds)?;
        Ok(timestamp)
    }
}

/// Builds the checkpoint text for a tree head signed with `ds` at `timestamp`.
pub fn format_checkpoint(
    origin: &str,
    tree_size: u64,
    root: &Hash,
    key_name: &str,
    log_id: &Hash,
    timestamp: u64,
    ds: &DigitallySigned,
) -> String {
    let mut sig = Vec::with_capacity(80);
    sig.extend_from_slice(&rfc6962_key_id(key_name, log_id));
    put_uint(&mut sig, timestamp, 8);
    sig.extend_from_slice(&ds.encode());
    format!(
        "{origin}\n{tree_size}\n{}\n\n{SIG_PREFIX}{key_name} {}\n",
        b64::encode(root),
        b64::encode(&sig)
    )
}
