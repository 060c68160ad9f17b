//! Lifetime totals end to end: a real headless `ct-worker` over ctlog-sim
//! and the real manager logs a totals line as often as `--totals-secs` says:
//! this session's and the name's lifetime totals with their .jp ratios, the
//! rank and yesterday's, the link to its page under `--site-url`, and per
//! log the entries left and the ETA at the fleet's rate, which becomes
//! `done` once the log is collected.

use std::time::{Duration, Instant};

use ctlog_sim::{LogConfig, Views};
use serde_json::Value;

use crate::e2e::{ADMIN, Stack};

/// The `totals` lines the worker `name` logged so far (JSON log format).
fn totals_lines(stack: &Stack, name: &str) -> Vec<Value> {
    std::fs::read_to_string(stack.dir.join(format!("{name}.log")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "totals")
        .map(|v| v["fields"].clone())
        .collect()
}

/// Waits (at most `limit`) for a totals line that `pred` accepts.
async fn wait_totals(
    stack: &Stack,
    name: &str,
    what: &str,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let lines = totals_lines(stack, name);
        if let Some(v) = lines.iter().rev().find(|v| pred(v)) {
            return v.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no totals line with {what} in {limit:?}; the last: {:?}; logs in {}",
            lines.last(),
            stack.dir.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The ETA of the only log in a totals line's `logs`.
fn eta(v: &Value) -> String {
    v["logs"]
        .as_str()
        .and_then(|l| l.split_once(" eta="))
        .map(|(_, e)| e.to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_logs_lifetime_totals_rank_the_link_and_the_eta() {
    // Slow enough (about 1,000 entries/s) for ETAs while it is collected.
    let mut log = LogConfig::generated(16_000, 61);
    log.views = Views::RFC6962;
    log.batch_cap = 50;
    log.faults.rate_limit = Some(20.0);
    log.faults.burst = 20;
    let stack = Stack::new("totals", vec![log]).await;
    stack.rank_yesterday("hana", 2).await;
    let w = stack.worker_with(
        "hana",
        &[
            "--log-format",
            "json",
            "--totals-secs",
            "1",
            "--site-url",
            "https://site.example/",
        ],
    );

    // While the log is collected: the lifetime totals counted by the
    // manager, the rank, the link, and an ETA that is a time.
    let v = wait_totals(
        &stack,
        "hana",
        "lifetime entries and a time as the ETA",
        Duration::from_secs(60),
        |v| {
            v["lifetime.entries"].as_u64() > Some(0)
                && eta(v).starts_with(|c: char| c.is_ascii_digit())
        },
    )
    .await;
    assert_eq!(
        (&v["rank"], &v["rank_yesterday"], &v["rank_of"]),
        (&"1".into(), &"2".into(), &1.into()),
        "{v}"
    );
    assert_eq!(v["machines"], 1, "{v}");
    let workers: Value = stack
        .http
        .get(stack.url("/v1/admin/workers"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = workers.as_array().unwrap()[0]["id"].as_u64().unwrap();
    assert_eq!(
        v["dashboard"],
        format!("https://site.example/workers/{id}.html"),
        "{v}"
    );
    assert!(v["session.entries"].as_u64() > Some(0), "{v}");
    assert!(
        v["session.jp_ratio"]
            .as_str()
            .is_some_and(|r| r.ends_with('%')),
        "{v}"
    );
    assert!(
        v["lifetime.jp_ratio"]
            .as_str()
            .is_some_and(|r| r.ends_with('%')),
        "{v}"
    );
    assert!(
        v["logs"].as_str().is_some_and(|l| l.contains(" .jp=")),
        "{v}"
    );

    // Collected: nothing left, the ETA says so, the lifetime totals are all
    // the log's entries. (The hidden-entry checks of its ranges wait for a
    // worker at another address; they are not what is left of the log.)
    let v = wait_totals(&stack, "hana", "eta=done", Duration::from_secs(120), |v| {
        eta(v) == "done" && v["lifetime.entries"].as_u64() >= Some(16_000)
    })
    .await;
    assert!(
        v["logs"].as_str().is_some_and(|l| l.contains(" left=0 ")),
        "{v}"
    );
    // Heartbeats report each task's own matches: the lifetime count is the
    // log's true matches (a range fetched twice after a lost lease would add
    // its own again, never the log's).
    let truth = stack.truth().len() as u64;
    let matches = v["lifetime.matches"].as_u64().unwrap_or(0);
    assert!(
        truth > 0 && matches >= truth && matches < 2 * truth,
        "{truth} true matches: {v}"
    );
    stack.assert_truth();
    stack.finish(vec![w]).await;
}
