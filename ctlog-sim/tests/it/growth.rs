//! Growth keeps heads consistent.

use ct_core::checkpoint::Checkpoint;
use ct_core::merkle::{MerkleTree, verify_consistency};
use ct_core::rfc6962::{GetConsistency, decode_hashes};
use ct_core::sth::LogKey;

use crate::{BOTH, client, fetch_entries, get_sth, get_text, log, start, verify_sth};

#[tokio::test]
async fn grown_heads_are_consistent() {
    let sim = start(vec![log(700, 6, BOTH)]).await;
    let info = sim.logs()[0].clone();
    let c = client();
    let key = LogKey::from_spki_der(&info.key).unwrap();
    let (size0, root0) = verify_sth(&get_sth(&c, &info.url).await, &key);
    sim.grow(0, 333).await.unwrap();
    let (size1, root1) = verify_sth(&get_sth(&c, &info.url).await, &key);
    assert_eq!((size0, size1), (700, 1033));
    let (_, text) = get_text(&c, &format!("{}checkpoint", info.url)).await;
    let cp = Checkpoint::parse(&text).unwrap();
    cp.verify(&info.origin, &key).unwrap();
    assert_eq!((cp.tree_size, cp.root_hash), (size1, root1));

    let (_, body) = get_text(
        &c,
        &format!(
            "{}ct/v1/get-sth-consistency?first={size0}&second={size1}",
            info.url
        ),
    )
    .await;
    let p: GetConsistency = serde_json::from_str(&body).unwrap();
    let proof = decode_hashes(&p.consistency, "proof").unwrap();
    verify_consistency(size0, size1, &root0, &root1, &proof).unwrap();

    let entries = fetch_entries(&c, &info.url, size1).await;
    let mut ex = ct_core::entry::Examiner::default();
    let hashes: Vec<_> = entries
        .iter()
        .map(|(l, e)| {
            let f = ex.examine_b64(l, e, ct_core::entry::Depth::MatchOnly);
            assert_eq!(f.error, None);
            f.leaf_hash.unwrap()
        })
        .collect();
    let tree = MerkleTree::from_leaf_hashes(hashes);
    assert_eq!(tree.root(size0).unwrap(), root0);
    assert_eq!(tree.root(size1).unwrap(), root1);
    assert_eq!(sim.truth().logs[0].entries, size1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn timer_growth_publishes_new_heads() {
    let mut cfg = log(100, 7, ctlog_sim::Views::RFC6962);
    cfg.grow_per_sec = 50;
    let sim = start(vec![cfg]).await;
    let info = sim.logs()[0].clone();
    let c = client();
    let key = LogKey::from_spki_der(&info.key).unwrap();
    let (size0, root0) = verify_sth(&get_sth(&c, &info.url).await, &key);
    // Wait for the timer (polling, bounded to 10 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (size1, root1) = loop {
        let head = verify_sth(&get_sth(&c, &info.url).await, &key);
        if head.0 > size0 {
            break head;
        }
        assert!(std::time::Instant::now() < deadline, "no growth");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!((size1 - size0) % 50, 0);
    let (_, body) = get_text(
        &c,
        &format!(
            "{}ct/v1/get-sth-consistency?first={size0}&second={size1}",
            info.url
        ),
    )
    .await;
    let p: GetConsistency = serde_json::from_str(&body).unwrap();
    verify_consistency(
        size0,
        size1,
        &root0,
        &root1,
        &decode_hashes(&p.consistency, "proof").unwrap(),
    )
    .unwrap();
    sim.shutdown().await.unwrap();
}
