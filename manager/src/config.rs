//! The manager's validated, typed configuration.

use std::fmt;
use std::time::Duration;

use ct_core::matcher::Matcher;

/// Settings of a running manager.
#[derive(Clone)]
pub struct Config {
    /// Bearer token of admin calls; admin calls are refused when absent.
    pub admin_token: Option<String>,
    /// How long a lease lives without progress.
    pub lease: Duration,
    /// How often tree heads are polled and logs planned; `None` disables the loop.
    pub poll_interval: Option<Duration>,
    /// How often expired leases are returned to the pool; `None` disables the loop
    /// (claims still take over expired leases).
    pub reap_interval: Option<Duration>,
    /// Tasks hold `2^task_size_log2` entries.
    pub task_size_log2: u32,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most entries in one upload.
    pub max_upload_entries: usize,
    /// Most tasks in one claim.
    pub max_claim: u32,
    /// Fetchers a worker starts with on a log.
    pub initial_fetchers: u32,
    /// Timeout of a tree head request.
    pub http_timeout: Duration,
    /// Which names match.
    pub matcher: Matcher,
    /// Share (0..=1) of completed ranges re-done by another worker as a
    /// hidden-entry check.
    pub check_share: f64,
    /// A worker's first this many ranges are all checked.
    pub check_first: u32,
    /// Check tasks go only to workers with at least this many completed
    /// tasks (and from another address than the checked worker's).
    pub check_min_tasks: u64,
    /// Share (0..=1) of completed ranges the manager re-fetches itself.
    pub audit_share: f64,
    /// How often due audits run; `None` disables the loop (admin `verify` still runs them).
    pub audit_interval: Option<Duration>,
    /// How often the analysis job runs; `None` disables it (`ct-manager analyse` still runs it).
    pub analyse_interval: Option<Duration>,
    /// How often each log's progress and the leaderboard are recorded for
    /// the operations history (idempotent per hour and per day); `None`
    /// disables the loop (`POST /v1/admin/ops/snapshot` still takes one).
    pub snapshot_interval: Option<Duration>,
    /// Registration needs this secret when set (closed deployments).
    pub registration_secret: Option<String>,
    /// New names per client address, and new machines per name (whatever
    /// their address), per hour (0: unlimited).
    pub registrations_per_hour: u32,
    /// Tasks of one log one worker may hold at once.
    pub tasks_per_log: u32,
    /// A log's fetch budget per client address when neither the log nor its
    /// operator has one: requests per second, entries per request.
    pub default_requests_per_sec: f64,
    pub default_entries_per_request: u64,
    /// How long an idle worker is told to wait before claiming again.
    pub idle_claim: Duration,
    /// Header holding the client's address, set by a trusted reverse proxy
    /// (e.g. `x-real-ip`); the connection's peer address otherwise.
    pub client_address_header: Option<String>,
    /// How old the snapshot that `/v1/logs`, `/v1/stats`, `/v1/workers` and
    /// `/metrics` answer from may be: a request reads it again (once for
    /// all requests waiting) when it was taken longer ago. Zero: every
    /// request sees everything committed before it arrived.
    pub public_max_age: Duration,
    /// Connections of the public reads' own pool (apart from the workers').
    pub public_db_connections: u32,
    /// How long a call waits for a database connection before it answers
    /// 503 `unavailable` (the public reads' pool; `ct-manager serve` gives
    /// the workers' pool the same).
    pub db_acquire_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            admin_token: None,
            lease: Duration::from_secs(300),
            poll_interval: Some(Duration::from_secs(60)),
            reap_interval: Some(Duration::from_secs(15)),
            task_size_log2: 12,
            max_body_bytes: 16 << 20,
            max_upload_entries: 2048,
            max_claim: 16,
            initial_fetchers: 1,
            http_timeout: Duration::from_secs(20),
            matcher: Matcher::default(),
            check_share: 0.02,
            check_first: 3,
            check_min_tasks: 1,
            audit_share: 0.001,
            audit_interval: Some(Duration::from_secs(10)),
            analyse_interval: None,
            snapshot_interval: None,
            registration_secret: None,
            registrations_per_hour: 30,
            client_address_header: None,
            tasks_per_log: 2,
            default_requests_per_sec: 10.0,
            default_entries_per_request: 256,
            idle_claim: Duration::from_secs(30),
            public_max_age: Duration::from_secs(1),
            public_db_connections: 2,
            db_acquire_timeout: Duration::from_secs(3),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("lease", &self.lease)
            .field("poll_interval", &self.poll_interval)
            .field("reap_interval", &self.reap_interval)
            .field("task_size_log2", &self.task_size_log2)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_upload_entries", &self.max_upload_entries)
            .field("max_claim", &self.max_claim)
            .field("initial_fetchers", &self.initial_fetchers)
            .field("suffixes", &self.matcher.suffixes())
            .field("check_share", &self.check_share)
            .field("check_first", &self.check_first)
            .field("check_min_tasks", &self.check_min_tasks)
            .field("audit_share", &self.audit_share)
            .field("audit_interval", &self.audit_interval)
            .field("analyse_interval", &self.analyse_interval)
            .field("snapshot_interval", &self.snapshot_interval)
            .field(
                "registration_secret",
                &self.registration_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("registrations_per_hour", &self.registrations_per_hour)
            .field("client_address_header", &self.client_address_header)
            .field("tasks_per_log", &self.tasks_per_log)
            .field("default_requests_per_sec", &self.default_requests_per_sec)
            .field(
                "default_entries_per_request",
                &self.default_entries_per_request,
            )
            .field("idle_claim", &self.idle_claim)
            .field("public_max_age", &self.public_max_age)
            .field("public_db_connections", &self.public_db_connections)
            .field("db_acquire_timeout", &self.db_acquire_timeout)
            .finish()
    }
}
