//! The Merkle functions agree with a naive recursive reference (RFC 6962
//! section 2.1, written as in the RFC) on random trees and proofs.

use ct_core::merkle::{
    Hash, MerkleTree, leaf_hash, node_hash, root_of, verify_consistency, verify_inclusion,
    verify_node_inclusion,
};
use proptest::prelude::*;

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => sha2::Digest::finalize(sha2::Sha256::default()).into(),
        1 => d[0],
        n => {
            let k = k_of(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

fn leaves(n: usize, seed: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("{seed}-{i}").as_bytes()))
        .collect()
}

proptest! {
    #[test]
    fn roots_and_ranges_agree(n in 1usize..300, seed in any::<u64>(), a in 0usize..300, b in 0usize..300) {
        let d = leaves(n, seed);
        let tree = MerkleTree::from_leaf_hashes(d.iter().copied());
        prop_assert_eq!(tree.root(n as u64).unwrap(), mth(&d));
        prop_assert_eq!(root_of(&d), mth(&d));
        let (a, b) = (a.min(b) % (n + 1), a.max(b) % (n + 1));
        let (a, b) = (a.min(b), a.max(b));
        prop_assert_eq!(tree.range_hash(a as u64, b as u64).unwrap(), mth(&d[a..b]));
    }

    #[test]
    fn inclusion_proofs(n in 1usize..300, seed in any::<u64>(), m in 0usize..300, size in 1usize..300) {
        let d = leaves(n, seed);
        let tree = MerkleTree::from_leaf_hashes(d.iter().copied());
        let size = 1 + size % n;
        let m = m % size;
        let proof = tree.inclusion_proof(m as u64, size as u64).unwrap();
        prop_assert_eq!(&proof, &path(m, &d[..size]));
        let root = mth(&d[..size]);
        prop_assert!(verify_inclusion(m as u64, size as u64, &d[m], &proof, &root).is_ok());
        // A wrong leaf, index or root fails.
        prop_assert!(verify_inclusion(m as u64, size as u64, &leaf_hash(b"x"), &proof, &root).is_err());
        if size > 1 {
            let other = (m + 1) % size;
            prop_assert!(verify_inclusion(other as u64, size as u64, &d[m], &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs(n in 1usize..300, seed in any::<u64>(), a in 1usize..300, b in 1usize..300) {
        let d = leaves(n, seed);
        let tree = MerkleTree::from_leaf_hashes(d.iter().copied());
        let (m, size) = (1 + a % n, 1 + b % n);
        let (m, size) = (m.min(size), m.max(size));
        let proof = tree.consistency_proof(m as u64, size as u64).unwrap();
        if m < size {
            prop_assert_eq!(&proof, &subproof(m, &d[..size], true));
        }
        let (r1, r2) = (mth(&d[..m]), mth(&d[..size]));
        prop_assert!(verify_consistency(m as u64, size as u64, &r1, &r2, &proof).is_ok());
        if m < size {
            prop_assert!(verify_consistency(m as u64, size as u64, &r2, &r1, &proof).is_err());
            let mut bad = proof.clone();
            bad[0][0] ^= 1;
            prop_assert!(verify_consistency(m as u64, size as u64, &r1, &r2, &bad).is_err());
        }
    }

    #[test]
    fn aligned_subtrees_prove_against_the_root(level in 0u32..6, seed in any::<u64>(), extra in 0usize..200, j in 0usize..8) {
        let width = 1usize << level;
        let n = width * (j + 1) + extra;
        let d = leaves(n, seed);
        let tree = MerkleTree::from_leaf_hashes(d.iter().copied());
        let start = width * j;
        let node = mth(&d[start..start + width]);
        let full = tree.inclusion_proof(start as u64, n as u64).unwrap();
        let above = &full[level as usize..];
        let root = mth(&d);
        prop_assert!(verify_node_inclusion(level, j as u64, n as u64, &node, above, &root).is_ok());
        prop_assert!(verify_node_inclusion(level, j as u64, n as u64, &leaf_hash(b"no"), above, &root).is_err());
    }
}

proptest! {
    #[test]
    fn right_edge_ranges_prove_against_the_root(n in 2usize..300, seed in any::<u64>(), level in 0u32..9) {
        use ct_core::merkle::{subtree_level, verify_range_inclusion};
        let d = leaves(n, seed);
        let tree = MerkleTree::from_leaf_hashes(d.iter().copied());
        let width = 1usize << level;
        // The last aligned block of this width, possibly incomplete.
        let start = ((n - 1) / width) * width;
        let hash = mth(&d[start..n]);
        let lvl = subtree_level(start as u64, n as u64, n as u64).unwrap();
        let full = tree.inclusion_proof(start as u64, n as u64).unwrap();
        let above = &full[(lvl as usize).min(full.len())..];
        let root = mth(&d);
        prop_assert!(verify_range_inclusion(start as u64, n as u64, n as u64, &hash, above, &root).is_ok());
        prop_assert!(verify_range_inclusion(start as u64, n as u64, n as u64, &leaf_hash(b"x"), above, &root).is_err());
    }
}
