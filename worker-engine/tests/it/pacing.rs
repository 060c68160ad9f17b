//! Pacing over the real HTTP stack: a log's budget holds whatever the
//! number of fetchers, an operator's budget holds across its logs, and a
//! log that answers 429 does not slow another log fetched at the same time.

use std::sync::Arc;
use std::time::Duration;

use ctlog_sim::LogConfig;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use worker_engine::pace::Pacer;
use worker_engine::source::LogKind;
use worker_engine::stats::LogStats;

use crate::support::{
    Encoding, Front, Hit, Rule, client, ctx, fetch, most_in_window, pass, refuse, root_hash, sim,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logs_budget_holds_with_four_fetchers() {
    let sim = sim(vec![LogConfig::generated(512, 2)]).await;
    let front = Front::start(&sim.logs()[0].url, Encoding::Plain, pass()).await;
    // 16 requests of 32 entries at 5 requests/s.
    let c = ctx(LogKind::Rfc6962, &front.url, client(), 4, 32);
    c.source.pacer().set_limit(Some(5.0));
    let (outcome, matches) = fetch(&c, 0, 512, CancellationToken::new()).await;
    assert_eq!(outcome.next_index, 512, "{:?}", outcome.failure);
    assert_eq!(
        outcome.subtree_hash,
        Some(root_hash(LogKind::Rfc6962, &sim.logs()[0].url).await)
    );
    assert_eq!(matches, sim.logs()[0].truth.matches.len());
    let hits = front.hits();
    assert_eq!(hits.len(), 16);
    assert!(hits.iter().all(|h| h.path.starts_with("ct/v1/get-entries")));
    // 5 a second and the burst of 1; arrival jitter may bring one more in.
    let most = most_in_window(&hits, Duration::from_secs(1));
    assert!(most <= 6, "{most} requests within one second at 5/s");
    let span = hits[15].at - hits[0].at;
    assert!(
        span >= Duration::from_millis(2900),
        "16 requests at 5/s in {span:?}"
    );
    assert!(c.source.pacer().rate().is_some_and(|r| r <= 5.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_budget_holds_across_its_logs() {
    let sim = sim(vec![
        LogConfig::generated(256, 3),
        LogConfig::generated(256, 4),
    ])
    .await;
    let http = client();
    let operator = Arc::new(Pacer::new(Some(5.0)));
    let mut fronts = Vec::new();
    let mut ctxs = Vec::new();
    for log in sim.logs() {
        let front = Front::start(&log.url, Encoding::Plain, pass()).await;
        let c = ctx(LogKind::Rfc6962, &front.url, http.clone(), 4, 32);
        // Each log alone could go at 100/s; together they get 5/s.
        c.source.pacer().set_limit(Some(100.0));
        c.source.set_operator_pacer(Some(operator.clone()));
        fronts.push(front);
        ctxs.push(c);
    }
    let (a, b) = tokio::join!(
        fetch(&ctxs[0], 0, 256, CancellationToken::new()),
        fetch(&ctxs[1], 0, 256, CancellationToken::new())
    );
    assert_eq!((a.0.next_index, b.0.next_index), (256, 256));
    let mut hits: Vec<Hit> = fronts.iter().flat_map(|f| f.hits()).collect();
    hits.sort_by_key(|h| h.at);
    assert_eq!(hits.len(), 16);
    let most = most_in_window(&hits, Duration::from_secs(1));
    assert!(
        most <= 6,
        "{most} requests within one second at 5/s for the operator"
    );
    assert!(hits[15].at - hits[0].at >= Duration::from_millis(2900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_log_does_not_slow_another() {
    let sim = sim(vec![
        LogConfig::generated(1024, 5),
        LogConfig::generated(1024, 6),
    ])
    .await;
    let logs = sim.logs();
    // Log A refuses everything and asks for 3 s each time.
    let hold = Duration::from_secs(3);
    let refusing: Rule = Arc::new(|_, _| Some(refuse(429, "3")));
    let a = Front::start(&logs[0].url, Encoding::Plain, refusing).await;
    let b = Front::start(&logs[1].url, Encoding::Plain, pass()).await;
    // One HTTP client for both, as in the worker.
    let http = client();
    let ca = ctx(LogKind::Rfc6962, &a.url, http.clone(), 4, 256);
    let cb = ctx(LogKind::Rfc6962, &b.url, http, 4, 128);
    cb.source.pacer().set_limit(Some(20.0));
    let stop_a = CancellationToken::new();
    let fetching_a = {
        let (ca, stop) = (ca.clone(), stop_a.clone());
        tokio::spawn(async move { fetch(&ca, 0, 1024, stop).await })
    };
    // A's first refusal is in before B starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.hits().is_empty() {
        assert!(Instant::now() < deadline, "log A got no request");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (outcome, _) = fetch(&cb, 0, 1024, CancellationToken::new()).await;
    let b_done = Instant::now();
    assert_eq!(outcome.next_index, 1024, "{:?}", outcome.failure);
    assert_eq!(b.hits().len(), 8);
    let a_first = a.hits()[0].at;
    assert!(
        b_done < a_first + hold,
        "log B finished {:?} after log A's first 429, A holds for {hold:?}",
        b_done - a_first
    );
    // Meanwhile log A waited as asked: nothing after its first answers
    // (the first window of two fetchers) before the hold ended.
    let early = a.hits().iter().filter(|h| h.at < a_first + hold).count();
    assert!(early <= 2, "log A asked {early} times during its hold");
    assert!(LogStats::get(&ca.stats.rate_limited) >= 1);
    stop_a.cancel();
    let (outcome_a, _) = fetching_a.await.unwrap();
    assert!(outcome_a.next_index < 1024);
}
