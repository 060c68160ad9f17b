//! Where entries come from: an RFC 6962 log (`get-entries`) or a
//! static-ct-api log (data tiles and issuers), fetched over one shared HTTP
//! client (connection reuse, HTTP/2 where the server offers it, gzip and
//! brotli bodies, the user's proxy and extra CA). Every request to a log
//! waits for its [`Pacer`]s first, and a `Retry-After` holds the log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ct_core::checkpoint::Checkpoint;
use ct_core::merkle::Hash;
use ct_core::rfc6962::GetSth;
use ct_core::tiles::{TILE_WIDTH, TileId, TileKind};
use tokio::sync::Mutex;

use crate::pace::Pacer;

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// The largest answer read from a log, decompressed (a get-entries answer
/// of 1,000 entries is a few MiB; a data tile less): a compressed answer
/// cannot expand past it.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The two API kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Rfc6962,
    Static,
}

/// Why a fetch failed; each kind is handled differently by the fetchers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// A 429, with the log's `Retry-After` if it sent one.
    #[error("rate limited (429)")]
    RateLimited(Option<Duration>),
    /// A 5xx, with the log's `Retry-After` if it sent one (503s often do).
    #[error("server error {0}")]
    Server(u16, Option<Duration>),
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
    /// This log's pacing (its budget, the AIMD share, `Retry-After` holds).
    pacer: Arc<Pacer>,
    /// The pacer shared by the logs of this log's operator, when the
    /// operator limits per address across its logs.
    operator: std::sync::Mutex<Option<Arc<Pacer>>>,
}

/// How the HTTP client to logs (or to the manager) is set up.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Bind every connection to this local address.
    pub local_address: Option<std::net::IpAddr>,
    /// Send every request through this proxy (an `http://` or
    /// `https://` URL; `NO_PROXY` does not apply to it). Without it the
    /// client follows `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`.
    pub proxy: Option<String>,
    /// A PEM file of extra CA certificates to trust, besides the webpki roots.
    pub extra_ca: Option<PathBuf>,
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("proxy {url}: {source}")]
    Proxy {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("reading the CA file {path}: {source}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file {path} is not PEM certificates: {reason}")]
    CaPem { path: String, reason: String },
    #[error("building the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// Builds the shared HTTP client: rustls, timeouts on every request, no
/// redirects followed (log URLs come from the admin's list), and optionally
/// bound to `local_address` (multi-homed hosts; several workers on
/// 127.0.0.x in tests). Proxies come from the environment.
pub fn http_client(
    user_agent: &str,
    local_address: Option<std::net::IpAddr>,
) -> anyhow::Result<reqwest::Client> {
    Ok(http_client_with(
        user_agent,
        &HttpOptions {
            local_address,
            ..HttpOptions::default()
        },
    )?)
}

/// [`http_client`] with a proxy and extra CA certificates. Compressed
/// bodies (gzip, brotli) are asked for and decoded.
pub fn http_client_with(
    user_agent: &str,
    opts: &HttpOptions,
) -> Result<reqwest::Client, HttpSetupError> {
    let mut b = reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .redirect(reqwest::redirect::Policy::none())
        .gzip(true)
        .brotli(true)
        .local_address(opts.local_address);
    // No `.proxy()` and no `.no_proxy()` without a proxy of our own: reqwest
    // then reads HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY itself.
    if let Some(url) = opts
        .proxy
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        let proxy = reqwest::Proxy::all(url).map_err(|source| HttpSetupError::Proxy {
            url: url.to_owned(),
            source,
        })?;
        b = b.proxy(proxy);
    }
    if let Some(path) = &opts.extra_ca {
        for cert in read_ca(path)? {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(HttpSetupError::Build)
}

/// The certificates of a PEM file (at least one).
fn read_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, HttpSetupError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| HttpSetupError::CaFile {
        path: shown.clone(),
        source,
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| HttpSetupError::CaPem {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(HttpSetupError::CaPem {
            path: shown,
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// A `Retry-After` value (RFC 9110 10.2.3): delay-seconds or an HTTP date
/// (IMF-fixdate, or the obsolete RFC 850 and asctime forms), as a delay
/// from `now`, capped at [`MAX_RETRY_AFTER`]. A date in the past is no
/// delay; anything else is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let delay = if v.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a long time".
        Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The body of `resp`, refused past `limit` bytes (after decompression).
async fn read_bounded(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, FetchError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(FetchError::BadAnswer(format!(
            "answer larger than {} MiB",
            limit >> 20
        )));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| FetchError::from_reqwest(&e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::BadAnswer(format!(
                "answer larger than {} MiB",
                limit >> 20
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    parse_retry_after(v.to_str().ok()?, SystemTime::now())
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
            pacer: Arc::new(Pacer::default()),
            operator: std::sync::Mutex::new(None),
        }
    }

    /// This log's pacer.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    /// Paces this log together with the other logs of its operator (or not,
    /// with `None`).
    pub fn set_operator_pacer(&self, pacer: Option<Arc<Pacer>>) {
        if let Ok(mut g) = self.operator.lock() {
            *g = pacer;
        }
    }

    pub fn operator_pacer(&self) -> Option<Arc<Pacer>> {
        self.operator.lock().ok().and_then(|g| g.clone())
    }

    /// Waits for this log's pacer and its operator's.
    async fn paced(&self) {
        match self.operator_pacer() {
            Some(op) => crate::pace::acquire(&[&self.pacer, &op]).await,
            None => self.pacer.acquire().await,
        }
    }

    async fn get(&self, path: &str) -> Result<Bytes, FetchError> {
        let url = format!("{}{path}", self.base);
        self.paced().await;
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(&e))?;
        let status = resp.status();
        if status.as_u16() == 429 || status.is_server_error() {
            let retry = retry_after(&resp);
            // The log said when: nothing goes to it before then, whichever
            // fetcher (or issuer lookup) asks next.
            if let Some(d) = retry {
                self.pacer.hold(d);
            }
            return Err(if status.as_u16() == 429 {
                FetchError::RateLimited(retry)
            } else {
                FetchError::Server(status.as_u16(), retry)
            });
        }
        if status.as_u16() == 404 {
            return Err(FetchError::NotFound);
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(FetchError::Client(
                status.as_u16(),
                text.chars().take(200).collect(),
            ));
        }
        read_bounded(resp, MAX_ANSWER_BYTES).await
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `Wed, 21 Oct 2015 07:28:00 GMT`.
    fn example_date() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480)
    }

    #[test]
    fn retry_after_in_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 5 ", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        // Capped, also past u64.
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let at = example_date();
        let now = at - Duration::from_secs(90);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(90))
        );
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:00 2015", now),
            Some(Duration::from_secs(90))
        );
        // In the past: no wait. Far ahead: capped.
        let later = at + Duration::from_secs(5);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", later),
            Some(Duration::ZERO)
        );
        let long_before = at - Duration::from_secs(7200);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", long_before),
            Some(MAX_RETRY_AFTER)
        );
    }

    /// A gzip answer is bounded by its decompressed size.
    #[tokio::test]
    async fn a_compressed_answer_cannot_expand_past_the_limit() {
        use std::io::Write;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 200_000]).unwrap();
        let gz = gz.finish().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 16 * 1024];
                let _ = conn.read(&mut buf).await.unwrap();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    gz.len()
                );
                conn.write_all(head.as_bytes()).await.unwrap();
                conn.write_all(&gz).await.unwrap();
            }
        });
        let client = http_client_with("t", &HttpOptions::default()).unwrap();
        let url = format!("http://{addr}/");
        let resp = client.get(&url).send().await.unwrap();
        let e = read_bounded(resp, 100_000).await.unwrap_err();
        assert!(matches!(e, FetchError::BadAnswer(_)), "{e:?}");
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(read_bounded(resp, 300_000).await.unwrap().len(), 200_000);
    }

    #[test]
    fn retry_after_that_is_neither_is_ignored() {
        let now = SystemTime::now();
        for v in [
            "",
            "  ",
            "-1",
            "1.5",
            "soon",
            "Wed, 32 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(v, now), None, "{v:?}");
        }
    }
}
