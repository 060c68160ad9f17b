//! RFC 6962 `MerkleTreeLeaf` / `TimestampedEntry`, `CtExtensions` and
//! `extra_data`, decoded without copying and encoded for the simulator.

use crate::codec::{Reader, put_opaque, put_uint};
use crate::error::{Error, Result};

/// `x509_entry` or `precert_entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    X509,
    Precert,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::X509 => "x509",
            EntryType::Precert => "precert",
        }
    }

    fn wire(self) -> u64 {
        match self {
            EntryType::X509 => 0,
            EntryType::Precert => 1,
        }
    }
}

/// The signed part of a leaf, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampedEntry<'a> {
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    pub entry_type: EntryType,
    /// SHA-256 of the issuer's SubjectPublicKeyInfo (precerts only).
    pub issuer_key_hash: Option<[u8; 32]>,
    /// The DER certificate (x509) or DER TBSCertificate without poison (precert).
    pub signed: &'a [u8],
    /// Raw `CtExtensions`.
    pub extensions: &'a [u8],
}

impl<'a> TimestampedEntry<'a> {
    /// Reads a `TimestampedEntry` from the reader, leaving what follows it.
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let timestamp = r.u64("timestamp")?;
        let entry_type = match r.u16("entry_type")? {
            0 => EntryType::X509,
            1 => EntryType::Precert,
            other => return Err(Error::invalid("entry_type", other.to_string())),
        };
        let (issuer_key_hash, signed) = match entry_type {
            EntryType::X509 => (None, r.opaque(3, "certificate")?),
            EntryType::Precert => {
                let hash = r.take(32, "issuer_key_hash")?;
                let mut key = [0u8; 32];
                key.copy_from_slice(hash);
                (Some(key), r.opaque(3, "tbs_certificate")?)
            }
        };
        if signed.is_empty() {
            return Err(Error::invalid("certificate", "empty"));
        }
        let extensions = r.opaque(2, "extensions")?;
        Ok(TimestampedEntry {
            timestamp,
            entry_type,
            issuer_key_hash,
            signed,
            extensions,
        })
    }

    /// Appends the wire form.
    pub fn write(&self, out: &mut Vec<u8>) {
        put_uint(out, self.timestamp, 8);
        put_uint(out, self.entry_type.wire(), 2);
        if let Some(hash) = &self.issuer_key_hash {
            out.extend_from_slice(hash);
        }
        put_opaque(out, self.signed, 3);
        put_opaque(out, self.extensions, 2);
    }
}

/// Decodes a `MerkleTreeLeaf` (the `leaf_input` of get-entries).
pub fn decode_leaf(leaf_input: &[u8]) -> Result<TimestampedEntry<'_>> {
    let mut r = Reader::new(leaf_input);
    let version = r.u8("version")?;
    if version != 0 {
        return Err(Error::invalid("leaf version", version.to_string()));
    }
    let leaf_type = r.u8("leaf_type")?;
    if leaf_type != 0 {
        return Err(Error::invalid("leaf_type", leaf_type.to_string()));
    }
    let entry = TimestampedEntry::read(&mut r)?;
    r.finish("merkle tree leaf")?;
    Ok(entry)
}

/// Encodes a `MerkleTreeLeaf` around a `TimestampedEntry`.
pub fn encode_leaf(entry: &TimestampedEntry<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.signed.len() + 64);
    out.extend_from_slice(&[0, 0]);
    entry.write(&mut out);
    out
}

/// One `CtExtensions` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtExtension<'a> {
    pub kind: u8,
    pub data: &'a [u8],
}

/// Extension type of the static-ct-api `leaf_index`.
pub const LEAF_INDEX_EXTENSION: u8 = 0;

/// Splits `CtExtensions` into items: `u8 type, opaque data<0..2^16-1>`.
pub fn decode_extensions(raw: &[u8]) -> Result<Vec<CtExtension<'_>>> {
    let mut r = Reader::new(raw);
    let mut out = Vec::new();
    while !r.is_empty() {
        let kind = r.u8("extension type")?;
        let data = r.opaque(2, "extension data")?;
        out.push(CtExtension { kind, data });
    }
    Ok(out)
}

/// The `leaf_index` extension (a 40-bit index) when present.
pub fn leaf_index_extension(raw: &[u8]) -> Result<Option<u64>> {
    for ext in decode_extensions(raw)? {
        if ext.kind == LEAF_INDEX_EXTENSION {
            if ext.data.len() != 5 {
                return Err(Error::invalid(
                    "leaf_index extension",
                    format!("{} bytes, want 5", ext.data.len()),
                ));
            }
            return Ok(Some(Reader::new(ext.data).uint(5, "leaf_index")?));
        }
    }
    Ok(None)
}

/// Encodes the `leaf_index` extension (8 bytes).
pub fn encode_leaf_index_extension(index: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    out.push(LEAF_INDEX_EXTENSION);
    put_uint(&mut out, 5, 2);
    put_uint(&mut out, index, 5);
    out
}

/// The decoded `extra_data` of a get-entries answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraData<'a> {
    /// The precertificate with its poison extension (precert entries only).
    pub pre_certificate: Option<&'a [u8]>,
    /// The chain, leaf's issuer first.
    pub chain: Vec<&'a [u8]>,
}

/// Decodes `extra_data` for an entry of the given type.
pub fn decode_extra_data(entry_type: EntryType, extra: &[u8]) -> Result<ExtraData<'_>> {
    let mut r = Reader::new(extra);
    let pre_certificate = match entry_type {
        EntryType::X509 => None,
        EntryType::Precert => Some(r.opaque(3, "pre_certificate")?),
    };
    let chain_bytes = r.opaque(3, "certificate_chain")?;
    r.finish("extra_data")?;
    let mut chain_reader = Reader::new(chain_bytes);
    let mut chain = Vec::new();
    while !chain_reader.is_empty() {
        chain.push(chain_reader.opaque(3, "chain certificate")?);
    }
    Ok(ExtraData {
        pre_certificate,
        chain,
    })
}

/// Encodes `extra_data` (the inverse of [`decode_extra_data`]).
pub fn encode_extra_data(pre_certificate: Option<&[u8]>, chain: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for cert in chain {
        put_opaque(&mut list, cert, 3);
    }
    let mut out = Vec::with_capacity(list.len() + 8);
    if let Some(pre) = pre_certificate {
        put_opaque(&mut out, pre, 3);
    }
    put_opaque(&mut out, &list, 3);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_round_trip() {
        let entry = TimestampedEntry {
            timestamp: 1_700_000_000_000,
            entry_type: EntryType::Precert,
            issuer_key_hash: Some([7; 32]),
            signed: b"tbs",
            extensions: &[],
        };
        let bytes = encode_leaf(&entry);
        assert_eq!(decode_leaf(&bytes).unwrap(), entry);
    }

    #[test]
    fn extra_round_trip() {
        let raw = encode_extra_data(Some(b"pre"), &[b"a", b"bc"]);
        let extra = decode_extra_data(EntryType::Precert, &raw).unwrap();
        assert_eq!(extra.pre_certificate, Some(&b"pre"[..]));
        assert_eq!(extra.chain, vec![&b"a"[..], &b"bc"[..]]);
    }

    #[test]
    fn leaf_index() {
        let ext = encode_leaf_index_extension(1_234_567);
        assert_eq!(ext.len(), 8);
        assert_eq!(leaf_index_extension(&ext).unwrap(), Some(1_234_567));
    }
}
