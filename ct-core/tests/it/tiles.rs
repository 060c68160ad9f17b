//! Data tiles round-trip, gzip included, and agree with the RFC 6962 view.

use std::io::Write;

use ct_core::entry::{Depth, Examiner};
use ct_core::leaf::{
    EntryType, TimestampedEntry, encode_leaf, encode_leaf_index_extension, leaf_index_extension,
};
use ct_core::merkle::leaf_hash;
use ct_core::tiles::{decode_data_tile, encode_tile_leaf, maybe_gunzip};

use crate::certs::{make_cert, precert_entry};

#[test]
fn data_tile_round_trip_and_rfc6962_view_agree() {
    let made = make_cert(
        Some(rcgen::DnValue::Utf8String("t.example.jp".into())),
        &["t.example.jp"],
        false,
    );
    let (_, _, pre) = precert_entry(None, &["p.example.jp"]);
    let mut tile = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..5u64 {
        let ext = encode_leaf_index_extension(i);
        let entry = if i % 2 == 0 {
            TimestampedEntry {
                timestamp: i,
                entry_type: EntryType::X509,
                issuer_key_hash: None,
                signed: &made.cert,
                extensions: &ext,
            }
        } else {
            TimestampedEntry {
                timestamp: i,
                entry_type: EntryType::Precert,
                issuer_key_hash: Some([9; 32]),
                signed: &made.cert,
                extensions: &ext,
            }
        };
        let pre_cert = (entry.entry_type == EntryType::Precert).then_some(pre.as_slice());
        encode_tile_leaf(&mut tile, &entry, pre_cert, &[[1; 32], [2; 32]]);
        leaves.push(encode_leaf(&entry));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tile).unwrap();
    let gz = gz.finish().unwrap();
    let raw = maybe_gunzip(&gz).unwrap();
    let decoded = decode_data_tile(&raw).unwrap();
    assert_eq!(decoded.len(), 5);
    let ex = Examiner::default();
    for (i, leaf) in decoded.iter().enumerate() {
        assert_eq!(leaf.leaf_input(), leaves[i]);
        assert_eq!(leaf.leaf_hash(), leaf_hash(&leaves[i]));
        assert_eq!(
            leaf_index_extension(leaf.entry.extensions).unwrap(),
            Some(i as u64)
        );
        assert_eq!(leaf.chain, vec![[1; 32], [2; 32]]);
        assert!(ex.examine_tile_leaf(leaf, Depth::MatchOnly).matched());
    }
}
