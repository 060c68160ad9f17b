//! Faults real logs show, applied as middleware in front of one log's
//! routes: added latency, a token bucket per client address (429, with
//! `Retry-After` on every other refusal) for the log and optionally one
//! shared by all logs of its operator, 500/503 answers, and answers cut
//! mid-body (part of the body, then the connection is aborted). It also
//! counts the body bytes it sends.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

use crate::config::FaultConfig;
use crate::error::{Error, Result};
use crate::log::Log;

/// Fault state of one log, with counters of what was done.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    limiter: Option<RateLimiter>,
    pub counters: Counters,
}

/// Token buckets, one per client address.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// How many faults were served (for tests and logs).
#[derive(Debug, Default)]
pub struct Counters {
    pub rate_limited: AtomicU64,
    pub errors: AtomicU64,
    pub cut: AtomicU64,
    pub short: AtomicU64,
    /// Of `rate_limited`, refusals by the operator-wide bucket.
    pub operator_limited: AtomicU64,
    /// Answers sent gzip-encoded.
    pub gzipped: AtomicU64,
    /// Body bytes sent (as encoded; a cut answer counts what was sent).
    pub bytes_sent: AtomicU64,
    /// Body bytes the same answers hold before content encoding.
    pub bytes_identity: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

fn check_share(name: &str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(Error::Config(format!("{name} {v} not in 0..=1")))
    }
}

impl RateLimiter {
    /// `rate` tokens per second, `burst` (at least 1) per bucket.
    pub fn new(rate: f64, burst: u32) -> Result<Self> {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(Error::Config(format!("rate limit {rate} must be positive")));
        }
        Ok(RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Requests per second per client address.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Takes a token for `ip`; false when its bucket is empty.
    pub fn take(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back a token taken for a request refused by another bucket.
    pub fn refund(&self, ip: IpAddr) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(&ip) {
            b.tokens = (b.tokens + 1.0).min(self.burst);
        }
    }
}

impl Faults {
    pub fn new(config: &FaultConfig) -> Result<Self> {
        check_share("error rate", config.error_rate)?;
        check_share("cut rate", config.cut_rate)?;
        check_share("short rate", config.short_rate)?;
        let limiter = config
            .rate_limit
            .map(|r| RateLimiter::new(r, config.burst))
            .transpose()?;
        Ok(Faults {
            config: config.clone(),
            limiter,
            counters: Counters::default(),
        })
    }

    /// Takes a token for `ip` from the log's bucket, then from the
    /// operator's (giving the log's back when the operator refuses). Which
    /// bucket refused, if one did.
    fn take(&self, operator: Option<&RateLimiter>, ip: IpAddr) -> Option<Refusal> {
        if let Some(l) = &self.limiter
            && !l.take(ip)
        {
            return Some(Refusal::Log);
        }
        if let Some(op) = operator
            && !op.take(ip)
        {
            if let Some(l) = &self.limiter {
                l.refund(ip);
            }
            return Some(Refusal::Operator);
        }
        None
    }

    /// Whether this get-entries answer should be short.
    pub fn short(&self) -> bool {
        let yes = self.config.short_rate > 0.0 && rand::rng().random_bool(self.config.short_rate);
        if yes {
            self.counters.short.fetch_add(1, Ordering::Relaxed);
        }
        yes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Log,
    Operator,
}

/// What [`crate::gzip`] leaves on a response it encoded: the body's length before.
#[derive(Debug, Clone, Copy)]
pub struct IdentityLength(pub u64);

/// The middleware.
pub async fn apply(State(log): State<Arc<Log>>, req: Request, next: Next) -> Response {
    let faults = &log.faults;
    let cfg = &faults.config;
    if cfg.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.latency_ms)).await;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let operator = log.operator.as_ref().and_then(|o| o.limiter.as_ref());
    if let Some(refusal) = faults.take(operator, ip) {
        if refusal == Refusal::Operator {
            faults
                .counters
                .operator_limited
                .fetch_add(1, Ordering::Relaxed);
        }
        let n = faults.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, "rate limited\n").into_response();
        if n % 2 == 0 {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return resp;
    }
    let (error, cut) = {
        let mut rng = rand::rng();
        let error = cfg.error_rate > 0.0 && rng.random_bool(cfg.error_rate);
        let cut = cfg.cut_rate > 0.0 && rng.random_bool(cfg.cut_rate);
        (error.then(|| rng.random_bool(0.5)), cut)
    };
    if let Some(five_hundred) = error {
        faults.counters.errors.fetch_add(1, Ordering::Relaxed);
        return if five_hundred {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "<html>service unavailable</html>\n",
            )
                .into_response()
        };
    }
    let resp = next.run(req).await;
    let counters = &faults.counters;
    let count = |sent: u64, identity: u64| {
        counters.bytes_sent.fetch_add(sent, Ordering::Relaxed);
        counters
            .bytes_identity
            .fetch_add(identity, Ordering::Relaxed);
    };
    let identity = resp.extensions().get::<IdentityLength>().map(|l| l.0);
    if identity.is_some() {
        counters.gzipped.fetch_add(1, Ordering::Relaxed);
    }
    if !cut {
        if let Some(len) = resp.body().size_hint().exact() {
            count(len, identity.unwrap_or(len));
        }
        return resp;
    }
    faults.counters.cut.fetch_add(1, Ordering::Relaxed);
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let half = bytes.slice(..bytes.len() / 2);
    count(
        half.len() as u64,
        identity.map_or(half.len() as u64, |i| i / 2),
    );
    let chunks: Vec<std::result::Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated cut",
        )),
    ];
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, Body::from_stream(futures_util::stream::iter(chunks)))
}
