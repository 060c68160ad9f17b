//! Registration, authentication, and every bad request answering 4xx in our
//! JSON error shape without changing anything.

use serde_json::{Value, json};

use crate::harness::{ADMIN, TestApp, TestKey, log_list};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn register_and_authenticate() {
    let app = TestApp::spawn().await;
    let (id, token) = app.register(Some("alice")).await;
    assert!(id > 0 && token.len() == 64);
    // A generated name.
    let (status, v) = app.post("/v1/workers/register", None, &json!({})).await;
    assert_eq!(status, 200);
    assert!(v["name"].as_str().unwrap().starts_with("worker-"));
    // Duplicate and invalid names.
    let (status, v) = app
        .post("/v1/workers/register", None, &json!({"name": "alice"}))
        .await;
    assert_eq!((status, code(&v)), (409, "name_taken"));
    let (status, v) = app
        .post("/v1/workers/register", None, &json!({"name": " bad\u{0}"}))
        .await;
    assert_eq!((status, code(&v)), (422, "invalid_name"));
    // The token hash is stored, never the token.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM workers WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    // Missing, malformed and unknown tokens.
    let (status, v) = app.post("/v1/tasks/claim", None, &json!({})).await;
    assert_eq!((status, code(&v)), (401, "unauthorized"));
    let (status, _) = app.post("/v1/tasks/claim", Some("nope"), &json!({})).await;
    assert_eq!(status, 401);
    let resp = app
        .client
        .post(app.url("/v1/tasks/claim"))
        .header("authorization", "Basic xyz")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // A good token.
    let (status, v) = app.post("/v1/tasks/claim", Some(&token), &json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tasks"], json!([]));
    assert_eq!(app.count("SELECT COUNT(*) FROM workers").await, 2);
    app.cleanup().await;
}

#[tokio::test]
async fn malformed_requests() {
    let app = TestApp::spawn().await;
    let (_, token) = app.register(Some("bob")).await;
    // Malformed JSON, wrong types, wrong content type.
    let resp = app
        .client
        .post(app.url("/v1/workers/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "invalid_json");
    let (status, v) = app
        .post(
            "/v1/heartbeat",
            Some(&token),
            &json!({"tasks": [{"task_id": "x"}]}),
        )
        .await;
    assert_eq!((status, code(&v)), (400, "invalid_json"));
    let resp = app
        .client
        .post(app.url("/v1/tasks/claim"))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    // Bad path parameter, unknown route, wrong method.
    let (status, v) = app
        .post(
            "/v1/tasks/abc/complete",
            Some(&token),
            &json!({"next_index": 0, "entries": 0}),
        )
        .await;
    assert_eq!((status, code(&v)), (400, "invalid_path"));
    let (status, v) = app.get("/v1/nothing", None).await;
    assert_eq!((status, code(&v)), (404, "not_found"));
    let (status, v) = app.get("/v1/tasks/claim", None).await;
    assert_eq!((status, code(&v)), (405, "method_not_allowed"));
    // Unknown task.
    let (status, v) = app
        .post(
            "/v1/tasks/999/complete",
            Some(&token),
            &json!({"next_index": 0, "entries": 0, "subtree_hash": "00".repeat(32)}),
        )
        .await;
    assert_eq!((status, code(&v)), (404, "not_found"));
    let (status, v) = app
        .post(
            "/v1/tasks/999/entries",
            Some(&token),
            &json!({"entries": [], "subtree_hash": "00".repeat(32)}),
        )
        .await;
    assert_eq!((status, code(&v)), (404, "not_found"));
    // Body over the limit (256 KiB in tests).
    let big = "A".repeat(300 * 1024);
    let (status, v) = app
        .post(
            "/v1/tasks/1/entries",
            Some(&token),
            &json!({"entries": [{"index": 0, "leaf_input": big, "extra_data": ""}]}),
        )
        .await;
    assert_eq!((status, code(&v)), (413, "payload_too_large"));
    // Huge numbers and negative numbers are rejected as JSON errors, not 500s.
    let (status, _) = app
        .post("/v1/tasks/claim", Some(&token), &json!({"max_tasks": -1}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post(
            "/v1/tasks/claim",
            Some(&token),
            &json!({"max_tasks": 4_000_000_000u64}),
        )
        .await;
    assert!(status == 200 || status == 400, "{status}");
    app.cleanup().await;
}

#[tokio::test]
async fn admin_calls() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let list = log_list("https://ct.example.org/log2025", &key, "usable");
    // Without or with a wrong admin token.
    let (status, _) = app.post("/v1/admin/logs", None, &list).await;
    assert_eq!(status, 401);
    let (_, worker_token) = app.register(Some("carol")).await;
    let (status, _) = app.post("/v1/admin/logs", Some(&worker_token), &list).await;
    assert_eq!(status, 401);
    // Import, then import again: updated, not duplicated.
    let (status, v) = app.post("/v1/admin/logs", Some(ADMIN), &list).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["inserted"].as_u64(), v["updated"].as_u64()),
        (Some(1), Some(0))
    );
    let list2 = log_list("https://ct.example.org/log2025/", &key, "readonly");
    let (status, v) = app.post("/v1/admin/logs", Some(ADMIN), &list2).await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["inserted"].as_u64(), v["updated"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM logs").await, 1);
    let (_, logs) = app.get("/v1/logs", None).await;
    assert_eq!(logs[0]["state"], "readonly");
    assert_eq!(logs[0]["url"], "https://ct.example.org/log2025/");
    // A log whose log_id does not fit its key is skipped.
    let mut bad = log_list("https://ct.example.org/other/", &key, "usable");
    bad["operators"][0]["logs"][0]["log_id"] = json!(ct_core::b64::encode(&[1u8; 32]));
    let (status, v) = app.post("/v1/admin/logs", Some(ADMIN), &bad).await;
    assert_eq!(status, 200);
    assert_eq!(v["skipped"].as_array().map(Vec::len), Some(1));
    // A body that is not a log list.
    let (status, v) = app
        .post("/v1/admin/logs", Some(ADMIN), &json!({"operators": 3}))
        .await;
    assert_eq!((status, code(&v)), (400, "invalid_json"));
    // Update a log.
    let id = logs[0]["id"].as_u64().unwrap();
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/logs/{id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"enabled": false, "priority": 5, "start_index": 100, "max_fetchers": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            v["enabled"].as_bool(),
            v["priority"].as_i64(),
            v["start_index"].as_u64(),
            v["max_fetchers"].as_u64()
        ),
        (Some(false), Some(5), Some(100), Some(3))
    );
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/logs/{id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"max_fetchers": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/logs/{id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"bogus": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = app
        .client
        .patch(app.url("/v1/admin/logs/4242"))
        .bearer_auth(ADMIN)
        .json(&json!({"priority": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // Workers: list and revoke.
    let (status, v) = app.get("/v1/admin/workers", Some(ADMIN)).await;
    assert_eq!(status, 200);
    let wid = v[0]["id"].as_u64().unwrap();
    let (status, _) = app
        .post(
            &format!("/v1/admin/workers/{wid}/revoke"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post("/v1/tasks/claim", Some(&worker_token), &json!({}))
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post("/v1/admin/workers/999/revoke", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(status, 404);
    let (_, v) = app.get("/v1/workers", None).await;
    assert_eq!(v, json!([]));
    app.cleanup().await;
}

#[tokio::test]
async fn public_endpoints() {
    let app = TestApp::spawn().await;
    let (status, v) = app.get("/healthz", None).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")));
    app.register(Some("dave")).await;
    let (status, v) = app.get("/v1/workers", None).await;
    assert_eq!(status, 200);
    assert_eq!(v[0]["name"], "dave");
    assert!(v[0].get("token_hash").is_none());
    let (status, v) = app.get("/v1/stats", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["workers"], 1);
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("ctjp_registrations_total 1"), "{text}");
    assert!(text.contains("# TYPE ctjp_certificates gauge"));
    app.cleanup().await;
}

/// The sample names of a scrape (OpenMetrics text).
fn samples(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// `/metrics` has request counts and latency histograms per route and
/// status, and every series the Grafana dashboard queries is exported.
#[tokio::test]
async fn metrics_cover_every_route_and_the_dashboard() {
    let app = TestApp::spawn().await;
    let key = crate::harness::TestKey::new();
    let log = app.import_log("https://metrics.example.org/", &key).await;
    app.set_tree_size(log, 8).await;
    let (_, token) = app.register(Some("m")).await;
    let (_, v) = app.post("/v1/tasks/claim", Some(&token), &json!({})).await;
    let id = v["tasks"][0]["task_id"].as_u64().unwrap();
    let (status, _) = app
        .post(
            "/v1/heartbeat",
            Some(&token),
            &json!({"tasks": [{"task_id": id, "next_index": 1, "entries": 1, "rate_limited": 2}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/v1/nothing", None).await;
    assert_eq!(status, 404);
    let _ = app.get("/v1/logs", None).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for route in [
        "/v1/workers/register",
        "/v1/tasks/claim",
        "/v1/heartbeat",
        "/v1/logs",
    ] {
        assert!(
            text.lines().any(
                |l| l.starts_with("ctjp_http_request_duration_seconds_bucket{")
                    && l.contains(&format!("route=\"{route}\",status=\"200\""))
            ),
            "{route}: {text}"
        );
    }
    assert!(
        text.contains("ctjp_log_rate_limited_total{log_id=\"1\"} 2"),
        "{text}"
    );
    assert!(text.contains("ctjp_tasks{state=\"leased\"} 1"), "{text}");
    let exported = samples(&text);
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/grafana/ctjp-manager.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut queried = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("ctjp_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                queried += 1;
                assert!(
                    exported.contains(&name),
                    "the dashboard queries {name}, which /metrics does not export"
                );
            }
        }
    }
    assert!(queried >= 15, "{queried}");
    app.cleanup().await;
}
