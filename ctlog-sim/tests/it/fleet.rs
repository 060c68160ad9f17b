//! Operators, per-log and operator-wide rate limits, profiles, TLS and gzip.

use std::io::{BufRead, Read};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use ct_core::rfc6962::GetEntries;
use ct_core::sth::LogKey;
use ctlog_sim::{Profile, SimConfig, Simulator};

use crate::{client, get_sth, log, start, verify_sth};

const LOCAL: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

async fn start_profile(json: &str) -> Simulator {
    let config = Profile::parse(json)
        .unwrap()
        .sim_config(SocketAddr::from(LOCAL))
        .unwrap();
    Simulator::start(config).await.unwrap()
}

async fn status(c: &reqwest::Client, url: &str) -> u16 {
    c.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_profile_of_two_operators_serves_each_log_and_lists_it_by_operator() {
    let sim = start_profile(
        r#"{"operators": [
            {"name": "A", "rate_limit": 50.0, "logs": [
                {"entries": 300, "seed": 1, "rate_limit": 8.0, "batch_cap": 100},
                {"entries": 200, "seed": 2, "kind": "both-tiled", "description": "A tiled", "batch_cap": 50}
            ]},
            {"name": "B", "email": ["b@example.invalid"], "logs": [
                {"entries": 100, "seed": 3, "kind": "both", "latency_ms": 5}
            ]}
        ]}"#,
    )
    .await;
    let infos = sim.logs();
    assert_eq!(infos.len(), 3);
    let c = client();
    for (info, size) in infos.iter().zip([300, 200, 100]) {
        let key = LogKey::from_spki_der(&info.key).unwrap();
        assert_eq!(verify_sth(&get_sth(&c, &info.url).await, &key).0, size);
    }
    let ops: Vec<&str> = infos.iter().map(|i| i.operator.as_str()).collect();
    assert_eq!(ops, ["A", "A", "B"]);

    let list = sim.log_list();
    assert_eq!(list.operators.len(), 2);
    let (a, b) = (&list.operators[0], &list.operators[1]);
    assert_eq!((a.name.as_str(), b.name.as_str()), ("A", "B"));
    assert_eq!(b.email, ["b@example.invalid"]);
    assert_eq!((a.logs.len(), a.tiled_logs.len()), (1, 1));
    assert_eq!((b.logs.len(), b.tiled_logs.len()), (1, 0));
    assert_eq!(a.logs[0].url.as_deref(), Some(infos[0].url.as_str()));
    assert_eq!(
        a.tiled_logs[0].monitoring_url.as_deref(),
        Some(infos[1].url.as_str())
    );
    assert_eq!(a.tiled_logs[0].description, "A tiled");
    // certspotter's settings: the cap, and one job at the log's own rate or
    // its share of the operator's (50/s over 2 logs), whichever is lower.
    assert_eq!(a.logs[0].certspotter_download_size, Some(100));
    assert_eq!(a.logs[0].certspotter_download_jobs, Some(1));
    assert_eq!(a.logs[0].certspotter_qps, Some(8.0));
    assert_eq!(a.tiled_logs[0].certspotter_qps, Some(25.0));
    assert_eq!(a.tiled_logs[0].certspotter_download_size, Some(256));
    // 25 requests/s at about 100 ms each: 3 in flight.
    assert_eq!(a.tiled_logs[0].certspotter_download_jobs, Some(3));
    assert_eq!(b.logs[0].certspotter_download_size, Some(256));
    assert_eq!(b.logs[0].certspotter_download_jobs, None);
    assert_eq!(b.logs[0].certspotter_qps, None);
    let json = sim.log_list_json();
    let first = &json["operators"][0]["logs"][0];
    assert_eq!(first["certspotter_download_qps"], 8.0);
    assert_eq!(first["certspotter_qps"], 8.0);
    assert!(json["operators"][1]["logs"][0]["certspotter_download_qps"].is_null());
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_log_limit_leaves_the_other_logs_of_its_operator_alone() {
    let sim = start_profile(
        r#"{"operators": [{"name": "A", "logs": [
            {"entries": 50, "rate_limit": 0.02, "burst": 3},
            {"entries": 50, "rate_limit": 0.02, "burst": 3}
        ]}]}"#,
    )
    .await;
    let infos = sim.logs();
    let c = client();
    let sth = |i: usize| format!("{}ct/v1/get-sth", infos[i].url);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(status(&c, &sth(0)).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    for _ in 0..3 {
        assert_eq!(status(&c, &sth(1)).await, 200);
    }
    assert_eq!(status(&c, &sth(1)).await, 429);
    let counters = &sim.log(0).unwrap().faults.counters;
    assert_eq!(counters.rate_limited.load(Ordering::Relaxed), 3);
    assert_eq!(counters.operator_limited.load(Ordering::Relaxed), 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_operator_limit_is_one_bucket_per_client_over_its_logs() {
    let sim = start_profile(
        r#"{"operators": [
            {"name": "A", "rate_limit": 0.02, "burst": 4, "logs": [
                {"entries": 50}, {"entries": 50, "rate_limit": 100.0}
            ]},
            {"name": "B", "logs": [{"entries": 50}]}
        ]}"#,
    )
    .await;
    let infos = sim.logs();
    let c = client();
    let sth = |i: usize| format!("{}ct/v1/get-sth", infos[i].url);
    for _ in 0..4 {
        assert_eq!(status(&c, &sth(0)).await, 200);
    }
    assert_eq!(status(&c, &sth(0)).await, 429);
    // The operator's bucket is empty for this address on its other log too,
    let r = c.get(sth(1)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // and another operator's log is not concerned.
    for _ in 0..10 {
        assert_eq!(status(&c, &sth(2)).await, 200);
    }
    let counters = &sim.log(1).unwrap().faults.counters;
    assert_eq!(counters.operator_limited.load(Ordering::Relaxed), 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_log_refusal_spends_nothing_of_the_operator_budget() {
    let sim = start_profile(
        r#"{"operators": [{"name": "A", "rate_limit": 0.02, "burst": 4, "logs": [
            {"entries": 50, "rate_limit": 0.02, "burst": 1}, {"entries": 50}
        ]}]}"#,
    )
    .await;
    let infos = sim.logs();
    let c = client();
    let sth = |i: usize| format!("{}ct/v1/get-sth", infos[i].url);
    assert_eq!(status(&c, &sth(0)).await, 200);
    for _ in 0..5 {
        assert_eq!(status(&c, &sth(0)).await, 429);
    }
    // One of the operator's 4 tokens went to log 0; the refusals took none.
    for _ in 0..3 {
        assert_eq!(status(&c, &sth(1)).await, 200);
    }
    assert_eq!(status(&c, &sth(1)).await, 429);
    sim.shutdown().await.unwrap();
}

#[test]
fn profile_errors_name_the_entry() {
    let err = |json: &str| Profile::parse(json).unwrap_err().to_string();
    assert!(err(r#"{"operators": []}"#).contains("no operators"));
    let e = err(r#"{"operators": [{"name": "A", "logs": [{"entries": 5, "rate_limt": 3}]}]}"#);
    assert!(e.contains("rate_limt"), "{e}");
    let e = err(r#"{"operators": [{"name": "A", "logs": [{"rate_limit": -1}]}]}"#);
    assert!(e.contains("operators[0] (\"A\").logs[0]"), "{e}");
    let e = err(r#"{"operators": [{"name": "A", "logs": [{}]}, {"name": "A", "logs": [{}]}]}"#);
    assert!(e.contains("twice"), "{e}");
    let e = err(r#"{"operators": [{"name": "A", "logs": [{"kind": "tiles"}]}]}"#);
    assert!(e.contains("unknown variant"), "{e}");
    let e = err(r#"{"operators": [{"name": "A", "logs": [{"error_rate": 2}]}]}"#);
    assert!(e.contains("error_rate"), "{e}");
}

#[tokio::test]
async fn a_log_naming_an_undeclared_operator_is_refused() {
    let mut cfg = log(10, 1, ctlog_sim::Views::RFC6962);
    cfg.operator = Some("nobody".into());
    let e = Simulator::start(SimConfig::new(vec![cfg]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nobody"), "{e}");
}

#[test]
fn the_example_profiles_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles");
    let fleet = Profile::load(format!("{dir}/fleet-8x4.json").as_ref()).unwrap();
    assert_eq!((fleet.operators.len(), fleet.log_count()), (4, 8));
    let config = fleet.sim_config(SocketAddr::from(LOCAL)).unwrap();
    let limits: std::collections::HashSet<String> = config
        .logs
        .iter()
        .map(|l| format!("{:?}", l.faults.rate_limit))
        .collect();
    assert!(limits.len() >= 4);
    assert!(config.operators.iter().any(|o| o.rate_limit.is_some()));
    assert!(config.operators.iter().any(|o| o.rate_limit.is_none()));

    let six = Profile::load(format!("{dir}/six-at-8rps.json").as_ref()).unwrap();
    assert_eq!(six.log_count(), 6);
    assert!(six.operators.len() <= 4);
    let config = six.sim_config(SocketAddr::from(LOCAL)).unwrap();
    let mut entries = 0;
    for l in &config.logs {
        assert_eq!(l.views, ctlog_sim::Views::RFC6962);
        assert_eq!((l.faults.rate_limit, l.batch_cap), (Some(8.0), 256));
        let ctlog_sim::Source::Generated { entries: n, .. } = l.source else {
            panic!("generated")
        };
        entries += n;
    }
    // About a minute at 6 logs x 8 requests/s x 256 entries.
    let secs = entries as f64 / (6.0 * 8.0 * 256.0);
    assert!((55.0..70.0).contains(&secs), "{secs}");
}

fn tls_client(ca_pem: Option<&str>, http1: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder();
    if let Some(pem) = ca_pem {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    if http1 {
        b = b.http1_only();
    }
    b.build().unwrap()
}

#[tokio::test]
async fn tls_serves_http2_and_http1_to_clients_that_trust_its_ca() {
    let mut config = SimConfig::new(vec![log(100, 3, crate::BOTH)]);
    config.tls = true;
    let sim = Simulator::start(config).await.unwrap();
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let info = &sim.logs()[0];
    assert!(info.url.starts_with("https://"));
    let list = sim.log_list();
    assert_eq!(
        list.operators[0].logs[0].url.as_deref(),
        Some(info.url.as_str())
    );
    let pem = sim.ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let key = LogKey::from_spki_der(&info.key).unwrap();
    let url = format!("{}ct/v1/get-sth", info.url);
    for (http1, version) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let c = tls_client(Some(pem), http1);
        let r = c.get(&url).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.version()), (200, version));
        verify_sth(&r.json().await.unwrap(), &key);
        // The static view too, on a connection the client keeps.
        let r = c
            .get(format!("{}checkpoint", info.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let e = tls_client(None, false).get(&url).send().await.unwrap_err();
    assert!(e.is_connect() || e.is_request(), "{e:?}");
    // Plain HTTP to the TLS port is no answer either.
    let plain = url.replacen("https://", "http://", 1);
    assert!(client().get(&plain).send().await.is_err());
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn get_entries_is_gzipped_for_clients_that_accept_it() {
    let mut without = log(300, 5, ctlog_sim::Views::RFC6962);
    without.gzip = false;
    let sim = start(vec![log(400, 4, ctlog_sim::Views::RFC6962), without]).await;
    let info = &sim.logs()[0];
    // A client that leaves bodies as they come (reqwest may be built to decode gzip).
    let c = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    let url = format!("{}ct/v1/get-entries?start=0&end=255", info.url);
    let plain = c.get(&url).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let r = c
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "accept-encoding");
    let gz = r.bytes().await.unwrap();
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);
    let answer: GetEntries<'_> = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(answer.entries.len(), 256);
    assert!(gz.len() < plain.len(), "{} {}", gz.len(), plain.len());
    // Other calls are not encoded; refusals and errors neither.
    let r = c
        .get(format!("{}ct/v1/get-sth", info.url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    // A log configured without gzip answers as it is.
    let r = c
        .get(format!(
            "{}ct/v1/get-entries?start=0&end=9",
            sim.logs()[1].url
        ))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    let body = r.bytes().await.unwrap();
    let answer: GetEntries<'_> = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer.entries.len(), 10);
    let counters = &sim.log(0).unwrap().faults.counters;
    assert_eq!(counters.gzipped.load(Ordering::Relaxed), 1);
    let sent = counters.bytes_sent.load(Ordering::Relaxed);
    let identity = counters.bytes_identity.load(Ordering::Relaxed);
    let sth_len = identity - 2 * plain.len() as u64;
    assert_eq!(sent, plain.len() as u64 + gz.len() as u64 + sth_len);
    sim.shutdown().await.unwrap();
}

/// The binary: a profile over TLS, the CA and the log list written to files.
#[tokio::test]
async fn the_binary_serves_a_profile_over_tls() {
    let dir = std::env::temp_dir().join(format!("ctlog-sim-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("profile.json");
    std::fs::write(
        &profile,
        r#"{"operators": [
            {"name": "A", "logs": [{"entries": 60, "rate_limit": 8.0, "burst": 8}]},
            {"name": "B", "rate_limit": 10.0, "logs": [{"entries": 70, "kind": "both-tiled"}, {"entries": 80}]}
        ]}"#,
    )
    .unwrap();
    let (ca, list) = (dir.join("ca.pem"), dir.join("list.json"));
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ctlog-sim"))
        .arg("--profile")
        .arg(&profile)
        .arg("--tls")
        .arg("--tls-ca-out")
        .arg(&ca)
        .arg("--log-list-out")
        .arg(&list)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    assert!(
        line.starts_with("ctlog-sim listening on https://"),
        "{line}"
    );
    let pem = std::fs::read_to_string(&ca).unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&list).unwrap()).unwrap();
    let c = tls_client(Some(&pem), false);
    let ops = list["operators"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    let mut urls = Vec::new();
    for op in ops {
        for l in op["logs"].as_array().unwrap() {
            urls.push(l["url"].as_str().unwrap().to_owned());
        }
        for l in op["tiled_logs"].as_array().unwrap() {
            urls.push(l["monitoring_url"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(urls.len(), 3);
    for url in &urls {
        assert!(url.starts_with("https://"), "{url}");
        get_sth(&c, url).await;
    }
    let a = &ops[0]["logs"][0];
    assert_eq!(a["certspotter_download_size"], 256);
    assert_eq!(a["certspotter_download_jobs"], 1);
    assert_eq!(a["certspotter_download_qps"], 8.0);
    assert_eq!(ops[1]["logs"][0]["certspotter_download_qps"], 5.0);
    let untrusting = tls_client(None, false);
    assert!(untrusting.get(&urls[0]).send().await.is_err());
    drop(child);
    std::fs::remove_dir_all(&dir).unwrap();
}
