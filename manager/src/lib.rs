//! `ct-manager` as a library: the axum application over MySQL that plans,
//! leases, scales and ingests. [`app`] builds the router, [`serve`] runs it
//! with the background loops (tree-head poller and planner, lease reaper,
//! audits, analysis, operations snapshots) until a shutdown future resolves.

pub mod analyse;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod export;
pub mod fetch;
pub mod ingest;
pub mod integrity;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod planner;
pub mod poller;
pub mod reads;
pub mod routes;
pub mod scaling;
pub mod snapshots;
pub mod tasks;
pub mod verify;

use std::future::Future;
use std::sync::Arc;

use sqlx::MySqlPool;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;
pub use error::{Error, Result};
pub use routes::app;

/// Shared state of every handler and loop.
#[derive(Clone)]
pub struct AppState {
    pub pool: MySqlPool,
    pub config: Arc<Config>,
    pub metrics: Arc<metrics::Metrics>,
    /// Client of the logs (proofs, audits); follows no redirects.
    pub http: reqwest::Client,
    /// Every transition of a task.
    pub store: ct_db::TaskStore,
    /// Uploads examined and stored at once: half the pool, so that
    /// heartbeats, claims and completions always find a connection soon even
    /// when uploads saturate the database.
    pub ingest_slots: Arc<tokio::sync::Semaphore>,
    /// The snapshot `/v1/logs`, `/v1/stats`, `/v1/workers` and `/metrics`
    /// answer from, read on a pool of its own.
    pub reads: Arc<reads::PublicReads>,
}

impl AppState {
    /// Builds the state; fails only if the HTTP client cannot be built.
    pub fn new(pool: MySqlPool, config: Config) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .user_agent(concat!("ct-manager/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        let slots = (pool.options().get_max_connections() / 2).max(1) as usize;
        let lease_ms = u64::try_from(config.lease.as_millis()).unwrap_or(u64::MAX / 4);
        Ok(AppState {
            store: ct_db::TaskStore::new(pool.clone(), lease_ms),
            ingest_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            reads: Arc::new(reads::PublicReads::new(&pool, &config)),
            pool,
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::default()),
            http,
        })
    }
}

/// Serves the API on `listener` and runs the background loops until
/// `shutdown` resolves; then stops the loops and waits for them.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = Vec::new();
    if let Some(every) = state.config.poll_interval {
        loops.push(tokio::spawn(poller::run(
            state.clone(),
            every,
            stop_rx.clone(),
        )));
    }
    if let Some(every) = state.config.reap_interval {
        loops.push(tokio::spawn(tasks::reap_loop(
            state.clone(),
            every,
            stop_rx.clone(),
        )));
    }
    if let Some(every) = state.config.audit_interval {
        loops.push(tokio::spawn(audit::audit_loop(
            state.clone(),
            every,
            stop_rx.clone(),
        )));
    }
    if let Some(every) = state.config.analyse_interval {
        let analyser = analyse::Analyser::new(state.config.matcher.clone());
        loops.push(tokio::spawn(analyse::analyse_loop(
            state.pool.clone(),
            analyser,
            every,
            stop_rx.clone(),
        )));
    }
    if let Some(every) = state.config.snapshot_interval {
        loops.push(tokio::spawn(snapshots::snapshot_loop(
            state.clone(),
            every,
            stop_rx.clone(),
        )));
    }
    if !state.config.public_max_age.is_zero() {
        loops.push(tokio::spawn(
            state.reads.clone().refresh_loop(stop_rx.clone()),
        ));
    }
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    for handle in loops {
        if let Err(e) = handle.await {
            tracing::error!(error = %e, "background loop ended abnormally");
        }
    }
    result
}

/// Waits until `stop` turns true or `every` has passed; returns true when stopping.
pub(crate) async fn sleep_or_stop(
    every: std::time::Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(every) => false,
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}
