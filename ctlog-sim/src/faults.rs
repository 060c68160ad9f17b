//! Faults real logs show, applied as middleware in front of one log's
//! routes: added latency, a token bucket per client address (429, with
//! `Retry-After` on every other refusal), 500/503 answers, and answers cut
//! mid-body (part of the body, then the connection is aborted).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
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
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    pub counters: Counters,
}

/// How many faults were served (for tests and logs).
#[derive(Debug, Default)]
pub struct Counters {
    pub rate_limited: AtomicU64,
    pub errors: AtomicU64,
    pub cut: AtomicU64,
    pub short: AtomicU64,
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

impl Faults {
    pub fn new(config: &FaultConfig) -> Result<Self> {
        check_share("error rate", config.error_rate)?;
        check_share("cut rate", config.cut_rate)?;
        check_share("short rate", config.short_rate)?;
        if let Some(r) = config.rate_limit
            && !(r > 0.0 && r.is_finite())
        {
            return Err(Error::Config(format!("rate limit {r} must be positive")));
        }
        Ok(Faults {
            config: config.clone(),
            buckets: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// Takes a token for `ip`; false when the bucket is empty.
    fn take(&self, ip: IpAddr) -> bool {
        let Some(rate) = self.config.rate_limit else {
            return true;
        };
        let burst = f64::from(self.config.burst.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
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
    if !faults.take(ip) {
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
    if !cut {
        return resp;
    }
    faults.counters.cut.fetch_add(1, Ordering::Relaxed);
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let half = bytes.slice(..bytes.len() / 2);
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
