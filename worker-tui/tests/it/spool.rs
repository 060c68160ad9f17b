//! Spool back-pressure end to end: real ct-manager and ct-worker processes
//! over ctlog-sim and MariaDB. A spool far smaller than a dense log's
//! uploads makes the workers wait for acknowledgements instead of dropping
//! tasks, and a task a worker must give up is failed to the manager at once.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ctlog_sim::{LogConfig, Source};

use crate::e2e::Stack;

/// A generated log where about a third of the entries name `.jp` domains.
fn dense(entries: u64, seed: u64) -> LogConfig {
    let mut log = LogConfig::generated(entries, seed);
    log.source = Source::Generated {
        entries,
        seed,
        match_share: 1.0 / 3.0,
    };
    log
}

/// The bytes of the matching entries' `leaf_input` and `extra_data`, as
/// get-entries serves them (what the worker uploads, before audit paths).
async fn match_bytes(stack: &Stack, url: &str, entries: u64, matches: &BTreeSet<u64>) -> u64 {
    let mut bytes = 0;
    let mut start = 0;
    while start < entries {
        let end = (start + 256).min(entries) - 1;
        let page: serde_json::Value = stack
            .http
            .get(format!("{url}ct/v1/get-entries?start={start}&end={end}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let got = page["entries"].as_array().unwrap();
        assert!(!got.is_empty());
        for (i, e) in got.iter().enumerate() {
            if matches.contains(&(start + i as u64)) {
                bytes += (e["leaf_input"].as_str().unwrap().len()
                    + e["extra_data"].as_str().unwrap().len()) as u64;
            }
        }
        start += got.len() as u64;
    }
    bytes
}

/// Tasks completed by the worker named `name`, as the manager counts them.
async fn tasks_done_by(stack: &Stack, name: &str) -> u64 {
    let workers: serde_json::Value = stack
        .http
        .get(stack.url("/v1/workers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    workers
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == name)
        .filter_map(|w| w["tasks_done"].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_mib_spool_collects_a_dense_log_whole() {
    // 6,000 entries in tasks of 512: about 170 matches a task.
    let stack = Stack::new("spool", vec![dense(6_000, 61)]).await;
    let log = stack.sim.logs()[0].clone();
    let indices: BTreeSet<u64> = log.truth.matches.iter().map(|m| m.index).collect();
    assert!(
        indices.len() > 1_800,
        "{} matches of 6,000 entries",
        indices.len()
    );
    // What the workers must upload is several times a 1 MiB spool.
    let bytes = match_bytes(&stack, &log.url, 6_000, &indices).await;
    assert!(bytes > 4 << 20, "the matches take only {bytes} bytes");
    // A spool of 0 MiB is smaller than any batch: each goes alone. It runs
    // first, so that it certainly completes tasks of its own.
    let small = ["--spool-mib", "0", "--max-tasks", "2"];
    let leo = stack.worker_with("leo", &small);
    stack.wait_tasks_done(1, Duration::from_secs(120)).await;
    let kim = stack.worker_with("kim", &["--spool-mib", "1", "--max-tasks", "2"]);
    stack.wait_done(Duration::from_secs(300)).await;
    stack.assert_truth();
    stack.assert_all_verified().await;
    // Nothing was given back: the full spool made the workers wait.
    assert_eq!(stack.manager_metric("ctjp_tasks_failed_total").await, 0);
    for name in ["leo", "kim"] {
        assert!(
            tasks_done_by(&stack, name).await > 0,
            "{name} completed nothing"
        );
    }
    stack.finish(vec![leo, kim]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_the_worker_gives_up_is_failed_at_once() {
    // Slow enough (8 requests of 64 entries a task, 2 requests a second)
    // that the spool breaks while the first tasks are still fetched.
    let mut log = dense(3_000, 62);
    log.batch_cap = 64;
    log.faults.rate_limit = Some(2.0);
    log.faults.burst = 1;
    let stack = Stack::new("spoolfail", vec![log]).await;
    let w = stack.worker("mia");
    let spool = stack.dir.join("mia").join("spool");
    // The worker has opened its spool once it holds a lease.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(spool.is_dir() && stack.stats().await["tasks_leased"].as_u64() > Some(0)) {
        assert!(Instant::now() < deadline, "the worker claimed nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The spool can no longer be written (a file where its directory was):
    // a real error no retry cures.
    break_spool(&spool);
    let given_back = "SELECT last_error FROM tasks WHERE last_error LIKE 'cannot spool uploads%'";
    let deadline = Instant::now() + Duration::from_secs(120);
    let reasons = loop {
        let reasons = stack.strings(given_back).await;
        if !reasons.is_empty() {
            break reasons;
        }
        assert!(
            Instant::now() < deadline,
            "no task was given back; logs in {}",
            stack.dir.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The manager recorded the worker's own reason (an expired lease would
    // say "lease expired") and counted the failure.
    assert!(reasons[0].contains("spool"), "{reasons:?}");
    assert!(stack.manager_metric("ctjp_tasks_failed_total").await >= 1);
    stack.finish(vec![w]).await;
}

fn break_spool(spool: &Path) {
    std::fs::remove_dir_all(spool).unwrap();
    std::fs::write(spool, b"not a directory").unwrap();
}
