//! Each fault appears at roughly its configured rate.

use ct_core::rfc6962::GetEntries;
use ctlog_sim::{FaultConfig, Views};

use crate::{client, log, start};

fn with_faults(faults: FaultConfig) -> ctlog_sim::LogConfig {
    let mut cfg = log(600, 21, Views::RFC6962);
    cfg.faults = faults;
    cfg
}

#[tokio::test]
async fn error_rate_gives_500_and_503() {
    let sim = start(vec![with_faults(FaultConfig {
        error_rate: 0.25,
        ..FaultConfig::default()
    })])
    .await;
    let url = format!("{}ct/v1/get-sth", sim.logs()[0].url);
    let c = client();
    let (mut e500, mut e503, mut ok) = (0, 0, 0);
    for _ in 0..400 {
        match c.get(&url).send().await.unwrap().status().as_u16() {
            200 => ok += 1,
            500 => e500 += 1,
            503 => e503 += 1,
            s => panic!("status {s}"),
        }
    }
    assert!((60..=150).contains(&(e500 + e503)), "{e500} {e503} {ok}");
    assert!(e500 > 10 && e503 > 10);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limit_per_client_with_and_without_retry_after() {
    let sim = start(vec![with_faults(FaultConfig {
        rate_limit: Some(0.5),
        burst: 5,
        ..FaultConfig::default()
    })])
    .await;
    let url = format!("{}ct/v1/get-sth", sim.logs()[0].url);
    let c = client();
    let (mut ok, mut limited, mut with_retry) = (0, 0, 0);
    for _ in 0..30 {
        let r = c.get(&url).send().await.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                limited += 1;
                if r.headers().contains_key("retry-after") {
                    with_retry += 1;
                }
            }
            s => panic!("status {s}"),
        }
    }
    // The burst, plus at most a token or two refilled while the loop ran.
    assert!((5..=7).contains(&ok), "{ok}");
    assert_eq!(ok + limited, 30);
    assert!(
        with_retry > 0 && with_retry < limited,
        "{with_retry}/{limited}"
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn cut_bodies_fail_mid_read() {
    let sim = start(vec![with_faults(FaultConfig {
        cut_rate: 0.3,
        ..FaultConfig::default()
    })])
    .await;
    let url = format!("{}ct/v1/get-entries?start=0&end=20", sim.logs()[0].url);
    let (mut cut, mut whole) = (0, 0);
    for _ in 0..200 {
        // A fresh client each time: a cut connection is not reused.
        let c = client();
        let r = match c.get(&url).send().await {
            Ok(r) => r,
            Err(_) => {
                cut += 1;
                continue;
            }
        };
        match r.bytes().await {
            Ok(b) => {
                let a: GetEntries<'_> = serde_json::from_slice(&b).unwrap();
                assert_eq!(a.entries.len(), 21);
                whole += 1;
            }
            Err(_) => cut += 1,
        }
    }
    assert!((30..=100).contains(&cut), "{cut} cut, {whole} whole");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn short_answers_and_latency() {
    let sim = start(vec![with_faults(FaultConfig {
        short_rate: 0.5,
        latency_ms: 20,
        ..FaultConfig::default()
    })])
    .await;
    let url = format!("{}ct/v1/get-entries?start=0&end=99", sim.logs()[0].url);
    let c = client();
    let mut short = 0;
    let started = std::time::Instant::now();
    for _ in 0..100 {
        let body = c.get(&url).send().await.unwrap().text().await.unwrap();
        let a: GetEntries<'_> = serde_json::from_str(&body).unwrap();
        assert!(!a.entries.is_empty() && a.entries.len() <= 100);
        if a.entries.len() < 100 {
            short += 1;
        }
    }
    // Latency is added to every answer (a lower bound, not a timing assertion).
    assert!(started.elapsed() >= std::time::Duration::from_millis(100 * 20));
    assert!((30..=70).contains(&short), "{short}");
    sim.shutdown().await.unwrap();
}
