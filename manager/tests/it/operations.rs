//! Live operations through the real stack: honest and dishonest workers
//! against a ctlog-sim log, and what `/v1/ops/*` and `/v1/admin/ops/*` then
//! show: how every lease ended (each once, checks apart), their durations,
//! progress over time, the overall percentage and ETA, the current leases,
//! ranks and their change since the day before, and flagged and revoked
//! names off the public lists but on the admin's.

use std::collections::BTreeMap;
use std::time::Duration;

use ct_db::ops::DAY_MS;
use ctlog_sim::{SimConfig, Simulator, Views};
use serde_json::{Value, json};

use crate::harness::{ADMIN, TestApp, test_config};
use crate::integrity::{Play, claim, drain, log_config, work};

/// Entries of the log: tasks of 16 make [0,16) .. [48,64), then the
/// aligned [64,68) and [68,70).
const ENTRIES: u64 = 70;

/// A manager over one simulated log, polled, whose leases last 1 ms: every
/// lease not completed at once is due when the reaper looks.
async fn setup() -> (TestApp, Simulator, u64) {
    // Seed 4 puts five matches in [16, 32), the range the hider gets.
    let sim = Simulator::start(SimConfig::new(vec![log_config(ENTRIES, 4, Views::RFC6962)]))
        .await
        .unwrap();
    let mut config = test_config();
    config.task_size_log2 = 4;
    config.max_body_bytes = 4 << 20;
    config.lease = Duration::from_millis(1);
    // Checks for each worker's first three ranges only, none at random.
    config.check_share = 0.0;
    let app = TestApp::spawn_with(config).await;
    let (status, v) = app
        .post(
            "/v1/admin/logs",
            Some(ADMIN),
            &serde_json::to_value(sim.log_list()).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (log,): (u64,) = sqlx::query_as("SELECT id FROM logs WHERE url = ?")
        .bind(&sim.logs()[0].url)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, v) = app
        .post(
            &format!("/v1/admin/logs/{log}/poll"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!((status, v["verified"].as_bool()), (200, Some(true)), "{v}");
    (app, sim, log)
}

/// Leases of an outcomes answer summed over its hours, by (outcome, check).
fn tally(v: &Value) -> BTreeMap<(String, bool), u64> {
    let mut out = BTreeMap::new();
    for r in v["rows"].as_array().unwrap() {
        *out.entry((
            r["outcome"].as_str().unwrap().to_owned(),
            r["check"].as_bool().unwrap(),
        ))
        .or_default() += r["tasks"].as_u64().unwrap();
    }
    out
}

fn place_of<'a>(ranks: &'a Value, name: &str) -> Option<&'a Value> {
    ranks["ranks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
}

async fn snapshot(app: &TestApp) -> Value {
    let (status, v) = app
        .post("/v1/admin/ops/snapshot", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn operations_show_every_lease_once_progress_ranks_and_hidden_names() {
    let (app, sim, log) = setup().await;
    let (_, alice) = app.register_from(Some("alice"), [127, 0, 0, 1]).await;
    let (_, bob) = app.register_from(Some("bob"), [127, 0, 0, 2]).await;
    let (_, liar) = app.register_from(Some("liar"), [127, 0, 0, 1]).await;
    let (_, hider) = app.register_from(Some("hider"), [127, 0, 0, 3]).await;
    let (_, sleepy) = app.register_from(Some("sleepy"), [127, 0, 0, 1]).await;
    let (revoked_id, revoked) = app.register_from(Some("revoked"), [127, 0, 0, 1]).await;

    // Nothing happened yet: an empty summary, no ranks.
    let (status, s) = app.get("/v1/ops/summary", None).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (s["logs"].as_u64(), s["progress_as_of"].clone()),
        (Some(0), Value::Null),
        "{s}"
    );
    let (status, r) = app.get("/v1/ops/ranks", None).await;
    assert_eq!((status, r["day"].clone()), (200, Value::Null), "{r}");

    // alice completes one range; the snapshot of "yesterday" sees that.
    let lease = claim(&app, &alice).await.unwrap();
    let first = lease["end"].as_u64().unwrap() - lease["start"].as_u64().unwrap();
    let (status, v) = work(&app, &alice, &lease, ENTRIES, Play::Honest).await;
    assert_eq!(
        (status, v["proof"].as_str()),
        (200, Some("verified")),
        "{v}"
    );
    let yesterday = manager::db::now_ms() - DAY_MS;
    let y = ct_db::ops::snapshot(&app.pool, yesterday).await.unwrap();
    assert_eq!((y.logs, y.names), (1, 6), "{y:?}");

    // Progress now, and the ETA at the rate of the last hour or so.
    let now = snapshot(&app).await;
    assert_eq!(
        (now["logs"].as_u64(), now["names"].as_u64()),
        (Some(1), Some(6)),
        "{now}"
    );
    let (status, s) = app.get("/v1/ops/summary", None).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["logs"], 1, "{s}");
    assert_eq!(s["tree_size"], ENTRIES, "{s}");
    assert_eq!(s["entries_collected"], first, "{s}");
    assert_eq!(s["entries_remaining"], ENTRIES - first, "{s}");
    let percent = s["percent_collected"].as_f64().unwrap();
    assert!(
        (percent - first as f64 * 100.0 / ENTRIES as f64).abs() < 1e-9,
        "{s}"
    );
    // The rate is over the previous hour and the current one so far: 1 to 2 hours.
    let rate = s["entries_per_hour"].as_f64().unwrap();
    assert!(
        rate > first as f64 / 2.0 - 1e-9 && rate <= first as f64,
        "{s}"
    );
    let eta = s["eta_seconds"].as_u64().unwrap();
    assert_eq!(
        eta,
        ((ENTRIES - first) as f64 / rate * 3600.0).ceil() as u64,
        "{s}"
    );
    assert_eq!(
        s["eta_at"].as_i64(),
        Some(s["now"].as_i64().unwrap() + eta as i64 * 1000),
        "{s}"
    );
    assert_eq!(s["last_24h"]["main"]["completed"], 1, "{s}");
    assert_eq!(s["per_log"][0]["log_id"], log, "{s}");
    assert_eq!(s["per_log"][0]["eta_seconds"], eta, "{s}");

    // bob gives a range back.
    let lease = claim(&app, &bob).await.unwrap();
    let id = lease["task_id"].as_u64().unwrap();
    let (status, v) = app
        .post(
            &format!("/v1/tasks/{id}/fail"),
            Some(&bob),
            &json!({"error": "the operator stopped it", "index": lease["start"]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // The liar reports a subtree hash that is not the log's: refused.
    let lease = claim(&app, &liar).await.unwrap();
    let (status, v) = work(&app, &liar, &lease, ENTRIES, Play::WrongHash).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("proof_mismatch")),
        "{v}"
    );

    // sleepy claims and does nothing: the current leases show it, then its
    // lease (1 ms) expires.
    let lease = claim(&app, &sleepy).await.unwrap();
    let sleepy_task = lease["task_id"].as_u64().unwrap();
    let span = lease["end"].as_u64().unwrap() - lease["start"].as_u64().unwrap();
    let (status, l) = app.get("/v1/ops/leases", None).await;
    assert_eq!(status, 200, "{l}");
    assert_eq!(
        l,
        json!([{"name": "sleepy", "log_id": log, "leases": 1, "checks": 0, "entries": span,
            "entries_reported": 0, "oldest_leased_at": l[0]["oldest_leased_at"]}]),
        "{l}"
    );
    assert!(l[0]["oldest_leased_at"].as_i64().is_some(), "{l}");
    let (status, d) = app.get("/v1/admin/ops/leases", Some(ADMIN)).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    assert_eq!(
        (d[0]["task_id"].as_u64(), d[0]["name"].as_str()),
        (Some(sleepy_task), Some("sleepy")),
        "{d}"
    );
    assert_eq!(
        (d[0]["address"].as_str(), d[0]["check_of"].as_u64()),
        (Some("127.0.0.1"), Some(0)),
        "{d}"
    );
    let (status, v) = app
        .post("/v1/admin/leases/expire", Some(ADMIN), &json!({}))
        .await;
    assert_eq!((status, v["expired"].as_u64()), (200, Some(1)), "{v}");
    let (_, l) = app.get("/v1/ops/leases", None).await;
    assert_eq!(l, json!([]));

    // A worker revoked while it holds a lease: the lease is released.
    claim(&app, &revoked).await.unwrap();
    let (status, v) = app
        .post(
            &format!("/v1/admin/workers/{revoked_id}/revoke"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, v["tasks_released"].as_u64()),
        (200, Some(1)),
        "{v}"
    );

    // The hider leaves out matches; its range's check (by bob) catches it.
    let lease = claim(&app, &hider).await.unwrap();
    let hidden = lease["task_id"].as_u64().unwrap();
    let (start, end) = (
        lease["start"].as_u64().unwrap(),
        lease["end"].as_u64().unwrap(),
    );
    let true_matches = sim.logs()[0]
        .truth
        .matches
        .iter()
        .filter(|m| (start..end).contains(&m.index))
        .count();
    assert!(
        true_matches >= 2,
        "the hider must have matches to leave out"
    );
    let (status, v) = work(&app, &hider, &lease, ENTRIES, Play::DropMatches).await;
    assert_eq!(
        (status, v["proof"].as_str()),
        (200, Some("verified")),
        "{v}"
    );

    // bob does the rest of the main ranges and the checks he may take, then
    // alice takes the checks of bob's ranges.
    drain(&app, &[&bob], ENTRIES).await;
    drain(&app, &[&alice, &bob], ENTRIES).await;
    let (status, flagged) = app.get("/v1/admin/flagged", Some(ADMIN)).await;
    assert_eq!(status, 200);
    let hider_flag = flagged
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "hider")
        .unwrap_or_else(|| panic!("hider not flagged: {flagged}"));
    assert_eq!(hider_flag["flags"][0]["task_id"].as_u64(), Some(hidden));
    assert_eq!(
        crate::integrity::stored(&app, log).await,
        crate::integrity::truth(&sim, 0)
    );

    // How every lease ended, each once: main tasks and checks apart.
    let (status, o) = app.get("/v1/ops/outcomes?hours=2", None).await;
    assert_eq!(status, 200, "{o}");
    let counts = tally(&o);
    let n = |outcome: &str, check: bool| {
        counts
            .get(&(outcome.to_owned(), check))
            .copied()
            .unwrap_or(0)
    };
    // alice's first, the hider's, bob's four and bob's redo of the hider's range.
    assert_eq!(n("completed", false), 7, "{o}");
    assert_eq!(
        (
            n("failed", false),
            n("refused", false),
            n("expired", false),
            n("released", false)
        ),
        (1, 1, 1, 1),
        "{o}"
    );
    // The checks of alice's and the hider's ranges (bob's), of bob's first three (alice's).
    assert_eq!(n("completed", true), 5, "{o}");
    assert_eq!(
        counts.iter().filter(|((_, c), _)| *c).count(),
        1,
        "only completed checks: {o}"
    );
    // Every lease granted ended once: the sums are the tasks' attempts.
    let main_leases = app
        .count("SELECT CAST(SUM(attempts) AS SIGNED) FROM tasks WHERE check_of = 0")
        .await;
    let check_leases = app
        .count("SELECT CAST(SUM(attempts) AS SIGNED) FROM tasks WHERE check_of <> 0")
        .await;
    assert_eq!((main_leases, check_leases), (11, 5));
    // Per log the same; rows are within the window and have durations.
    let since = o["since"].as_i64().unwrap();
    for r in o["rows"].as_array().unwrap() {
        let hour = r["hour"].as_i64().unwrap();
        assert!(hour >= since && hour % 3_600_000 == 0, "{r}");
        let d = &r["durations"];
        assert_eq!(d["timed"], r["tasks"], "every lease was timed: {r}");
        let (p50, p90, max) = (
            d["p50_ms"].as_u64().unwrap(),
            d["p90_ms"].as_u64().unwrap(),
            d["max_ms"].as_u64().unwrap(),
        );
        assert!(p50 <= p90 && p90 <= max, "{r}");
        assert!(d["mean_ms"].as_u64().unwrap() <= max, "{r}");
        let in_histogram: u64 = d["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["tasks"].as_u64().unwrap())
            .sum();
        assert_eq!(in_histogram, r["tasks"].as_u64().unwrap(), "{r}");
    }
    let completed_entries: u64 = o["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "completed" && r["check"] == false)
        .map(|r| r["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(
        completed_entries,
        ENTRIES + 16,
        "the hider's range twice: {o}"
    );
    let (status, per_log) = app
        .get(&format!("/v1/ops/outcomes?hours=2&log_id={log}"), None)
        .await;
    assert_eq!(
        (status, tally(&per_log)),
        (200, counts.clone()),
        "{per_log}"
    );
    let (status, s) = app.get("/v1/ops/summary", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        s["last_24h"]["main"],
        json!({"completed": 7, "failed": 1, "expired": 1, "refused": 1, "released": 1}),
        "{s}"
    );
    assert_eq!(
        s["last_24h"]["checks"],
        json!({"completed": 5, "failed": 0, "expired": 0, "refused": 0, "released": 0}),
        "{s}"
    );

    // Today's snapshot: the log is collected; ranks have moved since yesterday.
    let today = snapshot(&app).await;
    assert_eq!(
        today["names"], 4,
        "hider and revoked are not ranked: {today}"
    );
    let (status, s) = app.get("/v1/ops/summary", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            s["entries_collected"].as_u64(),
            s["entries_remaining"].as_u64()
        ),
        (Some(ENTRIES), Some(0)),
        "{s}"
    );
    assert_eq!(
        (s["percent_collected"].as_f64(), s["eta_seconds"].as_u64()),
        (Some(100.0), Some(0)),
        "{s}"
    );
    let (status, p) = app
        .get(&format!("/v1/ops/progress?log_id={log}&hours=48"), None)
        .await;
    assert_eq!(status, 200, "{p}");
    let points = p["points"].as_array().unwrap();
    // Yesterday's hour, and this one (and the one before, had the hour turned meanwhile).
    assert!((2..=3).contains(&points.len()), "{p}");
    assert_eq!(points[0]["entries_collected"], first, "{p}");
    assert_eq!(
        points[0]["hour"].as_i64(),
        Some(ct_db::ops::hour_of(yesterday)),
        "{p}"
    );
    let last = points.last().unwrap();
    assert_eq!(last["hour"], today["hour"], "{p}");
    assert_eq!(
        (
            last["entries_collected"].as_u64(),
            last["verified_until"].as_u64()
        ),
        (Some(ENTRIES), Some(ENTRIES)),
        "{p}"
    );
    assert_eq!(
        (last["tree_size"].as_u64(), last["entries_missing"].as_u64()),
        (Some(ENTRIES), Some(0)),
        "{p}"
    );
    let (_, recent) = app.get("/v1/ops/progress?hours=1", None).await;
    assert_eq!(recent["points"].as_array().unwrap().len(), 1, "{recent}");

    let (status, r) = app.get("/v1/ops/ranks", None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["day"], today["day"], "{r}");
    assert!(
        r["previous_day"].as_i64().unwrap() < r["day"].as_i64().unwrap(),
        "{r}"
    );
    // Yesterday alice (one range) led and the others had nothing, by registration.
    let bob_rank = place_of(&r, "bob").unwrap();
    assert_eq!(
        (
            bob_rank["place"].as_u64(),
            bob_rank["previous_place"].as_u64(),
            bob_rank["change"].as_i64()
        ),
        (Some(1), Some(2), Some(1)),
        "{r}"
    );
    let alice_rank = place_of(&r, "alice").unwrap();
    assert_eq!(
        (
            alice_rank["place"].as_u64(),
            alice_rank["previous_place"].as_u64(),
            alice_rank["change"].as_i64()
        ),
        (Some(2), Some(1), Some(-1)),
        "{r}"
    );
    let sleepy_rank = place_of(&r, "sleepy").unwrap();
    assert_eq!(
        (
            sleepy_rank["place"].as_u64(),
            sleepy_rank["previous_place"].as_u64(),
            sleepy_rank["change"].as_i64()
        ),
        (Some(4), Some(5), Some(1)),
        "{r}"
    );
    assert!(
        place_of(&r, "hider").is_none() && place_of(&r, "revoked").is_none(),
        "{r}"
    );
    let (_, page) = app.get("/v1/ops/ranks?limit=1&offset=1", None).await;
    assert_eq!(page["ranks"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["ranks"][0]["name"], "alice", "{page}");
    // A name flagged after the snapshot leaves the public ranks at once.
    let flag = |on: bool| {
        sqlx::query(
            "UPDATE workers w JOIN identities i ON i.id = w.identity_id SET w.flagged = ? WHERE i.name = 'sleepy'",
        )
        .bind(on)
        .execute(&app.pool)
    };
    flag(true).await.unwrap();
    let (_, r) = app.get("/v1/ops/ranks", None).await;
    assert!(place_of(&r, "sleepy").is_none(), "{r}");
    assert!(place_of(&r, "bob").is_some(), "{r}");
    flag(false).await.unwrap();

    // Flagged and revoked names: off the public leaderboard, on the admin's.
    let (status, board) = app.get("/v1/workers", None).await;
    assert_eq!(status, 200);
    let public: Vec<&str> = board
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(public, ["bob", "alice", "liar", "sleepy"], "{board}");
    let (status, all) = app.get("/v1/admin/ops/leaderboard", Some(ADMIN)).await;
    assert_eq!(status, 200, "{all}");
    let standing = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {all}"))
    };
    assert_eq!(
        (
            standing("hider")["flagged"].as_bool(),
            standing("hider")["public"].as_bool()
        ),
        (Some(true), Some(false)),
        "{all}"
    );
    assert_eq!(
        (
            standing("revoked")["revoked"].as_bool(),
            standing("revoked")["public"].as_bool()
        ),
        (Some(true), Some(false)),
        "{all}"
    );
    assert_eq!(
        (
            standing("liar")["mismatches"].as_u64(),
            standing("liar")["public"].as_bool()
        ),
        (Some(1), Some(true)),
        "{all}"
    );
    assert_eq!(all.as_array().unwrap().len(), 6, "{all}");
    let (_, hidden_only) = app
        .get("/v1/admin/ops/leaderboard?hidden=true", Some(ADMIN))
        .await;
    let mut names: Vec<&str> = hidden_only
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["hider", "revoked"], "{hidden_only}");

    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// Every number a client sends is bounded: out of range or not a number is
/// a 400 in the error shape, an unknown log a 404, admin calls need the
/// admin token; a snapshot taken twice in an hour replaces the first, and
/// folding the shards of past hours keeps every sum.
#[tokio::test]
async fn operations_inputs_are_bounded_and_snapshots_idempotent() {
    let app = TestApp::spawn().await;
    for path in [
        "/v1/ops/outcomes?hours=0",
        "/v1/ops/outcomes?hours=745",
        "/v1/ops/outcomes?hours=-1",
        "/v1/ops/outcomes?hours=x",
        "/v1/ops/outcomes?hours=99999999999999999999",
        "/v1/ops/outcomes?log_id=-3",
        "/v1/ops/progress?hours=100000",
        "/v1/ops/progress?log_id=1.5",
        "/v1/ops/ranks?limit=0",
        "/v1/ops/ranks?limit=1001",
        "/v1/ops/ranks?offset=1000001",
    ] {
        let (status, v) = app.get(path, None).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{path}: {v}"
        );
    }
    for path in [
        "/v1/admin/ops/leases?limit=10001",
        "/v1/admin/ops/leaderboard?hidden=maybe",
        "/v1/admin/ops/leaderboard?limit=0",
    ] {
        let (status, v) = app.get(path, Some(ADMIN)).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{path}: {v}"
        );
    }
    let (status, v) = app.get("/v1/ops/progress?log_id=424242", None).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    let (status, v) = app.get("/v1/ops/outcomes?hours=744", None).await;
    assert_eq!((status, v["rows"].clone()), (200, json!([])), "{v}");
    for path in ["/v1/admin/ops/leases", "/v1/admin/ops/leaderboard"] {
        let (status, _) = app.get(path, None).await;
        assert_eq!(status, 401, "{path}");
    }
    let (status, _) = app
        .post("/v1/admin/ops/snapshot", Some("wrong"), &json!({}))
        .await;
    assert_eq!(status, 401);

    // Outcomes of an earlier hour, spread over shards as concurrent
    // connections leave them; a snapshot folds them and keeps the sums.
    let (log,): (u64,) = {
        let key = crate::harness::TestKey::new();
        (app.import_log("https://ops.example/", &key).await,)
    };
    let now = manager::db::now_ms();
    let earlier = ct_db::ops::hour_of(now) - 3_600_000;
    for (shard, n, max) in [(1u8, 2u64, 5_000u64), (5, 3, 7_000), (0, 1, 4_000)] {
        sqlx::query(
            "INSERT INTO task_outcomes (hour, log_id, outcome, is_check, bucket, shard, n, entries, duration_ms_sum, duration_ms_max) \
             VALUES (?, ?, 'completed', 0, 3, ?, ?, ?, ?, ?)",
        )
        .bind(earlier)
        .bind(log)
        .bind(shard)
        .bind(n)
        .bind(n * 16)
        .bind(n * 4_500)
        .bind(max)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let (_, before) = app.get("/v1/ops/outcomes?hours=2", None).await;
    let first = snapshot(&app).await;
    assert_eq!(first["outcome_rows_folded"], 2, "{first}");
    let second = snapshot(&app).await;
    assert_eq!(second["outcome_rows_folded"], 0, "{second}");
    let (_, after) = app.get("/v1/ops/outcomes?hours=2", None).await;
    assert_eq!(before["rows"], after["rows"]);
    let row = &after["rows"][0];
    assert_eq!(
        (row["tasks"].as_u64(), row["entries"].as_u64()),
        (Some(6), Some(96)),
        "{row}"
    );
    assert_eq!(row["durations"]["max_ms"], 7_000, "{row}");
    assert_eq!(
        row["durations"]["histogram"],
        json!([{"from_ms": 4000, "below_ms": 8000, "tasks": 6}]),
        "{row}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM task_outcomes").await,
        1,
        "one row per hour, log, outcome, kind and bucket"
    );
    let (_, p) = app
        .get(&format!("/v1/ops/progress?log_id={log}"), None)
        .await;
    let hours = if first["hour"] == second["hour"] {
        1
    } else {
        2
    };
    assert_eq!(
        p["points"].as_array().unwrap().len(),
        hours,
        "one row per hour: {p}"
    );
    app.cleanup().await;
}
