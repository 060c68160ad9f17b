//! `Retry-After`, in seconds and as an HTTP date, on 429 and 503: the next
//! request to that log comes no earlier than the log asked.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ctlog_sim::LogConfig;
use tokio_util::sync::CancellationToken;
use worker_engine::source::LogKind;

use crate::support::{Encoding, Front, Rule, client, ctx, fetch, refuse, sim};

/// Fetches a 256-entry log with one fetcher whose first request is answered
/// `status` with `Retry-After: value()` (made when the request comes); the
/// first two requests and the value sent.
async fn first_refused(
    status: u16,
    value: impl Fn() -> String + Send + Sync + 'static,
) -> (crate::support::Hit, crate::support::Hit, String) {
    let sim = sim(vec![LogConfig::generated(256, 1)]).await;
    let sent = Arc::new(Mutex::new(String::new()));
    let rule: Rule = {
        let sent = sent.clone();
        Arc::new(move |n, _| {
            (n == 0).then(|| {
                let v = value();
                *sent.lock().unwrap() = v.clone();
                refuse(status, &v)
            })
        })
    };
    let front = Front::start(&sim.logs()[0].url, Encoding::Plain, rule).await;
    let c = ctx(LogKind::Rfc6962, &front.url, client(), 1, 256);
    let (outcome, _) = fetch(&c, 0, 256, CancellationToken::new()).await;
    assert_eq!(outcome.next_index, 256, "{:?}", outcome.failure);
    assert!(outcome.subtree_hash.is_some());
    let hits = front.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    let sent = sent.lock().unwrap().clone();
    (hits[0].clone(), hits[1].clone(), sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_in_seconds_is_waited_for() {
    let (first, second, _) = first_refused(429, || "1".into()).await;
    let gap = second.at - first.at;
    assert!(gap >= Duration::from_secs(1), "{gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_as_an_http_date_is_waited_for() {
    // IMF-fixdate has whole seconds: the date is 1 to 2 s away.
    let (first, second, value) = first_refused(429, || {
        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2))
    })
    .await;
    assert!(value.ends_with(" GMT"), "{value}");
    let date = httpdate::parse_http_date(&value).unwrap();
    assert!(
        second.wall + Duration::from_millis(20) >= date,
        "asked {value}, came back {:?} early",
        date.duration_since(second.wall).unwrap_or_default()
    );
    assert!(second.at - first.at >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_retry_after_is_waited_for_too() {
    let (first, second, _) = first_refused(503, || "1".into()).await;
    let gap = second.at - first.at;
    assert!(gap >= Duration::from_secs(1), "{gap:?}");
}
