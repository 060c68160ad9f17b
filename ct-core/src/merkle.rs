//! RFC 6962 Merkle trees: leaf and node hashes, the hash of any range, an
//! in-memory tree that answers inclusion and consistency proofs, and the
//! verification of both (RFC 9162 section 2.1).

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// SHA-256(0x00 || leaf_input).
pub fn leaf_hash(leaf_input: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf_input);
    h.finalize().into()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree, SHA-256("").
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (n >= 2).
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH over a list of leaf hashes, computed bottom-up without recursion.
pub fn root_of(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        // RFC 6962's split at the largest power of two is the same as pairing
        // left to right and carrying an odd last node up unchanged.
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => next.push(node_hash(l, r)),
                [single] => next.push(*single),
                _ => unreachable!("chunks(2) yields one or two items"),
            }
        }
        level = next;
    }
    level[0]
}

/// A whole tree in memory: `levels[l][i]` is the hash of the complete subtree
/// `[i * 2^l, (i + 1) * 2^l)`. Pushing a leaf costs O(1) amortised; the hash of
/// an aligned range is a lookup and proofs cost O(log n) lookups.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new() -> Self {
        MerkleTree::default()
    }

    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = MerkleTree::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut level = 0;
        while self.levels[level].len() % 2 == 0 {
            let n = self.levels[level].len();
            let parent = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// MTH(D[start:end]) for any `start <= end <= size`.
    pub fn range_hash(&self, start: u64, end: u64) -> Result<Hash> {
        if start > end || end > self.size() {
            return Err(Error::Proof(format!(
                "range [{start}, {end}) outside a tree of {}",
                self.size()
            )));
        }
        Ok(self.range_hash_unchecked(start, end))
    }

    fn range_hash_unchecked(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && start % n == 0 {
            let level = n.trailing_zeros() as usize;
            return self.levels[level][(start / n) as usize];
        }
        let k = split_point(n);
        node_hash(
            &self.range_hash_unchecked(start, start + k),
            &self.range_hash_unchecked(start + k, end),
        )
    }

    /// The root of the tree made of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash> {
        self.range_hash(0, size)
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        if index >= size || size > self.size() {
            return Err(Error::Proof(format!(
                "no leaf {index} in a tree of {size} (have {})",
                self.size()
            )));
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m - start < k {
            self.path(m, start, start + k, out);
            out.push(self.range_hash_unchecked(start + k, end));
        } else {
            self.path(m, start + k, end, out);
            out.push(self.range_hash_unchecked(start, start + k));
        }
    }

    /// The consistency proof between the trees of sizes `first` and `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>> {
        if first > second || second > self.size() {
            return Err(Error::Proof(format!(
                "no consistency between {first} and {second} (have {})",
                self.size()
            )));
        }
        let mut proof = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut proof);
        }
        Ok(proof)
    }

    fn subproof(&self, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.range_hash_unchecked(start, end));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, out);
            out.push(self.range_hash_unchecked(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.range_hash_unchecked(start, start + k));
        }
    }
}

/// Verifies an audit path for leaf `index` in a tree of `tree_size` leaves.
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    verify_node_inclusion(0, index, tree_size, leaf, proof, root)
}

/// Verifies that the complete subtree at `level` with index `node_index`
/// (leaves `[node_index * 2^level, (node_index + 1) * 2^level)`) and hash
/// `node` belongs to the tree of `tree_size` leaves with `root`. `proof` is the
/// part of an audit path above the subtree: the audit path of the subtree's
/// first leaf without its first `level` hashes.
pub fn verify_node_inclusion(
    level: u32,
    node_index: u64,
    tree_size: u64,
    node: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    let width = 1u64
        .checked_shl(level)
        .ok_or_else(|| Error::Proof(format!("level {level} too high")))?;
    let first = node_index
        .checked_mul(width)
        .ok_or_else(|| Error::Proof("node index overflows".into()))?;
    if tree_size == 0 || first.saturating_add(width) > tree_size {
        return Err(Error::Proof(format!(
            "subtree [{first}, +{width}) is not inside a tree of {tree_size}"
        )));
    }
    walk(node_index, (tree_size - 1) >> level, node, proof, root)
}

/// The level of the subtree `[start, end)` of a tree of `tree_size` leaves:
/// an aligned complete subtree, or the right-most one `[start, tree_size)`
/// with `start` aligned to the smallest power of two `>= end - start`.
/// `None` when the range is neither.
pub fn subtree_level(start: u64, end: u64, tree_size: u64) -> Option<u32> {
    if start >= end || end > tree_size {
        return None;
    }
    let n = end - start;
    let level = 64 - (n - 1).leading_zeros();
    let width = 1u64.checked_shl(level)?;
    if start % width != 0 {
        return None;
    }
    (n == width || end == tree_size).then_some(level)
}

/// Verifies that `hash` is MTH(D[start:end]) in the tree of `tree_size`
/// leaves with `root`, given the audit path above the subtree (bottom first).
/// The range must be a subtree in the sense of [`subtree_level`]: this also
/// proves the shorter last task at a tree's right edge.
pub fn verify_range_inclusion(
    start: u64,
    end: u64,
    tree_size: u64,
    hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    let level = subtree_level(start, end, tree_size).ok_or_else(|| {
        Error::Proof(format!(
            "[{start}, {end}) is not a subtree of a tree of {tree_size} leaves"
        ))
    })?;
    walk(start >> level, (tree_size - 1) >> level, hash, proof, root)
}

/// RFC 9162's inclusion walk from node `f_n` of the last node `s_n` at one level.
fn walk(mut f_n: u64, mut s_n: u64, node: &Hash, proof: &[Hash], root: &Hash) -> Result<()> {
    let mut r = *node;
    for p in proof {
        if s_n == 0 {
            return Err(Error::Proof("audit path too long".into()));
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(Error::Proof("audit path too short".into()));
    }
    if &r != root {
        return Err(Error::Proof("computed root differs".into()));
    }
    Ok(())
}

/// Verifies a consistency proof between two tree heads.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    if first > second {
        return Err(Error::Proof(format!("first {first} > second {second}")));
    }
    if first == second {
        return if proof.is_empty() && first_root == second_root {
            Ok(())
        } else {
            Err(Error::Proof(
                "equal sizes need equal roots and no proof".into(),
            ))
        };
    }
    if first == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(Error::Proof(
                "a proof from the empty tree must be empty".into(),
            ))
        };
    }
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(first_root);
    }
    path.extend(proof.iter());
    let Some((seed, rest)) = path.split_first() else {
        return Err(Error::Proof("empty consistency proof".into()));
    };
    let mut f_n = first - 1;
    let mut s_n = second - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut fr = **seed;
    let mut sr = **seed;
    for c in rest {
        if s_n == 0 {
            return Err(Error::Proof("consistency proof too long".into()));
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(Error::Proof("consistency proof too short".into()));
    }
    if &fr != first_root || &sr != second_root {
        return Err(Error::Proof(
            "consistency proof does not rebuild the roots".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_roots() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962 test vector: the leaf hash of the empty leaf.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(1 << 40), 1 << 39);
    }
}
