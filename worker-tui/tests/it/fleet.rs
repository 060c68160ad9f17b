//! The fleet end to end: real ct-manager and ct-worker processes over
//! ctlog-sim. A live log's newest entries are collected within two poll
//! intervals while another log's backlog is collected, and a log added
//! while the workers run gets its first tasks within one poll interval.

use std::time::{Duration, Instant};

use ctlog_sim::{LogConfig, SimConfig, Simulator};

use crate::e2e::{ADMIN, Stack};

const POLL_SECS: u64 = 2;

async fn log_progress(stack: &Stack, url: &str) -> serde_json::Value {
    let logs: serde_json::Value = stack
        .http
        .get(stack.url("/v1/logs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    logs.as_array()
        .unwrap()
        .iter()
        .find(|l| l["url"] == url)
        .cloned()
        .unwrap_or_default()
}

async fn tree_size(http: &reqwest::Client, url: &str) -> u64 {
    let sth: serde_json::Value = http
        .get(format!("{url}ct/v1/get-sth"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sth["tree_size"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tip_of_a_live_log_moves_while_another_log_backfills() {
    // A backlog that takes a while at 10 requests/s of 100 entries, and a
    // small log growing at 50 entries/s.
    let mut backlog = LogConfig::generated(30_000, 41);
    backlog.batch_cap = 100;
    backlog.faults.rate_limit = Some(10.0);
    backlog.faults.burst = 10;
    let mut live = LogConfig::generated(1_000, 42);
    live.grow_per_sec = 50;
    let poll = POLL_SECS.to_string();
    let stack = Stack::new_with("fleet", vec![backlog, live], &["--poll-secs", &poll]).await;
    let (backlog_url, live_url) = (
        stack.sim.logs()[0].url.clone(),
        stack.sim.logs()[1].url.clone(),
    );
    let w = stack.worker("gina");
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_progress(&stack, &live_url).await["progress"]["verified_until"]
        .as_u64()
        .unwrap_or(0)
        < 1_000
    {
        assert!(
            Instant::now() < deadline,
            "the live log's first entries were not collected"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for round in 0..3 {
        let size = tree_size(&stack.http, &live_url).await;
        tokio::time::sleep(Duration::from_secs(2 * POLL_SECS) + Duration::from_millis(1500)).await;
        let live_p = log_progress(&stack, &live_url).await;
        let verified = live_p["progress"]["verified_until"].as_u64().unwrap_or(0);
        assert!(
            verified >= size,
            "round {round}: {size} entries existed two polls ago, {verified} verified: {live_p}"
        );
        let back = log_progress(&stack, &backlog_url).await;
        assert!(
            back["progress"]["entries_missing"].as_u64().unwrap_or(0) > 0,
            "the backlog is still being collected: {back}"
        );
    }

    // A log added while the worker runs gets tasks within one poll interval.
    let extra = Simulator::start(SimConfig::new(vec![LogConfig::generated(500, 43)]))
        .await
        .unwrap();
    let list = serde_json::to_value(extra.log_list()).unwrap();
    let added = Instant::now();
    let r = stack
        .http
        .post(stack.url("/v1/admin/logs"))
        .bearer_auth(ADMIN)
        .json(&list)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let url = extra.logs()[0].url.clone();
    loop {
        let l = log_progress(&stack, &url).await;
        if l["tasks"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            added.elapsed() < Duration::from_secs(POLL_SECS) + Duration::from_millis(1500),
            "no tasks one poll interval after the import: {l}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.finish(vec![w]).await;
    extra.shutdown().await.unwrap();
}

/// `--metrics-listen` serves the worker's own Prometheus metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_its_metrics() {
    let stack = Stack::new("wmetrics", vec![LogConfig::generated(2_000, 44)]).await;
    let addr = format!("127.0.0.1:{}", crate::e2e::free_port());
    let w = stack.worker_with("hana", &["--metrics-listen", &addr]);
    // 2,000 entries in tasks of 512 and smaller: 7 ranges (their checks wait
    // for a worker of another address).
    stack.wait_tasks_done(7, Duration::from_secs(60)).await;
    let text = stack
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let entries: u64 = text
        .lines()
        .filter(|l| l.starts_with("ctjp_worker_entries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(entries >= 2_000, "{text}");
    assert!(text.contains("ctjp_worker_tasks_done_total"), "{text}");
    assert!(text.contains("ctjp_worker_requests_total{"), "{text}");
    assert!(
        text.contains("# TYPE ctjp_worker_fetchers_allowed gauge"),
        "{text}"
    );
    stack.finish(vec![w]).await;
}
