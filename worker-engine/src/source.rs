//! Where entries come from: an RFC 6962 log (`get-entries`) or a
//! static-ct-api log (data tiles and issuers), fetched over one shared HTTP
//! client (connection reuse, HTTP/2 where the server offers it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ct_core::checkpoint::Checkpoint;
use ct_core::merkle::Hash;
use ct_core::rfc6962::GetSth;
use ct_core::tiles::{TILE_WIDTH, TileId, TileKind};
use tokio::sync::Mutex;

/// The two API kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Rfc6962,
    Static,
}

/// Why a fetch failed; each kind is handled differently by the fetchers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("rate limited (429)")]
    RateLimited(Option<Duration>),
    #[error("server error {0}")]
    Server(u16),
    #[error("client error {0}: {1}")]
    Client(u16, String),
    #[error("not found")]
    NotFound,
    #[error("network: {0}")]
    Network(String),
    #[error("bad answer: {0}")]
    BadAnswer(String),
}

impl FetchError {
    fn from_reqwest(e: &reqwest::Error) -> Self {
        FetchError::Network(if e.is_timeout() {
            "timeout".to_owned()
        } else {
            format!("{e}")
        })
    }
}

/// One log, as the engine fetches it.
#[derive(Debug)]
pub struct Source {
    pub kind: LogKind,
    /// RFC 6962: the log URL; static: the monitoring prefix. Ends with `/`.
    pub base: String,
    client: reqwest::Client,
    issuers: Mutex<HashMap<Hash, Arc<Vec<u8>>>>,
}

/// Builds the shared HTTP client: rustls, timeouts on every request, no
/// redirects followed (log URLs come from the admin's list), and optionally
/// bound to `local_address` (multi-homed hosts; several workers on
/// 127.0.0.x in tests).
pub fn http_client(
    user_agent: &str,
    local_address: Option<std::net::IpAddr>,
) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local_address)
        .build()?)
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: u64 = v.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(600)))
}

impl Source {
    pub fn new(kind: LogKind, url: &str, client: reqwest::Client) -> Self {
        let mut base = url.trim().to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        Source {
            kind,
            base,
            client,
            issuers: Mutex::new(HashMap::new()),
        }
    }

    async fn get(&self, path: &str) -> Result<Bytes, FetchError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(&e))?;
        let status = resp.status();
        if status.as_u16() == 429 {
            return Err(FetchError::RateLimited(retry_after(&resp)));
        }
        if status.as_u16() == 404 {
            return Err(FetchError::NotFound);
        }
        if status.is_server_error() {
            return Err(FetchError::Server(status.as_u16()));
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(FetchError::Client(
                status.as_u16(),
                text.chars().take(200).collect(),
            ));
        }
        resp.bytes().await.map_err(|e| FetchError::from_reqwest(&e))
    }

    /// `get-entries` for `[start, end)` (the API's `end` is inclusive).
    pub async fn get_entries(&self, start: u64, end: u64) -> Result<Bytes, FetchError> {
        let last = end.saturating_sub(1);
        self.get(&format!("ct/v1/get-entries?start={start}&end={last}"))
            .await
    }

    /// A data tile: the full one first, the partial one of `width` when the
    /// full tile does not exist (yet).
    pub async fn data_tile(&self, n: u64, width: u64) -> Result<Bytes, FetchError> {
        let full = TileId {
            kind: TileKind::Data,
            index: n,
            width: TILE_WIDTH,
        };
        match self.get(&full.path()).await {
            Err(FetchError::NotFound) if width < TILE_WIDTH => {
                let partial = TileId { width, ..full };
                self.get(&partial.path()).await
            }
            other => other,
        }
    }

    /// An issuer certificate by fingerprint, fetched once and cached.
    pub async fn issuer(&self, fingerprint: &Hash) -> Result<Arc<Vec<u8>>, FetchError> {
        if let Some(c) = self.issuers.lock().await.get(fingerprint) {
            return Ok(c.clone());
        }
        let der = self
            .get(&format!("issuer/{}", hex::encode(fingerprint)))
            .await?;
        let got: Hash = sha2_digest(&der);
        if &got != fingerprint {
            return Err(FetchError::BadAnswer(format!(
                "issuer {} has another fingerprint",
                hex::encode(fingerprint)
            )));
        }
        let der = Arc::new(der.to_vec());
        self.issuers.lock().await.insert(*fingerprint, der.clone());
        Ok(der)
    }

    /// The current tree size (unverified: the manager verifies heads).
    pub async fn tree_size(&self) -> Result<u64, FetchError> {
        match self.kind {
            LogKind::Rfc6962 => {
                let body = self.get("ct/v1/get-sth").await?;
                let sth: GetSth = serde_json::from_slice(&body)
                    .map_err(|e| FetchError::BadAnswer(format!("get-sth: {e}")))?;
                Ok(sth.tree_size)
            }
            LogKind::Static => {
                let body = self.get("checkpoint").await?;
                let text = String::from_utf8(body.to_vec())
                    .map_err(|_| FetchError::BadAnswer("checkpoint is not UTF-8".into()))?;
                let cp = Checkpoint::parse(&text)
                    .map_err(|e| FetchError::BadAnswer(format!("checkpoint: {e}")))?;
                Ok(cp.tree_size)
            }
        }
    }
}

fn sha2_digest(bytes: &[u8]) -> Hash {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}
