//! The worker's path: claim, heartbeat, upload, complete, fail; leases that
//! expire and resume; concurrent claims; scaling; export.

use std::collections::HashSet;

use serde_json::{Value, json};

use ct_core::entry::{Depth, Examiner};
use ct_core::merkle::MerkleTree;
use ctlog_sim::Views;

use crate::harness::{ADMIN, TestApp, TestKey, entry};
use crate::integrity::{Fetched, Play, fetch, log_config, setup as setup_sim, work};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

async fn setup(app: &TestApp, size: u64) -> u64 {
    let key = TestKey::new();
    let log = app.import_log("https://ct.example.org/flow/", &key).await;
    app.set_tree_size(log, size).await;
    log
}

#[tokio::test]
async fn planning_grows_with_the_tree() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let log = app.import_log("https://ct.example.org/plan/", &key).await;
    assert_eq!(app.set_tree_size(log, 10).await, 3); // [0,4) [4,8) [8,10)
    // An unverified head is never used.
    sqlx::query("INSERT INTO sths (log_id, tree_size, timestamp_ms, root_hash, signature, verified, fetched_at) VALUES (?, 1000, 1, ?, '', 0, 0)")
        .bind(log).bind(&[1u8; 32][..]).execute(&app.pool).await.unwrap();
    assert_eq!(app.set_tree_size(log, 10).await, 0);
    // Growth adds complete aligned subtrees; a planned range never changes.
    assert_eq!(app.set_tree_size(log, 17).await, 3); // [10,12) [12,16) [16,17)
    let rows: Vec<(u64, u64)> = sqlx::query_as(
        "SELECT start_index, end_index FROM tasks WHERE log_id = ? ORDER BY start_index",
    )
    .bind(log)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(0, 4), (4, 8), (8, 10), (10, 12), (12, 16), (16, 17)]
    );
    app.cleanup().await;
}

/// An upload entry of `e` with its audit path in a range of `tree`.
fn upload_entry(e: &Fetched, start: u64, tree: &MerkleTree, span: u64) -> Value {
    let path: Vec<String> = tree
        .inclusion_proof(e.index - start, span)
        .unwrap()
        .iter()
        .map(hex::encode)
        .collect();
    json!({"index": e.index, "leaf_input": ct_core::b64::encode(&e.leaf),
        "extra_data": ct_core::b64::encode(&e.extra), "audit_path": path})
}

#[tokio::test]
async fn claim_upload_complete() {
    // 32 entries of a simulated log, tasks of 16.
    let (app, sim, ids) = setup_sim(4, vec![log_config(32, 7, Views::RFC6962)]).await;
    let log = ids[0];
    let (_, token) = app.register(Some("w1")).await;
    let (_, other) = app.register(Some("w2")).await;
    let (status, v) = app
        .post("/v1/tasks/claim", Some(&token), &json!({"max_tasks": 1}))
        .await;
    assert_eq!(status, 200, "{v}");
    let t = v["tasks"][0].clone();
    let id = t["task_id"].as_u64().unwrap();
    assert_eq!(
        (
            t["start"].as_u64(),
            t["end"].as_u64(),
            t["next_index"].as_u64()
        ),
        (Some(0), Some(16), Some(0))
    );
    assert_eq!(
        (
            t["log_id"].as_u64(),
            t["kind"].as_str(),
            t["fetchers"].as_u64()
        ),
        (Some(log), Some("rfc6962"), Some(1))
    );
    assert_eq!(t["log_url"].as_str(), Some(sim.logs()[0].url.as_str()));

    let entries = fetch(&app.client, &t, 32).await;
    let tree =
        MerkleTree::from_leaf_hashes(entries.iter().map(|e| ct_core::merkle::leaf_hash(&e.leaf)));
    let hash = hex::encode(tree.root(16).unwrap());
    let examiner = Examiner::default();
    let (matching, other_entries): (Vec<&Fetched>, Vec<&Fetched>) = entries.iter().partition(|e| {
        examiner
            .examine(&e.leaf, &e.extra, Depth::MatchOnly)
            .matched()
    });
    assert!(matching.len() >= 2 && !other_entries.is_empty());

    // Upload: the matches, one entry that does not match, one real entry at
    // the wrong index, one self-made certificate.
    let mut batch: Vec<Value> = matching
        .iter()
        .map(|e| upload_entry(e, 0, &tree, 16))
        .collect();
    batch.push(upload_entry(other_entries[0], 0, &tree, 16));
    let mut moved = upload_entry(matching[0], 0, &tree, 16);
    moved["index"] = json!(other_entries[0].index);
    batch.push(moved);
    let mut forged = entry(other_entries[0].index, &["forged.example.jp"]);
    forged["audit_path"] = upload_entry(other_entries[0], 0, &tree, 16)["audit_path"].clone();
    batch.push(forged);
    let path = format!("/v1/tasks/{id}/entries");
    let body = json!({"entries": batch, "subtree_hash": hash});
    let (status, v) = app.post(&path, Some(&token), &body).await;
    assert_eq!(status, 200, "{v}");
    let n = matching.len() as u64;
    assert_eq!(
        (
            v["new"].as_u64(),
            v["duplicate"].as_u64(),
            v["rejected"].as_u64()
        ),
        (Some(n), Some(0), Some(3)),
        "{v}"
    );
    let codes: Vec<&str> = v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["no_match", "bad_proof", "bad_proof"]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM names WHERE name = 'forged.example.jp'")
            .await,
        0
    );
    // Replay: duplicates, nothing new.
    let (status, v) = app.post(&path, Some(&token), &body).await;
    assert_eq!(
        (status, v["new"].as_u64(), v["duplicate"].as_u64()),
        (200, Some(0), Some(n))
    );
    // Without a subtree hash, or with one of another length: refused at the edge.
    let (status, v) = app.post(&path, Some(&token), &json!({"entries": []})).await;
    assert_eq!((status, code(&v)), (400, "invalid_json"), "{v}");
    let (status, v) = app
        .post(
            &path,
            Some(&token),
            &json!({"entries": [], "subtree_hash": "abcd"}),
        )
        .await;
    assert_eq!((status, code(&v)), (400, "invalid_json"), "{v}");

    // Outside the lease, and another worker's lease.
    let mut far = upload_entry(&entries[3], 0, &tree, 16);
    far["index"] = json!(20);
    let far = json!({"entries": [far], "subtree_hash": hash});
    let (status, v) = app.post(&path, Some(&token), &far).await;
    assert_eq!((status, code(&v)), (403, "out_of_lease"));
    let (status, v) = app.post(&path, Some(&other), &body).await;
    assert_eq!((status, code(&v)), (403, "not_leased"));

    // Heartbeat: progress, bad values, a task that is not ours.
    let (status, v) = app.post("/v1/heartbeat", Some(&token), &json!({"tasks": [{"task_id": id, "next_index": 2, "entries": 2, "matches": 2}, {"task_id": 9999, "next_index": 0}]})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tasks"][0]["status"], "active");
    assert_eq!(v["tasks"][1]["status"], "lost");
    assert_eq!(v["fetchers"][0]["fetchers"], 2);
    let (status, v) = app
        .post(
            "/v1/heartbeat",
            Some(&token),
            &json!({"tasks": [{"task_id": id, "next_index": 99}]}),
        )
        .await;
    assert_eq!((status, code(&v)), (422, "invalid_index"));
    let (status, v) = app
        .post(
            "/v1/heartbeat",
            Some(&token),
            &json!({"tasks": [{"task_id": id, "next_index": 3, "entries": 3, "matches": 9}]}),
        )
        .await;
    assert_eq!((status, code(&v)), (422, "invalid_counts"));
    let (status, v) = app.post("/v1/heartbeat", Some(&token), &json!({"tasks": [{"task_id": id, "next_index": 3, "entries": 3, "rate_limited": u64::MAX}]})).await;
    assert_eq!((status, code(&v)), (422, "invalid_counts"));
    let (status, _) = app
        .post(
            "/v1/heartbeat",
            Some(&token),
            &json!({"tasks": [{"task_id": id, "next_index": 3}, {"task_id": id, "next_index": 3}]}),
        )
        .await;
    assert_eq!(status, 400);
    let (next,): (u64,) = sqlx::query_as("SELECT next_index FROM tasks WHERE id = ?")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(next, 2, "refused heartbeats changed nothing");

    // Complete: refused until the whole range and every match are accounted for.
    let cpath = format!("/v1/tasks/{id}/complete");
    let (status, v) = app
        .post(
            &cpath,
            Some(&token),
            &json!({"next_index": 15, "entries": 15, "subtree_hash": hash}),
        )
        .await;
    assert_eq!((status, code(&v)), (409, "incomplete"));
    let (status, v) = app
        .post(
            &cpath,
            Some(&token),
            &json!({"next_index": 16, "entries": 16, "subtree_hash": "zz"}),
        )
        .await;
    assert_eq!((status, code(&v)), (400, "invalid_json"));
    let (status, v) = app
        .post(
            &cpath,
            Some(&other),
            &json!({"next_index": 16, "entries": 16, "subtree_hash": hash}),
        )
        .await;
    assert_eq!((status, code(&v)), (403, "not_leased"));
    let (status, v) = app
        .post(
            &cpath,
            Some(&token),
            &json!({"next_index": 16, "entries": 16, "matches": n + 1, "subtree_hash": hash}),
        )
        .await;
    assert_eq!((status, code(&v)), (409, "unaccounted_matches"), "{v}");
    let body = json!({"next_index": 16, "entries": 16, "matches": n, "subtree_hash": hash});
    let (status, v) = app.post(&cpath, Some(&token), &body).await;
    assert_eq!(
        (status, v["state"].as_str(), v["proof"].as_str()),
        (200, Some("done"), Some("verified")),
        "{v}"
    );
    // A replayed complete is harmless; an upload after completion is refused.
    let (status, _) = app.post(&cpath, Some(&token), &body).await;
    assert_eq!(status, 200);
    let (status, v) = app
        .post(
            &path,
            Some(&token),
            &json!({"entries": [upload_entry(matching[0], 0, &tree, 16)], "subtree_hash": hash}),
        )
        .await;
    assert_eq!((status, code(&v)), (403, "not_leased"));
    let (_, v) = app
        .post(
            "/v1/heartbeat",
            Some(&token),
            &json!({"tasks": [{"task_id": id, "next_index": 16}]}),
        )
        .await;
    assert_eq!(v["tasks"][0]["status"], "done");

    // Fail gives a task back whole, whatever index the worker names.
    let (_, v) = app.post("/v1/tasks/claim", Some(&token), &json!({})).await;
    let id2 = v["tasks"][0]["task_id"].as_u64().unwrap();
    let (status, v) = app
        .post(
            &format!("/v1/tasks/{id2}/fail"),
            Some(&token),
            &json!({"error": "log down", "index": 32}),
        )
        .await;
    assert_eq!(
        (status, v["next_index"].as_u64(), v["state"].as_str()),
        (200, Some(16), Some("pending")),
        "{v}"
    );
    let (_, v) = app.post("/v1/tasks/claim", Some(&other), &json!({})).await;
    assert_eq!(
        (
            v["tasks"][0]["task_id"].as_u64(),
            v["tasks"][0]["next_index"].as_u64()
        ),
        (Some(id2), Some(16))
    );

    // Stats and export.
    let (_, v) = app.get("/v1/stats", None).await;
    assert_eq!(
        (
            v["certificates"].as_u64(),
            v["sightings"].as_u64(),
            v["tasks_done"].as_i64()
        ),
        (Some(n), Some(n), Some(1))
    );
    assert_eq!(v["last_hour"]["entries"], 16);
    let mut out = Vec::new();
    assert_eq!(
        manager::export::export(&app.pool, 0, &mut out)
            .await
            .unwrap(),
        n
    );
    let first: Value =
        serde_json::from_str(String::from_utf8(out).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["log_url"].as_str(), Some(sim.logs()[0].url.as_str()));
    assert_eq!(first["index"].as_u64(), Some(matching[0].index));
    assert_eq!(first["leaf_hash"].as_str().map(str::len), Some(64));
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn lease_expiry_returns_the_task_whole() {
    let (app, sim, _) = setup_sim(4, vec![log_config(16, 3, Views::RFC6962)]).await;
    let (_, a) = app.register(Some("a")).await;
    let (_, b) = app.register(Some("b")).await;
    let (_, v) = app.post("/v1/tasks/claim", Some(&a), &json!({})).await;
    let lease = v["tasks"][0].clone();
    let id = lease["task_id"].as_u64().unwrap();
    let (_, v) = app.post("/v1/tasks/claim", Some(&b), &json!({})).await;
    assert_eq!(
        v["tasks"],
        json!([]),
        "a leased task is not handed out twice"
    );
    let (status, _) = app
        .post(
            "/v1/heartbeat",
            Some(&a),
            &json!({"tasks": [{"task_id": id, "next_index": 16, "entries": 16}]}),
        )
        .await;
    assert_eq!(status, 200);
    // Not yet expired: nothing to reap.
    let (_, v) = app
        .post("/v1/admin/leases/expire", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(v["expired"], 0);
    let (_, v) = app
        .post(
            "/v1/admin/leases/expire",
            Some(ADMIN),
            &json!({"all": true}),
        )
        .await;
    assert_eq!(v["expired"], 1);
    // The next lease starts at the range's start: a's word moved nothing.
    let (_, v) = app.post("/v1/tasks/claim", Some(&b), &json!({})).await;
    assert_eq!(
        (
            v["tasks"][0]["task_id"].as_u64(),
            v["tasks"][0]["next_index"].as_u64()
        ),
        (Some(id), Some(0))
    );
    // The old holder has lost it.
    let (_, v) = app
        .post(
            "/v1/heartbeat",
            Some(&a),
            &json!({"tasks": [{"task_id": id, "next_index": 16, "entries": 16}]}),
        )
        .await;
    assert_eq!(v["tasks"][0]["status"], "lost");
    let (status, v) = work(&app, &a, &lease, 16, Play::Honest).await;
    assert_eq!((status, code(&v)), (403, "not_leased"), "{v}");
    // The new holder does the whole range.
    let (status, v) = work(&app, &b, &lease, 16, Play::Honest).await;
    assert_eq!(
        (status, v["proof"].as_str()),
        (200, Some("verified")),
        "{v}"
    );
    let (entries, attempts): (u64, u32) =
        sqlx::query_as("SELECT entries, attempts FROM tasks WHERE id = ?")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (entries, attempts),
        (32, 2),
        "both leases' entries are counted"
    );
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn tiny_lease_expires_by_time() {
    let mut config = crate::harness::test_config();
    config.lease = std::time::Duration::from_millis(1);
    let app = TestApp::spawn_with(config).await;
    setup(&app, 4).await;
    let (_, a) = app.register(Some("a")).await;
    let (_, b) = app.register(Some("b")).await;
    let (_, v) = app.post("/v1/tasks/claim", Some(&a), &json!({})).await;
    let id = v["tasks"][0]["task_id"].as_u64().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // The claim itself takes over expired leases.
    let (_, v) = app.post("/v1/tasks/claim", Some(&b), &json!({})).await;
    assert_eq!(v["tasks"][0]["task_id"].as_u64(), Some(id));
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_claims_never_share_a_task() {
    let app = TestApp::spawn().await;
    setup(&app, 4 * 60).await; // 60 tasks
    let mut tokens = Vec::new();
    for i in 0..12 {
        tokens.push(app.register(Some(&format!("c{i}"))).await.1);
    }
    let mut handles = Vec::new();
    for t in tokens {
        let client = app.client.clone();
        let url = app.url("/v1/tasks/claim");
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut empty = 0;
            while empty < 2 {
                let resp = client
                    .post(&url)
                    .bearer_auth(&t)
                    .json(&json!({"max_tasks": 2}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                let v: Value = resp.json().await.unwrap();
                let tasks = v["tasks"].as_array().unwrap();
                if tasks.is_empty() {
                    empty += 1;
                }
                got.extend(tasks.iter().map(|t| t["task_id"].as_u64().unwrap()));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a task was handed out twice");
    assert_eq!(all.len(), 60);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tasks WHERE state = 'leased'")
            .await,
        60
    );
    app.cleanup().await;
}

#[tokio::test]
async fn scaling_and_log_settings() {
    let app = TestApp::spawn().await;
    let log = setup(&app, 4 * 8).await;
    let (_, a) = app.register(Some("s")).await;
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/logs/{log}")))
        .bearer_auth(ADMIN)
        .json(&json!({"max_fetchers": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (_, v) = app.post("/v1/tasks/claim", Some(&a), &json!({})).await;
    let id = v["tasks"][0]["task_id"].as_u64().unwrap();
    let mut fetchers = Vec::new();
    for (n, rl) in [(1, 0), (2, 0), (3, 0), (4, 0), (4, 2), (4, 2)] {
        let (status, v) = app.post("/v1/heartbeat", Some(&a), &json!({"tasks": [{"task_id": id, "next_index": n, "entries": n, "rate_limited": rl}]})).await;
        assert_eq!(status, 200, "{v}");
        fetchers.push(v["fetchers"][0]["fetchers"].as_u64().unwrap());
    }
    // +1 per successful report up to the cap of 3, halved on 429s; a replayed report changes nothing.
    assert_eq!(fetchers, vec![2, 3, 3, 3, 1, 1]);
    // Disabling a log stops its claims; priority orders them.
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/logs/{log}")))
        .bearer_auth(ADMIN)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (_, v) = app.post("/v1/tasks/claim", Some(&a), &json!({})).await;
    assert_eq!(v["tasks"], json!([]));
    let key = TestKey::new();
    let low = app.import_log("https://ct.example.org/low/", &key).await;
    let key2 = TestKey::new();
    let high = app.import_log("https://ct.example.org/high/", &key2).await;
    app.set_tree_size(low, 8).await;
    app.set_tree_size(high, 8).await;
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/logs/{high}")))
        .bearer_auth(ADMIN)
        .json(&json!({"priority": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (_, v) = app
        .post("/v1/tasks/claim", Some(&a), &json!({"max_tasks": 2}))
        .await;
    let logs: Vec<u64> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["log_id"].as_u64().unwrap())
        .collect();
    assert_eq!(logs, vec![high, high]);
    // Start index: planning begins there.
    let key3 = TestKey::new();
    let late = app.import_log("https://ct.example.org/late/", &key3).await;
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/logs/{late}")))
        .bearer_auth(ADMIN)
        .json(&json!({"start_index": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    app.set_tree_size(late, 9).await;
    let rows: Vec<(u64, u64)> = sqlx::query_as(
        "SELECT start_index, end_index FROM tasks WHERE log_id = ? ORDER BY start_index",
    )
    .bind(late)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows, vec![(6, 8), (8, 9)]);
    app.cleanup().await;
}

#[tokio::test]
async fn real_entries() {
    let Ok(dir) = std::env::var("CT_REAL_DATA") else {
        println!("skipped: CT_REAL_DATA is not set");
        return;
    };
    // Real get-entries answers replayed by ctlog-sim as a log of its own (with
    // a real tree over them), collected through the whole protocol.
    let path = std::path::Path::new(&dir).join("get-entries");
    assert!(
        path.is_dir(),
        "CT_REAL_DATA has no get-entries/: {}",
        path.display()
    );
    let log = ctlog_sim::LogConfig {
        source: ctlog_sim::Source::Replay(path),
        ..ctlog_sim::LogConfig::generated(0, 0)
    };
    let (app, sim, ids) = setup_sim(6, vec![log]).await;
    let (_, a) = app.register(Some("real")).await;
    let size = sim.logs()[0].truth.entries;
    crate::integrity::drain(&app, &[&a], size).await;
    let stored = crate::integrity::stored(&app, ids[0]).await;
    let truth = crate::integrity::truth(&sim, 0);
    println!(
        "real entries: {size} in the log, {} .jp matches stored",
        stored.len()
    );
    assert!(!truth.is_empty(), "the real data holds .jp entries");
    assert_eq!(stored, truth);
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// Totals saturate: a task whose totals are at the column's limit still
/// returns its lease, and the reaper goes on to the other rows.
#[tokio::test]
async fn totals_saturate_and_the_reaper_goes_on() {
    let app = TestApp::spawn().await;
    setup(&app, 8).await;
    let (_, w) = app.register(Some("w")).await;
    let (_, v) = app
        .post("/v1/tasks/claim", Some(&w), &json!({"max_tasks": 2}))
        .await;
    let leases: Vec<(u64, u64)> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["task_id"].as_u64().unwrap(), t["start"].as_u64().unwrap()))
        .collect();
    assert_eq!(leases.len(), 2);
    for (id, start) in &leases {
        let (status, v) = app
            .post("/v1/heartbeat", Some(&w), &json!({"tasks": [{"task_id": id, "next_index": start, "entries": 4, "rate_limited": 9}]}))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let ids: Vec<u64> = leases.iter().map(|l| l.0).collect();
    sqlx::query("UPDATE tasks SET rate_limited = 18446744073709551615, entries = 18446744073709551614 WHERE id = ?")
        .bind(ids[0])
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, v) = app
        .post(
            "/v1/admin/leases/expire",
            Some(ADMIN),
            &json!({"all": true}),
        )
        .await;
    assert_eq!((status, v["expired"].as_u64()), (200, Some(2)), "{v}");
    let (rl, entries): (u64, u64) =
        sqlx::query_as("SELECT rate_limited, entries FROM tasks WHERE id = ?")
            .bind(ids[0])
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((rl, entries), (u64::MAX, u64::MAX));
    // The counters of the public reads saturate too.
    crate::reads::assert_counted(&app).await;
    app.cleanup().await;
}
