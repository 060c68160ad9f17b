//! Fleet collection on the manager's side: claims spread over logs and
//! operators, a log's newest entries ahead of its backlog, fetch budgets per
//! log and per operator in every lease, idle workers paced, cool-downs after
//! repeated failures, and retired logs collected to their final tree head.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::{ADMIN, TestApp, TestKey, log_list, test_config};

/// A manager with the default share of two tasks per log and worker.
async fn spawn() -> TestApp {
    TestApp::spawn_with(manager::Config {
        tasks_per_log: 2,
        ..test_config()
    })
    .await
}

async fn logs(app: &TestApp, n: usize, size: u64) -> Vec<u64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let key = TestKey::new();
        let host = hex::encode(&ct_core::sth::log_id(&key.spki)[..6]);
        let id = app
            .import_log(&format!("https://{host}.example.org/fleet/"), &key)
            .await;
        app.set_tree_size(id, size).await;
        ids.push(id);
    }
    ids
}

/// log id -> tasks in a claim answer.
fn per_log(claim: &Value) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for t in claim["tasks"].as_array().unwrap() {
        *out.entry(t["log_id"].as_u64().unwrap()).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn claims_spread_over_logs_thinnest_first() {
    let app = spawn().await; // tasks of 4 entries, 2 per log per worker
    let ids = logs(&app, 3, 32).await;
    let (_, a) = app.register(Some("a")).await;
    let (_, b) = app.register(Some("b")).await;
    let (status, v) = app
        .post("/v1/tasks/claim", Some(&a), &json!({"max_tasks": 4}))
        .await;
    assert_eq!(status, 200, "{v}");
    let first = per_log(&v);
    assert_eq!(first.values().sum::<usize>(), 4);
    assert!(first.len() >= 2, "one worker, several logs: {first:?}");
    assert!(
        first.values().all(|n| *n <= 2),
        "at most two tasks of one log: {first:?}"
    );
    // b goes where the fleet is thinnest: first the log a holds least of.
    let (_, v) = app
        .post("/v1/tasks/claim", Some(&b), &json!({"max_tasks": 1}))
        .await;
    let got = v["tasks"][0]["log_id"].as_u64().unwrap();
    let thinnest = ids
        .iter()
        .min_by_key(|id| first.get(id).copied().unwrap_or(0))
        .copied()
        .unwrap();
    assert_eq!(got, thinnest, "{first:?}");
    // Every lease carries the log's budget (the defaults here) and operator.
    let t = &v["tasks"][0];
    assert_eq!(t["budget"]["requests_per_sec"], 10.0);
    assert_eq!(t["budget"]["entries_per_request"], 256);
    assert_eq!(t["operator"], "Test Operator");
    app.cleanup().await;
}

#[tokio::test]
async fn budgets_per_log_and_operator_reach_the_worker() {
    let app = spawn().await;
    let ids = logs(&app, 1, 8).await;
    let (status, v) = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/v1/admin/logs/{}", ids[0]),
            &json!({"requests_per_sec": 3.5}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = app
        .send_json(
            reqwest::Method::PUT,
            "/v1/admin/operators/Test%20Operator",
            &json!({"entries_per_request": 100, "fetchers": 2, "operator_requests_per_sec": 7.0}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    for bad in [
        json!({"requests_per_sec": -1.0}),
        json!({"entries_per_request": 0}),
        json!({"fetchers": 5000}),
    ] {
        let (status, v) = app
            .send_json(
                reqwest::Method::PUT,
                "/v1/admin/operators/Test%20Operator",
                &bad,
            )
            .await;
        assert_eq!(status, 422, "{bad}: {v}");
    }
    let (_, w) = app.register(Some("w")).await;
    let (_, v) = app
        .post("/v1/tasks/claim", Some(&w), &json!({"max_tasks": 1}))
        .await;
    let t = &v["tasks"][0];
    assert_eq!(
        t["budget"],
        json!({"requests_per_sec": 3.5, "entries_per_request": 100, "fetchers": 2, "operator_requests_per_sec": 7.0})
    );
    let id = t["task_id"].as_u64().unwrap();
    let next = t["start"].as_u64().unwrap() + 2;
    let (_, v) = app
        .post(
            "/v1/heartbeat",
            Some(&w),
            &json!({"tasks": [{"task_id": id, "next_index": next, "entries": 2}]}),
        )
        .await;
    assert_eq!(v["fetchers"][0]["budget"]["requests_per_sec"], 3.5, "{v}");
    assert!(
        v["fetchers"][0]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_newest_entries_go_ahead_of_the_backlog() {
    let app = spawn().await;
    let backlog = logs(&app, 1, 64).await[0];
    let live = logs(&app, 1, 16).await[0];
    // The live log grows: its new range is handed out before any backlog.
    assert!(app.set_tree_size(live, 20).await > 0);
    let (_, w) = app.register(Some("w")).await;
    let (_, v) = app
        .post("/v1/tasks/claim", Some(&w), &json!({"max_tasks": 1}))
        .await;
    let t = &v["tasks"][0];
    assert_eq!(
        (t["log_id"].as_u64(), t["start"].as_u64()),
        (Some(live), Some(16)),
        "{v}"
    );
    let _ = backlog;
    app.cleanup().await;
}

#[tokio::test]
async fn idle_workers_wait_and_failing_ones_cool_down() {
    let app = spawn().await;
    let (_, w) = app.register(Some("w")).await;
    let (_, v) = app.post("/v1/tasks/claim", Some(&w), &json!({})).await;
    assert_eq!(v["tasks"], json!([]));
    assert!(
        v["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1000),
        "{v}"
    );
    assert_eq!(v["reason"], "no pending task");

    // Three failures in a row on one log: the worker is kept off it.
    let failing = logs(&app, 1, 64).await[0];
    for _ in 0..3 {
        let (_, v) = app
            .post("/v1/tasks/claim", Some(&w), &json!({"max_tasks": 1}))
            .await;
        let t = &v["tasks"][0];
        assert_eq!(t["log_id"].as_u64(), Some(failing), "{v}");
        let id = t["task_id"].as_u64().unwrap();
        let (status, _) = app
            .post(
                &format!("/v1/tasks/{id}/fail"),
                Some(&w),
                &json!({"error": "log answers 500"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (_, v) = app
        .post("/v1/tasks/claim", Some(&w), &json!({"max_tasks": 1}))
        .await;
    assert_eq!(v["tasks"], json!([]), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("cooling down"),
        "{v}"
    );
    // Another log is still fine for it; the heartbeat says why it is kept off.
    let other = logs(&app, 1, 64).await[0];
    let (_, v) = app
        .post("/v1/tasks/claim", Some(&w), &json!({"max_tasks": 4}))
        .await;
    let got = per_log(&v);
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![other], "{v}");
    let id = v["tasks"][0]["task_id"].as_u64().unwrap();
    let (_, v) = app
        .post(
            "/v1/heartbeat",
            Some(&w),
            &json!({"tasks": [{"task_id": id, "next_index": v["tasks"][0]["start"]}]}),
        )
        .await;
    assert_eq!(v["cooldowns"][0]["log_id"].as_u64(), Some(failing), "{v}");
    assert!(
        v["cooldowns"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("failures in a row"),
        "{v}"
    );
    // Another worker is not kept off.
    let (_, x) = app.register(Some("x")).await;
    let (_, v) = app
        .post("/v1/tasks/claim", Some(&x), &json!({"max_tasks": 4}))
        .await;
    assert!(per_log(&v).contains_key(&failing), "{v}");
    app.cleanup().await;
}

#[tokio::test]
async fn retired_logs_are_collected_to_their_final_tree_head() {
    let app = spawn().await;
    let key = TestKey::new();
    let mut list = log_list("https://retired.example.org/", &key, "retired");
    list["operators"][0]["logs"][0]["state"] = json!({"readonly": {"timestamp": "2025-01-01T00:00:00Z",
        "final_tree_head": {"tree_size": 10, "sha256_root_hash": ct_core::b64::encode(&[0u8; 32])}}});
    list["operators"][0]["logs"][0]["certspotter_qps"] = json!(4.0);
    list["operators"][0]["logs"][0]["certspotter_download_size"] = json!(32);
    let (status, v) = app.post("/v1/admin/logs", Some(ADMIN), &list).await;
    assert_eq!(status, 200, "{v}");
    let (id, enabled, final_size, rps, batch): (u64, bool, Option<u64>, Option<f64>, Option<u32>) =
        sqlx::query_as(
            "SELECT id, enabled, final_tree_size, requests_per_sec, entries_per_request FROM logs",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        (enabled, final_size, rps, batch),
        (true, Some(10), Some(4.0), Some(32))
    );
    // A head larger than the final one plans only up to the final tree size.
    app.set_tree_size(id, 40).await;
    let (end,): (u64,) = sqlx::query_as("SELECT MAX(end_index) FROM tasks WHERE log_id = ?")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(end, 10);
    app.cleanup().await;
}
