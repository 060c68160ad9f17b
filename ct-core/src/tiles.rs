//! static-ct-api tiles: paths, data tiles (TileLeaf), hash tiles, and the
//! widths of partial tiles at the right edge.

use std::io::Read;

use crate::codec::{Reader, put_opaque};
use crate::error::{Error, Result};
use crate::leaf::{EntryType, TimestampedEntry};
use crate::merkle::Hash;

/// Entries (or hashes) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Decompressed data tiles larger than this are refused.
pub const MAX_TILE_BYTES: u64 = 64 << 20;

/// Writes `n` as 3-digit groups, each but the last prefixed with `x`.
pub fn tile_index_path(n: u64) -> String {
    let digits = n.to_string();
    let pad = (3 - digits.len() % 3) % 3;
    let padded = format!("{}{digits}", "0".repeat(pad));
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(3)
        .map(|c| std::str::from_utf8(c).unwrap_or("000"))
        .collect();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g}")
            } else {
                (*g).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Which tile a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// A hash tile at level 0..=5 (level 0 holds leaf hashes).
    Hash(u8),
    /// A data tile.
    Data,
}

/// A tile address: kind, index and width (256 for a full tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileId {
    pub kind: TileKind,
    pub index: u64,
    pub width: u64,
}

impl TileId {
    /// The path below the monitoring prefix, e.g. `tile/data/x001/234.p/7`.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hash(l) => l.to_string(),
            TileKind::Data => "data".to_owned(),
        };
        let mut p = format!("tile/{level}/{}", tile_index_path(self.index));
        if self.width < TILE_WIDTH {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses a path below the monitoring prefix (the inverse of [`TileId::path`]).
    pub fn parse(path: &str) -> Result<Self> {
        let bad = || Error::invalid("tile path", path);
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (level, rest) = rest.split_once('/').ok_or_else(bad)?;
        let kind = if level == "data" {
            TileKind::Data
        } else {
            let l: u8 = level.parse().map_err(|_| bad())?;
            if l > 5 || level.len() != 1 {
                return Err(bad());
            }
            TileKind::Hash(l)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let w: u64 = w.parse().map_err(|_| bad())?;
                if !(1..TILE_WIDTH).contains(&w) || w.to_string().len() != w_len(w) {
                    return Err(bad());
                }
                (i, w)
            }
            None => (rest, TILE_WIDTH),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let digits = if i + 1 < groups.len() {
                g.strip_prefix('x').ok_or_else(bad)?
            } else {
                g
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let d: u64 = digits.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|v| v.checked_add(d))
                .ok_or_else(bad)?;
        }
        Ok(TileId { kind, index, width })
    }
}

fn w_len(w: u64) -> usize {
    w.to_string().len()
}

/// Width of tile `n` at `level` in a tree of `tree_size` leaves: 256 for a
/// full tile, fewer at the right edge, 0 when it does not exist.
pub fn tile_width(level: u8, n: u64, tree_size: u64) -> u64 {
    let per_entry = TILE_WIDTH.saturating_pow(u32::from(level));
    let nodes = tree_size / per_entry;
    let first = n.saturating_mul(TILE_WIDTH);
    nodes.saturating_sub(first).min(TILE_WIDTH)
}

/// One entry of a data tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileLeaf<'a> {
    pub entry: TimestampedEntry<'a>,
    /// The raw `TimestampedEntry` bytes: the leaf input is `0x00 0x00 ||` these.
    pub entry_bytes: &'a [u8],
    pub pre_certificate: Option<&'a [u8]>,
    /// SHA-256 fingerprints of the chain's certificates, issuer first.
    pub chain: Vec<Hash>,
}

impl TileLeaf<'_> {
    /// The RFC 6962 `leaf_input` (MerkleTreeLeaf) of this entry.
    pub fn leaf_input(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entry_bytes.len() + 2);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(self.entry_bytes);
        out
    }

    /// The Merkle leaf hash of this entry.
    pub fn leaf_hash(&self) -> Hash {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update([0u8, 0, 0]);
        h.update(self.entry_bytes);
        h.finalize().into()
    }
}

/// Inflates a gzip-encoded tile; returns the input when it is not gzip.
pub fn maybe_gunzip(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_TILE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::invalid("gzip tile", e.to_string()))?;
        if out.len() as u64 > MAX_TILE_BYTES {
            return Err(Error::invalid("gzip tile", "larger than 64 MiB"));
        }
        Ok(std::borrow::Cow::Owned(out))
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// Reads one TileLeaf.
pub fn read_tile_leaf<'a>(r: &mut Reader<'a>) -> Result<TileLeaf<'a>> {
    let before = r.remaining();
    let entry = TimestampedEntry::read(r)?;
    let entry_bytes = &before[..before.len() - r.remaining().len()];
    let pre_certificate = match entry.entry_type {
        EntryType::X509 => None,
        EntryType::Precert => Some(r.opaque(3, "pre_certificate")?),
    };
    let chain_bytes = r.opaque(2, "certificate_chain")?;
    if chain_bytes.len() % 32 != 0 {
        return Err(Error::invalid(
            "certificate_chain",
            format!("{} bytes is not a list of fingerprints", chain_bytes.len()),
        ));
    }
    let chain = chain_bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect();
    Ok(TileLeaf {
        entry,
        entry_bytes,
        pre_certificate,
        chain,
    })
}

/// Decodes every TileLeaf of an (already inflated) data tile.
pub fn decode_data_tile(bytes: &[u8]) -> Result<Vec<TileLeaf<'_>>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::with_capacity(TILE_WIDTH as usize);
    while !r.is_empty() {
        out.push(read_tile_leaf(&mut r)?);
    }
    Ok(out)
}

/// Appends one TileLeaf.
pub fn encode_tile_leaf(
    out: &mut Vec<u8>,
    entry: &TimestampedEntry<'_>,
    pre_certificate: Option<&[u8]>,
    chain: &[Hash],
) {
    entry.write(out);
    if let Some(pre) = pre_certificate {
        put_opaque(out, pre, 3);
    }
    put_opaque(out, chain.concat().as_slice(), 2);
}

/// Splits a hash tile into its hashes.
pub fn decode_hash_tile(bytes: &[u8]) -> Result<Vec<Hash>> {
    if bytes.len() % 32 != 0 || bytes.len() > 32 * TILE_WIDTH as usize {
        return Err(Error::invalid(
            "hash tile",
            format!("{} bytes is not 1..=256 hashes", bytes.len()),
        ));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths() {
        assert_eq!(tile_index_path(1_234_067), "x001/x234/067");
        assert_eq!(tile_index_path(5), "005");
        assert_eq!(tile_index_path(0), "000");
        assert_eq!(tile_index_path(1000), "x001/000");
    }

    #[test]
    fn tile_ids() {
        let id = TileId {
            kind: TileKind::Data,
            index: 1_234_067,
            width: 7,
        };
        assert_eq!(id.path(), "tile/data/x001/x234/067.p/7");
        assert_eq!(TileId::parse(&id.path()).unwrap(), id);
        let h = TileId {
            kind: TileKind::Hash(2),
            index: 5,
            width: 256,
        };
        assert_eq!(h.path(), "tile/2/005");
        assert_eq!(TileId::parse("tile/2/005").unwrap(), h);
        for bad in [
            "tile/6/000",
            "tile/0/5",
            "tile/0/x1/000",
            "tile/0/000.p/256",
            "tile/0/000.p/0",
            "tile/data/001/000",
        ] {
            assert!(TileId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn widths() {
        assert_eq!(tile_width(0, 0, 1000), 256);
        assert_eq!(tile_width(0, 3, 1000), 1000 - 768);
        assert_eq!(tile_width(0, 4, 1000), 0);
        assert_eq!(tile_width(1, 0, 70_000), 256);
        assert_eq!(tile_width(1, 1, 70_000), 70_000 / 256 - 256);
    }
}
