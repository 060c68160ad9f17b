//! End to end: ctlog-sim (with faults) + the real `ct-manager` binary over
//! MariaDB + real `ct-worker --no-tui` processes. The stored entries must equal
//! the simulator's truth, also through a SIGKILL of a worker and a 30 s
//! manager outage.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctlog_sim::{FaultConfig, LogConfig, SimConfig, Simulator, Views};

pub(crate) const ADMIN: &str = "e2e-admin-token";

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ct-worker"))
        .parent()
        .unwrap()
        .to_owned()
}

fn manager_bin() -> PathBuf {
    let p = bin_dir().join("ct-manager");
    assert!(
        p.is_file(),
        "{} is missing: build it first (scripts/test runs `cargo build --workspace --bins`)",
        p.display()
    );
    p
}

fn base_db_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) struct Stack {
    pub(crate) sim: Simulator,
    db_name: String,
    db_url: String,
    manager: Option<Child>,
    manager_port: u16,
    /// Flags added to `ct-manager serve`.
    manager_args: Vec<String>,
    pub(crate) dir: PathBuf,
    pub(crate) http: reqwest::Client,
}

impl Stack {
    pub(crate) async fn new(tag: &str, logs: Vec<LogConfig>) -> Stack {
        Self::new_with(tag, logs, &[]).await
    }

    /// A stack whose manager gets `manager_args` too.
    pub(crate) async fn new_with(tag: &str, logs: Vec<LogConfig>, manager_args: &[&str]) -> Stack {
        let sim = Simulator::start(SimConfig::new(logs)).await.unwrap();
        let db_name = format!("ctjp_e2e_{tag}_{}", std::process::id());
        let base = base_db_url();
        mysql(&base, &format!("DROP DATABASE IF EXISTS {db_name}")).await;
        mysql(&base, &format!("CREATE DATABASE {db_name}")).await;
        let dir = std::env::temp_dir().join(&db_name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut stack = Stack {
            sim,
            db_url: format!("{}/{db_name}", base.trim_end_matches('/')),
            db_name,
            manager: None,
            manager_port: free_port(),
            manager_args: manager_args.iter().map(|a| (*a).to_owned()).collect(),
            dir,
            http: reqwest::Client::new(),
        };
        stack.start_manager().await;
        // Import exactly what the simulator serves, then poll the heads.
        let list = serde_json::to_value(stack.sim.log_list()).unwrap();
        let r = stack
            .http
            .post(stack.url("/v1/admin/logs"))
            .bearer_auth(ADMIN)
            .json(&list)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "import: {}",
            r.text().await.unwrap()
        );
        // The logs' faults hit get-sth and checkpoints too: poll until verified.
        for id in 1..=stack.sim.logs().len() {
            let mut tries = 0;
            loop {
                let r = stack
                    .http
                    .post(stack.url(&format!("/v1/admin/logs/{id}/poll")))
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .unwrap();
                let body = r.text().await.unwrap();
                if body.contains("\"verified\":true") {
                    break;
                }
                tries += 1;
                assert!(tries < 50, "poll: {body}");
            }
        }
        stack
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.manager_port)
    }

    async fn start_manager(&mut self) {
        let log = std::fs::File::create(self.dir.join("manager.log")).unwrap();
        let child = Command::new(manager_bin())
            .args(["--database-url", &self.db_url, "serve"])
            .args(["--listen", &format!("127.0.0.1:{}", self.manager_port)])
            .args([
                "--admin-token",
                ADMIN,
                "--lease-secs",
                "4",
                "--reap-secs",
                "1",
            ])
            .args(["--task-size-log2", "9", "--check-min-tasks", "0"])
            // The tests read progress from /v1/logs to time collection:
            // every read sees what is committed (no snapshot age).
            .args(["--public-max-age-ms", "0"])
            .args(if self.manager_args.iter().any(|a| a == "--poll-secs") {
                &[][..]
            } else {
                &["--poll-secs", "0"][..]
            })
            .args(&self.manager_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.manager = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "the manager did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop_manager(&mut self) {
        if let Some(mut m) = self.manager.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
    }

    pub(crate) fn worker(&self, name: &str) -> Child {
        self.worker_with(name, &[])
    }

    /// A worker with `extra` flags too.
    pub(crate) fn worker_with(&self, name: &str, extra: &[&str]) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        Command::new(env!("CARGO_BIN_EXE_ct-worker"))
            .args(["--no-tui", "--manager", &self.url("")])
            .args(extra)
            .args(["--local-address", &worker_address(name)])
            .args([
                "--name",
                name,
                "--heartbeat-secs",
                "1",
                "--drain-secs",
                "10",
            ])
            .arg("--state-dir")
            .arg(self.dir.join(name))
            .env("CT_LOG", "info")
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    pub(crate) async fn stats(&self) -> serde_json::Value {
        match self.http.get(self.url("/v1/stats")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// Waits until every planned task is done.
    pub(crate) async fn wait_done(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.stats().await;
            if s["tasks_pending"] == 0
                && s["tasks_leased"] == 0
                && s["tasks_done"].as_u64() > Some(0)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not done in {limit:?}: {s}; logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(crate) async fn wait_tasks_done(&self, n: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.stats().await["tasks_done"].as_u64().unwrap_or(0) < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} tasks done in {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Records `name` at `place` in a rank snapshot of yesterday (UTC), as
    /// the manager's daily snapshot would have: what `/v1/workers/me` then
    /// gives as `rank_yesterday`.
    pub(crate) async fn rank_yesterday(&self, name: &str, place: u32) {
        use sqlx::Connection;
        const DAY_MS: i64 = 86_400_000;
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let yesterday = now - DAY_MS;
        let mut c = sqlx::MySqlConnection::connect(&self.db_url).await.unwrap();
        sqlx::query(
            "INSERT INTO rank_snapshots (day, name, place, entries, matches, tasks_done, machines, taken_at) \
             VALUES (?, ?, ?, 0, 0, 0, 1, ?)",
        )
        .bind(yesterday - yesterday.rem_euclid(DAY_MS))
        .bind(name)
        .bind(place)
        .bind(yesterday)
        .execute(&mut c)
        .await
        .unwrap();
    }

    /// Stored (log url, index, leaf hash) from `ct-manager export`.
    pub(crate) fn stored(&self) -> BTreeSet<(String, u64, String)> {
        let out = Command::new(manager_bin())
            .args(["--database-url", &self.db_url, "export"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["log_url"].as_str().unwrap().to_owned(),
                    v["index"].as_u64().unwrap(),
                    v["leaf_hash"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Every log's whole tree is verified against its signed head.
    pub(crate) async fn assert_all_verified(&self) {
        let logs: serde_json::Value = self
            .http
            .get(self.url("/v1/logs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for log in logs.as_array().unwrap() {
            let text = log.to_string();
            assert_eq!(
                log["progress"]["verified_until"], log["tree_size"],
                "{text}"
            );
            assert_eq!(log["progress"]["entries_faulty"], 0, "{text}");
            assert_eq!(log["progress"]["entries_missing"], 0, "{text}");
        }
    }

    /// The sum of a counter (or gauge) over its labels in the manager's
    /// `/metrics`, e.g. `ctjp_tasks_failed_total`; 0 when absent.
    pub(crate) async fn manager_metric(&self, name: &str) -> u64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// The one text column `sql` selects, from the stack's database.
    pub(crate) async fn strings(&self, sql: &str) -> Vec<String> {
        use sqlx::Connection;
        let mut c = sqlx::MySqlConnection::connect(&self.db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    }

    pub(crate) fn truth(&self) -> BTreeSet<(String, u64, String)> {
        let mut out = BTreeSet::new();
        for log in self.sim.truth().logs {
            for m in log.matches {
                out.insert((log.url.clone(), m.index, m.leaf_hash));
            }
        }
        out
    }

    pub(crate) fn assert_truth(&self) {
        let (stored, truth) = (self.stored(), self.truth());
        assert!(!truth.is_empty());
        let missing: Vec<_> = truth.difference(&stored).take(5).collect();
        let extra: Vec<_> = stored.difference(&truth).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{} stored vs {} true; missing {missing:?}, extra {extra:?}",
            stored.len(),
            truth.len()
        );
    }

    pub(crate) async fn finish(mut self, workers: Vec<Child>) {
        for mut w in workers {
            stop(&mut w);
        }
        self.stop_manager();
        mysql(
            &base_db_url(),
            &format!("DROP DATABASE IF EXISTS {}", self.db_name),
        )
        .await;
        let _ = std::fs::remove_dir_all(&self.dir);
        self.sim.shutdown().await.unwrap();
    }
}

async fn mysql(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
}

/// SIGTERM and wait: the worker must exit 0 after its drain.
fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "worker exited with {status}");
}

/// Each worker its own loopback address (the same for the same name): the
/// manager gives check tasks only to a worker of another address.
pub(crate) fn worker_address(name: &str) -> String {
    let n = name
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("127.0.0.{}", 2 + n % 250)
}

pub(crate) fn faulty(entries: u64, seed: u64, views: Views) -> LogConfig {
    let mut log = LogConfig::generated(entries, seed);
    log.views = views;
    log.batch_cap = 100;
    log.faults = FaultConfig {
        rate_limit: Some(400.0),
        burst: 40,
        error_rate: 0.05,
        cut_rate: 0.03,
        short_rate: 0.2,
        ..FaultConfig::default()
    };
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6962_and_static_logs_with_faults_equal_the_truth() {
    let stack = Stack::new(
        "faults",
        vec![
            faulty(3000, 11, Views::RFC6962),
            faulty(2500, 12, Views::STATIC),
        ],
    )
    .await;
    let workers = vec![stack.worker("alice"), stack.worker("bob")];
    stack.wait_done(Duration::from_secs(120)).await;
    stack.assert_truth();
    stack.assert_all_verified().await;
    stack.finish(workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_restarts_and_nothing_is_lost() {
    let mut log = faulty(4000, 21, Views::RFC6962);
    log.faults.latency_ms = 20;
    let stack = Stack::new("sigkill", vec![log]).await;
    // A second worker takes the hidden-entry checks of the first one's ranges.
    let other = stack.worker("erin");
    let mut w = stack.worker("carol");
    stack.wait_tasks_done(1, Duration::from_secs(60)).await;
    w.kill().unwrap();
    w.wait().unwrap();
    // Same state directory: same token, the spool is replayed.
    let w = stack.worker("carol");
    stack.wait_done(Duration::from_secs(120)).await;
    stack.assert_truth();
    stack.finish(vec![w, other]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_away_for_30_seconds_loses_nothing() {
    let mut log = faulty(4000, 31, Views::RFC6962);
    log.faults.latency_ms = 20;
    let mut stack = Stack::new("outage", vec![log]).await;
    let w = stack.worker("dave");
    let other = stack.worker("frank");
    stack.wait_tasks_done(1, Duration::from_secs(60)).await;
    stack.stop_manager();
    // The outage itself is what this test is about.
    tokio::time::sleep(Duration::from_secs(30)).await;
    stack.start_manager().await;
    stack.wait_done(Duration::from_secs(120)).await;
    stack.assert_truth();
    stack.finish(vec![w, other]).await;
}
