//! The public reads (issue 15, item 3): `/v1/logs`, `/v1/stats`,
//! `/v1/workers` and `/metrics` answer from counters the database keeps as
//! rows change and a snapshot read on a pool of their own. Their numbers
//! equal a count of the tables after any change, made by the manager or by
//! hand; a snapshot is shared for `public_max_age`; and during a database
//! outage `/healthz` answers 503 within its bound and every other call
//! fails fast with 503, then all recover.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use ct_db::progress::{Progress, progress_all, progress_scan};
use manager::{AppState, Config};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{ADMIN, TestApp, TestKey, test_config};

async fn count(pool: &MySqlPool, sql: &str) -> u64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
    u64::try_from(n).unwrap()
}

async fn sum(pool: &MySqlPool, sql: &str) -> u64 {
    let (n,): (u64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
    n
}

/// Every figure the public reads show equals a count of the tables: each
/// log's progress ([`progress_all`], the counters and seeks, and
/// `/v1/logs`, through the app's own reader that keeps layouts between
/// calls) is [`progress_scan`]'s, and `/v1/stats`, `/v1/logs` and
/// `/metrics` totals are `COUNT(*)`s.
pub(crate) async fn assert_counted(app: &TestApp) {
    let pool = &app.pool;
    let scan = progress_scan(pool).await.unwrap();
    let fast = progress_all(pool).await.unwrap();
    assert_eq!(fast, scan, "progress from the counters differs from a scan");

    let (status, logs) = app.get("/v1/logs", None).await;
    assert_eq!(status, 200, "{logs}");
    for l in logs.as_array().unwrap() {
        let id = l["id"].as_u64().unwrap();
        let p: Progress = serde_json::from_value(l["progress"].clone()).unwrap();
        assert_eq!(&p, scan.get(&id).unwrap(), "/v1/logs: log {id}");
        let of = |sql: &str| sql.replace("LOG", &id.to_string());
        assert_eq!(
            l["tasks"].as_u64(),
            Some(
                count(
                    pool,
                    &of("SELECT COUNT(*) FROM tasks WHERE log_id = LOG AND check_of = 0")
                )
                .await
            ),
            "{l}"
        );
        assert_eq!(
            l["tasks_done"].as_u64(),
            Some(count(pool, &of("SELECT COUNT(*) FROM tasks WHERE log_id = LOG AND check_of = 0 AND state = 'done'")).await),
            "{l}"
        );
        assert_eq!(
            l["entries_done"].as_u64(),
            Some(sum(pool, &of("SELECT CAST(LEAST(18446744073709551615, COALESCE(SUM(entries), 0)) AS UNSIGNED) FROM tasks WHERE log_id = LOG")).await),
            "{l}"
        );
        assert_eq!(
            l["certificates"].as_u64(),
            Some(
                count(
                    pool,
                    &of("SELECT COUNT(*) FROM sightings WHERE log_id = LOG")
                )
                .await
            ),
            "{l}"
        );
    }

    let (status, s) = app.get("/v1/stats", None).await;
    assert_eq!(status, 200, "{s}");
    for (field, sql) in [
        ("logs", "SELECT COUNT(*) FROM logs"),
        (
            "logs_enabled",
            "SELECT COUNT(*) FROM logs WHERE enabled = 1",
        ),
        (
            "workers",
            "SELECT COUNT(*) FROM workers WHERE revoked = 0 AND replaced_by IS NULL",
        ),
        (
            "tasks_pending",
            "SELECT COUNT(*) FROM tasks WHERE state = 'pending'",
        ),
        (
            "tasks_leased",
            "SELECT COUNT(*) FROM tasks WHERE state = 'leased'",
        ),
        (
            "tasks_done",
            "SELECT COUNT(*) FROM tasks WHERE state = 'done'",
        ),
        ("certificates", "SELECT COUNT(*) FROM certificates"),
        ("sightings", "SELECT COUNT(*) FROM sightings"),
        ("names", "SELECT COUNT(*) FROM names"),
        ("failed_entries", "SELECT COUNT(*) FROM failed_entries"),
    ] {
        assert_eq!(
            s[field].as_u64(),
            Some(count(pool, sql).await),
            "{field}: {s}"
        );
    }
    let entries = sum(
        pool,
        "SELECT CAST(LEAST(18446744073709551615, COALESCE(SUM(entries), 0)) AS UNSIGNED) FROM tasks",
    )
    .await;
    assert_eq!(s["entries_processed"].as_u64(), Some(entries), "{s}");

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<u64>().ok())
    };
    for state in ["pending", "leased", "done", "log_fault"] {
        let sql = format!("SELECT COUNT(*) FROM tasks WHERE state = '{state}'");
        assert_eq!(
            metric(&format!("ctjp_tasks{{state=\"{state}\"}}")),
            Some(count(pool, &sql).await),
            "ctjp_tasks {state}"
        );
    }
    assert_eq!(
        metric("ctjp_certificates"),
        Some(count(pool, "SELECT COUNT(*) FROM certificates").await)
    );
    assert_eq!(
        metric("ctjp_workers"),
        Some(count(pool, "SELECT COUNT(*) FROM workers WHERE revoked = 0").await)
    );
}

/// Two logs of 100 and 64 tasks changed at random by plain SQL, the way no
/// code path of the manager would (so the triggers, not the callers, keep
/// the counters): every state and proof state, check tasks, counts up to
/// the columns' maximum, certificates, names, sightings and failed entries
/// in and out, the logs' starts moved, tasks deleted (holes) and put back,
/// new tree heads. After every few changes the reads equal a count.
#[tokio::test]
async fn counters_follow_every_change_made_by_hand() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let a = app.import_log("https://counted-a.example.org/", &key).await;
    let b = app
        .import_log("https://counted-b.example.org/", &TestKey::new())
        .await;
    assert_eq!(app.set_tree_size(a, 400).await, 100);
    assert_eq!(app.set_tree_size(b, 256).await, 64);
    assert_counted(&app).await;

    let pool = &app.pool;
    let exec = |sql: String| async move {
        sqlx::query(&sql).execute(pool).await.unwrap();
    };
    let mut rng = StdRng::seed_from_u64(153);
    let mut deleted: Vec<(u64, u64, u64)> = Vec::new();
    let mut cert = 0u64;
    for step in 1..=400u32 {
        let log = if rng.random_bool(0.7) { a } else { b };
        let ids: Vec<(u64,)> =
            sqlx::query_as("SELECT id FROM tasks WHERE log_id = ? AND check_of = 0 ORDER BY id")
                .bind(log)
                .fetch_all(pool)
                .await
                .unwrap();
        let id = ids[rng.random_range(0..ids.len())].0;
        let big = |rng: &mut StdRng| {
            if rng.random_bool(0.1) {
                u64::MAX
            } else {
                rng.random_range(0..1000)
            }
        };
        match rng.random_range(0..100) {
            0..40 => {
                let state = ["pending", "leased", "done", "log_fault"][rng.random_range(0..4)];
                let proof =
                    ["NULL", "'verified'", "'unproven'", "'mismatch'"][rng.random_range(0..4)];
                exec(format!(
                    "UPDATE tasks SET state = '{state}', proof_state = {proof} WHERE id = {id}"
                ))
                .await;
            }
            40..55 => {
                let col = [
                    "entries",
                    "matches",
                    "errors",
                    "lease_errors",
                    "rate_limited",
                    "lease_rate_limited",
                ][rng.random_range(0..6)];
                exec(format!(
                    "UPDATE tasks SET {col} = {} WHERE id = {id}",
                    big(&mut rng)
                ))
                .await;
            }
            55..62 => {
                let check = ["NULL", "'pending'", "'passed'", "'failed'"][rng.random_range(0..4)];
                exec(format!(
                    "UPDATE tasks SET check_state = {check} WHERE id = {id}"
                ))
                .await;
            }
            62..70 => {
                let state = ["pending", "leased", "done", "log_fault"][rng.random_range(0..4)];
                exec(format!(
                    "INSERT IGNORE INTO tasks (log_id, start_index, end_index, next_index, state, entries, created_at, check_of) \
                     SELECT log_id, start_index, end_index, start_index, '{state}', {}, 0, id FROM tasks WHERE id = {id}",
                    big(&mut rng)
                ))
                .await;
            }
            70..74 => {
                exec(format!(
                    "DELETE FROM tasks WHERE check_of <> 0 AND log_id = {log} ORDER BY id LIMIT 1"
                ))
                .await;
            }
            74..84 => {
                cert += 1;
                exec(format!(
                    "INSERT INTO certificates (fingerprint, entry_type, dns_names, ip_addresses, policies, leaf_input, extra_data, first_seen) \
                     VALUES (UNHEX(SHA2('{cert}', 256)), 'x509', '[]', '[]', '[]', x'00', x'00', 0)"
                ))
                .await;
                exec(format!(
                    "INSERT INTO names (certificate_id, name, category, registered_domain) \
                     SELECT id, 'c{cert}.example.jp', 'jp', 'example.jp' FROM certificates WHERE fingerprint = UNHEX(SHA2('{cert}', 256))"
                ))
                .await;
                exec(format!(
                    "INSERT IGNORE INTO sightings (log_id, idx, certificate_id, leaf_hash, timestamp_ms, created_at) \
                     SELECT {log}, {}, id, fingerprint, 0, 0 FROM certificates WHERE fingerprint = UNHEX(SHA2('{cert}', 256))",
                    rng.random_range(0..400)
                ))
                .await;
            }
            84..88 => {
                exec(format!(
                    "DELETE FROM sightings WHERE log_id = {log} ORDER BY idx LIMIT 1"
                ))
                .await;
                exec("DELETE FROM names ORDER BY certificate_id LIMIT 1".into()).await;
            }
            88..92 => {
                exec(format!(
                    "INSERT IGNORE INTO failed_entries (log_id, idx, leaf_input, extra_data, error, created_at) \
                     VALUES ({log}, {}, x'00', x'00', 'test', 0)",
                    rng.random_range(0..400)
                ))
                .await;
            }
            92..94 => {
                // A hole in the log's tasks (read by a scan), or one put back.
                if let Some((l, s, e)) = deleted.pop() {
                    exec(format!(
                        "INSERT IGNORE INTO tasks (log_id, start_index, end_index, next_index, created_at) VALUES ({l}, {s}, {e}, {s}, 0)"
                    ))
                    .await;
                } else {
                    let (s, e): (u64, u64) =
                        sqlx::query_as("SELECT start_index, end_index FROM tasks WHERE id = ?")
                            .bind(id)
                            .fetch_one(pool)
                            .await
                            .unwrap();
                    exec(format!(
                        "DELETE FROM tasks WHERE log_id = {log} AND start_index = {s}"
                    ))
                    .await;
                    deleted.push((log, s, e));
                }
            }
            94..97 => {
                exec(format!(
                    "UPDATE logs SET start_index = {} WHERE id = {log}",
                    rng.random_range(0..8) * 4
                ))
                .await;
            }
            _ => {
                let (size,): (u64,) = sqlx::query_as(
                    "SELECT CAST(COALESCE(MAX(tree_size), 0) AS UNSIGNED) FROM sths WHERE log_id = ? AND verified = 1",
                )
                .bind(log)
                .fetch_one(pool)
                .await
                .unwrap();
                app.set_tree_size(log, size + rng.random_range(1..9)).await;
            }
        }
        if step % 8 == 0 {
            assert_counted(&app).await;
        }
    }
    assert_counted(&app).await;
    app.cleanup().await;
}

/// More gaps and faults than the 50 listed: the lists stop at 50, each
/// merged, exactly as a scan lists them, and grow no longer.
#[tokio::test]
async fn at_most_fifty_gaps_and_faults_are_listed() {
    let app = TestApp::spawn().await;
    let log = app
        .import_log("https://many-gaps.example.org/", &TestKey::new())
        .await;
    assert_eq!(app.set_tree_size(log, 1200).await, 300);
    // done, pending, log_fault, done, pending, log_fault, ...; two pending in a row merge.
    sqlx::query(
        "UPDATE tasks SET state = ELT(1 + (start_index DIV 4) % 5, 'done', 'pending', 'pending', 'log_fault', 'done'), \
         proof_state = 'verified' WHERE log_id = ?",
    )
    .bind(log)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_counted(&app).await;
    let p = progress_all(&app.pool).await.unwrap().remove(&log).unwrap();
    assert_eq!((p.gaps.len(), p.faults.len()), (50, 50), "{p:?}");
    assert_eq!(p.gaps[0], (4, 12));
    assert_eq!(p.verified_until, 4);
    assert_eq!(p.entries_missing, 1200 * 2 / 5);

    // Runs longer than the reads' window of 256 tasks: 300 pending, 400
    // done, then done and pending in turn.
    let long = app
        .import_log("https://long-runs.example.org/", &TestKey::new())
        .await;
    assert_eq!(app.set_tree_size(long, 4800).await, 1200);
    sqlx::query(
        "UPDATE tasks SET proof_state = 'verified', state = CASE WHEN start_index < 1200 THEN 'pending' \
         WHEN start_index < 2800 THEN 'done' WHEN (start_index DIV 4) % 2 = 0 THEN 'done' ELSE 'pending' END \
         WHERE log_id = ?",
    )
    .bind(long)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_counted(&app).await;
    let p = progress_all(&app.pool)
        .await
        .unwrap()
        .remove(&long)
        .unwrap();
    assert_eq!(p.gaps.len(), 50, "{p:?}");
    assert_eq!((p.gaps[0], p.gaps[1]), ((0, 1200), (2804, 2808)), "{p:?}");
    app.cleanup().await;
}

/// A snapshot is shared while it is younger than `public_max_age`: with an
/// hour, a new worker does not show until the hour is over; with zero (the
/// tests' setting), it shows at once; with a short age, soon.
#[tokio::test]
async fn a_snapshot_is_shared_for_its_max_age() {
    let app = TestApp::spawn_with(Config {
        public_max_age: Duration::from_secs(3600),
        ..test_config()
    })
    .await;
    let (_, before) = app.get("/v1/stats", None).await;
    app.register(Some("late")).await;
    let (_, after) = app.get("/v1/stats", None).await;
    assert_eq!(before, after);
    let (_, board) = app.get("/v1/workers", None).await;
    assert_eq!(board, json!([]));
    app.cleanup().await;

    let app = TestApp::spawn().await;
    let (_, before) = app.get("/v1/stats", None).await;
    app.register(Some("late")).await;
    let (_, after) = app.get("/v1/stats", None).await;
    assert_eq!(
        before["workers"].as_u64().map(|n| n + 1),
        after["workers"].as_u64()
    );
    let (_, board) = app.get("/v1/workers", None).await;
    assert_eq!(board[0]["name"], "late", "{board}");
    app.cleanup().await;

    // With a short age, an old snapshot is answered at once while the
    // refresh loop reads a new one, which the next requests see.
    let app = TestApp::spawn_with(Config {
        public_max_age: Duration::from_millis(20),
        ..test_config()
    })
    .await;
    let (_, before) = app.get("/v1/stats", None).await;
    assert_eq!(before["workers"], 0, "{before}");
    app.register(Some("later")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, s) = app.get("/v1/stats", None).await;
        assert_eq!(status, 200, "{s}");
        if s["workers"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot was never read again: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.cleanup().await;
}

/// What the proxy does with connections.
const FORWARD: u8 = 0;
/// New connections are accepted and never answered; open ones stop.
const BLACKHOLE: u8 = 1;
/// New connections are closed at once; open ones are closed.
const REFUSE: u8 = 2;
/// The proxy stops.
const SHUT: u8 = 3;

/// A TCP forwarder to the database that can stop answering.
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
    stop: tokio::sync::watch::Sender<u8>,
    handle: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let (stop, watch) = tokio::sync::watch::channel(FORWARD);
        let m = mode.clone();
        let handle = tokio::spawn(async move {
            let mut relays = tokio::task::JoinSet::new();
            let mut ctl = watch.clone();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = relays.join_next(), if !relays.is_empty() => continue,
                    _ = ctl.wait_for(|m| *m == SHUT) => break,
                };
                let Ok((mut client, _)) = accepted else { break };
                let mut watch = watch.clone();
                let upstream = upstream.clone();
                let mode = m.load(Ordering::SeqCst);
                relays.spawn(async move {
                    // Changes before this connection are not its business.
                    watch.borrow_and_update();
                    match mode {
                        REFUSE => {
                            let _ = client.shutdown().await;
                        }
                        BLACKHOLE => {
                            // Hold the socket open, say nothing, until forwarding resumes.
                            let _ = watch.wait_for(|m| *m == FORWARD).await;
                        }
                        _ => {
                            let Ok(mut server) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                // Any change of mode ends this relay: a blackhole stops
                                // the bytes (the sockets stay open until forwarding
                                // resumes), a refusal closes both ends.
                                _ = watch.changed() => {
                                    let m = *watch.borrow();
                                    if m == BLACKHOLE {
                                        let _ = watch.wait_for(|m| *m != BLACKHOLE).await;
                                    }
                                }
                            }
                        }
                    }
                });
            }
        });
        Proxy {
            port,
            mode,
            stop,
            handle,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        let _ = self.stop.send(mode);
    }

    /// Stops accepting and closes every relayed connection.
    async fn shut(self) {
        self.set(SHUT);
        let _ = self.handle.await;
    }
}

/// A manager whose database connections go through `proxy`.
struct Behind {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

async fn serve_behind(app: &TestApp, proxy: &Proxy, config: Config) -> Behind {
    let options: MySqlConnectOptions = app.database_url().parse().unwrap();
    let options = options.host("127.0.0.1").port(proxy.port);
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(config.db_acquire_timeout)
        .connect_with(options)
        .await
        .unwrap();
    let state = AppState::new(pool, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        manager::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Behind {
        base,
        stop: Some(tx),
        handle,
    }
}

/// (status, error code, seconds taken) of one call.
async fn timed(req: reqwest::RequestBuilder) -> (u16, Value, f64) {
    let t = Instant::now();
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body, t.elapsed().as_secs_f64())
}

/// The outage bound of the issue is 2 s for `/healthz` (it waits 1.5 s)
/// and the pool's acquire timeout (1 s here) for other calls; the asserts
/// allow 5 s so that a loaded test machine does not fail them.
const BOUND_S: f64 = 5.0;

/// A database that stops answering (connections accepted and never
/// answered, open ones stalled), then refuses connections, then comes
/// back: `/healthz` answers 503 with the reason within its bound, worker
/// and public calls answer 503 `unavailable` fast (never 500, never after
/// 30 s), and everything answers again once the database does.
#[tokio::test]
async fn a_database_outage_answers_503_fast_and_recovers() {
    let app = TestApp::spawn().await;
    let options: MySqlConnectOptions = app.database_url().parse().unwrap();
    let proxy = Proxy::start((options.get_host().to_owned(), options.get_port())).await;
    let config = Config {
        db_acquire_timeout: Duration::from_secs(1),
        ..test_config()
    };
    let mut m = serve_behind(&app, &proxy, config).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", m.base);

    let (status, v, _) = timed(http.get(url("/healthz"))).await;
    assert_eq!(status, 200, "{v}");
    let (status, v, _) = timed(
        http.post(url("/v1/workers/register"))
            .json(&json!({"name": "outage"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let (status, v, _) = timed(http.get(url("/v1/stats"))).await;
    assert_eq!(status, 200, "{v}");

    for mode in [BLACKHOLE, REFUSE] {
        proxy.set(mode);
        let (status, v, secs) = timed(http.get(url("/healthz"))).await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (503, &json!("unavailable")),
            "{v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("database"),
            "{v}"
        );
        assert!(secs < BOUND_S, "/healthz took {secs:.1} s (mode {mode})");
        let calls = [
            http.post(url("/v1/heartbeat"))
                .bearer_auth(&token)
                .json(&json!({"tasks": []})),
            http.post(url("/v1/tasks/claim"))
                .bearer_auth(&token)
                .json(&json!({})),
            http.post(url("/v1/workers/register"))
                .json(&json!({"name": "during"})),
            http.get(url("/v1/stats")),
            http.get(url("/v1/logs")),
            http.get(url("/v1/workers")),
            http.get(url("/metrics")),
            http.get(url("/v1/admin/logs")).bearer_auth(ADMIN),
        ];
        for call in calls {
            let (status, v, secs) = timed(call).await;
            assert_eq!(
                (status, &v["error"]["code"]),
                (503, &json!("unavailable")),
                "{v} (mode {mode})"
            );
            assert!(secs < BOUND_S, "a call took {secs:.1} s (mode {mode}): {v}");
        }
    }

    proxy.set(FORWARD);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, _) = timed(http.get(url("/healthz"))).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the manager did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, v, _) = timed(
        http.post(url("/v1/heartbeat"))
            .bearer_auth(&token)
            .json(&json!({"tasks": []})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v, _) = timed(http.get(url("/v1/stats"))).await;
    assert_eq!((status, v["workers"].as_u64()), (200, Some(1)), "{v}");

    if let Some(tx) = m.stop.take() {
        let _ = tx.send(());
    }
    m.handle.await.unwrap();
    proxy.shut().await;
    app.cleanup().await;
}
