//! The worker's path: claim, heartbeat, upload, complete, fail; leases that
//! expire and resume; concurrent claims; scaling; export.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::harness::{ADMIN, TestApp, TestKey, entry, entry_of};

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
    // Growth extends the pending short task and adds aligned ones.
    assert_eq!(app.set_tree_size(log, 17).await, 2); // [8,12) extended, [12,16) [16,17)
    let rows: Vec<(u64, u64)> = sqlx::query_as(
        "SELECT start_index, end_index FROM tasks WHERE log_id = ? ORDER BY start_index",
    )
    .bind(log)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows, vec![(0, 4), (4, 8), (8, 12), (12, 16), (16, 17)]);
    app.cleanup().await;
}

#[tokio::test]
async fn claim_upload_complete() {
    let app = TestApp::spawn().await;
    let log = setup(&app, 8).await;
    let (_, token) = app.register(Some("w1")).await;
    let (_, other) = app.register(Some("w2")).await;
    let (status, v) = app
        .post("/v1/tasks/claim", Some(&token), &json!({"max_tasks": 1}))
        .await;
    assert_eq!(status, 200, "{v}");
    let t = &v["tasks"][0];
    let id = t["task_id"].as_u64().unwrap();
    assert_eq!(
        (
            t["start"].as_u64(),
            t["end"].as_u64(),
            t["next_index"].as_u64()
        ),
        (Some(0), Some(4), Some(0))
    );
    assert_eq!(
        (
            t["log_id"].as_u64(),
            t["kind"].as_str(),
            t["fetchers"].as_u64()
        ),
        (Some(log), Some("rfc6962"), Some(1))
    );
    assert_eq!(t["log_url"], "https://ct.example.org/flow/");

    // Upload: two matches, one not matching, one garbage.
    let jp = crate::harness::cert(&["www.example.co.jp", "example.com"]);
    let batch = json!({"entries": [
        entry_of(0, &jp),
        entry(1, &["shop.tokyo.jp"]),
        entry(2, &["example.com"]),
        {"index": 3, "leaf_input": "AAAA", "extra_data": ""},
    ]});
    let path = format!("/v1/tasks/{id}/entries");
    let (status, v) = app.post(&path, Some(&token), &batch).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["new"].as_u64(),
            v["duplicate"].as_u64(),
            v["rejected"].as_u64()
        ),
        (Some(2), Some(0), Some(2))
    );
    let rej: Vec<(u64, &str, u64)> = v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["code"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rej, vec![(2, "no_match", 422), (3, "undecodable", 422)]);
    assert_eq!(app.count("SELECT COUNT(*) FROM failed_entries").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM names WHERE name = 'www.example.co.jp' AND category = 'co.jp' AND registered_domain = 'example.co.jp'").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM names WHERE category = 'geographic'")
            .await,
        1
    );

    // Replay: duplicates, nothing new.
    let (status, v) = app.post(&path, Some(&token), &batch).await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["new"].as_u64(), v["duplicate"].as_u64()),
        (Some(0), Some(2))
    );
    // A different entry at a stored index is a conflict.
    let (_, v) = app
        .post(
            &path,
            Some(&token),
            &json!({"entries": [entry(0, &["evil.jp"])]}),
        )
        .await;
    assert_eq!(v["rejections"][0]["code"], "conflict");
    // The same certificate at another index is one certificate, two sightings.
    // (index 3 was garbage; uploading a real entry there now is fine.)
    let (_, v) = app
        .post(&path, Some(&token), &json!({"entries": [entry_of(3, &jp)]}))
        .await;
    assert_eq!(v["new"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM certificates").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM sightings").await, 3);

    // Outside the lease: another range, another worker.
    let (status, v) = app
        .post(
            &path,
            Some(&token),
            &json!({"entries": [entry(4, &["a.jp"])]}),
        )
        .await;
    assert_eq!((status, code(&v)), (403, "out_of_lease"));
    let (status, v) = app
        .post(
            &path,
            Some(&other),
            &json!({"entries": [entry(1, &["a.jp"])]}),
        )
        .await;
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
            &json!({"tasks": [{"task_id": id, "next_index": 9}]}),
        )
        .await;
    assert_eq!((status, code(&v)), (422, "invalid_index"));
    let (status, _) = app
        .post(
            "/v1/heartbeat",
            Some(&token),
            &json!({"tasks": [{"task_id": id, "next_index": 3, "entries": 3, "matches": 9}]}),
        )
        .await;
    assert_eq!(status, 422);
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

    // Complete: refused until every index is accounted for.
    let cpath = format!("/v1/tasks/{id}/complete");
    let (status, v) = app
        .post(
            &cpath,
            Some(&token),
            &json!({"next_index": 3, "entries": 3}),
        )
        .await;
    assert_eq!((status, code(&v)), (409, "incomplete"));
    let (status, v) = app
        .post(
            &cpath,
            Some(&token),
            &json!({"next_index": 4, "entries": 3}),
        )
        .await;
    assert_eq!((status, code(&v)), (409, "incomplete"));
    let (status, v) = app
        .post(
            &cpath,
            Some(&token),
            &json!({"next_index": 4, "entries": 4, "subtree_hash": "zz"}),
        )
        .await;
    assert_eq!((status, code(&v)), (422, "invalid_hash"));
    let (status, v) = app
        .post(
            &cpath,
            Some(&other),
            &json!({"next_index": 4, "entries": 4}),
        )
        .await;
    assert_eq!((status, code(&v)), (403, "not_leased"));
    let hash = "ab".repeat(32);
    let body =
        json!({"next_index": 4, "entries": 4, "matches": 3, "errors": 1, "subtree_hash": hash});
    let (status, v) = app.post(&cpath, Some(&token), &body).await;
    assert_eq!((status, v["state"].as_str()), (200, Some("done")), "{v}");
    // Replayed complete and upload after completion are harmless.
    let (status, _) = app.post(&cpath, Some(&token), &body).await;
    assert_eq!(status, 200);
    let (status, v) = app.post(&path, Some(&token), &batch).await;
    assert_eq!((status, v["new"].as_u64()), (200, Some(0)));
    let (_, v) = app
        .post(
            "/v1/heartbeat",
            Some(&token),
            &json!({"tasks": [{"task_id": id, "next_index": 4}]}),
        )
        .await;
    assert_eq!(v["tasks"][0]["status"], "done");
    let (entries, done): (u64, String) =
        sqlx::query_as("SELECT entries, state FROM tasks WHERE id = ?")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((entries, done.as_str()), (4, "done"));

    // Fail gives a task back from its index.
    let (_, v) = app.post("/v1/tasks/claim", Some(&token), &json!({})).await;
    let id2 = v["tasks"][0]["task_id"].as_u64().unwrap();
    let (status, _) = app
        .post(
            &format!("/v1/tasks/{id2}/fail"),
            Some(&token),
            &json!({"error": "log down", "index": 99}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, v) = app
        .post(
            &format!("/v1/tasks/{id2}/fail"),
            Some(&token),
            &json!({"error": "log down", "index": 6}),
        )
        .await;
    assert_eq!((status, v["next_index"].as_u64()), (200, Some(6)), "{v}");
    let (_, v) = app.post("/v1/tasks/claim", Some(&other), &json!({})).await;
    assert_eq!(
        (
            v["tasks"][0]["task_id"].as_u64(),
            v["tasks"][0]["next_index"].as_u64()
        ),
        (Some(id2), Some(6))
    );

    // Stats and export.
    let (_, v) = app.get("/v1/stats", None).await;
    assert_eq!(
        (
            v["certificates"].as_i64(),
            v["sightings"].as_i64(),
            v["tasks_done"].as_i64()
        ),
        (Some(2), Some(3), Some(1))
    );
    assert_eq!(v["last_hour"]["entries"], 4);
    let mut out = Vec::new();
    assert_eq!(
        manager::export::export(&app.pool, 0, &mut out)
            .await
            .unwrap(),
        3
    );
    let first: Value =
        serde_json::from_str(String::from_utf8(out).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["log_url"], "https://ct.example.org/flow/");
    assert_eq!(first["index"], 0);
    assert_eq!(first["leaf_hash"].as_str().map(str::len), Some(64));
    assert_eq!(
        first["dns_names"],
        json!(["example.com", "www.example.co.jp"])
    );
    let _ = log;
    app.cleanup().await;
}

#[tokio::test]
async fn lease_expiry_resumes_from_last_index() {
    let app = TestApp::spawn().await;
    setup(&app, 4).await;
    let (_, a) = app.register(Some("a")).await;
    let (_, b) = app.register(Some("b")).await;
    let (_, v) = app.post("/v1/tasks/claim", Some(&a), &json!({})).await;
    let id = v["tasks"][0]["task_id"].as_u64().unwrap();
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
            &json!({"tasks": [{"task_id": id, "next_index": 3, "entries": 3}]}),
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
    let (_, v) = app.post("/v1/tasks/claim", Some(&b), &json!({})).await;
    assert_eq!(
        (
            v["tasks"][0]["task_id"].as_u64(),
            v["tasks"][0]["next_index"].as_u64()
        ),
        (Some(id), Some(3))
    );
    // The old holder has lost it.
    let (_, v) = app
        .post(
            "/v1/heartbeat",
            Some(&a),
            &json!({"tasks": [{"task_id": id, "next_index": 4, "entries": 4}]}),
        )
        .await;
    assert_eq!(v["tasks"][0]["status"], "lost");
    let (status, _) = app
        .post(
            &format!("/v1/tasks/{id}/entries"),
            Some(&a),
            &json!({"entries": [entry(3, &["x.jp"])]}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            &format!("/v1/tasks/{id}/complete"),
            Some(&a),
            &json!({"next_index": 4, "entries": 4}),
        )
        .await;
    assert_eq!(status, 403);
    // The new holder completes with the lease's one remaining entry.
    let (status, v) = app
        .post(
            &format!("/v1/tasks/{id}/complete"),
            Some(&b),
            &json!({"next_index": 4, "entries": 4}),
        )
        .await;
    assert_eq!((status, code(&v)), (409, "incomplete"));
    let (status, v) = app
        .post(
            &format!("/v1/tasks/{id}/complete"),
            Some(&b),
            &json!({"next_index": 4, "entries": 1}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (entries, attempts): (u64, u32) =
        sqlx::query_as("SELECT entries, attempts FROM tasks WHERE id = ?")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((entries, attempts), (4, 2));
    app.cleanup().await;
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
        println!("CT_REAL_DATA unset: skipping real_entries");
        return;
    };
    let path = std::path::Path::new(&dir).join("get-entries");
    let Some(file) = std::fs::read_dir(&path)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(Result::ok)
    else {
        println!("no files under {}: skipping", path.display());
        return;
    };
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file.path()).unwrap()).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let n = entries.len() as u64;
    let mut config = crate::harness::test_config();
    config.task_size_log2 = 8;
    config.max_body_bytes = 16 << 20;
    let app = TestApp::spawn_with(config).await;
    setup(&app, n).await;
    let (_, a) = app.register(Some("real")).await;
    let (_, c) = app.post("/v1/tasks/claim", Some(&a), &json!({})).await;
    let id = c["tasks"][0]["task_id"].as_u64().unwrap();
    let batch: Vec<Value> = entries.iter().enumerate().map(|(i, e)| json!({"index": i, "leaf_input": e["leaf_input"], "extra_data": e["extra_data"]})).collect();
    let (status, v) = app
        .post(
            &format!("/v1/tasks/{id}/entries"),
            Some(&a),
            &json!({"entries": batch}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    println!("real entries from {}: {v}", file.path().display());
    assert!(v["new"].as_u64().unwrap() > 0);
    assert_eq!(
        v["new"].as_u64().unwrap() + v["rejected"].as_u64().unwrap(),
        n
    );
    app.cleanup().await;
}
