//! `--metrics-listen ADDR`: the worker's Prometheus metrics (OpenMetrics
//! text at `/metrics`), read from the engine's view at every scrape: per
//! log entries, matches, errors, 429s, requests, fetchers and budget; tasks
//! done, uploads acknowledged and the spool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use worker_engine::view::EngineView;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabels {
    log: String,
}

type PerLog = Family<LogLabels, Counter>;
type PerLogGauge = Family<LogLabels, Gauge>;
type RateGauge = Family<LogLabels, Gauge<f64, std::sync::atomic::AtomicU64>>;

struct Metrics {
    registry: Registry,
    view: Arc<EngineView>,
    entries: PerLog,
    matches: PerLog,
    errors: PerLog,
    rate_limited: PerLog,
    server_errors: PerLog,
    requests: PerLog,
    fetchers_active: PerLogGauge,
    fetchers_allowed: PerLogGauge,
    budget_rps: RateGauge,
    tasks_done: Counter,
    uploaded: Counter,
    spool_batches: Gauge,
    active_tasks: Gauge,
}

/// Brings a counter up to `total` (the view's counters only grow).
fn catch_up(c: &Counter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

impl Metrics {
    fn new(view: Arc<EngineView>) -> Self {
        let mut r = Registry::default();
        let per_log = |r: &mut Registry, name: &str, help: &str| {
            let f = PerLog::default();
            r.register(name, help, f.clone());
            f
        };
        let entries = per_log(
            &mut r,
            "ctjp_worker_entries",
            "Entries fetched and examined, per log",
        );
        let matches = per_log(&mut r, "ctjp_worker_matches", "Matching entries, per log");
        let errors = per_log(
            &mut r,
            "ctjp_worker_errors",
            "Entries that did not decode, per log",
        );
        let rate_limited = per_log(
            &mut r,
            "ctjp_worker_rate_limited",
            "429 answers from the log",
        );
        let server_errors = per_log(
            &mut r,
            "ctjp_worker_server_errors",
            "5xx answers from the log",
        );
        let requests = per_log(&mut r, "ctjp_worker_requests", "Requests to the log");
        let fetchers_active = PerLogGauge::default();
        r.register(
            "ctjp_worker_fetchers_active",
            "Fetchers running, per log",
            fetchers_active.clone(),
        );
        let fetchers_allowed = PerLogGauge::default();
        r.register(
            "ctjp_worker_fetchers_allowed",
            "Fetchers the manager allows, per log",
            fetchers_allowed.clone(),
        );
        let budget_rps = RateGauge::default();
        r.register(
            "ctjp_worker_budget_requests_per_second",
            "The log's fetch budget for this worker",
            budget_rps.clone(),
        );
        let tasks_done = Counter::default();
        r.register(
            "ctjp_worker_tasks_done",
            "Tasks completed",
            tasks_done.clone(),
        );
        let uploaded = Counter::default();
        r.register(
            "ctjp_worker_uploaded",
            "Uploaded entries the manager acknowledged",
            uploaded.clone(),
        );
        let spool_batches = Gauge::default();
        r.register(
            "ctjp_worker_spool_batches",
            "Upload batches in the spool",
            spool_batches.clone(),
        );
        let active_tasks = Gauge::default();
        r.register(
            "ctjp_worker_active_tasks",
            "Tasks held now",
            active_tasks.clone(),
        );
        Metrics {
            registry: r,
            view,
            entries,
            matches,
            errors,
            rate_limited,
            server_errors,
            requests,
            fetchers_active,
            fetchers_allowed,
            budget_rps,
            tasks_done,
            uploaded,
            spool_batches,
            active_tasks,
        }
    }

    fn render(&self) -> String {
        for log in self.view.logs() {
            let l = LogLabels {
                log: log.name.clone(),
            };
            catch_up(&self.entries.get_or_create(&l), log.entries.load(Relaxed));
            catch_up(&self.matches.get_or_create(&l), log.matches.load(Relaxed));
            catch_up(&self.errors.get_or_create(&l), log.errors.load(Relaxed));
            catch_up(
                &self.rate_limited.get_or_create(&l),
                log.rate_limited.load(Relaxed),
            );
            catch_up(
                &self.server_errors.get_or_create(&l),
                log.server_errors.load(Relaxed),
            );
            catch_up(&self.requests.get_or_create(&l), log.requests.load(Relaxed));
            self.fetchers_active
                .get_or_create(&l)
                .set(i64::from(log.fetchers_active.load(Relaxed)));
            self.fetchers_allowed
                .get_or_create(&l)
                .set(i64::from(log.fetchers_allowed.load(Relaxed)));
            if let Some(b) = log.budget() {
                self.budget_rps.get_or_create(&l).set(b.requests_per_sec);
            }
        }
        catch_up(&self.tasks_done, self.view.tasks_done.load(Relaxed));
        catch_up(&self.uploaded, self.view.uploaded.load(Relaxed));
        self.spool_batches
            .set(i64::try_from(self.view.spool_batches.load(Relaxed)).unwrap_or(i64::MAX));
        self.active_tasks
            .set(i64::from(self.view.active_tasks.load(Relaxed)));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

async fn scrape(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}

/// Serves `/metrics` on `addr` until `cancel` fires.
pub async fn serve(
    addr: SocketAddr,
    view: Arc<EngineView>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --metrics-listen {addr}"))?;
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(Metrics::new(view)));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
        .context("serving metrics")
}
