//! Identities end to end: real `ct-manager` and `ct-worker` processes. A
//! worker whose state directory is lost (a container restarted without a
//! volume) comes back under the same name with `--secret` and goes on
//! working; the leaderboard shows the name once with both machines' totals;
//! a wrong secret (or none) makes the worker exit non-zero at once, saying
//! what to do; a worker that keeps its state directory and is given a
//! secret registers again under it, replacing its old registration.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctlog_sim::Views;
use serde_json::Value;

use crate::e2e::{ADMIN, Stack, faulty, worker_address};

const SECRET: &str = "ivy's secret for the e2e test";

async fn get(stack: &Stack, path: &str, admin: bool) -> Value {
    let mut req = stack.http.get(stack.url(path));
    if admin {
        req = req.bearer_auth(ADMIN);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// The admin's rows of the machines named `name`, by id.
async fn machines(stack: &Stack, name: &str) -> Vec<Value> {
    get(stack, "/v1/admin/workers", true)
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == name)
        .cloned()
        .collect()
}

/// Waits until `name`'s newest machine has completed a task.
async fn wait_for_newest_machine(stack: &Stack, name: &str, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let rows = machines(stack, name).await;
        if rows.len() == count && rows[count - 1]["tasks_done"].as_u64() > Some(0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "machine {count} of {name} did no task in {limit:?}: {rows:?}; logs in {}",
            stack.dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until nothing is pending or leased.
async fn wait_all_done(stack: &Stack, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let s = stack.stats().await;
        if s["tasks_pending"] == 0 && s["tasks_leased"] == 0 && s["tasks_done"].as_u64() > Some(0) {
            return;
        }
        assert!(Instant::now() < deadline, "not done in {limit:?}: {s}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A worker named `name` with its own state directory `dir` and `extra`
/// flags, whose stderr is kept.
fn worker_in(stack: &Stack, name: &str, dir: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ct-worker"))
        .args(["--no-tui", "--manager", &stack.url("")])
        .args(["--local-address", &worker_address(dir)])
        .args(["--name", name, "--heartbeat-secs", "1"])
        .args(extra)
        .arg("--state-dir")
        .arg(stack.dir.join(dir))
        .env("CT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most `limit`) for `child` to exit on its own: its status and stderr.
fn exits_within(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (status, String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_state_directory_comes_back_under_its_name() {
    let mut log = faulty(6000, 61, Views::RFC6962);
    log.faults.latency_ms = 20;
    let stack = Stack::new("identity", vec![log]).await;
    let secret = ["--secret", SECRET];
    let mut first = stack.worker_with("ivy", &secret);
    wait_for_newest_machine(&stack, "ivy", 1, Duration::from_secs(60)).await;
    // The container restarts without its volume.
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::remove_dir_all(stack.dir.join("ivy")).unwrap();
    let second = stack.worker_with("ivy", &secret);
    wait_for_newest_machine(&stack, "ivy", 2, Duration::from_secs(60)).await;
    let rows = machines(&stack, "ivy").await;
    assert_eq!(rows[0]["identity_id"], rows[1]["identity_id"], "{rows:?}");
    assert!(rows[0]["identity_id"].is_u64(), "{rows:?}");

    // Someone else takes ivy's name: refused at once, told what to do, and
    // the worker exits non-zero instead of retrying.
    let started = Instant::now();
    let wrong = worker_in(
        &stack,
        "ivy",
        "mallory",
        &["--secret", "a guess at ivy's secret"],
    );
    let (status, stderr) = exits_within(wrong, Duration::from_secs(30));
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("409 name_taken")
            && stderr.contains(
                "the name \"ivy\" is taken by another volunteer: use its secret \
                 (--secret / WORKER_SECRET) or choose another name"
            ),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "no retries");
    let (status, stderr) = exits_within(
        worker_in(&stack, "ivy", "nosecret", &[]),
        Duration::from_secs(30),
    );
    assert!(
        !status.success() && stderr.contains("use its secret"),
        "{stderr}"
    );
    let (status, stderr) = exits_within(
        worker_in(&stack, "ivy", "short", &["--secret", "too short"]),
        Duration::from_secs(30),
    );
    assert!(
        !status.success() && stderr.contains("16 to 256 bytes"),
        "{stderr}"
    );
    assert_eq!(machines(&stack, "ivy").await.len(), 2);

    // A worker that keeps its state directory and is given a secret
    // registers again under it, replacing its registration.
    let mut jan = stack.worker("jan");
    let deadline = Instant::now() + Duration::from_secs(30);
    while machines(&stack, "jan").await.is_empty() {
        assert!(Instant::now() < deadline, "jan did not register");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    jan.kill().unwrap();
    jan.wait().unwrap();
    let jan = stack.worker_with("jan", &["--secret", "jan's own secret, long enough"]);

    wait_all_done(&stack, Duration::from_secs(180)).await;
    let (stored, truth) = (stack.stored(), stack.truth());
    assert!(!truth.is_empty());
    assert_eq!(stored, truth);
    let jans = machines(&stack, "jan").await;
    assert_eq!(jans.len(), 2, "{jans:?}");
    assert_eq!(jans[0]["replaced_by"], jans[1]["id"], "{jans:?}");
    assert_eq!(jans[0]["identity_id"], jans[1]["identity_id"], "{jans:?}");

    // The leaderboard: ivy once, both machines' totals summed.
    let board = get(&stack, "/v1/workers", false).await;
    let ivy: Vec<&Value> = board
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == "ivy")
        .collect();
    assert_eq!(ivy.len(), 1, "{board}");
    let rows = machines(&stack, "ivy").await;
    for field in ["entries", "matches", "tasks_done"] {
        let sum: u64 = rows.iter().map(|r| r[field].as_u64().unwrap()).sum();
        assert_eq!(ivy[0][field], sum, "{field}: {board} vs {rows:?}");
    }
    assert_eq!(ivy[0]["machines"], 2, "{board}");
    let jan_row: Vec<&Value> = board
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == "jan")
        .collect();
    assert_eq!(jan_row.len(), 1, "{board}");
    assert_eq!(
        jan_row[0]["machines"], 1,
        "the replaced one does not count: {board}"
    );
    stack.finish(vec![second, jan]).await;
}
