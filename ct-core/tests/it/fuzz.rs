//! The decoders never panic, whatever the bytes.

use ct_core::checkpoint::Checkpoint;
use ct_core::entry::{Depth, Examiner};
use ct_core::leaf::{EntryType, decode_extensions, decode_extra_data, decode_leaf};
use ct_core::tiles::{TileId, decode_data_tile, decode_hash_tile, maybe_gunzip};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn leaf_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_leaf(&bytes);
        let _ = decode_extensions(&bytes);
        let ex = Examiner::default();
        let _ = ex.examine(&bytes, &bytes, Depth::Full);
        let _ = ex.examine(&bytes, &bytes, Depth::MatchOnly);
    }

    #[test]
    fn leaf_decoder_near_valid(tail in proptest::collection::vec(any::<u8>(), 0..400), et in 0u8..3) {
        // A valid header followed by noise reaches deeper code.
        let mut bytes = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, et];
        bytes.extend_from_slice(&tail);
        let _ = Examiner::default().examine(&bytes, &tail, Depth::Full);
    }

    #[test]
    fn extra_data_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_extra_data(EntryType::X509, &bytes);
        let _ = decode_extra_data(EntryType::Precert, &bytes);
    }

    #[test]
    fn tile_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = decode_data_tile(&bytes);
        let _ = decode_hash_tile(&bytes);
        let _ = maybe_gunzip(&bytes);
        let mut gz = vec![0x1f, 0x8b];
        gz.extend_from_slice(&bytes);
        let _ = maybe_gunzip(&gz);
    }

    #[test]
    fn text_parsers(text in ".{0,300}") {
        let _ = Checkpoint::parse(&text);
        let _ = TileId::parse(&text);
    }

    #[test]
    fn der_walker(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = ct_core::der::lenient_parse(&bytes);
        let _ = ct_core::cert::extract(&bytes, false);
        let _ = ct_core::cert::extract(&bytes, true);
    }
}
