//! Test harness: fresh database, server on port 0, helpers to build CT entries and logs.

use std::time::Duration;

use ct_core::leaf::{EntryType, TimestampedEntry, encode_extra_data, encode_leaf};
use ct_core::protocol::RegisterRequest;
use manager::{AppState, Config, db};
use rand::RngCore;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use worker_engine::client::ManagerClient;

pub const ADMIN: &str = "test-admin-token";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: MySqlPool,
    pub state: AppState,
    db_name: String,
    server_url: String,
    /// The server URL's query (TLS options), `?...` or empty.
    query: String,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub fn test_config() -> Config {
    Config {
        admin_token: Some(ADMIN.into()),
        poll_interval: None,
        reap_interval: None,
        task_size_log2: 2,
        max_body_bytes: 256 * 1024,
        lease: Duration::from_secs(300),
        registrations_per_hour: 0,
        audit_interval: None,
        audit_share: 0.0,
        // One worker may take a whole small log (the fleet tests set the default 2).
        tasks_per_log: 64,
        // The public reads see every change made before the request.
        public_max_age: Duration::ZERO,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(test_config()).await
    }

    pub async fn spawn_with(config: Config) -> TestApp {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        // A query (`?ssl-mode=VERIFY_CA&ssl-ca=...`) stays after the database name.
        let full = server_url();
        let (base, query) = full
            .split_once('?')
            .map_or((full.as_str(), ""), |(b, q)| (b, q));
        let server = base.trim_end_matches('/').to_owned();
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let db_name = format!("ctjp_test_{:016x}", rand::rng().next_u64());
        let admin = MySqlPool::connect(&format!("{server}{query}"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {db_name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let pool = db::connect(&format!("{server}/{db_name}{query}"), 16)
            .await
            .unwrap();
        db::migrate(&pool).await.unwrap();
        let state = AppState::new(pool.clone(), config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let st = state.clone();
        let handle = tokio::spawn(async move {
            manager::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            pool,
            state,
            db_name,
            server_url: server,
            query,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server and drops the database.
    pub async fn cleanup(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        self.pool.close().await;
        let admin = MySqlPool::connect(&format!("{}{}", self.server_url, self.query))
            .await
            .unwrap();
        sqlx::query(&format!("DROP DATABASE {}", self.db_name))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    }

    /// The URL of this test's database (for the `ct-manager` binary).
    pub fn database_url(&self) -> String {
        format!("{}/{}{}", self.server_url, self.db_name, self.query)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON with an optional bearer token; returns (status, body).
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        send(self.client.post(self.url(path)).json(body), token).await
    }

    /// An admin call with any method and a JSON body.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        send(
            self.client.request(method, self.url(path)).json(body),
            Some(ADMIN),
        )
        .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        send(self.client.get(self.url(path)), token).await
    }

    /// Registers a worker through the worker's own client (one attempt);
    /// returns (worker id, token).
    pub async fn register(&self, name: Option<&str>) -> (u64, String) {
        self.register_from(name, [127, 0, 0, 1]).await
    }

    /// A client of this manager whose connections leave from `from`
    /// (127.0.0.x: independent workers for check tasks).
    pub fn client_from(&self, from: [u8; 4]) -> ManagerClient {
        let http = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(from))
            .build()
            .unwrap();
        ManagerClient::new(&self.base, http).without_retries()
    }

    /// Registers a worker from address `from`; returns (worker id, token).
    pub async fn register_from(&self, name: Option<&str>, from: [u8; 4]) -> (u64, String) {
        let req = RegisterRequest {
            name: name.map(str::to_owned),
            version: name.map(|_| "test".to_owned()),
            ..RegisterRequest::default()
        };
        let r = self
            .client_from(from)
            .register(&req, &CancellationToken::new())
            .await
            .unwrap();
        (r.worker_id, r.token)
    }

    /// Imports a log list with one RFC 6962 log at `url` with `key`; returns the log id.
    pub async fn import_log(&self, url: &str, key: &TestKey) -> u64 {
        let (status, v) = self
            .post("/v1/admin/logs", Some(ADMIN), &log_list(url, key, "usable"))
            .await;
        assert_eq!(status, 200, "{v}");
        let (id,): (u64,) = sqlx::query_as("SELECT id FROM logs WHERE url = ?")
            .bind(manager::logs::normalize_url(url).unwrap())
            .fetch_one(&self.pool)
            .await
            .unwrap();
        id
    }

    /// Records a verified tree head directly and plans.
    pub async fn set_tree_size(&self, log_id: u64, size: u64) -> u64 {
        sqlx::query(
            "INSERT IGNORE INTO sths (log_id, tree_size, timestamp_ms, root_hash, signature, verified, fetched_at) \
             VALUES (?, ?, ?, ?, '', 1, 0)",
        )
        .bind(log_id)
        .bind(size)
        .bind(size)
        .bind(&[0u8; 32][..])
        .execute(&self.pool)
        .await
        .unwrap();
        manager::planner::plan_log(
            &self.pool,
            &self.state.store,
            log_id,
            self.state.config.task_size_log2,
        )
        .await
        .unwrap()
    }

    /// Polls log `log_id` now (as the admin `poll` does): fetches and
    /// verifies its tree head, then plans.
    pub async fn poll(&self, log_id: u64) -> manager::poller::PollOutcome {
        manager::poller::poll_log(&self.state, log_id)
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&self.pool).await.unwrap();
        n
    }
}

/// A P-256 log key.
pub struct TestKey {
    pub pair: EcdsaKeyPair,
    pub spki: Vec<u8>,
}

impl TestKey {
    pub fn new() -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        TestKey { pair, spki }
    }

    /// A DigitallySigned over `msg`.
    pub fn sign(&self, msg: &[u8]) -> ct_core::sth::DigitallySigned {
        let sig = self.pair.sign(&SystemRandom::new(), msg).unwrap();
        ct_core::sth::DigitallySigned {
            hash_alg: ct_core::sth::HASH_SHA256,
            sig_alg: ct_core::sth::SIG_ECDSA,
            signature: sig.as_ref().to_vec(),
        }
    }
}

/// A v3 log list with one RFC 6962 log.
pub fn log_list(url: &str, key: &TestKey, state: &str) -> Value {
    json!({
        "version": "3.0",
        "operators": [{
            "name": "Test Operator",
            "email": ["ct@example.org"],
            "logs": [{
                "description": "Test log",
                "log_id": ct_core::b64::encode(&ct_core::sth::log_id(&key.spki)),
                "key": ct_core::b64::encode(&key.spki),
                "url": url,
                "mmd": 86400,
                "state": { state: { "timestamp": "2024-01-01T00:00:00Z" } }
            }],
            "tiled_logs": []
        }]
    })
}

/// A certificate with these SANs, DER.
pub fn cert(sans: &[&str]) -> Vec<u8> {
    let params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

/// An upload entry (x509) for `index` holding a certificate with `sans`.
pub fn entry(index: u64, sans: &[&str]) -> Value {
    let der = cert(sans);
    entry_of(index, &der)
}

pub fn entry_of(index: u64, der: &[u8]) -> Value {
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: 1_700_000_000_000 + index,
        entry_type: EntryType::X509,
        issuer_key_hash: None,
        signed: der,
        extensions: &[],
    });
    let extra = encode_extra_data(None, &[]);
    json!({"index": index, "leaf_input": ct_core::b64::encode(&leaf), "extra_data": ct_core::b64::encode(&extra)})
}

/// Sends with an optional bearer token; returns (status, JSON body or the text).
async fn send(mut req: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
