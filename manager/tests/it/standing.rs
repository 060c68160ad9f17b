//! `GET /v1/workers/me`: a worker's name with its machines' lifetime totals
//! summed and its place in the leaderboard's order (flagged names are not
//! ranked) and in the daily rank snapshot before today, the path of its page on the site, and how the logs it names
//! stand: entries left (waiting, leased and not planned yet) and the fleet's
//! rate from the per-minute statistics. Bad input is a 400, no token a 401.

use ct_core::protocol::{RegisterRequest, Secret};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::{TestApp, TestKey};

const SECRET: &str = "ivy's secret, long enough";

/// Registers `name` (with `secret`) from 127.0.0.`host`: (worker id, token).
async fn register(app: &TestApp, name: &str, secret: Option<&str>, host: u8) -> (u64, String) {
    let req = RegisterRequest {
        name: Some(name.to_owned()),
        secret: secret.map(Secret::new),
        ..RegisterRequest::default()
    };
    let r = app
        .client_from([127, 0, 0, host])
        .register(&req, &CancellationToken::new())
        .await
        .unwrap();
    (r.worker_id, r.token)
}

/// Sets a machine's totals as if it had reported them.
async fn set_totals(app: &TestApp, worker_id: u64, entries: u64, matches: u64, tasks: u64) {
    sqlx::query("UPDATE workers SET entries = ?, matches = ?, tasks_done = ? WHERE id = ?")
        .bind(entries)
        .bind(matches)
        .bind(tasks)
        .bind(worker_id)
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn me(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    app.get(&format!("/v1/workers/me{query}"), Some(token))
        .await
}

#[tokio::test]
async fn a_names_totals_are_summed_and_ranked_as_the_leaderboard_orders_them() {
    let app = TestApp::spawn().await;
    let (ivy1, ivy1_token) = register(&app, "ivy", Some(SECRET), 40).await;
    let (ivy2, ivy2_token) = register(&app, "ivy", Some(SECRET), 41).await;
    let (jan, _) = register(&app, "jan", None, 42).await;
    let (kim, kim_token) = register(&app, "kim", None, 43).await;
    let (lou, lou_token) = register(&app, "lou", None, 44).await;
    set_totals(&app, ivy1, 300, 3, 2).await;
    set_totals(&app, ivy2, 200, 1, 1).await;
    set_totals(&app, jan, 700, 7, 4).await;
    // As many entries as ivy, registered later: after ivy.
    set_totals(&app, kim, 500, 5, 2).await;
    // The most entries, but flagged: not on the leaderboard.
    set_totals(&app, lou, 900, 9, 6).await;
    sqlx::query("UPDATE workers SET flagged = 1 WHERE id = ?")
        .bind(lou)
        .execute(&app.pool)
        .await
        .unwrap();

    let (status, v) = me(&app, &ivy1_token, "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            &v["worker_id"],
            &v["name"],
            &v["machines"],
            &v["entries"],
            &v["matches"],
            &v["tasks_done"],
            &v["rank"],
            &v["of"],
        ),
        (
            &ivy1.into(),
            &"ivy".into(),
            &2.into(),
            &500.into(),
            &4.into(),
            &3.into(),
            &2.into(),
            &3.into()
        ),
        "{v}"
    );
    assert_eq!(v["page_path"], format!("workers/{ivy1}.html"), "{v}");
    assert_eq!(v["logs"], json!([]), "{v}");
    // The other machine: the same name and totals, its own page.
    let (_, v2) = me(&app, &ivy2_token, "").await;
    assert_eq!((&v2["entries"], &v2["rank"]), (&500.into(), &2.into()));
    assert_eq!(v2["page_path"], format!("workers/{ivy2}.html"));
    let (_, k) = me(&app, &kim_token, "").await;
    assert_eq!((&k["rank"], &k["of"]), (&3.into(), &3.into()), "{k}");
    let (status, l) = me(&app, &lou_token, "").await;
    assert_eq!(status, 200, "{l}");
    assert!(l.get("rank").is_none(), "a flagged name is not ranked: {l}");
    assert_eq!((&l["entries"], &l["of"]), (&900.into(), &3.into()), "{l}");

    // The same order as the public leaderboard.
    let (_, board) = app.get("/v1/workers", None).await;
    let names: Vec<&str> = board
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["jan", "ivy", "kim"], "{board}");
    app.cleanup().await;
}

/// `rank_yesterday` is the name's place in the newest daily rank snapshot
/// before today (UTC): absent before the first and for a name not in it;
/// yesterday's place once there is one, whatever today's snapshot says.
#[tokio::test]
async fn yesterdays_rank_is_the_place_in_the_newest_snapshot_before_today() {
    use ct_db::ops::{DAY_MS, snapshot};

    let app = TestApp::spawn().await;
    let (ivy1, ivy_token) = register(&app, "ivy", Some(SECRET), 60).await;
    let (ivy2, _) = register(&app, "ivy", Some(SECRET), 61).await;
    let (jan, jan_token) = register(&app, "jan", None, 62).await;
    let (kim, kim_token) = register(&app, "kim", None, 63).await;
    let yesterday = |v: &Value| v.get("rank_yesterday").cloned();

    let (status, v) = me(&app, &ivy_token, "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(yesterday(&v), None, "no snapshot yet: {v}");

    // Two days ago nobody had anything: ranked by registration.
    let now = manager::db::now_ms();
    snapshot(&app.pool, now - 2 * DAY_MS).await.unwrap();
    let (_, v) = me(&app, &ivy_token, "").await;
    assert_eq!(
        yesterday(&v),
        Some(1.into()),
        "none yesterday, the latest before: {v}"
    );

    // Yesterday jan led, then ivy (both machines summed), then kim.
    set_totals(&app, ivy1, 300, 3, 2).await;
    set_totals(&app, ivy2, 200, 1, 1).await;
    set_totals(&app, jan, 700, 7, 4).await;
    set_totals(&app, kim, 100, 1, 1).await;
    snapshot(&app.pool, now - DAY_MS).await.unwrap();
    // Today kim leads; today's snapshot is not yesterday's.
    set_totals(&app, kim, 1000, 10, 8).await;
    snapshot(&app.pool, now).await.unwrap();
    let (lou, lou_token) = register(&app, "lou", None, 64).await;
    set_totals(&app, lou, 50, 0, 1).await;

    for (who, token, rank, before) in [
        ("kim", &kim_token, 1, 3),
        ("jan", &jan_token, 2, 1),
        ("ivy", &ivy_token, 3, 2),
    ] {
        let (status, v) = me(&app, token, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            (&v["name"], &v["rank"], yesterday(&v)),
            (&who.into(), &rank.into(), Some(before.into())),
            "{v}"
        );
    }
    let (_, l) = me(&app, &lou_token, "").await;
    assert_eq!(
        (&l["rank"], yesterday(&l)),
        (&4.into(), None),
        "not ranked yesterday: {l}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_logs_outlook_is_what_is_left_and_the_fleets_rate() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let log = app
        .import_log("https://ct.example.org/outlook/", &key)
        .await;
    // 16 tasks of 4 entries.
    app.set_tree_size(log, 64).await;
    let (_, token) = register(&app, "mia", None, 50).await;
    let (status, v) = me(&app, &token, &format!("?logs={log},999")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["logs"],
        json!([{"log_id": log, "tree_size": 64, "remaining": 64, "entries_per_sec": 0.0}]),
        "unknown logs are left out; no report, no rate: {v}"
    );

    // Two leased tasks fetched whole: still to collect, and the fleet's rate.
    let (_, claimed) = app
        .post("/v1/tasks/claim", Some(&token), &json!({"max_tasks": 2}))
        .await;
    let progress: Vec<Value> = claimed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!({"task_id": t["task_id"], "next_index": t["end"], "entries": 4}))
        .collect();
    assert_eq!(progress.len(), 2, "{claimed}");
    let (status, hb) = app
        .post("/v1/heartbeat", Some(&token), &json!({ "tasks": progress }))
        .await;
    assert_eq!(status, 200, "{hb}");
    let (_, v) = me(&app, &token, &format!("?logs={log}")).await;
    let o = &v["logs"][0];
    assert_eq!(
        (&o["tree_size"], &o["remaining"]),
        (&64.into(), &64.into()),
        "{v}"
    );
    // 8 entries over a minute at least.
    let rate = o["entries_per_sec"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 8.0 / 60.0 + 1e-9, "{v}");

    // A collected task is no longer left; a head not planned yet is.
    sqlx::query(
        "UPDATE tasks SET state = 'done', proof_state = 'verified' \
         WHERE log_id = ? AND state = 'pending' ORDER BY start_index LIMIT 1",
    )
    .bind(log)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sths (log_id, tree_size, timestamp_ms, root_hash, signature, verified, fetched_at) \
         VALUES (?, 100, 100, ?, '', 1, 0)",
    )
    .bind(log)
    .bind(&[1u8; 32][..])
    .execute(&app.pool)
    .await
    .unwrap();
    let (_, v) = me(&app, &token, &format!("?logs={log}")).await;
    assert_eq!(
        (&v["logs"][0]["tree_size"], &v["logs"][0]["remaining"]),
        (&100.into(), &(64 - 4 + 36).into()),
        "{v}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_a_4xx() {
    let app = TestApp::spawn().await;
    let (_, token) = register(&app, "ned", None, 60).await;
    let (status, v) = app.get("/v1/workers/me", None).await;
    assert_eq!((status, &v["error"]["code"]), (401, &"unauthorized".into()));
    let (status, _) = app.get("/v1/workers/me", Some("not-a-token")).await;
    assert_eq!(status, 401);
    let many: Vec<String> = (1..=65).map(|i| i.to_string()).collect();
    for query in [
        "?logs=1,x".to_owned(),
        "?logs=-1".to_owned(),
        "?logs=18446744073709551616".to_owned(),
        format!("?logs={}", many.join(",")),
        format!("?logs={}", "1,".repeat(800)),
    ] {
        let (status, v) = me(&app, &token, &query).await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (400, &"bad_request".into()),
            "{query}: {v}"
        );
    }
    let (status, v) = me(&app, &token, &format!("?logs={}", many[..64].join(","))).await;
    assert_eq!((status, &v["logs"]), (200, &json!([])), "{v}");
    let (status, v) = me(&app, &token, "?logs=").await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = app.post("/v1/workers/me", Some(&token), &json!({})).await;
    assert_eq!(status, 405);
    app.cleanup().await;
}
