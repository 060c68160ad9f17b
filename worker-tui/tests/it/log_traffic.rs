//! The worker's traffic to logs, end to end through the `ct-worker` binary
//! with a fake manager: `--proxy` and the proxy variables carry it, the
//! lease's budget paces it, the manager's claim pacing and cooldowns are
//! obeyed and shown, and a log that answers 429 does not hold up another.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ct_core::protocol::{Cooldown, FetchBudget, LogFetchers, LogKind, TaskLease};
use ctlog_sim::{LogConfig, SimConfig, Simulator};

use crate::fakes::{FakeManager, ForwardProxy, ManagerState, RefusingLog, stop, test_dir, worker};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn lease(task_id: u64, log_id: u64, url: &str, end: u64, budget: Option<FetchBudget>) -> TaskLease {
    TaskLease {
        task_id,
        log_id,
        log_url: url.to_owned(),
        kind: LogKind::Rfc6962,
        monitoring_url: None,
        start: 0,
        end,
        next_index: 0,
        lease_expires_at: now_ms() + 60_000,
        fetchers: 4,
        check_of: None,
        operator: "sim".into(),
        budget,
    }
}

/// `start` and `end` (inclusive) of a get-entries URL.
fn entries_asked(url: &str) -> Option<(u64, u64)> {
    let q = url.split_once('?')?.1;
    let mut start = None;
    let mut end = None;
    for kv in q.split('&') {
        match kv.split_once('=') {
            Some(("start", v)) => start = v.parse().ok(),
            Some(("end", v)) => end = v.parse().ok(),
            _ => {}
        }
    }
    Some((start?, end?))
}

fn most_in_a_second(times: &[Instant]) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_flag_carries_log_traffic_paced_at_the_budget() {
    let sim = Simulator::start(SimConfig::new(vec![LogConfig::generated(512, 31)]))
        .await
        .unwrap();
    let log_url = sim.logs()[0].url.clone();
    let proxy = ForwardProxy::start().await;
    let budget = FetchBudget {
        requests_per_sec: 5.0,
        entries_per_request: 32,
        fetchers: 4,
        operator_requests_per_sec: None,
    };
    let manager = FakeManager::start(ManagerState {
        pending: VecDeque::from([lease(1, 1, &log_url, 512, Some(budget))]),
        retry_after_ms: Some(4000),
        reason: Some("every log at its budget".into()),
        fetchers: vec![LogFetchers {
            log_id: 1,
            log_url: log_url.clone(),
            fetchers: 3,
            reason: "steady".into(),
            budget: Some(budget),
        }],
        cooldowns: vec![Cooldown {
            log_id: 2,
            until: now_ms() + 120_000,
            reason: "5 failures in a row".into(),
        }],
        ..ManagerState::default()
    })
    .await;
    let dir = test_dir("proxy-flag");
    let w = worker(
        &manager.url,
        &dir,
        &["--proxy", &proxy.url, "--max-tasks", "2"],
        &[],
    );
    manager
        .wait_for(Duration::from_secs(30), "the task to complete", |s| {
            !s.completed.is_empty()
        })
        .await;
    let done = manager.completed_at(1).unwrap();
    // Two claims after the task, both answered "no task, wait 4 s".
    manager
        .wait_for(Duration::from_secs(15), "two claims after the task", |s| {
            s.claims.iter().filter(|(t, _)| *t > done).count() >= 2
        })
        .await;
    stop(w);
    let state = manager.state.lock().unwrap();
    assert!(state.failed.is_empty(), "{:?}", state.failed);
    assert_eq!(state.uploaded, sim.logs()[0].truth.matches.len());
    let claimed = |f: &dyn Fn(Instant) -> bool| -> Vec<Instant> {
        state
            .claims
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| f(*t))
            .collect()
    };
    let before = claimed(&|t| t < done);
    let after = claimed(&|t| t > done);
    // While the task ran, the worker claimed for a second task and was told
    // to wait 4 s; the task's end (what that answer counted) woke it early.
    let last_before = *before.last().unwrap();
    if done < last_before + Duration::from_millis(3900) {
        assert!(
            after[0] < last_before + Duration::from_secs(4),
            "no claim when the task ended"
        );
    }
    // Holding nothing, it waited the whole 4 s (and up to 10% of jitter).
    let gap = after[1] - after[0];
    assert!(gap >= Duration::from_secs(4), "claimed again after {gap:?}");
    drop(state);
    // Every log request, and only those, went through the proxy.
    let seen = proxy.seen();
    let log_prefix = log_url.trim_end_matches('/');
    assert!(
        seen.iter().all(|p| p.url.starts_with(log_prefix)),
        "not a log request: {:?}",
        seen.iter().find(|p| !p.url.starts_with(log_prefix))
    );
    let asked: Vec<(u64, u64)> = seen.iter().filter_map(|p| entries_asked(&p.url)).collect();
    assert_eq!(asked.len(), 16, "{asked:?}");
    assert!(
        asked.iter().all(|(s, e)| e - s + 1 == 32),
        "not the budget's 32 entries a request: {asked:?}"
    );
    let times: Vec<Instant> = seen.iter().map(|p| p.at).collect();
    let most = most_in_a_second(&times);
    assert!(
        most <= 6,
        "{most} requests to the log within a second at 5/s"
    );
    // The budget, its change and the cooldown are in the worker's log.
    let out = std::fs::read_to_string(dir.join("worker.log")).unwrap();
    assert!(out.contains("claimed · 5 req/s, 32/req"), "{out}");
    assert!(out.contains("steady · 5 req/s, 32/req"), "{out}");
    assert!(
        out.contains("manager cooldown") && out.contains("log #2"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_variables_carry_log_and_manager_traffic() {
    let sim = Simulator::start(SimConfig::new(vec![LogConfig::generated(512, 32)]))
        .await
        .unwrap();
    let log_url = sim.logs()[0].url.clone();
    let proxy = ForwardProxy::start().await;
    // No budget: the worker fetches as it did before budgets.
    let manager = FakeManager::start(ManagerState {
        pending: VecDeque::from([lease(1, 1, &log_url, 512, None)]),
        ..ManagerState::default()
    })
    .await;
    let dir = test_dir("proxy-env");
    let w = worker(
        &manager.url,
        &dir,
        &[],
        &[("HTTP_PROXY", &proxy.url), ("http_proxy", &proxy.url)],
    );
    manager
        .wait_for(Duration::from_secs(30), "the task to complete", |s| {
            !s.completed.is_empty()
        })
        .await;
    stop(w);
    assert_eq!(
        manager.state.lock().unwrap().uploaded,
        sim.logs()[0].truth.matches.len()
    );
    let seen = proxy.seen();
    let log_prefix = log_url.trim_end_matches('/');
    let log_requests = seen
        .iter()
        .filter(|p| p.url.starts_with(log_prefix))
        .count();
    // 512 entries at the log's cap of 256 (the default batch is larger).
    assert!(log_requests >= 2, "{seen:?}");
    assert!(
        seen.iter()
            .any(|p| p.method == "POST" && p.url == format!("{}/v1/tasks/claim", manager.url)),
        "the manager's traffic follows the same variables: {seen:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_log_does_not_hold_up_another_log() {
    let sim = Simulator::start(SimConfig::new(vec![LogConfig::generated(1024, 33)]))
        .await
        .unwrap();
    let good_url = sim.logs()[0].url.clone();
    // The other log refuses everything and asks for 4 s each time.
    let hold = Duration::from_secs(4);
    let refusing = RefusingLog::start(hold.as_secs()).await;
    let budget = FetchBudget {
        requests_per_sec: 20.0,
        entries_per_request: 128,
        fetchers: 4,
        operator_requests_per_sec: None,
    };
    let manager = FakeManager::start(ManagerState {
        pending: VecDeque::from([
            lease(1, 1, &refusing.url, 1024, Some(budget)),
            lease(2, 2, &good_url, 1024, Some(budget)),
        ]),
        retry_after_ms: Some(1000),
        ..ManagerState::default()
    })
    .await;
    let dir = test_dir("rate-limited");
    let w = worker(&manager.url, &dir, &["--max-tasks", "2"], &[]);
    manager
        .wait_for(Duration::from_secs(30), "the good log's task", |s| {
            s.completed.iter().any(|(t, _)| *t == 2)
        })
        .await;
    stop(w);
    let done = manager.completed_at(2).unwrap();
    let refused = refusing.seen();
    let first = *refused.first().expect("the refusing log was asked");
    assert!(
        done < first + hold,
        "the good log finished {:?} after the other log's first 429 (held {hold:?})",
        done.saturating_duration_since(first)
    );
    // The refusing log itself waited as asked: at most the first window of
    // two fetchers before its hold ended.
    let early = refused.iter().filter(|t| **t < first + hold).count();
    assert!(early <= 2, "{early} requests during the hold");
    assert!(manager.completed_at(1).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
