//! Replayed logs serve real entries unchanged (RFC 6962 view).

use std::path::PathBuf;

use ct_core::entry::{Depth, Examiner};
use ctlog_sim::{LogConfig, Source, Views};

use crate::{client, fetch_entries, get_sth, start};

/// The real data directory; `None` (skip) when `CT_REAL_DATA` is unset, a
/// failure when it is set and the data is missing.
fn real_data() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("CT_REAL_DATA")?);
    assert!(
        dir.join("expected.jsonl").is_file(),
        "CT_REAL_DATA={} holds no expected.jsonl",
        dir.display()
    );
    Some(dir)
}

#[tokio::test]
async fn replay_serves_real_entries_unchanged() {
    let Some(dir) = real_data() else {
        eprintln!("skipped: CT_REAL_DATA is not set");
        return;
    };
    let mut cfg = LogConfig::generated(0, 0);
    cfg.source = Source::Replay(dir.join("get-entries"));
    cfg.batch_cap = 32;
    let mut both = cfg.clone();
    both.views = Views {
        rfc6962: true,
        tiles: true,
        list_as_tiled: true,
    };
    let sim = start(vec![cfg, both]).await;
    let info = &sim.logs()[0];
    let c = client();
    let sth = get_sth(&c, &info.url).await;
    let entries = fetch_entries(&c, &info.url, sth.tree_size).await;
    let expected: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ex = &mut Examiner::default();
    let mut matches = Vec::new();
    for (i, (l, e)) in entries.iter().enumerate() {
        let f = ex.examine_b64(l, e, Depth::MatchOnly);
        assert_eq!(
            expected[i]["leaf_hash"],
            hex::encode(f.leaf_hash.unwrap()),
            "entry {i}"
        );
        if f.matched() {
            matches.push(i as u64);
        }
    }
    let truth: Vec<u64> = info.truth.matches.iter().map(|m| m.index).collect();
    assert_eq!(truth, matches);
    assert!(!matches.is_empty());
    // The second log serves the same certificates with leaf_index extensions, in both views.
    let info2 = &sim.logs()[1];
    let (_, tile_hashes) = crate::fetch_tiles(&c, &info2.url, sth.tree_size).await;
    let entries2 = fetch_entries(&c, &info2.url, sth.tree_size).await;
    let hashes2: Vec<_> = entries2
        .iter()
        .map(|(l, e)| ex.examine_b64(l, e, Depth::MatchOnly).leaf_hash.unwrap())
        .collect();
    assert_eq!(hashes2, tile_hashes);
    sim.shutdown().await.unwrap();
}
