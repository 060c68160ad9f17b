//! The tree-head poller against a tiny log served by the test: a good
//! signature plans tasks, a bad one is recorded and never planned from.

use axum::Router;
use axum::routing::get;
use serde_json::json;

use crate::harness::{ADMIN, TestApp, TestKey, log_list};

/// Serves `get-sth` and a static `checkpoint` signed by `key` (or by `signer`).
async fn log_server(key: &TestKey, size: u64) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let root = [7u8; 32];
    let ts = 1_700_000_000_000u64;
    let ds = key.sign(&ct_core::sth::tree_head_signed_bytes(ts, size, &root));
    let sth = json!({
        "tree_size": size, "timestamp": ts,
        "sha256_root_hash": ct_core::b64::encode(&root),
        "tree_head_signature": ct_core::b64::encode(&ds.encode()),
    });
    let origin = format!("{}/static", base.trim_start_matches("http://"));
    let cp = ct_core::checkpoint::format_checkpoint(
        &origin,
        size,
        &root,
        &origin,
        &ct_core::sth::log_id(&key.spki),
        ts,
        &ds,
    );
    let app = Router::new()
        .route(
            "/rfc/ct/v1/get-sth",
            get(move || async move { axum::Json(sth) }),
        )
        .route("/mon/checkpoint", get(move || async move { cp }))
        .route("/broken/ct/v1/get-sth", get(|| async { "not json" }))
        // A redirect to the good log: never followed.
        .route(
            "/moved/ct/v1/get-sth",
            get(|| async { axum::response::Redirect::temporary("/rfc/ct/v1/get-sth") }),
        );
    let h = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, h)
}

#[tokio::test]
async fn poll_verifies_and_plans() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let (base, server) = log_server(&key, 10).await;
    let good = app.import_log(&format!("{base}/rfc/"), &key).await;
    let (status, v) = app
        .post(
            &format!("/v1/admin/logs/{good}/poll"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["verified"].as_bool(),
            v["tree_size"].as_u64(),
            v["tasks_added"].as_u64()
        ),
        (Some(true), Some(10), Some(3))
    );

    // Same server, but the log list says another key: recorded unverified, no tasks.
    let other = TestKey::new();
    let (base2, server2) = log_server(&other, 12).await;
    let bad = app.import_log(&format!("{base2}/rfc/"), &key).await;
    let (status, v) = app
        .post(
            &format!("/v1/admin/logs/{bad}/poll"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["verified"].as_bool(), v["tasks_added"].as_u64()),
        (Some(false), Some(0))
    );
    assert!(v["error"].as_str().unwrap().contains("signature"));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM sths WHERE log_id = {bad} AND verified = 0 AND error IS NOT NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM tasks WHERE log_id = {bad}"))
            .await,
        0
    );

    // A broken answer is an error on the log, not a 500.
    let broken = app.import_log(&format!("{base}/broken/"), &key).await;
    let (status, v) = app
        .post(
            &format!("/v1/admin/logs/{broken}/poll"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(v["error"].as_str().unwrap().contains("get-sth"));

    // Log URLs come from the admin's list: a redirect is an error, not followed.
    let moved = app.import_log(&format!("{base}/moved/"), &key).await;
    let (status, v) = app
        .post(
            &format!("/v1/admin/logs/{moved}/poll"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!((status, v["verified"].as_bool()), (200, Some(false)), "{v}");
    assert!(v["error"].as_str().unwrap().contains("307"), "{v}");

    // A static log: checkpoint under the monitoring URL, origin from the submission URL.
    let mut list = log_list("https://unused.example/", &key, "usable");
    list["operators"][0]["logs"] = json!([]);
    list["operators"][0]["tiled_logs"] = json!([{
        "description": "static test", "log_id": ct_core::b64::encode(&ct_core::sth::log_id(&key.spki)),
        "key": ct_core::b64::encode(&key.spki), "submission_url": format!("{base}/static/"),
        "monitoring_url": format!("{base}/mon/"), "mmd": 60, "state": {"usable": {"timestamp": "2025-01-01T00:00:00Z"}}
    }]);
    let (status, v) = app.post("/v1/admin/logs", Some(ADMIN), &list).await;
    assert_eq!((status, v["inserted"].as_u64()), (200, Some(1)), "{v}");
    let (sid,): (u64,) = sqlx::query_as("SELECT id FROM logs WHERE kind = 'static'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, v) = app
        .post(
            &format!("/v1/admin/logs/{sid}/poll"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["verified"].as_bool(), v["tree_size"].as_u64()),
        (Some(true), Some(10)),
        "{v}"
    );
    let (_, v) = app
        .post("/v1/admin/logs/4242/poll", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(v["error"]["code"], "not_found");
    server.abort();
    server2.abort();
    app.cleanup().await;
}
