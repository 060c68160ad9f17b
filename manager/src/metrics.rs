//! Prometheus metrics with `prometheus-client`: counters of this process,
//! request counts and latency histograms per route and status (recorded by
//! [`track`]), timings of claims, ingests and proofs, 429s reported per
//! log, and gauges set at scrape time from the public reads' snapshot
//! ([`crate::reads`]: tasks by state, per-log collected and verified
//! positions, certificates, workers) and from the workers' pool (its use).

use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sqlx::MySqlPool;

use crate::AppState;
use crate::error::Result;
use crate::reads::Snapshot;

/// The labels of an HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route template (`/v1/tasks/{id}/entries`), never the raw path.
    pub route: String,
    pub status: u16,
}

/// One log.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LogLabels {
    pub log_id: u64,
}

/// One task state.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

type Seconds = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric of this process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Encoding and the scrape-time gauges, one scrape at a time.
    scrape: Mutex<()>,
    pub registrations: Counter,
    pub registrations_refused: Counter,
    pub claims: Counter,
    pub tasks_leased: Counter,
    pub heartbeats: Counter,
    pub uploads: Counter,
    pub entries_new: Counter,
    pub entries_duplicate: Counter,
    pub entries_rejected: Counter,
    pub tasks_completed: Counter,
    pub tasks_failed: Counter,
    pub leases_expired: Counter,
    pub sth_verified: Counter,
    pub sth_unverified: Counter,
    pub sth_fetch_errors: Counter,
    /// HTTP requests to logs for range proofs (proofs and hash tiles).
    pub proof_requests: Counter,
    pub ranges_verified: Counter,
    pub ranges_unproven: Counter,
    pub ranges_mismatched: Counter,
    pub workers_flagged: Counter,
    /// HTTP requests to logs for the manager's own audits and second opinions.
    pub audit_requests: Counter,
    pub audits_passed: Counter,
    pub audits_failed: Counter,
    /// 429 (and 503) answers workers reported, per log.
    pub rate_limited: Family<LogLabels, Counter>,
    pub http_requests: Family<RouteLabels, Counter>,
    pub http_seconds: Seconds,
    pub claim_seconds: Histogram,
    pub ingest_seconds: Histogram,
    pub proof_seconds: Histogram,
    tasks: Family<StateLabels, Gauge>,
    collected: Family<LogLabels, Gauge>,
    verified: Family<LogLabels, Gauge>,
    tree_size: Family<LogLabels, Gauge>,
    certificates: Gauge,
    workers: Gauge,
    pool_size: Gauge,
    pool_idle: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let registrations = counter("ctjp_registrations", "Workers registered");
        let registrations_refused = counter(
            "ctjp_registrations_refused",
            "Registrations refused (rate limit per address, secret)",
        );
        let claims = counter("ctjp_claims", "Claim calls");
        let tasks_leased = counter("ctjp_tasks_leased", "Tasks leased");
        let heartbeats = counter("ctjp_heartbeats", "Heartbeat calls");
        let uploads = counter("ctjp_uploads", "Upload calls");
        let entries_new = counter("ctjp_entries_new", "Uploaded entries stored");
        let entries_duplicate =
            counter("ctjp_entries_duplicate", "Uploaded entries already stored");
        let entries_rejected = counter("ctjp_entries_rejected", "Uploaded entries rejected");
        let tasks_completed = counter("ctjp_tasks_completed", "Tasks completed");
        let tasks_failed = counter("ctjp_tasks_failed", "Tasks given back by workers");
        let leases_expired = counter(
            "ctjp_leases_expired",
            "Leases expired and returned to the pool",
        );
        let sth_verified = counter("ctjp_sth_verified", "Tree heads fetched and verified");
        let sth_unverified = counter(
            "ctjp_sth_unverified",
            "Tree heads whose signature did not verify",
        );
        let sth_fetch_errors = counter("ctjp_sth_fetch_errors", "Tree head fetches that failed");
        let proof_requests = counter(
            "ctjp_proof_requests",
            "HTTP requests to logs for range proofs",
        );
        let ranges_verified = counter(
            "ctjp_ranges_verified",
            "Ranges proven against a signed tree head",
        );
        let ranges_unproven = counter(
            "ctjp_ranges_unproven",
            "Range proofs the log could not give now",
        );
        let ranges_mismatched = counter(
            "ctjp_ranges_mismatched",
            "Ranges whose reported subtree hash was not the log's",
        );
        let workers_flagged = counter(
            "ctjp_workers_flagged",
            "Workers flagged by checks and audits",
        );
        let audit_requests = counter(
            "ctjp_audit_requests",
            "HTTP requests to logs for the manager's own audits of completed ranges",
        );
        let audits_passed = counter(
            "ctjp_audits_passed",
            "Audited ranges whose completer's set equals the manager's",
        );
        let audits_failed = counter(
            "ctjp_audits_failed",
            "Audited ranges whose completer omitted matches",
        );
        let rate_limited = Family::<LogLabels, Counter>::default();
        r.register(
            "ctjp_log_rate_limited",
            "429 and 503 answers workers reported, per log",
            rate_limited.clone(),
        );
        let http_requests = Family::<RouteLabels, Counter>::default();
        r.register(
            "ctjp_http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        let http_seconds: Seconds = Family::new_with_constructor(seconds);
        r.register(
            "ctjp_http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            http_seconds.clone(),
        );
        let claim_seconds = seconds();
        r.register(
            "ctjp_claim_duration_seconds",
            "Time to lease the tasks of one claim",
            claim_seconds.clone(),
        );
        let ingest_seconds = seconds();
        r.register(
            "ctjp_ingest_duration_seconds",
            "Time to examine and store one upload",
            ingest_seconds.clone(),
        );
        let proof_seconds = seconds();
        r.register(
            "ctjp_proof_duration_seconds",
            "Time to prove one range against the log",
            proof_seconds.clone(),
        );
        let tasks = Family::<StateLabels, Gauge>::default();
        r.register("ctjp_tasks", "Tasks by state", tasks.clone());
        let collected = Family::<LogLabels, Gauge>::default();
        r.register(
            "ctjp_log_collected_entries",
            "Entries of a log collected and proven",
            collected.clone(),
        );
        let verified = Family::<LogLabels, Gauge>::default();
        r.register(
            "ctjp_log_verified_until",
            "A log's verified prefix: every entry before it collected and proven",
            verified.clone(),
        );
        let tree_size = Family::<LogLabels, Gauge>::default();
        r.register(
            "ctjp_log_tree_size",
            "Size of a log's largest verified signed tree head",
            tree_size.clone(),
        );
        let certificates = Gauge::default();
        r.register(
            "ctjp_certificates",
            "Stored matching certificates",
            certificates.clone(),
        );
        let workers = Gauge::default();
        r.register(
            "ctjp_workers",
            "Registered workers not revoked",
            workers.clone(),
        );
        let pool_size = Gauge::default();
        r.register(
            "ctjp_db_pool_connections",
            "Database connections open",
            pool_size.clone(),
        );
        let pool_idle = Gauge::default();
        r.register(
            "ctjp_db_pool_idle",
            "Database connections idle",
            pool_idle.clone(),
        );
        Metrics {
            registry: r,
            scrape: Mutex::new(()),
            registrations,
            registrations_refused,
            claims,
            tasks_leased,
            heartbeats,
            uploads,
            entries_new,
            entries_duplicate,
            entries_rejected,
            tasks_completed,
            tasks_failed,
            leases_expired,
            sth_verified,
            sth_unverified,
            sth_fetch_errors,
            proof_requests,
            ranges_verified,
            ranges_unproven,
            ranges_mismatched,
            workers_flagged,
            audit_requests,
            audits_passed,
            audits_failed,
            rate_limited,
            http_requests,
            http_seconds,
            claim_seconds,
            ingest_seconds,
            proof_seconds,
            tasks,
            collected,
            verified,
            tree_size,
            certificates,
            workers,
            pool_size,
            pool_idle,
        }
    }
}

/// Adds to a counter.
pub fn inc(c: &Counter, by: u64) {
    c.inc_by(by);
}

/// Seconds since `t`.
pub fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Sets the gauges from the public reads' `snapshot` (and the workers'
    /// pool's use now) and renders every metric in the OpenMetrics text format.
    pub fn render(&self, snapshot: &Snapshot, pool: &MySqlPool) -> Result<String> {
        let _one = self
            .scrape
            .lock()
            .map_err(|_| crate::Error::Internal("metrics lock poisoned".into()))?;
        for s in ct_db::TaskState::ALL {
            let n = snapshot
                .tasks_by_state
                .iter()
                .find(|(st, _)| st == s)
                .map_or(0, |(_, n)| *n);
            self.tasks
                .get_or_create(&StateLabels {
                    state: s.as_str().to_owned(),
                })
                .set(gauge(n));
        }
        for l in &snapshot.logs {
            let p = &l.progress;
            let labels = LogLabels { log_id: l.id };
            self.collected
                .get_or_create(&labels)
                .set(gauge(p.entries_verified));
            self.verified
                .get_or_create(&labels)
                .set(gauge(p.verified_until));
            self.tree_size
                .get_or_create(&labels)
                .set(gauge(p.tree_size));
        }
        self.certificates.set(gauge(snapshot.certificates));
        self.workers.set(gauge(snapshot.workers_not_revoked));
        self.pool_size.set(i64::from(pool.size()));
        self.pool_idle
            .set(i64::try_from(pool.num_idle()).unwrap_or(0));
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| crate::Error::Internal(format!("encoding metrics: {e}")))?;
        Ok(out)
    }
}

/// Middleware: counts every request and records its latency by route
/// template, method and status.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let labels = RouteLabels {
        method,
        route,
        status: resp.status().as_u16(),
    };
    state.metrics.http_requests.get_or_create(&labels).inc();
    state
        .metrics
        .http_seconds
        .get_or_create(&labels)
        .observe(since(started));
    resp
}
