//! Range and entry integrity against real ctlog-sim logs: an honest client
//! that does the protocol correctly, and dishonest ones (wrong subtree hash,
//! invented certificate, dropped matches) that are caught and whose work is
//! redone, ending with exactly the simulator's truth.

use std::collections::BTreeSet;

use ct_core::entry::{Depth, Examiner};
use ct_core::merkle::MerkleTree;
use ct_core::tiles::{TileId, TileKind, decode_data_tile, maybe_gunzip, tile_width};
use ctlog_sim::{LogConfig, SimConfig, Simulator, Source, Views};
use serde_json::{Value, json};

use crate::harness::{ADMIN, TestApp, test_config};

/// One fetched entry of a range.
pub(crate) struct Fetched {
    pub index: u64,
    pub leaf: Vec<u8>,
    pub extra: Vec<u8>,
}

/// What a client does with a range.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Play {
    Honest,
    /// Reports (and uploads against) a made-up subtree hash.
    WrongHash,
    /// Leaves out every match but the first.
    DropMatches,
    /// Adds a certificate of another log at a non-matching index, with a made-up path.
    Invent,
}

pub(crate) async fn fetch(http: &reqwest::Client, lease: &Value, tree_size: u64) -> Vec<Fetched> {
    let (start, end) = (
        lease["start"].as_u64().unwrap(),
        lease["end"].as_u64().unwrap(),
    );
    let url = lease["log_url"].as_str().unwrap();
    let mut out = Vec::new();
    if lease["kind"] == "static" {
        let base = lease["monitoring_url"].as_str().unwrap_or(url);
        for n in start / 256..=(end - 1) / 256 {
            let id = TileId {
                kind: TileKind::Data,
                index: n,
                width: tile_width(0, n, tree_size),
            };
            let body = http
                .get(format!("{base}{}", id.path()))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let body = maybe_gunzip(&body).unwrap().into_owned();
            for (i, leaf) in decode_data_tile(&body).unwrap().iter().enumerate() {
                let index = n * 256 + i as u64;
                if (start..end).contains(&index) {
                    out.push(Fetched {
                        index,
                        leaf: leaf.leaf_input(),
                        extra: ct_core::leaf::encode_extra_data(leaf.pre_certificate, &[]),
                    });
                }
            }
        }
    } else {
        let mut next = start;
        while next < end {
            let v: Value = http
                .get(format!(
                    "{url}ct/v1/get-entries?start={next}&end={}",
                    end - 1
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for e in v["entries"].as_array().unwrap() {
                out.push(Fetched {
                    index: next,
                    leaf: ct_core::b64::decode(e["leaf_input"].as_str().unwrap(), "l").unwrap(),
                    extra: ct_core::b64::decode(e["extra_data"].as_str().unwrap(), "e").unwrap(),
                });
                next += 1;
            }
        }
    }
    out
}

/// Works one leased task the way `play` says; returns complete's (status, body).
pub(crate) async fn work(
    app: &TestApp,
    token: &str,
    lease: &Value,
    tree_size: u64,
    play: Play,
) -> (u16, Value) {
    let id = lease["task_id"].as_u64().unwrap();
    let start = lease["start"].as_u64().unwrap();
    let entries = fetch(&app.client, lease, tree_size).await;
    let span = entries.len() as u64;
    let tree =
        MerkleTree::from_leaf_hashes(entries.iter().map(|e| ct_core::merkle::leaf_hash(&e.leaf)));
    let mut hash = hex::encode(tree.root(span).unwrap());
    if play == Play::WrongHash {
        hash = "ab".repeat(32);
    }
    let examiner = Examiner::default();
    let mut matches: Vec<Value> = Vec::new();
    let mut non_matching = None;
    for e in &entries {
        if examiner
            .examine(&e.leaf, &e.extra, Depth::MatchOnly)
            .matched()
        {
            let path: Vec<String> = tree
                .inclusion_proof(e.index - start, span)
                .unwrap()
                .iter()
                .map(hex::encode)
                .collect();
            matches.push(
                json!({"index": e.index, "leaf_input": ct_core::b64::encode(&e.leaf),
                "extra_data": ct_core::b64::encode(&e.extra), "audit_path": path}),
            );
        } else if non_matching.is_none() {
            non_matching = Some(e.index);
        }
    }
    if play == Play::DropMatches {
        matches.truncate(1);
    }
    if play == Play::Invent {
        let index = non_matching.unwrap();
        let mut fake = crate::harness::entry(index, &["invented.example.jp"]);
        fake["audit_path"] = json!(vec!["cd".repeat(32); 3]);
        matches.push(fake);
    }
    let n = matches.len() as u64;
    if !matches.is_empty() {
        let (status, v) = app
            .post(
                &format!("/v1/tasks/{id}/entries"),
                Some(token),
                &json!({"entries": matches, "subtree_hash": hash}),
            )
            .await;
        if status != 200 {
            return (status, v);
        }
        if play == Play::Invent {
            let rej = v["rejections"].as_array().unwrap();
            assert_eq!(rej.len(), 1, "{v}");
            assert_eq!(
                (rej[0]["code"].as_str(), rej[0]["status"].as_u64()),
                (Some("bad_proof"), Some(422))
            );
        } else {
            assert_eq!(v["rejected"], 0, "{v}");
        }
    }
    let matches_n = if play == Play::Invent { n - 1 } else { n };
    app.post(
        &format!("/v1/tasks/{id}/complete"),
        Some(token),
        &json!({"next_index": lease["end"], "entries": span, "matches": matches_n, "subtree_hash": hash,
            "first_leaf_hash": hex::encode(ct_core::merkle::leaf_hash(&entries[0].leaf))}),
    )
    .await
}

pub(crate) async fn claim(app: &TestApp, token: &str) -> Option<Value> {
    let (status, v) = app.post("/v1/tasks/claim", Some(token), &json!({})).await;
    if status != 200 {
        return None;
    }
    v["tasks"].as_array().unwrap().first().cloned()
}

/// Honest workers take every task until none is left.
pub(crate) async fn drain(app: &TestApp, tokens: &[&str], tree_size: u64) -> u64 {
    let mut done = 0;
    loop {
        let mut any = false;
        for t in tokens {
            if let Some(lease) = claim(app, t).await {
                let (status, v) = work(app, t, &lease, tree_size, Play::Honest).await;
                assert_eq!(
                    (status, v["proof"].as_str()),
                    (200, Some("verified")),
                    "{v}"
                );
                any = true;
                done += 1;
            }
        }
        if !any {
            return done;
        }
    }
}

pub(crate) async fn stored(app: &TestApp, log: u64) -> BTreeSet<(u64, String)> {
    let rows: Vec<(u64, Vec<u8>)> =
        sqlx::query_as("SELECT idx, leaf_hash FROM sightings WHERE log_id = ? ORDER BY idx")
            .bind(log)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    rows.into_iter().map(|(i, h)| (i, hex::encode(h))).collect()
}

pub(crate) fn truth(sim: &Simulator, n: usize) -> BTreeSet<(u64, String)> {
    sim.logs()[n]
        .truth
        .matches
        .iter()
        .map(|m| (m.index, m.leaf_hash.clone()))
        .collect()
}

pub(crate) fn log_config(entries: u64, seed: u64, views: Views) -> LogConfig {
    LogConfig {
        source: Source::Generated {
            entries,
            seed,
            match_share: 0.2,
        },
        views,
        ..LogConfig::generated(entries, seed)
    }
}

pub(crate) async fn setup(task_log2: u32, logs: Vec<LogConfig>) -> (TestApp, Simulator, Vec<u64>) {
    let sim = Simulator::start(SimConfig::new(logs)).await.unwrap();
    let mut config = test_config();
    config.task_size_log2 = task_log2;
    config.max_body_bytes = 4 << 20;
    let app = TestApp::spawn_with(config).await;
    let (status, v) = app
        .post(
            "/v1/admin/logs",
            Some(ADMIN),
            &serde_json::to_value(sim.log_list()).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let mut ids = Vec::new();
    for l in sim.logs() {
        let (id,): (u64,) = sqlx::query_as("SELECT id FROM logs WHERE url = ?")
            .bind(&l.url)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let (status, v) = app
            .post(
                &format!("/v1/admin/logs/{id}/poll"),
                Some(ADMIN),
                &json!({}),
            )
            .await;
        assert_eq!((status, v["verified"].as_bool()), (200, Some(true)), "{v}");
        ids.push(id);
    }
    (app, sim, ids)
}

pub(crate) async fn log_progress(app: &TestApp, id: u64) -> Value {
    let (_, v) = app.get("/v1/logs", None).await;
    v.as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id)
        .unwrap()["progress"]
        .clone()
}

#[tokio::test]
async fn rfc6962_dishonest_workers_are_caught() {
    // 70 entries, tasks of 16: four complete ones and [64, 70) at the right edge.
    let (app, sim, ids) = setup(4, vec![log_config(70, 11, Views::RFC6962)]).await;
    let log = ids[0];
    let (liar_id, liar) = app.register(Some("liar")).await;
    let (inventor_id, inventor) = app.register(Some("inventor")).await;
    let (hider_id, hider) = app.register(Some("hider")).await;
    // Honest workers on other addresses: checks of the dishonest ones' ranges go to them.
    let (_, honest) = app.register_from(Some("honest"), [127, 0, 0, 2]).await;
    let (_, honest2) = app.register_from(Some("honest2"), [127, 0, 0, 3]).await;

    // 1. A wrong subtree hash: refused at the upload, task back from its start.
    let lease = claim(&app, &liar).await.unwrap();
    let task = lease["task_id"].as_u64().unwrap();
    let (status, v) = work(&app, &liar, &lease, 70, Play::WrongHash).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("proof_mismatch")),
        "{v}"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM sightings WHERE task_id = {task}"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT CAST(mismatches AS SIGNED) FROM workers WHERE id = {liar_id}"
        ))
        .await,
        1
    );
    // Not for the liar again.
    let again = claim(&app, &liar).await.unwrap();
    assert_ne!(again["task_id"].as_u64(), Some(task));
    // The liar may still do other ranges honestly (a wrong hash at complete
    // alone is covered by complete_hash_must_equal_upload_hash).
    let (status, v) = work(&app, &liar, &again, 70, Play::Honest).await;
    assert_eq!(status, 200, "{v}");

    // 2. An invented certificate with a made-up path: that entry is refused.
    let lease = claim(&app, &inventor).await.unwrap();
    let (status, v) = work(&app, &inventor, &lease, 70, Play::Invent).await;
    assert_eq!(
        (status, v["proof"].as_str()),
        (200, Some("verified")),
        "{v}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM names WHERE name = 'invented.example.jp'")
            .await,
        0
    );

    // 3. Dropped matches: the check by another worker finds them.
    let lease = claim(&app, &hider).await.unwrap();
    let hidden_task = lease["task_id"].as_u64().unwrap();
    let (status, v) = work(&app, &hider, &lease, 70, Play::DropMatches).await;
    assert_eq!(
        (status, v["proof"].as_str()),
        (200, Some("verified")),
        "the hash is right: {v}"
    );

    // Honest workers do everything left, checks included.
    drain(&app, &[&honest, &honest2], 70).await;
    let (status, flagged) = app.get("/v1/admin/flagged", Some(ADMIN)).await;
    assert_eq!(status, 200);
    let hider_entry = flagged
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker_id"] == hider_id)
        .unwrap_or_else(|| panic!("hider not flagged: {flagged}"));
    let flag = &hider_entry["flags"][0];
    assert_eq!(flag["task_id"].as_u64(), Some(hidden_task));
    assert!(!flag["missing"].as_array().unwrap().is_empty(), "{flag}");
    assert_eq!(flag["extra"], json!([]));
    let liar_entry = flagged
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker_id"] == liar_id)
        .unwrap();
    assert_eq!(liar_entry["mismatches"], 1);
    assert!(
        flagged
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["worker_id"] != inventor_id)
    );
    let (status, v) = app.post("/v1/tasks/claim", Some(&hider), &json!({})).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("flagged"))
    );

    assert_eq!(stored(&app, log).await, truth(&sim, 0));
    let p = log_progress(&app, log).await;
    assert_eq!(p["verified_until"], 70, "{p}");
    assert_eq!(
        (p["faults"].clone(), p["gaps"].clone()),
        (json!([]), json!([]))
    );
    crate::reads::assert_counted(&app).await;
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn static_log_honest_and_wrong_hash() {
    // 600 entries (two full tiles and a partial one), tasks of 2^7 and the edge [512, 600).
    let (app, sim, ids) = setup(7, vec![log_config(600, 5, Views::STATIC)]).await;
    let log = ids[0];
    let (_, liar) = app.register(Some("liar")).await;
    let (_, honest) = app.register(Some("honest")).await;
    let (_, honest2) = app.register(Some("honest2")).await;
    let lease = claim(&app, &liar).await.unwrap();
    let (status, v) = work(&app, &liar, &lease, 600, Play::WrongHash).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("proof_mismatch")),
        "{v}"
    );
    let done = drain(&app, &[&honest, &honest2], 600).await;
    assert!(done >= 5, "{done}");
    assert_eq!(stored(&app, log).await, truth(&sim, 0));
    let p = log_progress(&app, log).await;
    assert_eq!(p["verified_until"], 600, "{p}");
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// A complete call whose hash differs from the uploads' hash, and a log
/// without proofs (a made-up log URL): unproven, and said so.
#[tokio::test]
async fn complete_hash_must_equal_upload_hash() {
    let (app, sim, _) = setup(4, vec![log_config(32, 3, Views::RFC6962)]).await;
    let (_, w) = app.register(Some("w")).await;
    let lease = claim(&app, &w).await.unwrap();
    let id = lease["task_id"].as_u64().unwrap();
    let entries = fetch(&app.client, &lease, 32).await;
    let tree =
        MerkleTree::from_leaf_hashes(entries.iter().map(|e| ct_core::merkle::leaf_hash(&e.leaf)));
    let good = hex::encode(tree.root(16).unwrap());
    let first = &entries[0];
    let path: Vec<String> = tree
        .inclusion_proof(0, 16)
        .unwrap()
        .iter()
        .map(hex::encode)
        .collect();
    let (status, v) = app
        .post(&format!("/v1/tasks/{id}/entries"), Some(&w), &json!({"subtree_hash": good, "entries": [
            {"index": first.index, "leaf_input": ct_core::b64::encode(&first.leaf), "extra_data": ct_core::b64::encode(&first.extra), "audit_path": path}]}))
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = app
        .post(
            &format!("/v1/tasks/{id}/complete"),
            Some(&w),
            &json!({"next_index": 16, "entries": 16, "subtree_hash": "ab".repeat(32)}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("proof_mismatch")),
        "{v}"
    );
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// Cost figures for BENCHMARKS.md (printed; no timing assertions):
/// `cargo test -p manager --test it bench_proof_cost -- --nocapture`.
#[tokio::test]
async fn bench_proof_cost() {
    for (name, views, log2) in [
        ("rfc6962", Views::RFC6962, 8u32),
        ("static", Views::STATIC, 8),
        ("static", Views::STATIC, 10),
    ] {
        let (app, sim, ids) = setup(log2, vec![log_config(4096, 9, views)]).await;
        let target = manager::verify::Target {
            log_id: ids[0],
            url: sim.logs()[0].url.clone(),
            kind: if views.tiles {
                ct_db::LogKind::Static
            } else {
                ct_db::LogKind::Rfc6962
            },
            monitoring_url: Some(sim.logs()[0].url.clone()),
            start_index: 0,
            end_index: 0,
        };
        let (_, w) = app.register(Some("bench")).await;
        let lease = claim(&app, &w).await.unwrap();
        let entries = fetch(&app.client, &lease, 4096).await;
        let _ = entries;
        let all = fetch(&app.client, &json!({"start": 0, "end": 4096, "log_url": target.url, "monitoring_url": target.url, "kind": if views.tiles {"static"} else {"rfc6962"}}), 4096).await;
        let tree =
            MerkleTree::from_leaf_hashes(all.iter().map(|e| ct_core::merkle::leaf_hash(&e.leaf)));
        let size = 1u64 << log2;
        let ranges = 4096 / size;
        let before = app.state.metrics.proof_requests.get();
        let started = std::time::Instant::now();
        for r in 0..ranges {
            let mut t = target.clone();
            t.start_index = r * size;
            t.end_index = (r + 1) * size;
            let h = tree.range_hash(t.start_index, t.end_index).unwrap();
            let p = manager::verify::prove(&app.state, &t, &h, None)
                .await
                .unwrap();
            assert_eq!(p.state(), "verified", "{p:?}");
        }
        let elapsed = started.elapsed();
        let requests = app.state.metrics.proof_requests.get() - before;
        let per_task = requests as f64 / ranges as f64;
        println!(
            "proof cost {name} tasks of 2^{log2}: {per_task:.2} log requests per task -> {:.0} per 1,000,000 entries; {:.3} ms wall per range (incl. local HTTP)",
            per_task * 1e6 / size as f64,
            elapsed.as_secs_f64() * 1e3 / ranges as f64
        );
        app.cleanup().await;
        sim.shutdown().await.unwrap();
    }
    // Pure CPU of the check itself (no network): verify_range over many ranges.
    let tree = MerkleTree::from_leaf_hashes(
        (0..65_536u64).map(|i| ct_core::merkle::leaf_hash(&i.to_be_bytes())),
    );
    let root = tree.root(65_536).unwrap();
    let mut work = Vec::new();
    for r in 0..16u64 {
        let (s, e) = (r * 4096, (r + 1) * 4096);
        let full = tree.inclusion_proof(s, 65_536).unwrap();
        work.push((s, e, tree.range_hash(s, e).unwrap(), full[12..].to_vec()));
    }
    let n = 100_000;
    let started = std::time::Instant::now();
    for i in 0..n {
        let (s, e, h, p) = &work[i % work.len()];
        assert!(manager::verify::verify_range(*s, *e, 65_536, h, p, &root).is_ok());
    }
    println!(
        "verify_range CPU: {:.2} us per range (tasks of 2^12 in a tree of 2^16, {n} ranges, debug build)",
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
