//! Integration tests of ctlog-sim: real HTTP over loopback, checked with
//! ct-core's decoders, signature checks and proof verifiers.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

use std::collections::HashSet;

use ct_core::b64;
use ct_core::checkpoint::Checkpoint;
use ct_core::entry::{Depth, Examiner};
use ct_core::merkle::{Hash, MerkleTree, verify_consistency, verify_inclusion};
use ct_core::rfc6962::{
    GetConsistency, GetEntries, GetEntryAndProof, GetProofByHash, GetRoots, GetSth, decode_hashes,
};
use ct_core::sth::LogKey;
use ct_core::tiles::{TileId, TileKind, decode_data_tile, decode_hash_tile, tile_width};
use ctlog_sim::{LogConfig, SimConfig, Simulator, Source, Views};
use sha2::Digest;

mod faults;
mod fleet;
mod growth;
mod replay;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub async fn start(logs: Vec<LogConfig>) -> Simulator {
    Simulator::start(SimConfig::new(logs)).await.unwrap()
}

pub fn log(entries: u64, seed: u64, views: Views) -> LogConfig {
    LogConfig {
        views,
        ..LogConfig::generated(entries, seed)
    }
}

pub const BOTH: Views = Views {
    rfc6962: true,
    tiles: true,
    list_as_tiled: false,
};

pub async fn get_text(c: &reqwest::Client, url: &str) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

pub async fn get_sth(c: &reqwest::Client, url: &str) -> GetSth {
    let (status, body) = get_text(c, &format!("{url}ct/v1/get-sth")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Verifies the STH signature and returns (size, root).
pub fn verify_sth(sth: &GetSth, key: &LogKey) -> (u64, Hash) {
    let root = sth.root_hash().unwrap();
    key.verify_tree_head(
        sth.timestamp,
        sth.tree_size,
        &root,
        &sth.signature().unwrap(),
    )
    .unwrap();
    (sth.tree_size, root)
}

/// Every entry `[0, size)` through get-entries, continuing after short answers.
pub async fn fetch_entries(c: &reqwest::Client, url: &str, size: u64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while (out.len() as u64) < size {
        let start = out.len() as u64;
        let (status, body) = get_text(
            c,
            &format!("{url}ct/v1/get-entries?start={start}&end={}", size - 1),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let answer: GetEntries<'_> = serde_json::from_str(&body).unwrap();
        assert!(!answer.entries.is_empty());
        for e in answer.entries {
            out.push((e.leaf_input.into_owned(), e.extra_data.into_owned()));
        }
    }
    out
}

fn examine_all(entries: &[(String, String)]) -> (Vec<Hash>, Vec<u64>) {
    let mut ex = Examiner::default();
    let mut hashes = Vec::new();
    let mut matches = Vec::new();
    for (i, (l, e)) in entries.iter().enumerate() {
        let found = ex.examine_b64(l, e, Depth::Full);
        assert_eq!(found.error, None, "entry {i}");
        assert!(found.cert.is_some());
        // ct-core's byte prefilter never changes an answer on generated entries.
        let quick = ex.examine_b64(l, e, Depth::MatchOnly);
        assert_eq!(quick.matched_names(), found.matched_names(), "entry {i}");
        hashes.push(found.leaf_hash.unwrap());
        if found.matched() {
            matches.push(i as u64);
        }
    }
    (hashes, matches)
}

#[tokio::test]
async fn rfc6962_entries_decode_sign_and_match_the_truth() {
    let mut cfg = log(3000, 11, Views::RFC6962);
    cfg.batch_cap = 100;
    cfg.source = Source::Generated {
        entries: 3000,
        seed: 11,
        match_share: 0.05,
    };
    let sim = start(vec![cfg]).await;
    let info = &sim.logs()[0];
    let key = LogKey::from_spki_der(&info.key).unwrap();
    let c = client();
    let sth = get_sth(&c, &info.url).await;
    let (size, root) = verify_sth(&sth, &key);
    assert_eq!(size, 3000);
    // The cap holds.
    let (_, body) = get_text(
        &c,
        &format!("{}ct/v1/get-entries?start=0&end=999", info.url),
    )
    .await;
    let answer: GetEntries<'_> = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.entries.len(), 100);

    let entries = fetch_entries(&c, &info.url, size).await;
    let (hashes, matches) = examine_all(&entries);
    assert_eq!(
        MerkleTree::from_leaf_hashes(hashes.clone())
            .root(size)
            .unwrap(),
        root
    );
    assert_eq!(hashes.iter().collect::<HashSet<_>>().len(), hashes.len());

    // Truth equals what ct-core finds, and the share is roughly right.
    let truth: Vec<u64> = info.truth.matches.iter().map(|m| m.index).collect();
    assert_eq!(truth, matches);
    assert!((60..=250).contains(&matches.len()), "{}", matches.len());
    for m in &info.truth.matches {
        assert_eq!(m.leaf_hash, hex::encode(hashes[m.index as usize]));
    }

    // Entries are distinct certificates with realistic sizes, both kinds, 1-2 issuers.
    let mut ex = Examiner::default();
    let mut serials = HashSet::new();
    let (mut x509, mut precert) = (0, 0);
    let mut names = HashSet::new();
    for (l, e) in &entries {
        let found = ex.examine_b64(l, e, Depth::Full);
        let cert = found.cert.unwrap();
        assert!(serials.insert(cert.serial.clone()), "duplicate serial");
        names.extend(cert.dns_names.clone());
        let leaf = b64::decode(l, "leaf").unwrap();
        let extra = b64::decode(e, "extra").unwrap();
        let entry = ct_core::leaf::decode_leaf(&leaf).unwrap();
        let ed = ct_core::leaf::decode_extra_data(entry.entry_type, &extra).unwrap();
        assert!((1..=2).contains(&ed.chain.len()));
        assert!(
            (800..2600).contains(&entry.signed.len()),
            "{}",
            entry.signed.len()
        );
        match entry.entry_type {
            ct_core::leaf::EntryType::X509 => x509 += 1,
            ct_core::leaf::EntryType::Precert => {
                precert += 1;
                let pre = ed.pre_certificate.unwrap();
                // The poison OID is in the precertificate, not in the TBS.
                let poison = [
                    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03,
                ];
                assert!(memchr::memmem::find(pre, &poison).is_some());
                assert!(memchr::memmem::find(entry.signed, &poison).is_none());
                // issuer_key_hash is the SHA-256 of the issuer's SPKI.
                let (_, issuer) = x509_parser::parse_x509_certificate(ed.chain[0]).unwrap();
                let spki_hash: Hash =
                    sha2::Sha256::digest(issuer.tbs_certificate.subject_pki.raw).into();
                assert_eq!(entry.issuer_key_hash, Some(spki_hash));
            }
        }
    }
    assert!(x509 > 500 && precert > 500, "{x509} {precert}");
    for look in [
        "examplejp.com",
        "jp.example.com",
        "foo.jp.example.com",
        "jpmchase.net",
    ] {
        assert!(names.contains(look), "{look} missing");
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("*.") && n.ends_with(".jp"))
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("xn--") && n.ends_with(".jp"))
    );

    // get-roots answers DER certificates.
    let (_, body) = get_text(&c, &format!("{}ct/v1/get-roots", info.url)).await;
    let roots: GetRoots = serde_json::from_str(&body).unwrap();
    assert!(!roots.certificates.is_empty());
    for r in &roots.certificates {
        x509_parser::parse_x509_certificate(&b64::decode(r, "root").unwrap()).unwrap();
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn proofs_verify() {
    let sim = start(vec![log(1500, 3, Views::RFC6962)]).await;
    let info = &sim.logs()[0];
    let c = client();
    let key = LogKey::from_spki_der(&info.key).unwrap();
    let (size, root) = verify_sth(&get_sth(&c, &info.url).await, &key);
    let entries = fetch_entries(&c, &info.url, size).await;
    let (hashes, _) = examine_all(&entries);
    for &i in &[0u64, 1, 255, 256, 777, 1023, 1024, 1499] {
        let url = format!(
            "{}ct/v1/get-proof-by-hash?hash={}&tree_size={size}",
            info.url,
            urlencode(&b64::encode(&hashes[i as usize]))
        );
        let (status, body) = get_text(&c, &url).await;
        assert_eq!(status, 200, "{body}");
        let p: GetProofByHash = serde_json::from_str(&body).unwrap();
        assert_eq!(p.leaf_index, i);
        let path = decode_hashes(&p.audit_path, "path").unwrap();
        verify_inclusion(i, size, &hashes[i as usize], &path, &root).unwrap();

        let url = format!(
            "{}ct/v1/get-entry-and-proof?leaf_index={i}&tree_size={size}",
            info.url
        );
        let (_, body) = get_text(&c, &url).await;
        let p: GetEntryAndProof = serde_json::from_str(&body).unwrap();
        assert_eq!(p.leaf_input, entries[i as usize].0);
        let path = decode_hashes(&p.audit_path, "path").unwrap();
        verify_inclusion(i, size, &hashes[i as usize], &path, &root).unwrap();
    }
    let tree = MerkleTree::from_leaf_hashes(hashes);
    for &(a, b) in &[
        (1u64, 1500u64),
        (256, 1500),
        (1000, 1499),
        (7, 8),
        (1500, 1500),
    ] {
        let url = format!("{}ct/v1/get-sth-consistency?first={a}&second={b}", info.url);
        let (status, body) = get_text(&c, &url).await;
        assert_eq!(status, 200, "{body}");
        let p: GetConsistency = serde_json::from_str(&body).unwrap();
        let proof = decode_hashes(&p.consistency, "proof").unwrap();
        verify_consistency(a, b, &tree.root(a).unwrap(), &tree.root(b).unwrap(), &proof).unwrap();
    }
    sim.shutdown().await.unwrap();
}

pub fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

#[tokio::test]
async fn bad_parameters_get_400() {
    let sim = start(vec![log(300, 5, Views::RFC6962)]).await;
    let url = sim.logs()[0].url.clone();
    let c = client();
    for q in [
        "get-entries?start=5&end=1",
        "get-entries?start=300&end=400",
        "get-entries?start=-1&end=3",
        "get-entries?start=a&end=3",
        "get-entries?end=3",
        "get-sth-consistency?first=10&second=5",
        "get-sth-consistency?first=10&second=301",
        "get-entry-and-proof?leaf_index=300&tree_size=300",
        "get-proof-by-hash?hash=zz&tree_size=3",
    ] {
        let (status, body) = get_text(&c, &format!("{url}ct/v1/{q}")).await;
        assert_eq!(status, 400, "{q}: {body}");
    }
    // end beyond the tree is clamped.
    let (status, body) = get_text(&c, &format!("{url}ct/v1/get-entries?start=298&end=5000")).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<GetEntries<'_>>(&body)
            .unwrap()
            .entries
            .len(),
        2
    );
    // A static-only path is not served by an RFC 6962 log.
    let (status, _) = get_text(&c, &format!("{url}checkpoint")).await;
    assert_eq!(status, 404);
    sim.shutdown().await.unwrap();
}

/// Fetches every data tile of a static log and returns (leaf inputs, leaf hashes).
pub async fn fetch_tiles(c: &reqwest::Client, url: &str, size: u64) -> (Vec<Vec<u8>>, Vec<Hash>) {
    let ex = Examiner::default();
    let mut inputs = Vec::new();
    let mut hashes = Vec::new();
    let mut issuers = HashSet::new();
    let mut n = 0;
    while n * 256 < size {
        let id = TileId {
            kind: TileKind::Data,
            index: n,
            width: tile_width(0, n, size),
        };
        let r = c.get(format!("{url}{}", id.path())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", id.path());
        let bytes = r.bytes().await.unwrap();
        let leaves = decode_data_tile(&bytes).unwrap();
        assert_eq!(leaves.len() as u64, id.width);
        for (k, leaf) in leaves.iter().enumerate() {
            let index = n * 256 + k as u64;
            let ext = ct_core::leaf::leaf_index_extension(leaf.entry.extensions).unwrap();
            assert_eq!(ext, Some(index));
            let found = ex.examine_tile_leaf(leaf, Depth::MatchOnly);
            assert_eq!(found.error, None);
            for fp in &leaf.chain {
                if !issuers.insert(*fp) {
                    continue;
                }
                let r = c
                    .get(format!("{url}issuer/{}", hex::encode(fp)))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let der = r.bytes().await.unwrap();
                let got: Hash = sha2::Sha256::digest(&der).into();
                assert_eq!(&got, fp);
            }
            inputs.push(leaf.leaf_input());
            hashes.push(leaf.leaf_hash());
        }
        n += 1;
    }
    (inputs, hashes)
}

#[tokio::test]
async fn static_log_checkpoint_tiles_and_issuers() {
    let sim = start(vec![log(70_000, 9, Views::STATIC)]).await;
    let info = &sim.logs()[0];
    assert_eq!(
        info.origin,
        info.url.trim_start_matches("http://").trim_end_matches('/')
    );
    let c = client();
    let key = LogKey::from_spki_der(&info.key).unwrap();
    let (status, text) = get_text(&c, &format!("{}checkpoint", info.url)).await;
    assert_eq!(status, 200);
    let cp = Checkpoint::parse(&text).unwrap();
    assert_eq!(cp.origin, info.origin);
    cp.verify(&info.origin, &key).unwrap();
    assert_eq!(cp.tree_size, 70_000);
    // The RFC 6962 API is not served by a static-only log.
    let (status, _) = get_text(&c, &format!("{}ct/v1/get-sth", info.url)).await;
    assert_eq!(status, 404);

    let (_, hashes) = fetch_tiles(&c, &info.url, cp.tree_size).await;
    let tree = MerkleTree::from_leaf_hashes(hashes);
    assert_eq!(tree.root(cp.tree_size).unwrap(), cp.root_hash);

    // Hash tiles at levels 0, 1 and 2 hold complete subtree hashes.
    for (level, n) in [(0u8, 0u64), (0, 273), (1, 0), (1, 1), (2, 0)] {
        let width = tile_width(level, n, cp.tree_size);
        let id = TileId {
            kind: TileKind::Hash(level),
            index: n,
            width,
        };
        let r = c
            .get(format!("{}{}", info.url, id.path()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", id.path());
        let got = decode_hash_tile(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(got.len() as u64, width);
        let span = 256u64.pow(u32::from(level));
        for (k, h) in got.iter().enumerate() {
            let first = (n * 256 + k as u64) * span;
            assert_eq!(*h, tree.range_hash(first, first + span).unwrap());
        }
    }
    // A tile beyond the tree, a full tile at the partial edge, and bad paths are refused.
    for path in [
        "tile/data/274",
        "tile/0/273",
        "tile/1/001",
        "tile/9/000",
        "tile/data/x1",
    ] {
        let (status, _) = get_text(&c, &format!("{}{path}", info.url)).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
    let (status, _) = get_text(&c, &format!("{}issuer/{}", info.url, "00".repeat(32))).await;
    assert_eq!(status, 404);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn both_views_agree() {
    let sim = start(vec![log(1000, 4, BOTH)]).await;
    let info = &sim.logs()[0];
    let c = client();
    let key = LogKey::from_spki_der(&info.key).unwrap();
    let (size, root) = verify_sth(&get_sth(&c, &info.url).await, &key);
    let (_, text) = get_text(&c, &format!("{}checkpoint", info.url)).await;
    let cp = Checkpoint::parse(&text).unwrap();
    cp.verify(&info.origin, &key).unwrap();
    assert_eq!((cp.tree_size, cp.root_hash), (size, root));
    let entries = fetch_entries(&c, &info.url, size).await;
    let (hashes, _) = examine_all(&entries);
    let (inputs, tile_hashes) = fetch_tiles(&c, &info.url, size).await;
    assert_eq!(hashes, tile_hashes);
    for ((l, _), input) in entries.iter().zip(&inputs) {
        assert_eq!(&b64::decode(l, "leaf").unwrap(), input);
    }
    // Listed as an RFC 6962 log (not --static).
    let list = sim.log_list();
    assert_eq!(list.operators[0].logs.len(), 1);
    assert!(list.operators[0].tiled_logs.is_empty());
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn log_list_and_truth_describe_what_is_served() {
    let sim = start(vec![
        log(500, 1, Views::RFC6962),
        log(600, 2, Views::STATIC),
    ])
    .await;
    let list = sim.log_list();
    let json = serde_json::to_value(&list).unwrap();
    let op = &list.operators[0];
    assert_eq!(op.logs.len(), 1);
    assert_eq!(op.tiled_logs.len(), 1);
    let infos = sim.logs();
    assert_eq!(op.logs[0].url.as_deref(), Some(infos[0].url.as_str()));
    assert_eq!(
        op.tiled_logs[0].monitoring_url.as_deref(),
        Some(infos[1].url.as_str())
    );
    assert_eq!(
        op.tiled_logs[0].submission_url.as_deref(),
        Some(infos[1].url.as_str())
    );
    for (l, info) in op.logs.iter().chain(&op.tiled_logs).zip(&infos) {
        let key = b64::decode(&l.key, "key").unwrap();
        assert_eq!(key, info.key);
        assert_eq!(
            b64::decode(&l.log_id, "id").unwrap(),
            LogKey::from_spki_der(&key).unwrap().log_id()
        );
        assert_eq!(l.state_name(), Some("usable"));
    }
    assert!(json["operators"][0]["logs"][0]["state"]["usable"]["timestamp"].is_string());
    let truth = serde_json::to_value(sim.truth()).unwrap();
    assert_eq!(truth["logs"][1]["entries"], 600);
    assert_eq!(truth["logs"][0]["url"], infos[0].url.as_str());
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_entries_are_served_spoiled_and_left_out_of_the_truth() {
    let mut cfg = log(400, 8, Views::RFC6962);
    cfg.source = Source::Generated {
        entries: 400,
        seed: 8,
        match_share: 1.0,
    };
    cfg.malformed = vec![10, 20, 30];
    let sim = start(vec![cfg]).await;
    let info = &sim.logs()[0];
    let c = client();
    let entries = fetch_entries(&c, &info.url, 400).await;
    let mut ex = Examiner::default();
    let mut errors = Vec::new();
    for (i, (l, e)) in entries.iter().enumerate() {
        let found = ex.examine_b64(l, e, Depth::MatchOnly);
        if found.error.is_some() || !found.matched() {
            errors.push(i as u64);
        }
    }
    assert_eq!(errors, vec![10, 20, 30]);
    let truth: Vec<u64> = info.truth.matches.iter().map(|m| m.index).collect();
    assert_eq!(truth.len(), 397);
    assert!(!truth.contains(&10) && !truth.contains(&20) && !truth.contains(&30));
    // The tree still holds the real entries: proofs for spoiled indices use them.
    let (_, body) = get_text(
        &c,
        &format!(
            "{}ct/v1/get-entry-and-proof?leaf_index=10&tree_size=400",
            info.url
        ),
    )
    .await;
    let p: GetEntryAndProof = serde_json::from_str(&body).unwrap();
    assert!(
        ex.examine_b64(&p.leaf_input, &p.extra_data, Depth::Full)
            .matched()
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_entries_are_in_the_tree_and_left_out_of_the_truth() {
    let mut cfg = log(300, 12, BOTH);
    cfg.source = Source::Generated {
        entries: 300,
        seed: 12,
        match_share: 1.0,
    };
    cfg.garbage = vec![5, 200];
    let sim = start(vec![cfg]).await;
    let info = &sim.logs()[0];
    let c = client();
    let key = LogKey::from_spki_der(&info.key).unwrap();
    let (size, root) = verify_sth(&get_sth(&c, &info.url).await, &key);
    let entries = fetch_entries(&c, &info.url, size).await;
    let ex = Examiner::default();
    let mut undecodable = Vec::new();
    let mut hashes = Vec::new();
    for (i, (l, e)) in entries.iter().enumerate() {
        let leaf = b64::decode(l, "leaf").unwrap();
        let found = ex.examine(&leaf, &b64::decode(e, "extra").unwrap(), Depth::Full);
        if found.cert.is_none() {
            assert!(found.error.is_some(), "entry {i}");
            assert_eq!(found.entry_type, Some(ct_core::leaf::EntryType::X509));
            undecodable.push(i as u64);
        }
        hashes.push(ct_core::merkle::leaf_hash(&leaf));
    }
    assert_eq!(undecodable, vec![5, 200]);
    // The bytes get-entries serves are the log's: they hash into the signed root.
    let tree = MerkleTree::from_leaf_hashes(hashes.clone());
    assert_eq!(tree.root(size).unwrap(), root);
    for i in [5u64, 200] {
        let url = format!(
            "{}ct/v1/get-entry-and-proof?leaf_index={i}&tree_size={size}",
            info.url
        );
        let (_, body) = get_text(&c, &url).await;
        let p: GetEntryAndProof = serde_json::from_str(&body).unwrap();
        assert_eq!(p.leaf_input, entries[i as usize].0);
        let path = decode_hashes(&p.audit_path, "path").unwrap();
        verify_inclusion(i, size, &hashes[i as usize], &path, &root).unwrap();
    }
    // The data tiles hold the same entries.
    let id = TileId {
        kind: TileKind::Data,
        index: 0,
        width: tile_width(0, 0, size),
    };
    let bytes = c
        .get(format!("{}{}", info.url, id.path()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let leaves = decode_data_tile(&bytes).unwrap();
    for i in [5usize, 200] {
        assert_eq!(leaves[i].leaf_hash(), hashes[i]);
        assert!(ex.examine_tile_leaf(&leaves[i], Depth::Full).cert.is_none());
    }
    let truth: Vec<u64> = info.truth.matches.iter().map(|m| m.index).collect();
    assert_eq!(truth.len(), 298);
    assert!(!truth.contains(&5) && !truth.contains(&200));
    sim.shutdown().await.unwrap();
}
