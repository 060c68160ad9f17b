//! The running simulator: binds a listener, builds every log, serves them
//! under `/log<N>/` (over HTTP, or HTTPS with a CA of its own) with faults
//! and access logging, grows them on a timer, and stops cleanly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::error::{Error, Result};
use crate::log::{Head, Log};
use crate::operator::Operator;
use crate::truth::{Truth, TruthLog};

/// A running simulator.
#[derive(Debug)]
pub struct Simulator {
    base_url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    logs: Vec<Arc<Log>>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    growers: Vec<JoinHandle<()>>,
}

/// What a client needs to know about one served log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// With a trailing slash; RFC 6962 calls go to `<url>ct/v1/...`, static
    /// ones to `<url>checkpoint` and `<url>tile/...`.
    pub url: String,
    /// The checkpoint origin (also the note key name).
    pub origin: String,
    /// DER SubjectPublicKeyInfo.
    pub key: Vec<u8>,
    pub entries: u64,
    pub truth: TruthLog,
    /// The name of the operator it belongs to.
    pub operator: String,
}

fn io_err(context: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        context: context.to_owned(),
        source,
    }
}

impl Simulator {
    /// Binds `config.listen`, builds the logs (on blocking threads) and
    /// starts serving (with `config.tls`, over HTTPS: see [`Simulator::ca_pem`]).
    pub async fn start(config: SimConfig) -> Result<Simulator> {
        crate::operator::check(&config.operators, &config.logs)?;
        let mut operators = HashMap::new();
        for o in &config.operators {
            let logs = config
                .logs
                .iter()
                .filter(|l| l.operator.as_ref() == Some(&o.name))
                .count();
            operators.insert(o.name.clone(), Arc::new(Operator::new(o.clone(), logs)?));
        }
        let tls = if config.tls {
            Some(crate::tls::generate(config.listen.ip())?)
        } else {
            None
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(io_err("binding the listener"))?;
        let addr = listener
            .local_addr()
            .map_err(io_err("reading the local address"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{addr}");
        let mut builds = Vec::new();
        for (number, log_config) in config.logs.into_iter().enumerate() {
            let base = base_url.clone();
            let operator = log_config
                .operator
                .as_ref()
                .and_then(|name| operators.get(name).cloned());
            builds.push(tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let log = Log::build(number, &base, log_config).map(|mut log| {
                    log.operator = operator;
                    log
                });
                if let Ok(log) = &log {
                    tracing::info!(
                        log.url = %log.url,
                        log.entries = log.head().tree_size,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "log ready"
                    );
                }
                log
            }));
        }
        let mut logs = Vec::new();
        for b in builds {
            let log = b
                .await
                .map_err(|e| Error::Config(format!("log build task failed: {e}")))??;
            logs.push(Arc::new(log));
        }
        let app = router(&logs);
        let (shutdown, rx) = watch::channel(false);
        let mut server_rx = rx.clone();
        let stopped = async move {
            let _ = server_rx.wait_for(|stop| *stop).await;
        };
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let server = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, service)
                    .with_graceful_shutdown(stopped)
                    .await
            }),
            Some(tls) => {
                let listener = crate::tls::TlsListener::new(listener, tls.acceptor)
                    .map_err(io_err("reading the local address"))?
                    // tap_io: axum gives ConnectInfo<SocketAddr> for any tapped listener.
                    .tap_io(|_| {});
                tokio::spawn(async move {
                    axum::serve(listener, service)
                        .with_graceful_shutdown(stopped)
                        .await
                })
            }
        };
        let growers = logs
            .iter()
            .filter(|l| l.config.grow_per_sec > 0)
            .map(|log| tokio::spawn(grow(log.clone(), rx.clone())))
            .collect();
        tracing::info!(%base_url, logs = logs.len(), "ctlog-sim serving");
        Ok(Simulator {
            base_url,
            addr,
            ca_pem,
            logs,
            shutdown,
            server,
            growers,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// With TLS, the PEM certificate of the CA that signed the server's
    /// certificate (made at start; trust it to reach the logs).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The served logs.
    pub fn logs(&self) -> Vec<LogInfo> {
        self.logs
            .iter()
            .map(|l| LogInfo {
                url: l.url.clone(),
                origin: l.origin.clone(),
                key: l.spki.clone(),
                entries: l.head().tree_size,
                truth: TruthLog::of(l),
                operator: l.operator_name().to_owned(),
            })
            .collect()
    }

    /// The log objects themselves (heads, entries, fault counters).
    pub fn log(&self, number: usize) -> Option<&Arc<Log>> {
        self.logs.get(number)
    }

    /// Appends `count` entries to log `number` now and publishes a new head.
    pub async fn grow(&self, number: usize, count: u64) -> Result<Head> {
        let log = self
            .logs
            .get(number)
            .cloned()
            .ok_or_else(|| Error::Config(format!("no log {number}")))?;
        tokio::task::spawn_blocking(move || log.append(count))
            .await
            .map_err(|e| Error::Config(format!("grow task failed: {e}")))?
    }

    /// The served logs as a v3 log list, one operator entry per operator.
    pub fn log_list(&self) -> ct_core::loglist::LogList {
        crate::loglist::log_list(self.logs.iter().map(|l| &**l))
    }

    /// [`Simulator::log_list`] as JSON, rate-limited logs also with
    /// `certspotter_download_qps` (the name certspotter reads).
    pub fn log_list_json(&self) -> serde_json::Value {
        crate::loglist::log_list_json(self.logs.iter().map(|l| &**l))
    }

    pub fn truth(&self) -> Truth {
        Truth {
            logs: self.logs.iter().map(|l| TruthLog::of(l)).collect(),
        }
    }

    /// Stops growth and the server, waiting for open requests to finish.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        for g in self.growers {
            let _ = g.await;
        }
        match self.server.await {
            Ok(r) => r.map_err(io_err("serving")),
            Err(e) => Err(Error::Config(format!("server task failed: {e}"))),
        }
    }
}

async fn grow(log: Arc<Log>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let count = log.config.grow_per_sec;
        let l = log.clone();
        match tokio::task::spawn_blocking(move || l.append(count)).await {
            Ok(Ok(head)) => tracing::debug!(log.url = %log.url, tree_size = head.tree_size, "grew"),
            Ok(Err(e)) => tracing::warn!(log.url = %log.url, error = %e, "growth failed"),
            Err(e) => tracing::warn!(log.url = %log.url, error = %e, "growth task failed"),
        }
    }
}

/// All routes: each log under `/log<N>`.
pub fn router(logs: &[Arc<Log>]) -> Router {
    let mut app = Router::new();
    for log in logs {
        let mut r = Router::new();
        if log.config.views.rfc6962 {
            r = r.merge(crate::rfc6962::routes());
        }
        if log.config.views.tiles {
            r = r.merge(crate::tiles::routes());
        }
        let r = r
            .layer(middleware::from_fn_with_state(
                log.clone(),
                crate::faults::apply,
            ))
            .with_state(log.clone());
        app = app.nest(&format!("/log{}", log.number), r);
    }
    app.layer(middleware::from_fn(access_log))
}

async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    tracing::info!(
        http.method = %method,
        http.path = %uri,
        http.status = resp.status().as_u16(),
        http.client = %client,
        duration_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}
