//! What the engine's network tests share: a ctlog-sim log behind a "front"
//! server that records every request with its time, answers some requests
//! itself (429, 503, with `Retry-After`) and forwards the others to the
//! simulator, optionally gzip-encoding the answers; and a `fetch_range`
//! over a [`LogCtx`] as the worker builds it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ct_core::matcher::Matcher;
use ctlog_sim::{LogConfig, SimConfig, Simulator};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use worker_engine::adapt::Adaptive;
use worker_engine::range::{LogCtx, Progress, RangeOutcome, fetch_range};
use worker_engine::source::{HttpOptions, LogKind, Source, http_client_with};
use worker_engine::stats::LogStats;

/// One request the front saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub wall: SystemTime,
    /// Path and query, without the leading `/`.
    pub path: String,
    pub accept_encoding: String,
}

/// Answers request number `n` (from 0) for `path` itself, or lets it through.
pub type Rule = Arc<dyn Fn(usize, &str) -> Option<Response> + Send + Sync>;

pub fn pass() -> Rule {
    Arc::new(|_, _| None)
}

/// A status with a `Retry-After` value.
pub fn refuse(status: u16, retry_after: &str) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        "slow down\n".to_owned(),
    )
        .into_response();
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(retry_after).unwrap(),
    );
    r
}

/// How the front encodes what it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    /// `Content-Encoding: gzip` when the client accepts it.
    Wire,
    /// Data tiles served as gzip objects (as some static logs store them),
    /// without `Content-Encoding`.
    StoredTiles,
    /// Both: gzip data tiles, gzip-encoded again on the wire.
    WireAndStoredTiles,
}

impl Encoding {
    fn wire(self) -> bool {
        matches!(self, Encoding::Wire | Encoding::WireAndStoredTiles)
    }

    fn stored_tiles(self) -> bool {
        matches!(self, Encoding::StoredTiles | Encoding::WireAndStoredTiles)
    }
}

pub struct Front {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct FrontState {
    upstream: String,
    client: reqwest::Client,
    hits: Arc<Mutex<Vec<Hit>>>,
    rule: Rule,
    encoding: Encoding,
}

impl Front {
    /// A front for the log at `upstream` (with its trailing slash).
    pub async fn start(upstream: &str, encoding: Encoding, rule: Rule) -> Front {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = FrontState {
            upstream: upstream.to_owned(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            hits: hits.clone(),
            rule,
            encoding,
        };
        let app = axum::Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Front {
            url: format!("http://{addr}/"),
            hits,
            task,
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

async fn handle(State(st): State<FrontState>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .trim_start_matches('/')
        .to_owned();
    let accept_encoding = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let n = {
        let mut hits = st.hits.lock().unwrap();
        hits.push(Hit {
            at: Instant::now(),
            wall: SystemTime::now(),
            path: path.clone(),
            accept_encoding: accept_encoding.clone(),
        });
        hits.len() - 1
    };
    if let Some(r) = (st.rule)(n, &path) {
        return r;
    }
    let up = match st.client.get(format!("{}{path}", st.upstream)).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = up.status();
    let content_type = up.headers().get(header::CONTENT_TYPE).cloned();
    let mut body = up.bytes().await.unwrap_or_default().to_vec();
    let is_tile = path.starts_with("tile/data/");
    if st.encoding.stored_tiles() && is_tile {
        body = gzip(&body);
    }
    let mut resp = Response::builder().status(status.as_u16());
    if let Some(ct) = content_type {
        resp = resp.header(header::CONTENT_TYPE, ct);
    }
    if st.encoding.wire() && accept_encoding.contains("gzip") {
        body = gzip(&body);
        resp = resp.header(header::CONTENT_ENCODING, "gzip");
    }
    resp.body(axum::body::Body::from(body)).unwrap()
}

/// A simulator with the given logs.
pub async fn sim(logs: Vec<LogConfig>) -> Simulator {
    Simulator::start(SimConfig::new(logs)).await.unwrap()
}

/// The HTTP client as the worker builds it for logs.
pub fn client() -> reqwest::Client {
    client_with(HttpOptions::default())
}

pub fn client_with(opts: HttpOptions) -> reqwest::Client {
    http_client_with("ct-worker/test", &opts).unwrap()
}

/// A log context over `url` as the worker builds it.
pub fn ctx(kind: LogKind, url: &str, http: reqwest::Client, fetchers: u32, batch: u64) -> LogCtx {
    LogCtx {
        source: Arc::new(Source::new(kind, url, http)),
        adapt: Arc::new(std::sync::Mutex::new(Adaptive::new(fetchers))),
        stats: Arc::new(LogStats::new(url)),
        matcher: Matcher::default(),
        batch,
        max_fetchers: fetchers,
    }
}

/// Fetches `[start, end)` of `ctx`'s log; the outcome and how many matches
/// came out.
pub async fn fetch(
    ctx: &LogCtx,
    start: u64,
    end: u64,
    cancel: CancellationToken,
) -> (RangeOutcome, usize) {
    let (tx, mut rx) = mpsc::channel(1024);
    let collector = tokio::spawn(async move {
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        n
    });
    let progress = Arc::new(Progress::new(start));
    let outcome = fetch_range(ctx, start, start, end, tx, progress, cancel).await;
    (outcome, collector.await.unwrap())
}

/// The root hash of the whole log at `url`, from its own head.
pub async fn root_hash(kind: LogKind, url: &str) -> [u8; 32] {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    match kind {
        LogKind::Rfc6962 => {
            let sth: ct_core::rfc6962::GetSth = http
                .get(format!("{url}ct/v1/get-sth"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            sth.root_hash().unwrap()
        }
        LogKind::Static => {
            let text = http
                .get(format!("{url}checkpoint"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            ct_core::checkpoint::Checkpoint::parse(&text)
                .unwrap()
                .root_hash
        }
    }
}

/// The most requests of `hits` inside any window of `window`.
pub fn most_in_window(hits: &[Hit], window: Duration) -> usize {
    let at: Vec<Instant> = hits.iter().map(|h| h.at).collect();
    let mut best = 0;
    for (i, t) in at.iter().enumerate() {
        let n = at[i..].iter().take_while(|u| **u < *t + window).count();
        best = best.max(n);
    }
    best
}
